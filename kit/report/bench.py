"""The benchmark: every anchor and every stage of the kit, side by side, on the same LOSO folds.

For each data folder, :func:`bench_folder` computes out-of-fold predictions
(leave-one-subject-out, fold ``k`` = ``k``-th sorted training subject, as
:func:`kit.eval.cv.loso_folds` and the pipeline's ``folds.csv``) of

- the anchors: ``starter`` (organisers), ``thetacov`` (2nd place),
  ``bandpower`` (log-variance in five bands, shrinkage LDA) and ``eegnet``
  (EEGNet-8,2), through :func:`kit.pipeline.stages.run_baseline_stage`;
- the kit's stages: ``experts`` (:func:`kit.pipeline.stages.run_experts_stage`),
  its levers ``experts_mldg`` / ``experts_fomaml`` / ``experts_seeds3`` (:data:`LEVERS`: one
  field of the config changed) and ``experts_tent`` (the experts adapted
  to each held-out subject's unlabelled trials, :func:`kit.deep.tta.tent_adapt`),
  ``fusion`` (and each fusion model alone: ``fusion_lda``, ``fusion_net``) and
  ``ensemble`` (:func:`kit.pipeline.stages.run_ensemble_stage` on the components
  the pipeline gives it, :data:`kit.pipeline.stages.ENSEMBLE_COMPONENTS`, nested
  LOSO with the blend chosen on cross-fitted predictions),

and scores each with :func:`summarize`: the competition metric over the
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

``python -m kit bench`` writes ``reports/bench.md`` (a table per folder),
``reports/figures/bench_auc_<data>.png`` (AUC time courses) and prints a
JSON summary as its last line.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from kit.store.artifacts import atomic_write, load_npz, save_npz
from kit.core.errors import KitError
from kit.eval.metric import (CHANCE, MIN_LEN, N_BOOT, auc_curves, bootstrap_difference, bootstrap_interval,  # noqa: F401
                     bootstrap_scores, subset_scores, window_score)  # the statistics live in kit.eval.metric; re-exported here

ANCHORS = ("starter", "thetacov", "bandpower", "eegnet")
"""The reference methods (kit.methods.registry)."""
LEVERS: dict[str, dict] = {"experts_mldg": {"meta": "mldg"}, "experts_fomaml": {"meta": "fomaml"},
                           "experts_seeds3": {"n_seeds": 3}}
"""Expert stages that change one field of the profile's :class:`kit.deep.experts.ExpertsConfig` (LOSO folds only)."""
TENT = "experts_tent"
"""Stage folder of the experts adapted to each held-out subject's unlabelled trials (entropy minimisation)."""
FUSION_KINDS = ("fusion_lda", "fusion_net")
"""Rows of each fusion model alone (read from the fusion stage's predictions; ``fusion`` picks per subject)."""
STAGES = ("experts", *LEVERS, TENT, "fusion", *FUSION_KINDS, "ensemble")
"""The kit's deep stages and their levers, in pipeline order."""
ALL_METHODS = ANCHORS + STAGES
NULL_LIMIT = 0.53
"""Highest LOSO score accepted on null data (the issue's target); above it, suspect a leak."""
NULL_SCALE = 1.0
"""Size of the null copy (x the real trial counts): big enough for :data:`NULL_LIMIT` to be a test."""
SUBSET_SIZE = 3
"""Subjects in the competition's test set (1, 7, 12)."""


def leaderboard_scores(A: np.ndarray, k: int = SUBSET_SIZE, **metric) -> np.ndarray:
    """The window metric over every ``k``-subject subset of the subjects (no repeats).

    With 14 held-out subjects and ``k = 3``, the 364 test sets of the
    competition's size that the LOSO subjects could have formed: the spread
    shows how far a 3-subject leaderboard can move a score.

    Returns
    -------
    ndarray, shape (C(n_subjects, k),)
        In :func:`itertools.combinations` order.  With fewer than ``k``
        subjects, one set of all of them.
    """
    A = np.asarray(A)
    k = min(int(k), len(A))
    idx = np.array(list(itertools.combinations(range(len(A)), k)), dtype=np.int64).reshape(-1, k)
    return subset_scores(A, idx, **metric)


def summarize(oof: np.ndarray, y: np.ndarray, subject: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0,
              k: int = SUBSET_SIZE) -> dict:
    """Every number of a bench row from out-of-fold predictions.

    Parameters
    ----------
    oof : ndarray, shape (n_trials, n_times)
        Out-of-fold P(emotional) (any score monotone within a subject).
    y, subject : ndarray, shape (n_trials,)

    Returns
    -------
    dict
        ``score`` (LOSO window metric), ``window`` [start, stop] samples or
        [None, None], ``mean_subject_auc``, ``ci`` [low, high] (95 %
        bootstrap over subjects), ``lb_mean``, ``lb_p5``, ``lb_p95`` (metric
        over every ``k``-subject subset), ``per_subject_auc`` {subject: mean
        AUC}, ``curve`` (n_times,) list.

    Raises
    ------
    KitError
        See :func:`kit.eval.metric.auc_curves`.
    """
    subjects, A = auc_curves(oof, y, subject)
    ws = window_score(A.mean(axis=0))
    lb = leaderboard_scores(A, k)
    return {
        "score": float(ws.score), "window": [ws.start, ws.stop],
        "mean_subject_auc": float(A.mean()),
        "ci": list(bootstrap_interval(A, n_boot=n_boot, seed=seed)),
        "lb_mean": float(lb.mean()), "lb_p5": float(np.percentile(lb, 5)), "lb_p95": float(np.percentile(lb, 95)),
        "per_subject_auc": {int(s): float(a.mean()) for s, a in zip(subjects, A)},
        "curve": [float(v) for v in ws.curve],
    }


# ----------------------------------------------------------------------------- stages
def run_lever_stage(run, name: str, *, force: bool = False) -> dict:
    """An expert lever of :data:`LEVERS` into ``artifacts/{tag}/{name}/`` (LOSO folds, no cross-fit models).

    The profile's :class:`kit.deep.experts.ExpertsConfig` with the lever's fields
    changed, so its row differs from ``experts`` by that change alone (and by
    the heads' initialisation: fewer models share the batched computation).

    Raises
    ------
    KitError
        Unknown lever, or no MAE checkpoint.
    """
    from kit.pipeline.stages import run_experts_stage, stage_config

    if name not in LEVERS:
        raise KitError(f"bench: unknown lever {name!r}; choose from {', '.join(LEVERS)}")
    cfg = replace(stage_config("experts", run.profile), **LEVERS[name])
    return run_experts_stage(run, cfg, force=force, stage=name, n_groups=None)


def run_tent_stage(run, cfg=None, *, force: bool = False) -> dict:
    """The experts stage's fold models, each adapted to its held-out subject's unlabelled trials, then predicting.

    :func:`kit.deep.tta.tent_adapt` on fold k's heads with subject k's trials
    (no labels); nothing else is retrained.  Writes
    ``artifacts/{tag}/experts_tent/predictions.npz`` with ``oof (n_train, n_times)``
    (P of the experts' mean trial logit), ``subject``, ``y``.

    Raises
    ------
    KitError
        No finished experts stage.
    """
    import torch

    from kit.store.artifacts import load_checkpoint
    from kit.deep.experts import head_inputs, predict_heads
    from kit.deep.mae import load_mae
    from kit.deep.nets import AttentionPoolHead, model_stack, pool_time
    from kit.pipeline.stages import stage_config
    from kit.deep.tta import TentConfig, tent_adapt

    cfg = cfg or TentConfig()
    experts = run.artifacts / "experts"
    if not (experts / "stage.json").exists():
        raise KitError(f"{experts}: no finished expert stage; run it first")
    stamp = run._stamp(TENT, cfg, ("mae", "experts"))
    if run._fresh(TENT, stamp, force, ("predictions.npz",)):
        return load_npz(run.artifacts / TENT / "predictions.npz")
    mae, mcfg = load_mae(run.artifacts / "mae" / "mae.pt")
    train = ~run.dataset.is_test
    feats = torch.from_numpy(np.ascontiguousarray(run.features[train], dtype=np.float32))
    x = head_inputs(mae, pool_time(feats, mcfg.pool, dim=2))  # (n_train, E, T, D + K)
    s_tr, n_times = run.dataset.subject[train], run.features.shape[2]
    sids = np.unique(s_tr)
    seed = stage_config("experts", run.profile).seed
    states = [{k[len("head."):]: v for k, v in load_checkpoint(experts / f"fold{k}_seed{seed}.pt")["state_dict"].items()}
              for k in range(len(sids))]
    head = AttentionPoolHead(x.shape[1], x.shape[3], x.shape[2], len(sids))
    head.load_state_dict(model_stack(states))
    target = torch.from_numpy(np.stack([s_tr == s for s in sids]))  # (n_folds, n_train)
    head = tent_adapt(head, x, target, cfg)
    trial = predict_heads(head, x)[0].mean(axis=2)  # (n_folds, n_train): experts' mean trial logit
    oof = np.zeros((len(s_tr), n_times), np.float32)
    for k, s in enumerate(sids):
        m = s_tr == s
        oof[m] = (1.0 / (1.0 + np.exp(-trial[k, m])))[:, None]
    arrays = dict(oof=oof, subject=s_tr, y=run.dataset.y[train])
    save_npz(run.stage_dir(TENT) / "predictions.npz", **arrays)
    run._done(TENT, stamp)
    return arrays


@contextmanager
def thread_limit(n: int):
    """Limit BLAS/OpenMP (threadpoolctl) and torch CPU threads to ``n`` inside the block (0: unchanged).

    On a shared 2-core machine two threads per library made small problems
    20-80x slower than one (oversubscription: spinning OpenMP threads).
    """
    if n <= 0:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(old)


# ----------------------------------------------------------------------------- one folder
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


def _stamp_time(run, name: str) -> float | None:
    p = run.artifacts / name / "stage.json"
    return p.stat().st_mtime_ns if p.exists() else None


def bench_folder(data, profile: str = "quick", *, methods=ALL_METHODS, n_boot: int = N_BOOT, seed: int = 0,
                 null: bool = False, verbose: bool = True, artifacts: Path | None = None) -> FolderResult:
    """Compute and score every method of ``methods`` on one data folder.

    Parameters
    ----------
    data : path
        A competition-layout data folder.
    profile : str
        A profile of :data:`kit.pipeline.stages.PROFILES` (``quick``, ``full``, ``smoke``).
    methods : sequence of str
        Subset of :data:`ALL_METHODS`; ``ensemble`` adds every component the
        pipeline blends (:data:`kit.pipeline.stages.ENSEMBLE_COMPONENTS`).
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
    from kit.pipeline import stages as pipeline

    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise KitError(f"bench: unknown methods {unknown}; choose from {', '.join(ALL_METHODS)}")
    wanted = [m for m in ALL_METHODS if m in methods]
    if "ensemble" in wanted:  # the ensemble blends the pipeline's default components: compute them all
        wanted = [m for m in ALL_METHODS if m in set(wanted) | set(pipeline.ENSEMBLE_COMPONENTS)]
    t_start = time.perf_counter()
    run = pipeline.Run(Path(data), profile, artifacts=artifacts, verbose=verbose)
    tr = run.train
    run.folds  # noqa: B018 - one fold table for every stage
    res = FolderResult(pipeline.data_tag(run.data_root), run.data_root, int(np.unique(tr.subject).size), len(tr),
                       null=null, times=np.asarray(tr.times))

    times_path = run.artifacts / "bench_times.json"  # compute time of each stage, kept for cached reruns
    stored = json.loads(times_path.read_text()) if times_path.is_file() else {}

    def timed(name, fn):
        before = _stamp_time(run, name)
        t0 = time.perf_counter()
        if verbose:
            print(f"[bench {res.tag}] {name} ...", flush=True)
        out = fn()
        res.seconds[name] = time.perf_counter() - t0
        res.cached[name] = before is not None and before == _stamp_time(run, name)
        key = f"{name}@{run._read_stamp(name).get('hash', '')}"
        if res.cached[name] and key in stored:
            res.seconds[name] = float(stored[key])  # the time it took when it was computed
        elif not res.cached[name]:
            stored[key] = round(res.seconds[name], 1)
            with atomic_write(times_path, "w") as fh:  # at once: a later crash keeps this stage's time
                json.dump(stored, fh, indent=1, sort_keys=True)
        return out

    preds = {}
    for name in ANCHORS:
        if name in wanted:
            preds[name] = timed(name, lambda: pipeline.run_baseline_stage(run, name))["oof"]
    deep = [m for m in wanted if m in STAGES]
    if deep:
        timed("mae", lambda: pipeline.run_mae_stage(run))
    for name in LEVERS:
        if name in deep:
            preds[name] = timed(name, lambda: run_lever_stage(run, name))["oof"]
    if {"experts", TENT, "fusion", *FUSION_KINDS} & set(deep):
        preds["experts"] = timed("experts", lambda: pipeline.run_experts_stage(run))["oof"]
    if TENT in deep:
        preds[TENT] = timed(TENT, lambda: run_tent_stage(run))["oof"]  # (n_train, n_times): no test predictions
    if {"fusion", *FUSION_KINDS} & set(deep):
        fused = timed("fusion", lambda: pipeline.run_fusion_stage(run))
        preds["fusion"] = fused["oof"]
        for name in FUSION_KINDS:
            key = "oof_" + name.split("_", 1)[1]
            if key in fused:
                preds[name] = fused[key]
                res.seconds[name], res.cached[name] = 0.0, res.cached["fusion"]
    if "ensemble" in deep:
        timed("ensemble", lambda: pipeline.run_ensemble_stage(run, write=False))
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
    from kit.data.demo import write_demo_dataset

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


# ----------------------------------------------------------------------------- ensemble rules
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
        One row per table: ``folder``, ``components``, ``best_component``, ``best_score`` and, per
        rule, its score and ``diff_<rule>`` (rule - best component).
    """
    from kit.pipeline import stages as pipeline
    from kit.eval.cv import loso_score
    from kit.pipeline.ensemble import RULES, fit_ensemble

    tables = []
    loaded = {}
    for folder in data:
        run = pipeline.open_run(folder, profile, verbose=False)
        names = [c for c in (components or pipeline.ENSEMBLE_COMPONENTS)
                 if (run.artifacts / c / "stage.json").exists() or c in ("starter", "thetacov", "bandpower")]
        for c in names:
            if c in pipeline.BASELINES:
                pipeline.run_baseline_stage(run, c)
        comps = pipeline.load_components(run, names)
        loaded[Path(folder).resolve()] = (run, comps)
        tables.append((pipeline.data_tag(run.data_root), run, comps))
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
            tables.append((f"{pipeline.data_tag(run.data_root)}: {single} only", run, mixed))
    rows = []
    for tag, run, comps in tables:
        tr = run.train
        oof, inner = {k: v["oof"] for k, v in comps.items()}, {k: v["inner"] for k, v in comps.items()}
        group = next(iter(comps.values()))["inner_group"]
        scores = {k: loso_score(v, tr.y, tr.subject)["loso_score"] for k, v in oof.items()}
        best = max(scores, key=scores.get)
        row = {"folder": tag, "components": sorted(comps), "best_component": best, "best_score": scores[best]}
        cfg = pipeline.stage_config("ensemble", profile)
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
            print(f"[rules] {tag}: best component {best} {scores[best]:.4f}; "
                  + ", ".join(f"{r} {row[r]:.4f}" for r in RULES), flush=True)
    return rows


def rule_table(rows: list[dict]) -> str:
    """Markdown table of :func:`rule_study`: rule - best component per folder, the worst case per rule."""
    from kit.pipeline.ensemble import RULES

    lines = ["| folder | components | best component | " + " | ".join(RULES) + " | default - best, 95 % CI |",
             "|---|---|---|" + "---|" * len(RULES) + "---|"]
    for r in rows:
        ci = r.get("default_ci")
        lines.append(f"| {r['folder']} | {len(r['components'])} | {r['best_component']} {r['best_score']:.4f} | "
                     + " | ".join(f"{r[k]:.4f} ({r['diff_' + k]:+.4f})" for k in RULES)
                     + (f" | [{ci[0]:+.4f}, {ci[1]:+.4f}] |" if ci else " | |"))
    worst = {k: min(r["diff_" + k] for r in rows) for k in RULES}
    lines.append("| **worst difference** | | | " + " | ".join(f"**{worst[k]:+.4f}**" for k in RULES) + " | |")
    keep = max(worst, key=worst.get)
    lines += ["", f"Rule with the least negative worst case: **{keep}** ({worst[keep]:+.4f})."]
    return "\n".join(lines) + "\n"


def rules_command(args) -> int:
    """``python -m kit rules``: every ensemble rule on every folder; prints the table, then JSON."""
    from kit.data.demo import ensure_data

    folders = [ensure_data(d) for d in (args.data or [None])]
    if args.null:
        where = Path(tempfile.gettempdir()) / "kit-rules"
        for f in list(folders):
            copy = null_copy(f, f.parent if os.access(f.parent, os.W_OK) else where, scale=None)
            if copy is not None:
                folders.append(copy)
    with thread_limit(args.threads):
        rows = rule_study(folders, profile=args.profile)
    text = rule_table(rows)
    print(text)
    if args.out:
        with atomic_write(Path(args.out), "w") as fh:
            fh.write("# Ensemble rules against the best single component (nested LOSO)\n\n" + text)
    print(json.dumps(rows))
    return 0


# ----------------------------------------------------------------------------- memory
_MEMORY_CHILD = """
import json, resource, sys, time, tracemalloc
import numpy as np
from kit.signal.features import deep_features
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
    """Peak memory of loading a data folder and building its deep features (kit.signal.features.deep_features), in a fresh process.

    Simulates a demo folder at ``scale`` (1.0 = the real 10,209 + 1,734
    trials) into a temporary folder, then a child Python process runs
    :func:`kit.data.dataset.load_dataset` and :func:`kit.signal.features.deep_features` and
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
    from kit.data.demo import write_demo_dataset
    from kit.store.paths import project_root

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


def memory_line(m: dict) -> str:
    """One line for the memory section."""
    return (f"load + deep features at scale {m['scale']:g} ({m['n_trials']:,} trials): peak RSS "
            f"{m['peak_rss_gib']:.2f} GiB (ru_maxrss; {m['rss_after_imports_kib'] / 2**20:.2f} GiB after imports, "
            f"{m['rss_after_load_kib'] / 2**20:.2f} GiB after loading), tracemalloc peak "
            f"{m['tracemalloc_peak_bytes'] / 2**30:.2f} GiB; X {m['X_bytes'] / 2**20:.0f} MiB, features "
            f"{m['features_bytes'] / 2**20:.0f} MiB; load {m['load_s']:.1f} s, features {m['features_s']:.1f} s "
            f"(target < 4 GiB: {'met' if m['peak_rss_gib'] < 4 else 'MISSED'})")


# ----------------------------------------------------------------------------- report
def _fmt_window(w, times) -> str:
    if w is None or w[0] is None:
        return "none"
    return f"{times[w[0]]:.3f}-{times[w[1]]:.3f} s"


def _shown(path) -> str:
    """``path`` relative to the working folder when it lies below it (reports stay machine-independent)."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def folder_table(res: FolderResult) -> str:
    """The markdown table of one folder (one row per method), with notes below it."""
    sim = ""
    if res.simulated:
        p = res.simulated
        sim = (f" Simulated by `kit.data.demo` (scale {p['scale']}, seed {p['seed']}, effect {p['effect']}): "
               f"`python -m kit demo-data DIR --scale {p['scale']} --seed {p['seed']} --effect {p['effect']}`.")
    n_cached = sum(bool(v) for v in res.cached.values())
    wall = f"Wall time {res.total_seconds:.0f} s" + (
        f" (this run; {n_cached} stages reused from artifacts, their rows show the time they took to compute)"
        if n_cached else "")
    lines = [f"### {res.tag}{' (NULL: no emotional effect)' if res.null else ''}", "",
             f"`{_shown(res.data)}`: {res.n_subjects} training subjects, {res.n_trials:,} trials, LOSO "
             f"({res.n_subjects} folds, the same for every method).{sim} {wall}.", "",
             "| method | LOSO score | window | mean subject AUC | 95 % CI (bootstrap over subjects) | "
             "3-subject LB: mean [p5, p95] | wall (s) |",
             "|---|---|---|---|---|---|---|"]
    times = res.times if res.times is not None else np.arange(200) / 200.0
    for name, r in res.rows.items():
        flag = " **> 0.53: leak?**" if res.null and r["score"] > NULL_LIMIT else ""
        wall = f"{res.seconds.get(name, 0.0):.0f}" + (" (cached)" if res.cached.get(name) else "")
        lines.append(f"| {name} | {r['score']:.4f}{flag} | {_fmt_window(r['window'], times)} | "
                     f"{r['mean_subject_auc']:.4f} | [{r['ci'][0]:.4f}, {r['ci'][1]:.4f}] | "
                     f"{r['lb_mean']:.4f} [{r['lb_p5']:.4f}, {r['lb_p95']:.4f}] | {wall} |")
    lines.append("")
    anchors = {k: v["score"] for k, v in res.rows.items() if k in ANCHORS}
    if anchors:
        best = max(anchors, key=anchors.get)
        note = f"Best anchor: **{best}** ({anchors[best]:.4f})."
        if "ensemble" in res.rows and not res.null:  # on null data there is nothing to beat
            d = res.rows["ensemble"]["score"] - anchors[best]
            note += (f" Ensemble {'+' if d >= 0 else '-'}{abs(d):.4f} vs the best anchor "
                     f"({'meets' if d >= 0.01 else 'misses'} the +0.01 target).")
        lines.append(note)
    if "mae" in res.seconds:
        lines.append(f"MAE pretraining: {res.seconds['mae']:.0f} s" + (" (cached)" if res.cached.get("mae") else "")
                     + "; its time is not in the experts' rows.")
    if res.ensemble_blend:
        lines.append(f"Ensemble blend chosen on all subjects: {res.ensemble_blend}.")
    lines.extend(ensemble_lines(res.ensemble_info))
    if res.null:
        over = [k for k, v in res.rows.items() if v["score"] > NULL_LIMIT]
        lines.append(f"NULL check (every method <= {NULL_LIMIT}): "
                     + ("passed." if not over else f"FAILED for {', '.join(over)}."))
    return "\n".join(lines) + "\n"


def ensemble_lines(info: dict) -> list[str]:
    """Report lines of the ensemble stage's ``result.json``: the difference to the best component, every rule."""
    if not info.get("difference"):
        return []
    d, lo, hi = info["difference"]
    out = [f"Ensemble (rule `{info['rule']}`) - best component (`{info['best_component']}`): {d:+.4f} "
           f"[{lo:+.4f}, {hi:+.4f}] (paired bootstrap over subjects, 95 %)."]
    if info.get("rules"):
        out.append("Ensemble LOSO by rule: " + ", ".join(f"{k} {v:.4f}" for k, v in info["rules"].items()) + ".")
    return out


def write_report(path: Path, results: list[FolderResult], *, profile: str, command: str, threads: int,
                 memory: dict | None, wall: float) -> Path:
    """Write ``bench.md``: a header, one table per folder, the memory line."""
    head = [
        "# Benchmark: anchors and kit stages, leave-one-subject-out",
        "",
        f"Made by `{command}` (profile `{profile}`) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"{'library-default' if threads <= 0 else threads} thread(s) per library; total wall time {wall:.0f} s.",
        "",
        "Columns: **LOSO score** = the competition's window metric over the held-out subjects' out-of-fold "
        "predictions; **window** = the run of samples it scored; **mean subject AUC** = per-sample AUC averaged "
        "over samples and subjects; **95 % CI** = percentile bootstrap over subjects (2,000 resamples, window "
        "recomputed each time); **3-subject LB** = the metric over every 3-subject subset of the held-out "
        "subjects (the real test set has 3), its mean and 5th/95th percentiles. Anchors: `starter` (organisers), "
        "`thetacov` (2nd place), `bandpower` (log-variance in 5 bands or a merged band, window and band chosen by "
        "inner LOSO, shrinkage LDA), `eegnet` (EEGNet-8,2, Lawhern et al. 2018). Kit: `experts` (16 channel "
        "experts, attention pooling over time on the frozen MAE encoder, plain multi-subject training: the "
        "default), `experts_mldg` / `experts_fomaml` (the same with first-order MLDG / FOMAML meta-learning), "
        "`experts_seeds3` (3 seeds averaged in logit space), "
        "`experts_tent` (the experts after entropy minimisation on the held-out subject's unlabelled trials), "
        "`fusion` (fitted on cross-fitted expert outputs; per subject the better of `fusion_lda`, shrinkage LDA "
        "on the experts' trial logits, and `fusion_net`, the spatiotemporal network, by inner score), `ensemble` "
        "(nested LOSO; each held-out subject's blend chosen on cross-fitted predictions of models that never "
        "saw it).",
        "",
    ]
    body = [folder_table(r) for r in results]
    figs = [f"![AUC time courses, {r.tag}](figures/bench_auc_{r.tag}.png)" for r in results]
    tail = ["## Memory", "", memory_line(memory) if memory else "not measured (run with `--memory`).", ""]
    text = "\n".join(head) + "\n## Results\n\n" + "\n".join(body) + "\n" + "\n".join(figs) + "\n\n" + "\n".join(tail)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return path


def save_figure(res: FolderResult, folder: Path) -> Path:
    """``bench_auc_<tag>.png``: every method's AUC time course with its scored window."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from kit.report.plots import plot_auc_timecourse

    curves = {k: np.array(v["curve"]) for k, v in res.rows.items()}
    windows = {k: tuple(v["window"]) for k, v in res.rows.items()}
    fig = plot_auc_timecourse(curves, res.times, window=windows, save_dir=folder, name=f"bench_auc_{res.tag}",
                              title=f"LOSO AUC over time, {res.tag}" + (" (null)" if res.null else ""))
    plt.close(fig)
    return Path(folder) / f"bench_auc_{res.tag}.png"


def summary_json(results: list[FolderResult], *, wall: float, report: Path, memory: dict | None) -> dict:
    """The JSON summary printed as the bench's last line."""
    out = {"report": str(report), "wall_s": round(wall, 1), "folders": {}}
    for r in results:
        out["folders"][r.tag] = {
            "data": str(r.data), "null": r.null, "wall_s": round(r.total_seconds, 1),
            "methods": {k: {"score": round(v["score"], 4), "window": v["window"],
                            "mean_subject_auc": round(v["mean_subject_auc"], 4),
                            "ci": [round(c, 4) for c in v["ci"]], "lb_mean": round(v["lb_mean"], 4),
                            "lb_p5": round(v["lb_p5"], 4), "lb_p95": round(v["lb_p95"], 4),
                            "seconds": round(r.seconds.get(k, 0.0), 1)} for k, v in r.rows.items()},
        }
    if memory:
        out["memory"] = {"peak_rss_gib": round(memory["peak_rss_gib"], 3), "scale": memory["scale"],
                         "n_trials": memory["n_trials"]}
    return out


def _bench_job(folder, profile, methods, n_boot, seed, is_null, verbose, threads) -> FolderResult:
    """One folder in a worker process (:func:`run_bench` with ``jobs > 1``)."""
    with thread_limit(threads):
        return bench_folder(folder, profile, methods=methods, n_boot=n_boot, seed=seed, null=is_null, verbose=verbose)


def run_bench(data=None, *, profile: str = "quick", out: str | os.PathLike | None = None, null: bool | None = None,
              memory: bool = False, methods=ALL_METHODS, n_boot: int = N_BOOT, seed: int = 0, threads: int = 1,
              verbose: bool = True, command: str = "python -m kit bench", null_scale: float | None = NULL_SCALE,
              jobs: int = 1) -> dict:
    """The whole bench: every folder (and the null copy of a demo folder), the report, the figure.

    Parameters
    ----------
    data : path or list of paths, optional
        Data folders; default :func:`kit.data.demo.ensure_data` (the demo data without others).
    profile : str
        ``quick``, ``full`` or ``smoke`` (:data:`kit.pipeline.stages.PROFILES`).
    out : path, optional
        Report path; default ``{output_root}/reports/bench.md``.  Figures go to ``figures/`` beside it.
    null : bool or None
        None: bench a null copy of every demo folder benched; True: also of
        the default demo data when none was benched; False: no null copy.
    memory : bool
        Add the full-scale memory probe (:func:`memory_probe`).
    threads : int
        Threads per numeric library during the bench (0: the libraries' defaults).
    null_scale : float or None
        Size of the null copy (:func:`null_copy`); None = the benched folder's.
    jobs : int
        Folders benched at once, each in its own process with ``threads``
        threads (2 on a 2-core machine: the null copy beside the others).

    Returns
    -------
    dict
        :func:`summary_json`.

    Raises
    ------
    KitError
        Unknown profile or method, a bad data folder, any stage's error.
    """
    from kit.data.demo import ensure_data
    from kit.store.paths import output_root
    from kit.pipeline.stages import PROFILES

    if profile not in PROFILES:
        raise KitError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
    t0 = time.perf_counter()
    folders = [ensure_data(d) for d in (data if isinstance(data, (list, tuple)) else [data])] if data else \
        [ensure_data(None)]
    tasks = [(f, False) for f in folders]
    if null is not False:
        where = output_root() / "bench"
        copies = [c for c in (null_copy(f, where, null_scale) for f in folders) if c is not None]
        if not copies and null:
            copies = [c for c in [null_copy(ensure_data(None), where, null_scale)] if c is not None]
        tasks += [(c, True) for c in copies]
    out = Path(out) if out else output_root() / "reports" / "bench.md"
    results = []
    if jobs > 1 and len(tasks) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # the (big) null copies first, so that the other folders run beside them
        order = sorted(range(len(tasks)), key=lambda i: not tasks[i][1])
        with ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {i: pool.submit(_bench_job, tasks[i][0], profile, methods, n_boot, seed, tasks[i][1], verbose,
                                      threads) for i in order}
            results = [futures[i].result() for i in range(len(tasks))]
    else:
        with thread_limit(threads):
            results = [bench_folder(folder, profile, methods=methods, n_boot=n_boot, seed=seed, null=is_null,
                                    verbose=verbose) for folder, is_null in tasks]
    for res in results:
        save_figure(res, out.parent / "figures")
        print(folder_table(res), flush=True)
    mem = None
    if memory:
        mem = memory_probe(1.0)
        print(memory_line(mem), flush=True)
    wall = time.perf_counter() - t0
    report = write_report(out, results, profile=profile, command=command, threads=threads, memory=mem, wall=wall)
    print(f"report: {report}", flush=True)
    return summary_json(results, wall=wall, report=report, memory=mem)


def bench_command(args) -> int:
    """``python -m kit bench``: run :func:`run_bench` from parsed arguments; the last printed line is JSON.

    Returns
    -------
    int
        0.
    """
    argv = ["python -m kit bench"]
    if args.data:
        argv += ["--data", *map(str, args.data)]
    argv += ["--profile", args.profile]
    for flag, value in (("--methods", args.methods), ("--out", args.out)):
        if value:
            argv += [flag, *([value] if isinstance(value, str) else value)]
    if args.null is not None:
        argv.append("--null" if args.null else "--no-null")
    if args.memory:
        argv.append("--memory")
    if args.null_scale != NULL_SCALE:
        argv += ["--null-scale", f"{args.null_scale:g}"]
    if args.jobs != 1:
        argv += ["--jobs", str(args.jobs)]
    summary = run_bench(args.data, profile=args.profile, out=args.out, null=args.null, memory=args.memory,
                        methods=tuple(args.methods) if args.methods else ALL_METHODS, n_boot=args.n_boot,
                        threads=args.threads, command=" ".join(argv), null_scale=args.null_scale or None,
                        jobs=args.jobs)
    print(json.dumps(summary, sort_keys=True))
    return 0


# ----------------------------------------------------------------------------- null study
def null_study(n_seeds: int = 12, *, scale: float = 0.2, where: str | os.PathLike | None = None,
               names=("starter", "thetacov", "bandpower"), verbose: bool = True) -> list[dict]:
    """The cheap anchors and their ensemble on ``n_seeds`` null simulations: is the ensemble's choice leak-free?

    For each seed, a null demo (effect 0) at ``scale``; the LOSO scores of
    the anchors ``names``, and of their ensemble with the blend for subject k
    chosen (a) on the plain out-of-fold predictions ("nested") and (b) on
    cross-fitted predictions ("crossfit", :func:`kit.eval.cv.crossfit_plan`).
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
    from kit.methods.registry import baseline_predictions
    from kit.eval.cv import loso_score
    from kit.data.demo import write_demo_dataset
    from kit.pipeline.ensemble import fit_ensemble
    from kit.data.dataset import load_dataset
    from kit.store.paths import output_root
    from kit.pipeline.stages import stage_config

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
            print(" ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    return rows


def null_study_command(args) -> int:
    """``python -m kit null-study``: per-seed table, then the means, then a JSON line."""
    with thread_limit(args.threads):
        rows = null_study(args.seeds, scale=args.scale)
    keys = [k for k in rows[0] if k != "seed"]
    means = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    higher = sum(r["nested"] > r["crossfit"] for r in rows)
    above = {k: sum(r[k] > NULL_LIMIT for r in rows) for k in keys}
    print("mean over seeds: " + ", ".join(f"{k} {v:.4f}" for k, v in means.items()))
    print(f"nested > crossfit on {higher} of {len(rows)} seeds; mean difference "
          f"{means['nested'] - means['crossfit']:+.4f}; seeds above {NULL_LIMIT}: {above}")
    print(json.dumps({"rows": rows, "means": means, "nested_higher": higher, "above_limit": above}))
    return 0
