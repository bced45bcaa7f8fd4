"""The bench's studies beside the benchmark table: the ensemble rules against the best component, the null
study, the simulator's kinds, the memory probe.

- :func:`rule_study`: every ensemble rule (:data:`kit.pipeline.ensemble.RULES`) against the best single
  component, per folder, and on "single-signal" tables (one component from the folder, the others from its
  null copy); ``python -m kit rules``.
- :func:`null_study`: the cheap anchors and their ensemble on many null simulations (is the ensemble's choice
  leak-free?); ``python -m kit null-study``.
- :func:`kind_folders`: simulated folders of every effect kind and seed, for ``kit bench --kinds``.
- :func:`memory_probe`: peak memory of loading a folder and building its deep features, in a fresh process.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from kit.core.errors import KitError
from kit.data.dataset import load_dataset
from kit.data.demo import write_demo_dataset
from kit.eval.crossfit import served_inner_auc
from kit.eval.cv import loso_score
from kit.eval.metric import auc_curves
from kit.eval.stats import bootstrap_difference
from kit.methods.registry import ANCHORS, ENSEMBLE_COMPONENTS, baseline_predictions
from kit.pipeline import stages
from kit.pipeline.ensemble import RULES, fit_ensemble
from kit.pipeline.profiles import stage_config
from kit.pipeline.run import data_tag, open_run
from kit.store.paths import output_root, project_root

logger = logging.getLogger(__name__)


def _kind(root: Path) -> str:
    """The effect kind of a simulated folder (``demo.json``), ``"real"`` for other folders."""
    meta = Path(root) / "demo.json"
    if not meta.is_file():
        return "real"
    m = json.loads(meta.read_text())
    return "null" if float(m.get("effect", 1.0)) == 0.0 else str(m.get("kind", "theta"))


def kind_folders(kinds, seeds=(0, 1), *, scale: float = 0.2, where: str | os.PathLike | None = None) -> list[Path]:
    """Simulated data folders of every effect kind and seed (:data:`kit.data.demo.KINDS`), written once and reused.

    Parameters
    ----------
    kinds : sequence of str
        Kinds of :func:`kit.data.demo.write_demo_dataset`.
    seeds : sequence of int
    scale : float
        x the real trial counts (0.2: the demo's size).
    where : path, optional
        Parent folder; default ``{output_root}/bench/kinds``.

    Returns
    -------
    list of Path
        ``where/{kind}-s{seed}-x{scale}``, kinds outer, seeds inner.
    """
    where = Path(where) if where else output_root() / "bench" / "kinds"
    out = []
    for kind in kinds:
        for seed in seeds:
            folder = where / f"{kind}-s{seed}-x{scale:g}"
            if not (folder / "demo.json").is_file():
                write_demo_dataset(folder, scale=scale, seed=seed, kind=kind, overwrite=True)
            out.append(folder)
    return out


def rule_study(data, *, profile: str = "quick", components=None, single: str | None = "thetacov",
               verbose: bool = True) -> list[dict]:
    """Every ensemble rule (:data:`kit.pipeline.ensemble.RULES`) against the best single component, per folder.

    For each folder the components' finished stages are read (a missing cheap anchor, ``starter``,
    ``thetacov`` or ``bandpower``, is computed; the deep stages and EEGNet are used only where the
    pipeline or the bench already wrote them).  Each rule's nested LOSO score (fitted on the
    cross-fitted tables, :func:`kit.pipeline.ensemble.fit_ensemble`) is compared with the best component's
    LOSO score, which is chosen with hindsight: the bar a rule must not fall below.

    With ``single``, every simulated folder that has a null copy beside it in the study (same seed
    and size, ``effect=0``) also yields a "single-signal" table: component ``single`` from the
    folder, every other component from its null copy (same trials and labels), so only one
    component carries the effect.

    Returns
    -------
    list of dict
        One row per table: ``folder``, ``components``, ``best_component``, ``best_score``, per rule its
        score and ``diff_<rule>`` (rule - best component), and ``diagnostic``: per component
        :func:`kit.eval.crossfit.served_inner_auc` (LOSO, own-table and served-table AUC; the optimism).
    """

    tables = []
    loaded = {}
    for folder in data:
        run = open_run(folder, profile, verbose=False)
        names = [c for c in (components or ENSEMBLE_COMPONENTS)
                 if (run.artifacts / c / "stage.json").exists() or c in ("starter", "thetacov", "bandpower")]
        for c in names:
            if c in ANCHORS:
                stages.run_baseline_stage(run, c)
        comps = stages.load_components(run, names)
        loaded[Path(folder).resolve()] = (run, comps)
        tables.append((data_tag(run.data_root), run, comps))
    if single:
        for path, (run, comps) in list(loaded.items()):
            meta = run.data_root / "demo.json"
            if not meta.is_file() or single not in comps:
                continue
            twin = loaded.get((path.parent / f"{path.name}-null").resolve())
            if twin is None or not np.array_equal(twin[0].train.y, run.train.y):
                continue
            shared = [c for c in comps if c in twin[1]]
            mixed = {c: (comps[c] if c == single else twin[1][c]) for c in shared}
            tables.append((f"{data_tag(run.data_root)}: {single} only", run, mixed))
    rows = []
    for tag, run, comps in tables:
        tr = run.train
        oof, inner = {k: v["oof"] for k, v in comps.items()}, {k: v["inner"] for k, v in comps.items()}
        group = next(iter(comps.values()))["inner_group"]
        scores = {k: loso_score(v, tr.y, tr.subject)["loso_score"] for k, v in oof.items()}
        best = max(scores, key=scores.get)
        row = {"folder": tag, "components": sorted(comps), "best_component": best, "best_score": scores[best],
               "kind": _kind(run.data_root),
               "diagnostic": {k: served_inner_auc(oof[k], inner[k], group, tr.y, tr.subject) for k in oof}}
        cfg = stage_config("ensemble", profile)
        _, best_curves = auc_curves(oof[best], tr.y, tr.subject)
        for rule in RULES:
            fit = fit_ensemble(oof, tr.y, tr.subject, replace(cfg, rule=rule), inner=inner, group=group)
            row[rule] = loso_score(fit.nested, tr.y, tr.subject)["loso_score"]
            row[f"diff_{rule}"] = row[rule] - scores[best]
            if rule == cfg.rule:  # the default's difference with a paired bootstrap interval over subjects
                row["default_rule"] = rule
                row["default_ci"] = list(bootstrap_difference(auc_curves(fit.nested, tr.y, tr.subject)[1],
                                                              best_curves)[1:])
        rows.append(row)
        if verbose:
            logger.info(f"[rules] {tag}: best component {best} {scores[best]:.4f}; "
                        + ", ".join(f"{r} {row[r]:.4f}" for r in RULES))
    return rows


def null_study(n_seeds: int = 12, *, scale: float = 0.2, where: str | os.PathLike | None = None,
               names=("starter", "thetacov", "bandpower"), verbose: bool = True) -> list[dict]:
    """The cheap anchors and their ensemble on ``n_seeds`` null simulations: is the ensemble's choice leak-free?

    For each seed, a null demo (effect 0) at ``scale``; the LOSO scores of
    the anchors ``names``, and of their ensemble with the blend for subject k
    chosen (a) on the plain out-of-fold predictions ("nested") and (b) on
    cross-fitted predictions ("crossfit", :func:`kit.eval.crossfit.crossfit_plan`).
    On null data every score is chance; a choice that is systematically
    higher than its leak-free counterpart on the same data shows a leak.

    Parameters
    ----------
    n_seeds : int
        Simulations (seeds 0 .. n_seeds - 1).
    scale : float
        Size of each (x the real trial counts).
    where : path, optional
        Folder of the simulations (kept and reused); default ``{output_root}/bench/null-study``.
    names : tuple of str
        Anchors to blend.

    Returns
    -------
    list of dict
        Per seed: ``seed``, each anchor's score, ``nested``, ``crossfit``.
    """

    where = Path(where) if where else output_root() / "bench" / "null-study"
    cfg = stage_config("ensemble", "quick")
    rows = []
    for seed in range(n_seeds):
        folder = where / f"null_s{seed}_x{scale:g}"
        if not (folder / "demo.json").is_file():
            write_demo_dataset(folder, scale=scale, seed=seed, effect=0.0, overwrite=True)
        tr = load_dataset(folder, splits=("train",))
        oof, inner = {}, {}
        for name in names:
            oof[name], _, inner[name], group = baseline_predictions(name, tr.X, tr.y, tr.subject, sfreq=tr.sfreq)
        row = {"seed": seed, **{n: loso_score(oof[n], tr.y, tr.subject)["loso_score"] for n in names}}
        nested = fit_ensemble(oof, tr.y, tr.subject, cfg).nested
        crossfit = fit_ensemble(oof, tr.y, tr.subject, cfg, inner=inner, group=group).nested
        row["nested"] = loso_score(nested, tr.y, tr.subject)["loso_score"]
        row["crossfit"] = loso_score(crossfit, tr.y, tr.subject)["loso_score"]
        rows.append(row)
        if verbose:
            logger.info(" ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    return rows


_MEMORY_CHILD = """
import json, resource, sys, time, tracemalloc
import numpy as np
from kit.signal.sequences import deep_features
from kit.data.dataset import load_dataset
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
t0 = time.perf_counter()
ds = load_dataset(sys.argv[1])
t_load = time.perf_counter() - t0
rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
F = deep_features(ds.X, ds.subject, ds.sfreq)
t_feat = time.perf_counter() - t0 - t_load
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n_trials": len(ds), "X_bytes": ds.X.nbytes, "features_bytes": F.nbytes,
                  "rss_after_imports_kib": base, "rss_after_load_kib": rss_load, "peak_rss_kib": peak,
                  "tracemalloc_peak_bytes": tracemalloc.get_traced_memory()[1],
                  "load_s": t_load, "features_s": t_feat}))
"""


def memory_probe(scale: float = 1.0, *, seed: int = 0) -> dict:
    """Peak memory of loading a data folder and building its deep features (kit.signal.sequences.deep_features), in a
    fresh process.

    Simulates a demo folder at ``scale`` (1.0 = the real 10,209 + 1,734
    trials) into a temporary folder, then a child Python process runs
    :func:`kit.data.dataset.load_dataset` and :func:`kit.signal.sequences.deep_features` and
    reports its peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``,
    KiB on Linux) and the peak of :mod:`tracemalloc` (numpy arrays included).

    Returns
    -------
    dict
        ``n_trials``, ``X_bytes``, ``features_bytes``, ``peak_rss_gib``,
        ``rss_after_imports_kib``, ``rss_after_load_kib``, ``peak_rss_kib``,
        ``tracemalloc_peak_bytes``, ``load_s``, ``features_s``, ``write_s``, ``scale``.

    Raises
    ------
    KitError
        If the child process fails.
    """

    with tempfile.TemporaryDirectory(prefix="kit-memory-") as tmp:
        t0 = time.perf_counter()
        data = write_demo_dataset(Path(tmp) / "demo", scale=scale, seed=seed)
        write_s = time.perf_counter() - t0
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(project_root()),
                                                                          os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(data)], capture_output=True, text=True,
                              env=env, cwd=project_root())
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-1:])
        raise KitError(f"memory probe: child process failed ({proc.returncode}): {tail}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update(scale=scale, write_s=write_s, peak_rss_gib=out["peak_rss_kib"] / 2**20)
    return out
