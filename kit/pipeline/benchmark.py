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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kit.core.errors import KitError
from kit.core.runtime import thread_limit
from kit.data.demo import write_demo_dataset
from kit.eval.stats import N_BOOT, summarize
from kit.methods.registry import ANCHOR_LEVERS, ANCHORS, ENSEMBLE_COMPONENTS, EXPERT_LEVERS, METHODS
from kit.pipeline import levers, stages
from kit.pipeline.run import Run, data_tag
from kit.store.artifacts import atomic_write, load_npz

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


