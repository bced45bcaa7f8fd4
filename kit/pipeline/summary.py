"""What a finished run made, in numbers: the submission, its LOSO score with a bootstrap interval, the 3-subject
leaderboard spread, the blend's components and weights, the ensemble against the best component, the timings,
the device, and a check of the predictions per test subject.

Read from the ensemble stage's artifacts (``artifacts/<tag>/ensemble/result.json``, ``blend.json``,
``predictions.npz``, written by :func:`kit.pipeline.stages.run_ensemble_stage`), so notebook 05, ``kit run``
(:mod:`kit.app.runner`, which adds the wall times and writes ``reports/runs/summary.json``) and any later reader
compute the same numbers.  Text: :mod:`kit.report.findings`.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from kit.core.errors import KitError
from kit.eval.stats import N_BOOT, SUBSET_SIZE, summarize
from kit.store.artifacts import load_npz, write_json

SCHEMA = 1
"""Version of the summary's keys (bump when a key changes meaning)."""


def _window_s(window, n_times: int, sfreq: float):
    """``[start, stop]`` samples (stop inclusive) as ``[t_start, t_stop]`` in s after the cue, or None."""
    if window is None or window[0] is None:
        return None
    return [round(int(window[0]) / sfreq, 4), round(int(window[1]) / sfreq, 4)]


def blend_weights(blend: dict) -> dict[str, float]:
    """Each component's weight in the submission's blend: the mean over the blend's candidates (the ``grid``
    rule averages several), components with weight 0 left out, largest first."""
    cands = blend.get("candidates") or []
    if not cands:
        raise KitError("blend.json: no candidates")
    total: dict[str, float] = {}
    for c in cands:
        for name, w in c["weights"]:
            total[str(name)] = total.get(str(name), 0.0) + float(w) / len(cands)
    return dict(sorted(((k, v) for k, v in total.items() if v > 0), key=lambda kv: -kv[1]))


def test_subject_check(pred: np.ndarray, subject: np.ndarray) -> list[dict]:
    """Per test subject: its trials and the mean, SD and share above 0.5 of its trial-mean P(emotional).

    Parameters
    ----------
    pred : ndarray, shape (n_test, n_times)
        P(emotional) of the test trials.
    subject : ndarray, shape (n_test,)

    Returns
    -------
    list of dict
        ``subject``, ``trials``, ``mean``, ``sd`` (over trials), ``min``, ``max``, ``above_half`` (share of
        trials whose mean prediction is above 0.5).  A subject whose predictions are all on one side of 0.5,
        or spread over almost nothing, is worth a look before submitting.
    """
    pred, subject = np.asarray(pred, np.float64), np.asarray(subject)
    if pred.ndim != 2 or len(pred) != len(subject):
        raise KitError(f"test predictions {pred.shape} do not match {len(subject)} test subject ids")
    rows = []
    for s in np.unique(subject):
        m = pred[subject == s].mean(axis=1)
        rows.append({"subject": int(s), "trials": int(len(m)), "mean": float(m.mean()),
                     "sd": float(m.std(ddof=1)) if len(m) > 1 else 0.0, "min": float(m.min()),
                     "max": float(m.max()), "above_half": float((m > 0.5).mean())})
    return rows


def run_summary(artifacts: str | os.PathLike, *, timings: dict[str, float] | None = None,
                profile: str | None = None, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Everything a Kaggler needs to know of a finished run, from its ensemble stage's artifacts.

    Parameters
    ----------
    artifacts : path
        The run's ``artifacts/<tag>/`` folder (holding ``ensemble/``).
    timings : dict name -> seconds, optional
        Wall time of each notebook or stage (``kit run`` passes its own), kept as given.
    profile : str, optional
        The profile the run used, recorded as given.
    n_boot, seed
        Bootstrap resamples of the subjects for the score's interval (:func:`kit.eval.stats.summarize`).

    Returns
    -------
    dict (JSON-ready)
        ``schema``, ``created``, ``data`` (the tag), ``profile``, ``submission``, ``rule``, ``blend`` (the
        label), ``ensemble`` (``loso_score``, ``ci`` [low, high] 95 % bootstrap over subjects, ``window_s``,
        ``mean_auc``, ``lb_mean``, ``lb_p5``, ``lb_p95``: the metric over every 3-subject subset,
        ``n_subjects``), ``components`` (list of ``name``, ``weight``, ``loso_score``: every component, weight
        0 when the blend left it out), ``best_component`` (``name``, ``loso_score``), ``difference``
        (``value``, ``low``, ``high``: ensemble - best component, paired bootstrap), ``test_subjects``
        (:func:`test_subject_check`), ``timings``, ``stage_seconds`` (:func:`stage_times`), ``device``,
        ``torch_threads``, ``python``.

    Raises
    ------
    KitError
        The ensemble stage's files are missing (notebook 05 has not run).
    """
    from kit.core.runtime import get_device

    folder = Path(artifacts) / "ensemble"
    paths = [folder / n for n in ("result.json", "blend.json", "predictions.npz")]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise KitError(f"{missing[0]}: not found (run notebook 05 first)")
    result = json.loads(paths[0].read_text())
    blend = json.loads(paths[1].read_text())
    pred = load_npz(paths[2])
    sfreq, n_times = float(blend.get("sfreq", 200.0)), int(blend.get("n_times", pred["oof"].shape[1]))
    s = summarize(pred["oof"], pred["y"], pred["subject"], n_boot=n_boot, seed=seed, k=SUBSET_SIZE)
    table = {r["method"]: r for r in result.get("table", [])}
    weights = blend_weights(blend)
    components = [{"name": k, "weight": round(weights.get(k, 0.0), 4),
                   "loso_score": table.get(k, {}).get("loso_score")} for k in blend.get("components", weights)]
    best = result.get("best_component")
    d, lo, hi = result.get("difference", [None, None, None])
    posts = sorted({f"{c['post'][0]}" + (f"({c['post'][1]:g})" if isinstance(c["post"][1], (int, float))
                                         and c["post"][1] else "") for c in blend["candidates"]})
    return {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": Path(artifacts).name,
        "profile": profile,
        "submission": result.get("submission"),
        "rule": result.get("rule"),
        "post": posts,
        "blend": result.get("blend"),
        "ensemble": {"loso_score": s["loso_score"], "ci": s["ci"], "window_s": _window_s(s["window"], n_times, sfreq),
                     "mean_auc": s["mean_auc"], "lb_mean": s["lb_mean"], "lb_p5": s["lb_p5"], "lb_p95": s["lb_p95"],
                     "n_subjects": len(s["per_subject_auc"]), "n_boot": int(n_boot)},
        "components": components,
        "best_component": {"name": best, "loso_score": table.get(best, {}).get("loso_score")},
        "difference": {"value": d, "low": lo, "high": hi},
        "test_subjects": test_subject_check(pred["test"], pred["test_subject"]) if len(pred["test"]) else [],
        "timings": {k: round(float(v), 1) for k, v in (timings or {}).items()},
        "stage_seconds": stage_times(artifacts),
        "device": str(get_device()),
        "torch_threads": int(os.environ.get("KIT_THREADS", 1)),
        "python": platform.python_version(),
    }


def stage_times(artifacts: str | os.PathLike) -> dict[str, float]:
    """Compute time of each stage of a run, s: ``{stage: seconds}`` from the ``seconds.json`` each finished stage
    writes last (:meth:`kit.pipeline.run.Run.record_seconds`), in the order the stages finished; stages reused
    from an earlier run keep the time they took then, stages written by kit <= 0.3 (no time recorded) are left
    out."""
    found = []
    for path in Path(artifacts).glob("*/seconds.json"):
        if "@" not in path.parent.name:  # a stale stage moved aside
            seconds = float(json.loads(path.read_text())["seconds"])
            found.append((path.stat().st_mtime_ns, path.parent.name, seconds))
    return {name: seconds for _, name, seconds in sorted(found)}


def write_summary(path: str | os.PathLike, summary: dict) -> Path:
    """Write ``summary`` as JSON (atomically), e.g. to ``reports/runs/summary.json`` under the output root."""
    return write_json(path, summary)
