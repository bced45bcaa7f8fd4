"""The benchmark: every anchor and every stage of the kit, side by side, on the same LOSO folds.

For each data folder, :func:`bench_folder` computes out-of-fold predictions
(leave-one-subject-out, fold ``k`` = ``k``-th sorted training subject, as
:func:`kit.eval.cv.loso_folds` and the pipeline's ``folds.csv``) of

- the anchors: ``starter`` (organisers), ``thetacov`` (2nd place),
  ``bandpower`` (log-variance in five bands, shrinkage LDA) and ``eegnet``
  (EEGNet-8,2), through :func:`kit.pipeline.stages.run_baseline_stage`;
- the kit's stages: ``experts`` (:func:`kit.pipeline.stages.run_experts_stage`),
  its levers ``experts_mldg`` / ``experts_fomaml`` / ``experts_seeds3`` (:data:`kit.methods.registry.EXPERT_LEVERS`:
  one field of the config changed) and ``experts_tent`` (the experts adapted
  to each held-out subject's unlabelled trials, :func:`kit.deep.tta.tent_adapt`),
  ``fusion`` (the cross-channel fusion, :mod:`kit.deep.channel_fusion`; its levers ``fusion_tokens`` and
  ``fusion_cov``; the reference ``fusion_lda``, shrinkage LDA on the experts' trial logits) and
  ``ensemble`` (:func:`kit.pipeline.stages.run_ensemble_stage` on the components
  the pipeline gives it, :data:`kit.methods.registry.ENSEMBLE_COMPONENTS`, nested
  LOSO with the blend chosen on cross-fitted predictions),

and scores each with :func:`kit.eval.stats.summarize`: the competition metric over the
held-out subjects, its window, the mean per-subject AUC, a 95 % bootstrap
interval over subjects and the "expected leaderboard": the metric over every
3-subject subset of the held-out subjects (the real test set has 3
subjects), mean and 5th/95th percentiles.

A demo data folder is also benched as a NULL copy (same simulator and seed,
emotional effect 0, at :data:`NULL_SCALE`: the real data's size): every
method should stay at chance there; a score above :data:`NULL_LIMIT` flags a
leak.  The copy is full-size because LOSO null scores spread more than the
binomial noise of one AUC suggests: the models of different folds share
most of their training subjects, so the held-out AUCs are positively
correlated (a relabelling test of the band-power anchor on a 0.2-scale null
copy gave a spread of 0.025, against 0.015 for independent subjects), and
at that size a clean method passes 0.53 by chance about one run in eight.

``python -m kit bench`` (:mod:`kit.app.bench`, tables by :mod:`kit.report.bench`) writes ``reports/bench.md`` (a table per
folder),
``reports/figures/bench_auc_<data>.png`` (AUC time courses) and prints a
JSON summary as its last line.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from kit.core.errors import KitError
from kit.core.runtime import thread_limit
from kit.data.dataset import load_dataset
from kit.data.demo import write_demo_dataset
from kit.eval.crossfit import served_inner_auc
from kit.eval.cv import loso_score
from kit.eval.metric import auc_curves
from kit.eval.stats import N_BOOT, bootstrap_difference, summarize
from kit.methods.registry import ANCHOR_LEVERS, ANCHORS, ENSEMBLE_COMPONENTS, EXPERT_LEVERS, METHODS, baseline_predictions
from kit.pipeline import levers, stages
from kit.pipeline.ensemble import RULES, fit_ensemble
from kit.pipeline.profiles import stage_config
from kit.pipeline.run import Run, data_tag, open_run
from kit.store.artifacts import atomic_write, load_npz
from kit.store.paths import output_root, project_root

logger = logging.getLogger(__name__)


NULL_LIMIT = 0.53
"""Highest LOSO score accepted on null data; above it, suspect a leak (see the module docstring for why 0.53)."""


NULL_SCALE = 1.0
"""Size of the null copy (x the real trial counts): big enough for :data:`NULL_LIMIT` to be a test."""


@dataclass
class FolderResult:
    """Bench of one data folder."""

    tag: str
    data: Path
    n_subjects: int
    n_trials: int
    rows: dict = field(default_factory=dict)      # method -> summarize() dict
    seconds: dict = field(default_factory=dict)   # method -> wall time of its stage (s)
    cached: dict = field(default_factory=dict)    # method -> True when its artifacts were reused
    total_seconds: float = 0.0
    simulated: dict | None = None                 # kit.data.demo parameters (scale, seed, effect) of a simulated folder
    null: bool = False
    ensemble_blend: str = ""
    ensemble_info: dict = field(default_factory=dict)  # ensemble's result.json: rules, best component, difference
    times: np.ndarray | None = None


def stamp_time(run, name: str) -> float | None:
    p = run.artifacts / name / "stage.json"
    return p.stat().st_mtime_ns if p.exists() else None


def bench_folder(data, profile: str = "quick", *, methods=tuple(METHODS), n_boot: int = N_BOOT, seed: int = 0,
                 null: bool = False, verbose: bool = True, artifacts: Path | None = None) -> FolderResult:
    """Compute and score every method of ``methods`` on one data folder.

    Parameters
    ----------
    data : path
        A competition-layout data folder.
    profile : str
        A profile of :data:`kit.pipeline.profiles.PROFILES` (``quick``, ``full``, ``smoke``).
    methods : sequence of str
        Subset of :data:`tuple(METHODS)`; ``ensemble`` adds every component the
        pipeline blends (:data:`kit.methods.registry.ENSEMBLE_COMPONENTS`).
    n_boot, seed : int
        Bootstrap resamples and their seed.
    null : bool
        Mark the folder as null data (its table flags scores above :data:`NULL_LIMIT`).
    artifacts : Path, optional
        Artifacts folder (default ``{output_root}/artifacts/{data tag}``, shared with the pipeline:
        finished stages with the same config are reused).

    Returns
    -------
    FolderResult

    Raises
    ------
    KitError
        Unknown method or profile; any stage's error.
    """

    unknown = [m for m in methods if m not in tuple(METHODS)]
    if unknown:
        raise KitError(f"bench: unknown methods {unknown}; choose from {', '.join(tuple(METHODS))}")
    wanted = [m for m in tuple(METHODS) if m in methods]
    if "ensemble" in wanted:  # the ensemble blends the pipeline's default components: compute them all
        wanted = [m for m in tuple(METHODS) if m in set(wanted) | set(ENSEMBLE_COMPONENTS)]
    t_start = time.perf_counter()
    run = Run(Path(data), profile, artifacts=artifacts, verbose=verbose)
    tr = run.train
    run.folds  # noqa: B018 - one fold table for every stage
    res = FolderResult(data_tag(run.data_root), run.data_root, int(np.unique(tr.subject).size), len(tr),
                       null=null, times=np.asarray(tr.times))

    times_path = run.artifacts / "bench_times.json"  # compute time of each stage, kept for cached reruns
    stored = json.loads(times_path.read_text()) if times_path.is_file() else {}

    def timed(name, fn):
        before = stamp_time(run, name)
        t0 = time.perf_counter()
        if verbose:
            logger.info("[bench %s] %s ...", res.tag, name)
        out = fn()
        res.seconds[name] = time.perf_counter() - t0
        res.cached[name] = before is not None and before == stamp_time(run, name)
        key = f"{name}@{run.read_stamp(name).get('hash', '')}"
        if res.cached[name] and key in stored:
            res.seconds[name] = float(stored[key])  # the time it took when it was computed
        elif not res.cached[name]:
            stored[key] = round(res.seconds[name], 1)
            with atomic_write(times_path, "w") as fh:  # at once: a later crash keeps this stage's time
                json.dump(stored, fh, indent=1, sort_keys=True)
        return out

    preds = {}
    for name in ANCHORS + tuple(ANCHOR_LEVERS):
        if name in wanted:
            preds[name] = timed(name, lambda: stages.run_baseline_stage(run, name))["oof"]
    deep = [m for m in wanted if METHODS[m].kind != "anchor" and m not in ANCHOR_LEVERS]  # anchor levers need no MAE
    if deep:
        timed("mae", lambda: stages.run_mae_stage(run))
    for name in EXPERT_LEVERS:
        if name in deep:
            preds[name] = timed(name, lambda: levers.run_lever_stage(run, name))["oof"]
    if {"experts", levers.TENT, "fusion_lda"} & set(deep):
        preds["experts"] = timed("experts", lambda: stages.run_experts_stage(run))["oof"]
    if levers.TENT in deep:
        # (n_train, n_times): no test predictions
        preds[levers.TENT] = timed(levers.TENT, lambda: levers.run_tent_stage(run))["oof"]
    if "fusion_lda" in deep:
        preds["fusion_lda"] = timed("fusion_lda", lambda: stages.run_fusion_lda_stage(run))["oof"]
    if "fusion" in deep:
        preds["fusion"] = timed("fusion", lambda: stages.run_fusion_stage(run))["oof"]
    if "thirdplace" in deep:
        preds["thirdplace"] = timed("thirdplace", lambda: levers.run_thirdplace_stage(run))["oof"]
    for name in levers.FUSION_LEVERS:
        if name in deep:
            preds[name] = timed(name, lambda: levers.run_fusion_lever_stage(run, name))["oof"]
    if "ensemble" in deep:
        timed("ensemble", lambda: stages.run_ensemble_stage(run, write=False))
        res.cached["ensemble"] = False
        preds["ensemble"] = load_npz(run.artifacts / "ensemble" / "predictions.npz")["oof"]
        info = run.artifacts / "ensemble" / "result.json"
        res.ensemble_info = json.loads(info.read_text()) if info.is_file() else {}
        res.ensemble_blend = str(res.ensemble_info.get("blend", ""))
    for name in (m for m in wanted if m in preds):
        res.rows[name] = summarize(preds[name], tr.y, tr.subject, n_boot=n_boot, seed=seed)
    res.total_seconds = time.perf_counter() - t_start
    meta = run.data_root / "demo.json"
    if meta.is_file():
        m = json.loads(meta.read_text())
        res.simulated = {k: m.get(k) for k in ("scale", "seed", "effect")}
    return res


def _kind(root: Path) -> str:
    """The effect kind of a simulated folder (``demo.json``), ``"real"`` for other folders."""
    meta = Path(root) / "demo.json"
    if not meta.is_file():
        return "real"
    m = json.loads(meta.read_text())
    return "null" if float(m.get("effect", 1.0)) == 0.0 else str(m.get("kind", "theta"))


def null_copy(data: Path, where: Path, scale: float | None = NULL_SCALE) -> Path | None:
    """A NULL copy (``effect=0``) of a demo data folder, same seed, in ``where/{name}-null``.

    Parameters
    ----------
    data : path
        A simulated data folder (with ``demo.json``).
    where : path
        Parent folder of the copy.
    scale : float or None
        Trials x the real counts (:func:`kit.data.demo.write_demo_dataset`); None = the same as ``data``.

    Returns None when ``data`` is not a simulated folder (no ``demo.json``)
    or is already null.  An existing copy with the same parameters is reused.
    """

    meta_path = Path(data) / "demo.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    if float(meta.get("effect", 1.0)) == 0.0:
        return None
    out = Path(where) / f"{Path(data).resolve().name}-null"
    scale = float(meta["scale"] if scale is None else scale)
    have = out / "demo.json"
    if have.is_file():
        old = json.loads(have.read_text())
        if (old.get("scale"), old.get("seed"), float(old.get("effect", -1))) == (scale, meta["seed"], 0.0):
            return out
    return write_demo_dataset(out, scale=scale, seed=meta["seed"], effect=0.0, overwrite=True)


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


def bench_job(folder, profile, methods, n_boot, seed, is_null, verbose, threads, *, artifacts: Path | None = None,
              output: str | None = None) -> FolderResult:
    """One folder in a worker process (:func:`kit.app.bench.parallel_bench`); ``output`` becomes ``$KIT_OUTPUT``."""
    if output:
        os.environ["KIT_OUTPUT"] = output
    with thread_limit(threads):
        return bench_folder(folder, profile, methods=methods, n_boot=n_boot, seed=seed, null=is_null, verbose=verbose,
                            artifacts=artifacts)


def bench_parts(methods=tuple(METHODS)) -> list[tuple[str, ...]]:
    """The bench's independent tasks on one folder: each anchor (and anchor lever) alone, the deep stages together.

    The deep stages form one chain (MAE -> experts -> fusion, levers beside them) that writes shared
    artifacts, so they stay in one task; the anchors share nothing but the data.  The ensemble needs every
    component and is left to :func:`bench_folder` once the parts are done (:func:`kit.app.bench.run_bench`).

    Parameters
    ----------
    methods : sequence of str
        As :func:`bench_folder` takes them (``ensemble`` adds its components).

    Returns
    -------
    list of tuple of str
        The parts, anchors first in :data:`METHODS` order, the deep part last.

    Raises
    ------
    KitError
        Unknown method.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise KitError(f"bench: unknown methods {unknown}; choose from {', '.join(METHODS)}")
    wanted = [m for m in METHODS if m in methods]
    if "ensemble" in wanted:
        wanted = [m for m in METHODS if m in set(wanted) | set(ENSEMBLE_COMPONENTS)]
    solo = [(m,) for m in wanted if m in ANCHORS or m in ANCHOR_LEVERS]
    deep = tuple(m for m in wanted if m not in ANCHORS and m not in ANCHOR_LEVERS and m != "ensemble")
    return solo + ([deep] if deep else [])


def bench_part(folder, profile: str, methods, *, artifacts: Path, threads: int = 1, verbose: bool = False,
               output: str | None = None) -> dict:
    """One part of :func:`bench_parts` on one folder, in a worker: computes its stages, returns their compute times.

    Parameters
    ----------
    folder : path
        The data folder (a path every worker sees).
    profile : str
    methods : tuple of str
        One part of :func:`bench_parts`.
    artifacts : Path
        The folder's artifacts (on storage every worker sees; the later :func:`bench_folder` reads them).
    threads : int
        Threads per numeric library in the worker (:func:`kit.core.runtime.thread_limit`).
    output : str, optional
        The client's output root, set as ``$KIT_OUTPUT`` in the worker (where a stage writes beside its artifacts).

    Returns
    -------
    dict
        ``{"{stage}@{config hash}": seconds}`` of the stages this call computed (cached stages left out):
        the entries of the folder's ``bench_times.json``, merged by the caller (parts run at once, each
        writing the file alone would lose the others' entries).
    """
    if output:
        os.environ["KIT_OUTPUT"] = output
    with thread_limit(threads):
        res = bench_folder(folder, profile, methods=methods, n_boot=10, verbose=verbose, artifacts=Path(artifacts))
    out = {}
    for name, seconds in res.seconds.items():
        stamp = Path(artifacts) / name / "stage.json"
        if not res.cached.get(name) and stamp.is_file() and name != "ensemble":
            out[f"{name}@{json.loads(stamp.read_text()).get('hash', '')}"] = round(seconds, 1)
    return out


def merge_bench_times(artifacts: Path, times: dict) -> None:
    """Add ``{"{stage}@{hash}": seconds}`` entries to ``artifacts/bench_times.json`` (one writer: the caller)."""
    path = Path(artifacts) / "bench_times.json"
    stored = json.loads(path.read_text()) if path.is_file() else {}
    stored.update(times)
    with atomic_write(path, "w") as fh:
        json.dump(stored, fh, indent=1, sort_keys=True)


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
