"""Statistics over subjects: subset scores, bootstrap intervals and paired differences, the 3-subject leaderboard spread."""

from __future__ import annotations

import itertools

import numpy as np

from kit.core.errors import KitError
from kit.eval.cv import loso_score
from kit.eval.metric import CHANCE, MIN_LEN, auc_curves, window_score

N_BOOT = 2000
"""Bootstrap resamples of the subjects."""


def subset_scores(A: np.ndarray, idx: np.ndarray, *, threshold: float = CHANCE, min_len: int = MIN_LEN) -> np.ndarray:
    """Window metric of the mean AUC curve of each row's subjects.

    Parameters
    ----------
    A : ndarray, shape (n_subjects, n_times)
        Per-subject AUC curves (:func:`kit.eval.metric.auc_curves`).
    idx : ndarray of int, shape (n_sets, k)
        Rows of ``A`` making up each set (repeats allowed: a bootstrap sample).
    threshold, min_len
        See :func:`kit.eval.metric.window_score`.

    Returns
    -------
    ndarray, shape (n_sets,)
        ``window_score(A[idx[i]].mean(axis=0)).score`` for every ``i``.

    Raises
    ------
    KitError
        ``A`` not 2-D or an index outside its rows.
    """
    A = np.asarray(A, dtype=np.float64)
    idx = np.asarray(idx)
    if A.ndim != 2:
        raise KitError(f"AUC curves: expected (n_subjects, n_times), got shape {A.shape}")
    if idx.ndim != 2 or (idx.size and (idx.min() < 0 or idx.max() >= len(A))):
        raise KitError(f"subset indices: expected (n_sets, k) rows of the {len(A)} subjects, got shape {idx.shape}")
    means = A[idx].mean(axis=1)  # (n_sets, n_times)
    return np.array([window_score(m, threshold=threshold, min_len=min_len).score for m in means])


def bootstrap_scores(A: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0, **metric) -> np.ndarray:
    """The window metric on ``n_boot`` resamples of the subjects (with replacement).

    Each resample draws ``n_subjects`` rows of ``A`` with replacement
    (``numpy.random.default_rng(seed).integers``) and recomputes the metric
    from the mean of their AUC curves, the window included (the percentile
    bootstrap over subjects: Efron & Tibshirani, *An Introduction to the
    Bootstrap*, 1993, ch. 13).

    Returns
    -------
    ndarray, shape (n_boot,)
    """
    A = np.asarray(A)
    rng = np.random.default_rng(seed)
    return subset_scores(A, rng.integers(0, len(A), size=(int(n_boot), len(A))), **metric)


def bootstrap_interval(A: np.ndarray, *, level: float = 0.95, n_boot: int = N_BOOT, seed: int = 0,
                       **metric) -> tuple[float, float]:
    """Percentile bootstrap interval of the window metric over subjects.

    Parameters
    ----------
    A : ndarray, shape (n_subjects, n_times)
    level : float
        Coverage (0.95: the 2.5th and 97.5th percentiles).

    Returns
    -------
    (low, high) : floats
    """
    s = bootstrap_scores(A, n_boot=n_boot, seed=seed, **metric)
    a = (1.0 - level) / 2.0
    return float(np.percentile(s, 100 * a)), float(np.percentile(s, 100 * (1 - a)))


def bootstrap_difference(A: np.ndarray, B: np.ndarray, *, level: float = 0.95, n_boot: int = N_BOOT, seed: int = 0,
                         **metric) -> tuple[float, float, float]:
    """Difference of the window metric of two methods on the same subjects, with a paired bootstrap interval.

    Both methods are scored on the same ``n_boot`` resamples of the subjects (paired: a subject that is
    hard for one is hard for the other, so the interval is much narrower than two separate ones).

    Parameters
    ----------
    A, B : ndarray, shape (n_subjects, n_times)
        Per-subject AUC curves of the two methods, same subject order.
    level : float
        Coverage (0.95: the 2.5th and 97.5th percentiles).

    Returns
    -------
    (difference, low, high) : floats
        ``score(A) - score(B)`` on all subjects and the percentile interval over the resamples.

    Raises
    ------
    KitError
        ``A`` and ``B`` of different shapes.
    """
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    if A.shape != B.shape:
        raise KitError(f"AUC curves: shapes differ, {A.shape} vs {B.shape}")
    idx = np.random.default_rng(seed).integers(0, len(A), size=(int(n_boot), len(A)))
    d = subset_scores(A, idx, **metric) - subset_scores(B, idx, **metric)
    every = np.arange(len(A))[None]
    a = (1.0 - level) / 2.0
    return (float(subset_scores(A, every, **metric)[0] - subset_scores(B, every, **metric)[0]),
            float(np.percentile(d, 100 * a)), float(np.percentile(d, 100 * (1 - a))))


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
        :func:`kit.eval.cv.loso_score`'s keys (``loso_score``, ``window``
        [start, stop] samples or [None, None], ``per_subject_auc``,
        ``mean_auc``, ``curve``) and ``ci`` [low, high] (95 % bootstrap over
        subjects), ``lb_mean``, ``lb_p5``, ``lb_p95`` (the metric over every
        ``k``-subject subset).

    Raises
    ------
    KitError
        See :func:`kit.eval.metric.auc_curves`.
    """
    _, A = auc_curves(oof, y, subject)
    lb = leaderboard_scores(A, k)
    return {**loso_score(oof, y, subject), "ci": list(bootstrap_interval(A, n_boot=n_boot, seed=seed)),
            "lb_mean": float(lb.mean()), "lb_p5": float(np.percentile(lb, 5)), "lb_p95": float(np.percentile(lb, 95))}
