"""Stage 05: blend components on out-of-fold predictions, post-process for the metric.

Every component (baselines, experts, fusion) gives out-of-fold predictions
``(n_train, n_times)`` and test predictions ``(n_test, n_times)``.  They are
put on one scale per subject (logit, then z-score over that subject's trials
and samples: monotone within a subject, so each component's per-subject AUC
is unchanged), blended with non-negative weights that sum to one, and
post-processed along time:

- ``none``       the blend as it is;
- ``smooth``     moving average over ``param`` samples (:func:`scipy.ndimage.uniform_filter1d`);
- ``broadcast``  the trial's mean score copied to all samples (2nd-place trick: a
                 sustained, flat AUC curve is what the window metric rewards);
- ``blend``      ``param`` x broadcast + (1 - ``param``) x the blend;
- ``window``     the trial's mean over samples ``param = (start, stop)`` (stop
                 exclusive) copied to all samples: a decoder that peaks at
                 0.4-0.6 s (the paper's cluster) then scores its peak over the
                 whole second.

The weights and the post-processing are chosen by the competition metric
on out-of-fold predictions only.  For the LOSO score of the ensemble the
choice is *nested*: held-out subject k is predicted with the candidates that
score best on the other subjects' cross-fitted predictions (models that
never saw k, :func:`kit.cv.crossfit_plan`), so its own labels never take part.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.special import expit, logit

from .errors import KitError
from .metric import auc_curves, window_score


@dataclass
class EnsembleConfig:
    """Search space of the blend (used by both profiles)."""

    weight_step: float = 0.25  # grid step of the blend weights on the simplex
    post: tuple = (("none", 0.0), ("smooth", 21.0), ("smooth", 51.0), ("broadcast", 0.0), ("blend", 0.5),
                   ("window", (60, 140)), ("window", (80, 120)))  # candidate post-processings (kind, param)
    threshold: float = 0.5  # metric threshold
    min_len: int = 10  # metric's shortest run in samples (50 ms)
    components: tuple = ()  # names to blend; empty = every component given
    top_k: int = 10  # average the k best candidates (steadier than the single best on 13 subjects)


@dataclass
class Candidate:
    """One blend: weights per component name and a post-processing."""

    weights: dict
    post: tuple
    score: float = float("nan")
    curves: np.ndarray | None = field(default=None, repr=False)  # (n_subjects, n_times)

    def label(self) -> str:
        w = " + ".join(f"{v:.2f} {k}" for k, v in self.weights.items() if v > 0)
        kind, p = self.post
        if kind == "window":
            return f"{w}; mean over samples {p[0]}-{p[1] - 1} broadcast"
        return f"{w}; {kind}" + (f"({p:g})" if kind in ("smooth", "blend") else "")


def standardize(pred: np.ndarray, subject: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Per-subject z-scored logits of ``pred (n_trials, n_times)`` (probabilities in [0, 1])."""
    z = logit(np.clip(np.asarray(pred, np.float64), eps, 1 - eps))
    out = np.empty_like(z)
    for s in np.unique(subject):
        m = subject == s
        mu, sd = z[m].mean(), z[m].std()
        out[m] = (z[m] - mu) / (sd if sd > 0 else 1.0)
    return out


def postprocess(z: np.ndarray, kind: str, param=0.0) -> np.ndarray:
    """Apply a temporal post-processing to scores ``(n_trials, n_times)`` (see module docstring).

    Raises
    ------
    KitError
        Unknown ``kind``.
    """
    if kind == "none":
        return z
    if kind == "smooth":
        return uniform_filter1d(z, size=int(param), axis=1, mode="nearest")
    if kind == "window":
        start, stop = (int(v) for v in param)
        if not 0 <= start < stop <= z.shape[1]:
            raise KitError(f"window post-processing: samples {start}-{stop} outside 0-{z.shape[1]}")
        return np.repeat(z[:, start:stop].mean(axis=1, keepdims=True), z.shape[1], axis=1)
    broadcast = np.repeat(z.mean(axis=1, keepdims=True), z.shape[1], axis=1)
    if kind == "broadcast":
        return broadcast
    if kind == "blend":
        return param * broadcast + (1 - param) * z
    raise KitError(f"unknown post-processing {kind!r} (none, smooth, broadcast, blend)")


def weight_grid(names: list[str], step: float) -> list[dict]:
    """Every non-negative weight vector on the simplex with the given grid ``step``."""
    n = int(round(1 / step))
    grid = []
    for combo in itertools.product(range(n + 1), repeat=len(names)):
        if sum(combo) == n:
            grid.append({k: c / n for k, c in zip(names, combo)})
    return grid


def blend(z: dict[str, np.ndarray], weights: dict) -> np.ndarray:
    """Weighted sum of standardized component scores."""
    return sum(w * z[k] for k, w in weights.items() if w > 0)


def _score(curves: np.ndarray, keep: np.ndarray, cfg: EnsembleConfig) -> float:
    return window_score(curves[keep].mean(axis=0), threshold=cfg.threshold, min_len=cfg.min_len).score


def mix(chosen: list[Candidate], z: dict[str, np.ndarray]) -> np.ndarray:
    """Mean of the post-processed blends of ``chosen`` over standardized scores ``z`` (each (n, n_times))."""
    return np.mean([postprocess(blend(z, c.weights), *c.post) for c in chosen], axis=0)


def _candidates(z: dict[str, np.ndarray], y: np.ndarray, subject: np.ndarray, names: list[str],
                cfg: EnsembleConfig) -> list[Candidate]:
    """Every (weights, post-processing) pair with its per-subject AUC curves on the scores ``z``."""
    cands = []
    for weights in weight_grid(names, cfg.weight_step):
        base = blend(z, weights)
        for post in cfg.post:
            out = postprocess(base, *post)
            if post[0] in ("broadcast", "window"):  # flat over time: one AUC per subject, repeated
                _, curves = auc_curves(out[:, :1], y, subject)
                curves = np.repeat(curves, out.shape[1], axis=1)
            else:
                _, curves = auc_curves(out, y, subject)
            cands.append(Candidate(weights, tuple(post), curves=curves))
    return cands


def fit_ensemble(oof: dict[str, np.ndarray], y: np.ndarray, subject: np.ndarray,
                 cfg: EnsembleConfig = EnsembleConfig(), *, inner: dict[str, np.ndarray] | None = None,
                 group: np.ndarray | None = None) -> tuple[list[Candidate], np.ndarray, list[Candidate]]:
    """Choose the blend on out-of-fold predictions; its own LOSO score without the held-out labels.

    The ``top_k`` best candidates are averaged (after their post-processing):
    with ~13 subjects to choose on, the single best candidate is a noisy pick.

    Held-out subject k's blend is chosen on the other subjects' predictions.
    With ``inner`` (cross-fitted tables, :func:`kit.cv.crossfit_plan`) those
    come from models that never saw k: k's labels take no part at all.
    Without it they are the plain out-of-fold predictions, whose models did
    train on k: a second-order leak that lifted the null demo's ensemble by
    about 0.01 (kept for quick experiments; the pipeline passes ``inner``).

    Parameters
    ----------
    oof : dict name -> ndarray, shape (n_trials, n_times)
        Out-of-fold P(emotional) of every component, same trial order.
    y, subject : ndarray, shape (n_trials,)
    cfg : EnsembleConfig
    inner : dict name -> ndarray, shape (n_groups, n_trials, n_times), optional
        Cross-fitted P(emotional) of every component (same names as ``oof``).
    group : ndarray of int, shape (n_trials,), required with ``inner``
        Cross-fitting group of each trial's subject.

    Returns
    -------
    chosen : list of Candidate
        The ``top_k`` candidates on all training subjects (used for the test set).
    nested_oof : ndarray, shape (n_trials, n_times)
        Ensemble P(emotional) where subject k's rows come from the candidates
        chosen without subject k (score it with :func:`kit.cv.loso_score`).
    candidates : list of Candidate
        Every candidate with its score on all subjects, best first.

    Raises
    ------
    KitError
        No components, components of different shapes, ``inner`` missing a
        component or without ``group``.
    """
    names = list(cfg.components) or sorted(oof)
    if not names:
        raise KitError("ensemble: no components to blend")
    shapes = {k: oof[k].shape for k in names}
    if len(set(shapes.values())) != 1:
        raise KitError(f"ensemble: components have different shapes {shapes}")
    if inner is not None:
        missing = [k for k in names if k not in inner]
        if missing or group is None:
            raise KitError(f"ensemble: cross-fitted predictions missing for {missing or 'the groups'}")
        n_groups = {inner[k].shape[0] for k in names}
        if len(n_groups) != 1 or any(inner[k].shape[1:] != shapes[k] for k in names):
            raise KitError(f"ensemble: cross-fitted predictions of different shapes "
                           f"{ {k: inner[k].shape for k in names} }")
    z = {k: standardize(oof[k], subject) for k in names}
    subjects = np.unique(subject)
    cands = _candidates(z, y, subject, names, cfg)
    every = np.ones(len(subjects), bool)
    for c in cands:
        c.score = _score(c.curves, every, cfg)
    pools = {}  # cross-fitting group -> candidates scored on that group's inner table
    nested = np.empty(oof[names[0]].shape)
    for i, s in enumerate(subjects):
        m = subject == s
        keep = every.copy()
        keep[i] = False  # subject s's labels take no part in its own blend
        pool = cands
        if inner is not None:
            g = int(group[np.flatnonzero(m)[0]])
            if g not in pools:
                pools[g] = _candidates({k: standardize(inner[k][g], subject) for k in names}, y, subject, names, cfg)
            pool = pools[g]
        order = np.argsort([-_score(c.curves, keep, cfg) for c in pool], kind="stable")[: cfg.top_k]
        nested[m] = mix([pool[j] for j in order], {k: v[m] for k, v in z.items()})
    cands.sort(key=lambda c: -c.score)
    return cands[: cfg.top_k], expit(nested), cands


def apply_ensemble(chosen: list[Candidate] | Candidate, preds: dict[str, np.ndarray],
                   subject: np.ndarray) -> np.ndarray:
    """P(emotional) ``(n_trials, n_times)`` of the chosen blend(s) on new trials (e.g. the test set)."""
    chosen = [chosen] if isinstance(chosen, Candidate) else list(chosen)
    names = {k for c in chosen for k, w in c.weights.items() if w > 0}
    z = {k: standardize(preds[k], subject) for k in names}
    return expit(mix(chosen, z)).astype(np.float32)
