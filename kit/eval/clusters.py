"""Cluster-based permutation tests of emotional vs neutral over subjects: over time, and over channels x time.

The test the field uses for an ERP or band-power effect (Maris & Oostenveld, J Neurosci Methods 2007), run by
mne (``mne.stats.permutation_cluster_1samp_test``, ``spatio_temporal_cluster_1samp_test``) on the per-subject
emotional-minus-neutral differences: each subject is one observation, the sign of its difference is flipped at
random under the null, and a cluster (adjacent samples, and channels, whose t exceeds the threshold) is
significant when its summed t beats the permutation distribution of the largest cluster.  The organisers'
study reports its theta effect this way (a cluster about 0.4-0.6 s after the cue).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Mapping, Sequence

import numpy as np

from kit.core.errors import KitError
from kit.data.layout import CH_NAMES
from kit.data.montage import channel_adjacency, channel_groups
from kit.signal.features import BANDS, theta_power


def subject_differences(P: np.ndarray, y: np.ndarray, subject: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Emotional-minus-neutral mean of ``P`` for each subject that has both classes.

    Parameters
    ----------
    P : ndarray, shape (n_trials, ...)
    y, subject : ndarray, shape (n_trials,)

    Returns
    -------
    subjects : ndarray, shape (n_subjects,)
    D : ndarray, shape (n_subjects, ...)
        ``mean(P[emotional]) - mean(P[neutral])`` per subject.

    Raises
    ------
    KitError
        When no subject has trials of both classes.
    """
    subjects, diffs = [], []
    for s in np.unique(subject):
        m = subject == s
        emo, neu = m & (y == 1), m & (y == 0)
        if emo.any() and neu.any():
            subjects.append(s)
            diffs.append(P[emo].mean(axis=0) - P[neu].mean(axis=0))
    if not subjects:
        raise KitError("no subject has trials of both classes")
    return np.asarray(subjects), np.stack(diffs)


@dataclasses.dataclass(frozen=True)
class Cluster:
    """One cluster of a test: where it is, its sign and its permutation p-value."""

    start: int  # first sample of the cluster
    stop: int  # last sample (inclusive)
    tmin: float  # s after the cue, at ``start``
    tmax: float  # s after the cue, at ``stop``
    channels: tuple[str, ...]  # channels in the cluster (all tested channels for a test over time only)
    t_sum: float  # cluster statistic: the sum of t over its samples (and channels); > 0: emotional > neutral
    p_value: float  # share of sign-flip permutations whose largest cluster is at least as large
    mask: np.ndarray = dataclasses.field(repr=False, compare=False)  # bool, the shape of ClusterTest.t_obs

    def describe(self) -> str:
        """``0.405-0.600 s, emotional > neutral, p = 0.004 (C3 Cz C4)``."""
        sign = "emotional > neutral" if self.t_sum > 0 else "emotional < neutral"
        return f"{self.tmin:.3f}-{self.tmax:.3f} s, {sign}, p = {self.p_value:.3f} ({' '.join(self.channels)})"


@dataclasses.dataclass(frozen=True)
class ClusterTest:
    """The result of :func:`cluster_test_time` or :func:`cluster_test_space_time`."""

    differences: np.ndarray  # (n_subjects, n_times) or (n_subjects, n_times, n_chans): emotional - neutral
    t_obs: np.ndarray  # (n_times,) or (n_times, n_chans): one-sample t over subjects
    threshold: float  # |t| above which a sample joins a cluster
    clusters: tuple[Cluster, ...]  # every cluster found, by p-value
    times: np.ndarray  # (n_times,) s after the cue
    ch_names: tuple[str, ...]  # channels tested (averaged, for a test over time)
    subjects: np.ndarray  # (n_subjects,)
    alpha: float  # significance level of :meth:`significant`
    n_permutations: int = 0  # sign-flip permutations drawn (all 2**n_subjects when fewer)
    threshold_p: float = 0.05  # two-sided p of the cluster-forming threshold

    def significant(self) -> list[Cluster]:
        """The clusters with ``p_value < alpha``."""
        return [c for c in self.clusters if c.p_value < self.alpha]


def n_drawn(n_subjects: int, n_permutations: int) -> int:
    """Sign-flip permutations a one-sample test over ``n_subjects`` draws: ``n_permutations``, or all
    ``2**n_subjects`` sign patterns when that is fewer (mne then enumerates them exactly)."""
    return int(min(n_permutations, 2 ** n_subjects)) if n_subjects < 63 else int(n_permutations)


def _t_threshold(n_subjects: int, p: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(1 - p / 2, n_subjects - 1))  # two-sided, df n - 1 (mne's default rule)


def _differences(P, y, subject, times, ch_names):
    P, y, subject = np.asarray(P, np.float64), np.asarray(y).ravel(), np.asarray(subject).ravel()
    times = np.asarray(times, np.float64).ravel()
    if P.ndim != 3:
        raise KitError(f"band power must be (n_trials, n_chans, n_times), got shape {P.shape}")
    if not len(y) == len(subject) == len(P):
        raise KitError(f"{len(P)} trials, {len(y)} labels and {len(subject)} subject ids")
    if len(times) != P.shape[2]:
        raise KitError(f"times has {len(times)} values for n_times={P.shape[2]}")
    if len(ch_names) != P.shape[1]:
        raise KitError(f"{len(ch_names)} channel names for {P.shape[1]} channels")
    subjects, D = _labelled_differences(P, y, subject)  # (n_subjects, n_chans, n_times)
    return subjects, D, times


def _labelled_differences(P, y, subject):
    """:func:`subject_differences` of the labelled trials; KitError with fewer than 3 subjects."""
    keep = (y == 0) | (y == 1)
    subjects, D = subject_differences(P[keep], y[keep], subject[keep])
    if len(subjects) < 3:
        raise KitError(f"a cluster test over subjects needs at least 3 subjects with both classes, got {len(subjects)}")
    return subjects, D


def _boolean(index, shape) -> np.ndarray:
    """mne's cluster (a boolean mask, or a tuple of slices for 1-D data) as a boolean array of ``shape``."""
    mask = np.zeros(shape, bool)
    mask[index] = True
    return mask


def _clusters(masks, t_obs, p_values, times, names, spatial: bool) -> tuple[Cluster, ...]:
    out = []
    for index, p in zip(masks, p_values):
        mask = _boolean(index, t_obs.shape)
        t_sum = t_obs[mask].sum()
        when = np.flatnonzero(mask.any(axis=1) if spatial else mask)
        chans = tuple(names[i] for i in np.flatnonzero(mask.any(axis=0))) if spatial else tuple(names)
        out.append(Cluster(int(when[0]), int(when[-1]), float(times[when[0]]), float(times[when[-1]]), chans,
                           float(t_sum), float(p), mask))
    return tuple(sorted(out, key=lambda c: (c.p_value, c.start)))


def cluster_test_time(P: np.ndarray, y: np.ndarray, subject: np.ndarray, times: np.ndarray, *,
                      ch_names: Sequence[str] = CH_NAMES, channels: Sequence[str] | None = None,
                      n_permutations: int = 2048, threshold_p: float = 0.05, alpha: float = 0.05,
                      seed: int = 0) -> ClusterTest:
    """Cluster permutation test over time of the channel-averaged emotional-minus-neutral difference.

    Parameters
    ----------
    P : ndarray, shape (n_trials, n_chans, n_times)
        Band power of one band (e.g. :func:`kit.signal.features.theta_power`, z-scored log power).
    y, subject : ndarray, shape (n_trials,)
        Labels (1 emotional, 0 neutral; other values are left out) and subject ids.
    times : ndarray, shape (n_times,)
        Seconds after the cue.
    ch_names : sequence of str
        Names of the ``n_chans`` channels.
    channels : sequence of str, optional
        Channels averaged before the test; default all.
    n_permutations : int
        Sign-flip permutations (with n subjects there are 2**n; mne enumerates them all when that is fewer).
    threshold_p : float
        Two-sided p of the t threshold that forms clusters (``t.ppf(1 - threshold_p / 2, n - 1)``).
    alpha : float
        Level at which :meth:`ClusterTest.significant` calls a cluster significant.
    seed : int
        Seed of the permutations: a fixed seed gives the same p-values.

    Returns
    -------
    ClusterTest
        ``differences`` and ``t_obs`` of shape (n_subjects, n_times) and (n_times,).

    Raises
    ------
    KitError
        Bad shapes, an unknown channel, or fewer than 3 subjects with both classes.
    """
    from mne.stats import permutation_cluster_1samp_test

    names = [str(c) for c in ch_names]
    subjects, D, times = _differences(P, y, subject, times, names)
    chosen = names if channels is None else [str(c) for c in channels]
    missing = [c for c in chosen if c not in names]
    if missing:
        raise KitError(f"channels {missing} not among {names}")
    X = D[:, [names.index(c) for c in chosen]].mean(axis=1)  # (n_subjects, n_times)
    threshold = _t_threshold(len(subjects), threshold_p)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No clusters found", RuntimeWarning)  # an empty result is a result
        t_obs, masks, p_values, _ = permutation_cluster_1samp_test(
            X, threshold=threshold, n_permutations=n_permutations, tail=0, rng=seed, out_type="mask",
            verbose=False)
    return ClusterTest(X, t_obs, threshold, _clusters(masks, t_obs, p_values, times, chosen, False), times,
                       tuple(chosen), subjects, alpha, n_drawn(len(subjects), n_permutations), threshold_p)


def cluster_test_space_time(P: np.ndarray, y: np.ndarray, subject: np.ndarray, times: np.ndarray, *,
                            ch_names: Sequence[str] = CH_NAMES, n_permutations: int = 1024,
                            threshold_p: float = 0.05, alpha: float = 0.05, seed: int = 0) -> ClusterTest:
    """Spatio-temporal cluster permutation test: clusters over adjacent channels (10-20 template) and samples.

    Same parameters as :func:`cluster_test_time` (every channel is tested); the channel adjacency comes from
    :func:`kit.data.montage.channel_adjacency`.

    Returns
    -------
    ClusterTest
        ``differences`` (n_subjects, n_times, n_chans) and ``t_obs`` (n_times, n_chans); each cluster names
        its channels.
    """
    from mne.stats import spatio_temporal_cluster_1samp_test

    names = [str(c) for c in ch_names]
    subjects, D, times = _differences(P, y, subject, times, names)
    X = D.transpose(0, 2, 1)  # (n_subjects, n_chans, n_times) -> (n_subjects, n_times, n_chans), as mne wants
    threshold = _t_threshold(len(subjects), threshold_p)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No clusters found", RuntimeWarning)
        t_obs, clusters, p_values, _ = spatio_temporal_cluster_1samp_test(
            X, threshold=threshold, n_permutations=n_permutations, tail=0, rng=seed, out_type="mask",
            adjacency=channel_adjacency(names), verbose=False)
    return ClusterTest(X, t_obs, threshold, _clusters(clusters, t_obs, p_values, times, names, True), times,
                       tuple(names), subjects, alpha, n_drawn(len(subjects), n_permutations), threshold_p)


def band_cluster_table(X: np.ndarray, y: np.ndarray, subject: np.ndarray, sfreq: float, times: np.ndarray, *,
                       bands: Mapping[str, tuple[float, float]] = BANDS, ch_names: Sequence[str] = CH_NAMES,
                       spatial: bool = True, n_permutations: int = 1024, alpha: float = 0.05,
                       seed: int = 0) -> list[dict]:
    """A cluster test for every band: which band shows a cluster, where, on which channels, with which p-value.

    ``spatial=True`` (default) runs :func:`cluster_test_space_time` (clusters over adjacent channels and
    samples: finds lateralised effects, such as left- vs right-hand mu/beta, that cancel in a channel
    average); ``spatial=False`` runs :func:`cluster_test_time` on the channel average.

    Band power is :func:`kit.signal.features.theta_power` with each band in place of theta: log Hilbert
    power z-scored per subject (as the organisers' starter does for theta), averaged over all channels.

    Parameters
    ----------
    X : ndarray, shape (n_trials, n_chans, n_times)
        EEG in µV at ``sfreq`` Hz.
    y, subject, times, ch_names, n_permutations, alpha, seed
        As in :func:`cluster_test_time`.
    spatial : bool
        Spatio-temporal test (default) or test over time of the channel average.
    bands : mapping
        ``{name: (low, high)}`` in Hz; default the competition's five bands.

    Returns
    -------
    list of dict
        One row per band: ``band``, ``hz``, ``n_subjects``, ``significant`` (count), ``clusters`` (the
        significant ones described, "-" when none), ``min_p`` (smallest cluster p-value, 1.0 without cluster).
    """
    rows = []
    for name, (lo, hi) in bands.items():
        Pb = theta_power(X, sfreq, np.asarray(subject), band=(lo, hi))  # (n_trials, n_chans, n_times)
        test = (cluster_test_space_time if spatial else cluster_test_time)(
            Pb, y, subject, times, ch_names=ch_names, n_permutations=n_permutations, alpha=alpha, seed=seed)
        sig = test.significant()
        rows.append({"band": name, "hz": f"{lo:g}-{hi:g}", "n_subjects": len(test.subjects),
                     "significant": len(sig),
                     "clusters": "; ".join(c.describe() if spatial else c.describe().rsplit(" (", 1)[0]
                                           for c in sig) or "-",
                     "min_p": min((c.p_value for c in test.clusters), default=1.0)})
    return rows


def group_cluster_tests(X: np.ndarray, y: np.ndarray, subject: np.ndarray, times: np.ndarray, *,
                        ch_names: Sequence[str] = CH_NAMES, groups: Mapping[str, Sequence[str]] | None = None,
                        n_permutations: int = 2048, alpha: float = 0.05, seed: int = 0) -> dict[str, ClusterTest]:
    """:func:`cluster_test_time` on the channel mean of each scalp region (e.g. of the evoked response).

    Parameters
    ----------
    X : ndarray, shape (n_trials, n_chans, n_times)
        Any per-sample quantity, e.g. low-passed EEG in µV (:func:`kit.signal.features.lowpass`).
    groups : mapping region -> channel names
        Default :func:`kit.data.montage.channel_groups` of ``ch_names``.
    y, subject, times, ch_names, n_permutations, alpha, seed
        As in :func:`cluster_test_time`.

    Returns
    -------
    dict region -> ClusterTest
    """
    groups = channel_groups(ch_names) if groups is None else groups
    return {region: cluster_test_time(X, y, subject, times, ch_names=ch_names, channels=list(chans),
                                      n_permutations=n_permutations, alpha=alpha, seed=seed)
            for region, chans in groups.items()}


@dataclasses.dataclass(frozen=True)
class TFRCluster:
    """One cluster of a time-frequency test: its time and frequency span, sign and p-value."""

    tmin: float  # s after the cue
    tmax: float
    fmin: float  # Hz
    fmax: float
    t_sum: float  # sum of t over the cluster's (time, frequency) bins; > 0: emotional > neutral
    p_value: float
    mask: np.ndarray = dataclasses.field(repr=False, compare=False)  # (n_times, n_freqs) bool

    def describe(self) -> str:
        """``0.400-0.600 s, 5-8 Hz, emotional > neutral, p = 0.010``."""
        sign = "emotional > neutral" if self.t_sum > 0 else "emotional < neutral"
        return f"{self.tmin:.3f}-{self.tmax:.3f} s, {self.fmin:g}-{self.fmax:g} Hz, {sign}, p = {self.p_value:.3f}"


@dataclasses.dataclass(frozen=True)
class TFRTest:
    """The result of :func:`cluster_test_tfr`."""

    differences: np.ndarray  # (n_subjects, n_times, n_freqs): emotional - neutral, z log power
    t_obs: np.ndarray  # (n_times, n_freqs)
    threshold: float
    clusters: tuple[TFRCluster, ...]  # by p-value
    times: np.ndarray  # (n_times,) s
    freqs: np.ndarray  # (n_freqs,) Hz
    subjects: np.ndarray
    alpha: float
    n_permutations: int = 0  # sign-flip permutations drawn (all 2**n_subjects when fewer)
    threshold_p: float = 0.05  # two-sided p of the cluster-forming threshold

    def significant(self) -> list[TFRCluster]:
        """The clusters with ``p_value < alpha``."""
        return [c for c in self.clusters if c.p_value < self.alpha]


def cluster_test_tfr(T: np.ndarray, y: np.ndarray, subject: np.ndarray, times: np.ndarray, freqs: np.ndarray, *,
                     n_permutations: int = 1024, threshold_p: float = 0.05, alpha: float = 0.05,
                     seed: int = 0) -> TFRTest:
    """Cluster permutation test over time x frequency of the emotional-minus-neutral power map.

    Neighbours are adjacent samples and adjacent frequencies (mne's lattice adjacency for 2-D data);
    otherwise as :func:`cluster_test_time`.

    Parameters
    ----------
    T : ndarray, shape (n_trials, n_times, n_freqs)
        Time-frequency power, e.g. :func:`kit.signal.tfr.tfr_by_trial` (z log power, channel average).
    y, subject : ndarray, shape (n_trials,)
    times : ndarray, shape (n_times,), s
    freqs : ndarray, shape (n_freqs,), Hz
    n_permutations, threshold_p, alpha, seed
        As in :func:`cluster_test_time`.

    Returns
    -------
    TFRTest

    Raises
    ------
    KitError
        Bad shapes, or fewer than 3 subjects with both classes.
    """
    from mne.stats import permutation_cluster_1samp_test

    T, y, subject = np.asarray(T, np.float64), np.asarray(y).ravel(), np.asarray(subject).ravel()
    times, freqs = np.asarray(times, np.float64).ravel(), np.asarray(freqs, np.float64).ravel()
    if T.ndim != 3 or T.shape[1:] != (len(times), len(freqs)):
        raise KitError(f"time-frequency power must be (n_trials, n_times={len(times)}, n_freqs={len(freqs)}), "
                       f"got shape {T.shape}")
    if not len(y) == len(subject) == len(T):
        raise KitError(f"{len(T)} trials, {len(y)} labels and {len(subject)} subject ids")
    subjects, D = _labelled_differences(T, y, subject)  # (n_subjects, n_times, n_freqs)
    threshold = _t_threshold(len(subjects), threshold_p)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No clusters found", RuntimeWarning)
        t_obs, masks, p_values, _ = permutation_cluster_1samp_test(
            D, threshold=threshold, n_permutations=n_permutations, tail=0, rng=seed, out_type="mask",
            verbose=False)
    found = []
    for index, p in zip(masks, p_values):
        mask = _boolean(index, t_obs.shape)
        when, which = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        found.append(TFRCluster(float(times[when[0]]), float(times[when[-1]]), float(freqs[which[0]]),
                                float(freqs[which[-1]]), float(t_obs[mask].sum()), float(p), mask))
    return TFRTest(D, t_obs, threshold, tuple(sorted(found, key=lambda c: (c.p_value, c.tmin))), times, freqs,
                   subjects, alpha, n_drawn(len(subjects), n_permutations), threshold_p)
