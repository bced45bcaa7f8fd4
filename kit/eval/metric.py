"""The competition metric: window-based AUC.

As the organisers describe it on the competition's evaluation page (README, "The metric"):

1. for each subject ``s`` and sample ``t``: ``A[s, t]`` = ROC AUC of the
   subject's predictions at sample ``t`` against its trial labels;
2. ``m[t]`` = mean over subjects of ``A[s, t]`` (each subject weighs the same,
   whatever its number of trials);
3. runs of consecutive samples with ``m[t] > threshold`` (strictly, 0.5);
4. runs shorter than ``min_len`` samples (10 = 50 ms at 200 Hz) are dropped;
5. the longest run (the earliest on ties) scores the mean of ``m`` over it;
6. no qualifying run scores 0.5.

Open points of the organisers' wording (10 or 11 samples for "50 ms", the
tie-break) are parameters with the defaults above.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kit.core.errors import KitError

CHANCE = 0.5
"""Score when no run qualifies, and the default threshold."""

MIN_LEN = 10
"""Default shortest run, in samples (50 ms at 200 Hz)."""


@dataclass
class WindowScore:
    """Result of the window-based AUC.

    Attributes
    ----------
    score : float
        Mean of ``curve`` over the chosen window, or 0.5 when no run qualifies.
    start, stop : int or None
        First and last sample (inclusive) of the window; None when no run qualifies.
    curve : ndarray, shape (n_times,)
        ``m[t]``, the subject-averaged AUC per sample.
    per_subject_auc : dict
        subject id -> mean over samples of that subject's AUC curve
        (filled by :func:`competition_score`).
    subject_curves : dict
        subject id -> that subject's AUC curve, shape (n_times,).
    """

    score: float
    start: int | None
    stop: int | None
    curve: np.ndarray
    per_subject_auc: dict = field(default_factory=dict)
    subject_curves: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        """Samples in the window (0 when none)."""
        return 0 if self.start is None else self.stop - self.start + 1


def _check_pred_y(pred: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    y = np.asarray(y)
    if pred.ndim != 2:
        raise KitError(f"predictions: expected (n_trials, n_times), got shape {pred.shape}")
    if y.shape != (pred.shape[0],):
        raise KitError(f"labels: shape {y.shape} does not match predictions {pred.shape} (n_trials first)")
    if not np.all(np.isfinite(pred)):
        bad = np.argwhere(~np.isfinite(pred))[0]
        raise KitError(f"predictions: {int((~np.isfinite(pred)).sum())} NaN/inf values "
                       f"(first at trial {bad[0]}, sample {bad[1]})")
    if not np.all(np.isin(y, (0, 1))):
        raise KitError(f"labels: expected 0/1, got values {np.unique(y)[:10].tolist()}")
    return pred, y.astype(bool)


def _average_ranks(tied: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of sorted rows from ``tied (m, n - 1)``, True where a place equals the one before.

    A run of equal scores at places ``a..b`` gets rank ``(a + b) / 2 + 1`` at each of them, as
    :func:`scipy.stats.rankdata` (``method="average"``) gives; returns ``(m, n)`` float64.
    """
    m, n = tied.shape[0], tied.shape[1] + 1
    idx = np.arange(n)
    first = np.ones((m, n), bool)
    first[:, 1:] = ~tied  # a run starts here
    last = np.ones((m, n), bool)
    last[:, :-1] = ~tied  # a run ends here
    start = np.maximum.accumulate(np.where(first, idx, 0), axis=1)
    stop = np.minimum.accumulate(np.where(last, idx, n)[:, ::-1], axis=1)[:, ::-1]
    return (start + stop) / 2.0 + 1.0


def per_sample_auc(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ROC AUC of each sample's predictions, vectorised over samples.

    Mann-Whitney U from average ranks (ties count one half), equal to
    :func:`sklearn.metrics.roc_auc_score` column by column.

    Parameters
    ----------
    pred : ndarray, shape (n_trials, n_times)
        Scores, higher = more likely class 1 (emotional).
    y : ndarray, shape (n_trials,)
        Labels 0/1.

    Returns
    -------
    ndarray, shape (n_times,), float64

    Raises
    ------
    KitError
        Shape mismatch, NaN/inf predictions, labels not 0/1, or one class only.
    """
    pred, pos = _check_pred_y(pred, y)
    n1 = int(pos.sum())
    n0 = pos.size - n1
    if n1 == 0 or n0 == 0:
        raise KitError(f"labels: one class only ({n1} emotional, {n0} neutral trials); AUC is undefined")
    return rows_auc(np.ascontiguousarray(pred.T), pos)  # (n_times, n_trials): each sample's trials contiguous


def rows_auc(P: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """:func:`per_sample_auc` of scores laid out the other way, without its input checks: ``P (n_rows, n_trials)``,
    one row per sample (or blend and sample), ``pos (n_trials,)`` bool with both classes; returns ``(n_rows,)``.

    For callers that build the rows themselves (:class:`kit.pipeline.blends.Table`: the ensemble's grid scores
    millions of them), so no transposed copy is made; finite scores are the caller's to ensure.
    """
    P = np.ascontiguousarray(P)
    order = np.argsort(P, axis=1)
    ranked = _take_rows(P.reshape(-1), np.arange(0, P.size, P.shape[1]), order)
    return _sorted_auc(ranked, pos[order], int(pos.sum()))


def curves_auc(P: np.ndarray, pos: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """:func:`rows_auc` of many AUC curves at once: ``P (n_rows, n_times, n_trials)`` -> ``(n_rows, n_times)``.

    With ``weights (n_rows, C)``, ``P (C, n_times, n_trials)`` holds components and the rows are their blends
    ``weights @ P[:, t]``, formed one sample at a time (what ``np.tensordot(weights, P, axes=(1, 0))`` gives,
    without the whole ``(n_rows, n_times, n_trials)`` table in memory).

    The same numbers bit for bit, sorted faster when neighbouring samples order the trials alike (smooth
    predictions, a blend of per-trial and per-sample scores): each sample's rows are sorted starting from
    the previous sample's order, with numpy's stable sort (timsort, which runs in about linear time on an
    almost sorted row), instead of from scratch. A rank AUC depends only on the sorted scores and the
    labels at each place, so the order within a run of ties does not matter. Fewer than 8 rows per sample
    go through :func:`rows_auc` in one call (the loop over samples costs more there).
    """
    n_times, n_trials = P.shape[1:]
    n_rows = P.shape[0] if weights is None else len(weights)
    if n_rows < 8:
        B = P if weights is None else np.tensordot(weights, P, axes=(1, 0))
        return rows_auc(B.reshape(-1, n_trials), pos).reshape(n_rows, n_times)
    out, n1 = np.empty((n_rows, n_times)), int(pos.sum())
    own = np.arange(0, n_rows * n_trials, n_trials)  # row r of an (n_rows, n_trials) array starts at own[r]
    order = None
    for t in range(n_times):
        rows = np.ascontiguousarray(P[:, t]) if weights is None else weights @ P[:, t]  # (n_rows, n_trials)
        if order is None:
            order = np.argsort(rows, axis=1)
        ranked = _take_rows(rows.reshape(-1), own, order)  # sample t's rows in the previous sample's order
        if t:
            resort = np.argsort(ranked, axis=1, kind="stable")
            order, ranked = _take_rows(order.reshape(-1), own, resort), _take_rows(ranked.reshape(-1), own, resort)
        out[:, t] = _sorted_auc(ranked, pos[order], n1)
    return out


def _take_rows(flat: np.ndarray, starts: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``flat[starts[r] + index[r, j]]``, shape of ``index (n_rows, n)``: ``np.take_along_axis`` for rows that start
    at ``starts (n_rows,)`` of a flat array, by one ``np.take`` (several times faster than the broadcast fancy
    index)."""
    return np.take(flat, starts[:, None] + index)


def _sorted_auc(ranked: np.ndarray, places: np.ndarray, n1: int) -> np.ndarray:
    """AUC of rows from their sorted scores ``ranked (n_rows, n_trials)`` and ``places`` (same shape, bool): True
    where one of the ``n1`` class-1 trials sits in the sorted order. Mann-Whitney U with average ranks on ties."""
    n = places.shape[1]
    n0 = n - n1
    u = places @ np.arange(1.0, n + 1.0)  # rank sum of class 1 where a row has no ties
    tied = ranked[:, 1:] == ranked[:, :-1]  # (n_rows, n_trials - 1): a place equal to the one before
    rows = np.flatnonzero(tied.any(axis=1))
    if rows.size:  # only the rows with ties: each tied place gets its run's average rank (scipy's "average")
        u[rows] = (places[rows] * _average_ranks(tied[rows])).sum(axis=1)
    u = u - n1 * (n1 + 1) / 2.0  # rank sums are integers or halves: exact in float64, equal on both paths
    return u / (n1 * n0)


def auc_curves(pred: np.ndarray, y: np.ndarray, subject: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-subject AUC curves.

    Parameters
    ----------
    pred : ndarray, shape (n_trials, n_times)
    y : ndarray, shape (n_trials,)
        Labels 0/1.
    subject : ndarray, shape (n_trials,)

    Returns
    -------
    subjects : ndarray, shape (n_subjects,)
        Sorted unique subject ids.
    A : ndarray, shape (n_subjects, n_times)
        ``A[s, t]`` = AUC of subject ``subjects[s]`` at sample ``t``.

    Raises
    ------
    KitError
        Shape mismatch, NaN/inf predictions, labels not 0/1, or a subject
        with one class only (the message names the subject).
    """
    pred, pos = _check_pred_y(pred, y)
    subject = np.asarray(subject)
    if subject.shape != pos.shape:
        raise KitError(f"subject: shape {subject.shape} does not match {pos.shape[0]} trials")
    subjects = np.unique(subject)
    A = np.empty((subjects.size, pred.shape[1]))
    for i, sid in enumerate(subjects):
        m = subject == sid
        n1 = int(pos[m].sum())
        if n1 == 0 or n1 == m.sum():
            raise KitError(f"subject {sid}: one class only ({n1} emotional, {int(m.sum()) - n1} neutral "
                           "trials); its AUC is undefined")
        A[i] = per_sample_auc(pred[m], pos[m])
    return subjects, A


def subject_auc(score: np.ndarray, y: np.ndarray, subject: np.ndarray) -> float:
    """Mean over subjects of the ROC AUC of one score per trial (subjects with one class only are skipped).

    Parameters
    ----------
    score : ndarray, shape (n_trials,)
        Higher = more likely emotional (e.g. a trial's mean logit).
    y, subject : ndarray, shape (n_trials,)
        Labels 0/1; subject ids.

    Returns
    -------
    float
        0.5 when no subject has both classes.
    """
    score, y, subject = np.asarray(score, np.float64), np.asarray(y), np.asarray(subject)
    aucs = [per_sample_auc(score[m, None], y[m])[0] for m in (subject == s for s in np.unique(subject))
            if np.unique(y[m]).size == 2]
    return float(np.mean(aucs)) if aucs else 0.5


def window_score(curve: np.ndarray, *, threshold: float = CHANCE, min_len: int = MIN_LEN) -> WindowScore:
    """Score an AUC curve: mean over its longest run above ``threshold``.

    Parameters
    ----------
    curve : ndarray, shape (n_times,)
        ``m[t]``, e.g. the subject-averaged AUC.
    threshold : float
        A sample belongs to a run when ``m[t] > threshold`` (strictly).
    min_len : int
        Shortest run kept, in samples (10 = 50 ms at 200 Hz).

    Returns
    -------
    WindowScore
        ``score`` = mean of the longest qualifying run (earliest on ties),
        ``start``/``stop`` its first/last sample (inclusive); 0.5 and None
        when no run is at least ``min_len`` long.

    Raises
    ------
    KitError
        If ``curve`` is not 1-D or holds NaN.
    """
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 1:
        raise KitError(f"curve: expected (n_times,), got shape {curve.shape}")
    if np.isnan(curve).any():
        raise KitError(f"curve: {int(np.isnan(curve).sum())} NaN values")
    above = np.concatenate(([False], curve > threshold, [False])).astype(np.int8)
    edges = np.diff(above)
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)  # exclusive
    if starts.size:
        lengths = stops - starts
        k = int(np.argmax(lengths))  # first maximum = earliest on ties
        if lengths[k] >= min_len:
            s, e = int(starts[k]), int(stops[k])
            return WindowScore(float(curve[s:e].mean()), s, e - 1, curve)
    return WindowScore(CHANCE, None, None, curve)


def competition_score(pred: np.ndarray, y: np.ndarray, subject: np.ndarray, *,
                      threshold: float = CHANCE, min_len: int = MIN_LEN) -> WindowScore:
    """The competition's window-based AUC over subjects.

    Parameters
    ----------
    pred : ndarray, shape (n_trials, n_times)
        P(emotional) (any monotone score works: only ranks within a subject matter).
    y : ndarray, shape (n_trials,)
        Labels, 1 emotional, 0 neutral.
    subject : ndarray, shape (n_trials,)
    threshold, min_len
        See :func:`window_score`.

    Returns
    -------
    WindowScore
        With ``per_subject_auc`` (subject -> mean AUC over samples) and
        ``subject_curves`` (subject -> AUC curve) filled in.

    Raises
    ------
    KitError
        Shape mismatch, NaN/inf predictions, labels not 0/1, a subject with one class.
    """
    subjects, A = auc_curves(pred, y, subject)
    ws = window_score(A.mean(axis=0), threshold=threshold, min_len=min_len)
    ws.per_subject_auc = {_py(s): float(a.mean()) for s, a in zip(subjects, A)}
    ws.subject_curves = {_py(s): a for s, a in zip(subjects, A)}
    return ws


def _py(x):
    """numpy scalar -> Python scalar (JSON-friendly dict keys)."""
    return x.item() if hasattr(x, "item") else x


