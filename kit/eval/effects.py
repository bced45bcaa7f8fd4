"""Effect sizes and reports of the cluster tests (:mod:`kit.eval.clusters`), and the label-permutation test.

Cohen's dz of a cluster with its exact noncentral-t interval, a journal-style table of a test's clusters, and a
permutation test of any score against labels shuffled within subjects.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kit.core.errors import KitError
from kit.eval.clusters import Cluster, ClusterTest, TFRCluster, TFRTest


@dataclasses.dataclass(frozen=True)
class EffectSize:
    """Cohen's dz of a cluster with its confidence interval (:func:`cluster_effect_size`)."""

    dz: float  # mean / SD over subjects of each subject's difference averaged over the cluster
    low: float  # lower end of the interval
    high: float  # upper end
    level: float  # coverage, e.g. 0.95
    n: int  # subjects

    def describe(self) -> str:
        """``dz = 0.92 [0.29, 1.53]``."""
        return f"dz = {self.dz:.2f} [{self.low:.2f}, {self.high:.2f}]"


def dz_interval(values: np.ndarray, level: float = 0.95) -> EffectSize:
    """Cohen's dz of paired differences and its exact interval from the noncentral t distribution.

    ``dz = mean / SD`` (ddof 1) of ``values``; the interval inverts the noncentral t of the one-sample t
    (``t = dz * sqrt(n)``, df ``n - 1``): the noncentrality parameters whose 97.5th and 2.5th percentiles are
    the observed t, divided by ``sqrt(n)`` (Cumming & Finch, Educ Psychol Meas 2001).

    Parameters
    ----------
    values : ndarray, shape (n,)
        One difference per subject.
    level : float
        Coverage of the interval.

    Returns
    -------
    EffectSize

    Raises
    ------
    KitError
        Fewer than 3 values, or all equal.
    """
    from scipy import optimize, stats

    v = np.asarray(values, np.float64).ravel()
    n = len(v)
    sd = v.std(ddof=1) if n > 1 else 0.0
    if n < 3 or not sd > 0:
        raise KitError(f"an effect size needs at least 3 differences that are not all equal, got {n}")
    dz = float(v.mean() / sd)
    t, df = abs(dz) * np.sqrt(n), n - 1  # solved for |t| (scipy's nct is stable there), flipped back below
    a = (1.0 - level) / 2.0

    def cdf(nc):  # scipy's nct.cdf is NaN far in its tails: there it is 1 (nc << t) or 0 (nc >> t)
        value = stats.nct.cdf(t, df, nc)
        return value if np.isfinite(value) else (1.0 if nc < t else 0.0)

    def ncp(q):  # the noncentrality whose q-quantile is t: nct.cdf(t, df, ncp) = 1 - q, decreasing in ncp
        return optimize.brentq(lambda nc: cdf(nc) - (1.0 - q), t - 10.0 - t, t + 10.0 + t, xtol=1e-10)

    low, high = ncp(a) / np.sqrt(n), ncp(1.0 - a) / np.sqrt(n)
    if dz < 0:
        low, high = -high, -low
    return EffectSize(dz, float(low), float(high), float(level), n)


def cluster_effect_size(test: "ClusterTest | TFRTest", cluster: "Cluster | TFRCluster", *,
                        level: float = 0.95) -> EffectSize:
    """Cohen's dz of a cluster: each subject's difference averaged over the cluster's samples (and channels or
    frequencies), mean over SD across subjects, with its noncentral-t interval (:func:`dz_interval`).

    The cluster was found on the same data, so this dz describes it and is biased upward as an estimate of the
    population effect (selection); its interval is conditional on the cluster.

    Returns
    -------
    EffectSize
    """
    D = test.differences  # (n_subjects, *mask.shape)
    if D.shape[1:] != cluster.mask.shape:
        raise KitError(f"cluster mask {cluster.mask.shape} does not match the test's differences {D.shape[1:]}")
    return dz_interval(D[:, cluster.mask].mean(axis=1), level)


CLUSTER_COLUMNS = ("window (s)", "where", "direction", "sum of t", "p", "significant", "dz", "dz low", "dz high")
"""The keys of :func:`cluster_table`'s rows, in order (the columns of an empty table)."""


def cluster_table(test: "ClusterTest | TFRTest", *, level: float = 0.95) -> list[dict]:
    """Every cluster of a test as a row a journal asks for.

    Returns
    -------
    list of dict
        Per cluster, by p-value: ``window (s)``, ``where`` (channels, or Hz for a time-frequency test),
        ``direction``, ``sum of t`` (the cluster statistic), ``p`` (permutation), ``significant`` (p < alpha),
        ``dz``, ``dz low``, ``dz high`` (Cohen's dz with its ``level`` interval: :func:`cluster_effect_size`).
    """
    rows = []
    for c in test.clusters:
        es = cluster_effect_size(test, c, level=level)
        where = f"{c.fmin:g}-{c.fmax:g} Hz" if isinstance(c, TFRCluster) else " ".join(c.channels)
        rows.append({"window (s)": f"{c.tmin:.3f}-{c.tmax:.3f}", "where": where,
                     "direction": "emotional > neutral" if c.t_sum > 0 else "emotional < neutral",
                     "sum of t": round(c.t_sum, 1), "p": round(c.p_value, 4), "significant": c.p_value < test.alpha,
                     "dz": round(es.dz, 2), "dz low": round(es.low, 2), "dz high": round(es.high, 2)})
    return rows


def label_permutation_test(score_labels, y: np.ndarray, subject: np.ndarray, *, n_permutations: int = 100,
                           seed: int = 0) -> dict:
    """Permutation test of a LOSO score against chance: the labels shuffled within each subject.

    Each permutation shuffles the labels among each subject's trials (the subjects' class balance and the
    trials' features stay as they are), reruns the whole leave-one-subject-out evaluation on them and scores
    it; the p-value is the share of permutations that score at least the observed score, counting the
    observed one (``(1 + #{null >= observed}) / (1 + n)``; Phipson & Smyth 2010; Ojala & Garriga 2010).

    Parameters
    ----------
    score_labels : callable
        ``score_labels(y) -> float``: the LOSO score of the method trained and evaluated with labels ``y``
        (e.g. :func:`kit.eval.cv.loso_score` of out-of-fold predictions fitted on ``y``).
    y, subject : ndarray, shape (n_trials,)
        The true labels (0/1) and subject ids.
    n_permutations : int
        Label permutations (100 resolves p down to 1/101).
    seed : int
        Seed of the shuffles.

    Returns
    -------
    dict
        ``observed`` (score with the true labels), ``null`` (ndarray (n_permutations,)), ``p_value``,
        ``n_permutations``, ``null_mean``, ``null_p95`` (the 95th percentile of the null scores).

    Raises
    ------
    KitError
        ``y`` and ``subject`` of different lengths, or ``n_permutations < 1``.
    """
    y, subject = np.asarray(y).ravel(), np.asarray(subject).ravel()
    if len(y) != len(subject):
        raise KitError(f"{len(y)} labels for {len(subject)} subject ids")
    if int(n_permutations) < 1:
        raise KitError(f"n_permutations must be >= 1, got {n_permutations}")
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(subject == s) for s in np.unique(subject)]
    observed = float(score_labels(y))
    null = np.empty(int(n_permutations))
    for k in range(len(null)):
        yp = y.copy()
        for rows in groups:
            yp[rows] = y[rows][rng.permutation(len(rows))]
        null[k] = float(score_labels(yp))
    return {"observed": observed, "null": null, "p_value": float((1 + (null >= observed).sum()) / (1 + len(null))),
            "n_permutations": len(null), "null_mean": float(null.mean()),
            "null_p95": float(np.percentile(null, 95))}
