"""Riemannian anchor: filter-bank covariances re-centred per subject, tangent space, shrinkage LDA.

The standard cross-subject recipe of brain-computer interfaces, written with pyRiemann's own tools:

1. band-pass every channel in each band of a filter bank (zero-phase Butterworth,
   :func:`kit.signal.features.bandpass`) and take an OAS-shrunk channel covariance per trial, band and
   window (:func:`kit.signal.covariance.oas_covariances`: pyriemann's ``covariances(..., estimator="oas")``
   batched; Chen et al., IEEE TSP 2010);
2. **re-centre each subject**: whiten its covariances by their own Riemannian mean,
   ``C -> M_s^(-1/2) C M_s^(-1/2)`` (``pyriemann.preprocessing.Whitening(metric="riemann")`` fitted on
   that subject's trials only, no labels), so every subject's mean becomes the identity (Zanini,
   Congedo, Jutten et al., "Transfer learning: a Riemannian geometry framework with applications to
   brain-computer interfaces", IEEE TBME 65(5), 2018);
3. map to the tangent space at the identity (``pyriemann.geometry.tangentspace.tangent_space``: the
   upper triangle of ``log(C)``, off-diagonal entries x sqrt(2); Barachant et al., IEEE TBME 2012) and
   z-score every tangent coordinate per subject;
4. choose the band set and the window by inner leave-one-subject-out on the training subjects only
   (:func:`kit.methods.lda.inner_candidate_auc`), then a shrinkage LDA (Ledoit-Wolf) or an L2 logistic
   regression on all training trials;
5. one P(emotional) per trial, copied to every sample.

Steps 2-3 use each subject's own unlabelled trials, never another subject's: they are computed once for
every subject (:meth:`RiemannTS.subject_features`) and a held-out subject's features are the same
whichever subjects are trained on (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.methods.lda import Anchor, check_xy, inner_candidate_auc, ledoit_wolf_lda
from kit.signal.covariance import oas_covariances
from kit.signal.features import BANDS, bandpass, check_trials, zscore_per_subject

FILTER_BANK: tuple = tuple(BANDS.items()) + (("alpha-beta", (8.0, 30.0)),)
"""The competition's five bands (theta is 4-8 Hz) and the motor-imagery band 8-30 Hz (name, (low, high) Hz)."""


@dataclass(frozen=True)
class RiemannConfig:
    """Parameters of :class:`RiemannTS`: ``len(feature_sets) x len(windows)`` candidates (8 by default, at most 12 advised)."""

    bands: tuple = FILTER_BANK              # (name, (low, high) Hz): the bands feature sets may name
    # candidate band sets (names of bands; only the bands named are filtered). The five bands side by side
    # (680 tangent coordinates) were never chosen by inner LOSO on the demo or eegmmidb-lr and tripled the cost
    feature_sets: tuple = (("theta",), ("alpha-beta",), ("theta", "alpha-beta"), ("delta", "theta"))
    windows: tuple = ((0.0, 1.0), (0.35, 0.65))  # candidate windows, s after the cue [start, stop)
    recentre: bool = True                   # per-subject re-centring to the identity (False: the lever "off")
    classifier: str = "lda"                 # "lda" (Ledoit-Wolf shrinkage) or "logreg" (L2 logistic regression)
    C: float = 1.0                          # inverse L2 strength of "logreg"
    order: int = 4                          # Butterworth order, zero phase (sosfiltfilt)


def window_slice(window: tuple[float, float], sfreq: float, n_times: int) -> slice:
    """Samples of ``window`` (s, [start, stop)) at ``sfreq`` Hz; KitError if it holds fewer than 8 samples or leaves the trial."""
    start, stop = int(round(window[0] * sfreq)), int(round(window[1] * sfreq))
    if not 0 <= start < stop <= n_times or stop - start < 8:
        raise KitError(f"window {window} s: need 8 or more samples inside the trial of {n_times} samples "
                       f"at {sfreq:g} Hz")
    return slice(start, stop)


def recentre(C: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """Whiten each subject's SPD matrices by their own Riemannian mean (pyriemann's ``Whitening``).

    Parameters
    ----------
    C : ndarray, shape (n_trials, ..., n_chans, n_chans)
        SPD matrices (any leading axes after the first are handled one by one).
    subject : ndarray, shape (n_trials,)

    Returns
    -------
    ndarray, same shape, float64
        Each subject's Riemannian mean of every ``C[:, ...]`` slice is the identity afterwards.
    """
    from pyriemann.preprocessing import Whitening

    C = np.asarray(C, np.float64)
    out = np.empty_like(C)
    lead = C.shape[1:-2]
    for s in np.unique(subject):
        idx = np.flatnonzero(subject == s)
        for k in np.ndindex(*lead):
            Cs = C[(idx,) + k]
            out[(idx,) + k] = Whitening(metric="riemann").fit(Cs).transform(Cs)
    return out


@fill_doc
class RiemannTS(Anchor):
    """Filter-bank covariances, per-subject Riemannian re-centring, tangent space, shrinkage LDA (module docstring).

    %(anchor_params)s

    Attributes
    ----------
    choice_ : (str, list of int, int)
        The candidate chosen by inner LOSO: label, band indices into :meth:`used_bands`, window index.
    inner_scores_ : dict
        Candidate label -> inner mean per-subject AUC.
    coef_, intercept_ : ndarray, float
        The linear model on the chosen tangent coordinates (log-odds of emotional).
    """

    config_class = RiemannConfig

    # -- candidates
    def used_bands(self) -> list[tuple[str, tuple[float, float]]]:
        """The bands of ``config.bands`` that some feature set names, in ``config.bands`` order.

        Raises
        ------
        KitError
            A feature set names a band that is not in ``config.bands``; no set or no window.
        """
        c = self.config
        names = [n for n, _ in c.bands]
        if not c.feature_sets or not c.windows:
            raise KitError("RiemannConfig: need at least one feature set and one window")
        for fs in c.feature_sets:
            missing = [b for b in fs if b not in names]
            if missing:
                raise KitError(f"RiemannConfig: feature set {fs} names bands {missing} not in {names}")
        wanted = {b for fs in self.config.feature_sets for b in fs}
        return [(n, tuple(map(float, band))) for n, band in c.bands if n in wanted]

    def candidates(self) -> list[tuple[str, list[int], int]]:
        """``(label, indices into used_bands(), window index)`` of every candidate, e.g. ``"theta @ 0.35-0.65 s"``."""
        names = [n for n, _ in self.used_bands()]
        out = []
        for fs in self.config.feature_sets:
            for k, (a, b) in enumerate(self.config.windows):
                out.append((f"{'+'.join(fs)} @ {a:.2f}-{b:.2f} s", [names.index(n) for n in fs], k))
        return out

    # -- features
    def trial_features(self, X: np.ndarray) -> np.ndarray:
        """Covariance of every used band and window per trial: (n_trials, n_bands, n_windows, n_chans, n_chans).

        Per trial only (no statistics across trials), µV².

        Raises
        ------
        KitError
            Bad shape, a band outside (0, Nyquist), a window outside the trial.
        """
        X = check_trials(X)
        c = self.config
        bands = self.used_bands()
        slices = [window_slice(w, self.sfreq, X.shape[2]) for w in c.windows]
        n, C = X.shape[:2]
        out = np.empty((n, len(bands), len(slices), C, C))
        for b, (_, band) in enumerate(bands):
            Xb = bandpass(X, self.sfreq, band, c.order).astype(np.float64)
            for k, sl in enumerate(slices):
                out[:, b, k] = oas_covariances(Xb[:, :, sl])
        return out

    def subject_features(self, C: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """Re-centred (per subject), tangent-space, per-subject z-scored coordinates.

        Uses each subject's own trials only and no labels, so it may be computed once for every subject
        (training and test) before any fold.

        Parameters
        ----------
        C : ndarray, shape (n_trials, n_bands, n_windows, n_chans, n_chans)
            :meth:`trial_features` output.
        subject : ndarray, shape (n_trials,)

        Returns
        -------
        ndarray, shape (n_trials, n_bands, n_windows, n_chans * (n_chans + 1) / 2), float64
        """
        from pyriemann.geometry.tangentspace import tangent_space

        C = np.asarray(C, np.float64)
        subject = np.asarray(subject)
        if C.ndim != 5 or subject.shape != (C.shape[0],):
            raise KitError(f"RiemannTS: expected covariances (n_trials, n_bands, n_windows, n_chans, n_chans) "
                           f"and one subject per trial, got {C.shape} and {subject.shape}")
        if self.config.recentre:
            C = recentre(C, subject)
        n_chans = C.shape[-1]
        T = tangent_space(C.reshape(-1, n_chans, n_chans), np.eye(n_chans), metric="riemann")
        T = T.reshape(C.shape[:3] + (T.shape[-1],))
        return zscore_per_subject(T.reshape(len(T), -1), subject).reshape(T.shape)

    def features(self, X: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """:meth:`subject_features` of :meth:`trial_features`: (n_trials, n_bands, n_windows, n_tangent)."""
        X, _, subject = check_xy(X, None, subject, fit=False)
        return self.subject_features(self.trial_features(X), subject)

    @staticmethod
    def take(T: np.ndarray, cand) -> np.ndarray:
        """The tangent coordinates of candidate ``cand`` side by side: (n_trials, n_bands_in_cand * n_tangent)."""
        _, idx, k = cand
        return T[:, idx, k].reshape(len(T), -1)

    def _fit_linear(self, F: np.ndarray, y: np.ndarray):
        if self.config.classifier == "lda":
            return ledoit_wolf_lda(F, y)
        if self.config.classifier == "logreg":
            F = np.asarray(F)
            if F.ndim == 3:
                return tuple(map(np.array, zip(*(self._fit_linear(f, y) for f in F))))
            m = LogisticRegression(C=self.config.C, max_iter=1000).fit(F, y)
            return m.coef_[0], float(m.intercept_[0])
        raise KitError(f"RiemannConfig.classifier: {self.config.classifier!r}; choose 'lda' or 'logreg'")

    # -- fit / predict
    @fill_doc
    def fit(self, X: np.ndarray, y: np.ndarray, subject: np.ndarray) -> "RiemannTS":
        """Features of ``X`` (:meth:`features`), then :meth:`fit_features`.

        %(fit_params)s

        Raises
        ------
        KitError
            Bad shapes or labels, a bad band, window or feature set.
        """
        X, y, subject = check_xy(X, y, subject, fit=True)
        return self.fit_features(self.features(X, subject), y, subject)

    def fit_features(self, T: np.ndarray, y: np.ndarray, subject: np.ndarray) -> "RiemannTS":
        """Choose the candidate on inner LOSO folds of these trials, then fit the linear model on all of them.

        Parameters
        ----------
        T : ndarray, shape (n_trials, n_bands, n_windows, n_tangent)
            :meth:`subject_features` output.
        y, subject : ndarray, shape (n_trials,)
        """
        T = np.asarray(T)
        _, y, subject = check_xy(np.zeros((len(T), 1, 1)), y, subject, fit=True)
        cands = self.candidates()
        best, self.inner_scores_ = cands[0], {}
        with threadpool_limits(limits=1):
            if len(cands) > 1 and np.unique(subject).size > 2:
                fit = None if self.config.classifier == "lda" else self._fit_linear  # None: the LDA from per-subject sums
                scores = inner_candidate_auc([self.take(T, c) for c in cands], y, subject, fit)
                self.inner_scores_ = {c[0]: float(v) for c, v in zip(cands, scores)}
                best = cands[int(np.argmax(scores))]  # first maximum on ties
            self.choice_ = best
            self.coef_, self.intercept_ = self._fit_linear(self.take(T, best), y)
        return self

    def decision_features(self, T: np.ndarray) -> np.ndarray:
        """Log-odds of emotional per trial, shape (n_trials,), from :meth:`subject_features` output."""
        if not hasattr(self, "coef_"):
            raise KitError("RiemannTS: call fit before predict")
        return self.take(np.asarray(T), self.choice_) @ self.coef_ + self.intercept_

    def predict_features(self, T: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """P(emotional) per trial, shape (n_trials,), from :meth:`subject_features` output."""
        return expit(self.decision_features(T))

    def predict(self, X: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """P(emotional) per trial copied to every sample, shape (n_trials, n_times); re-centred on ``X``'s own subjects."""
        X, _, subject = check_xy(X, None, subject, fit=False)
        p = self.predict_features(self.features(X, subject), subject)
        return np.repeat(p[:, None], X.shape[2], axis=1)


def tangent_matrix(v: np.ndarray, n_chans: int) -> np.ndarray:
    """Tangent coordinates (or weights/patterns on them) back to symmetric channel x channel maps.

    Parameters
    ----------
    v : ndarray, shape (..., n_chans * (n_chans + 1) / 2)
        In pyriemann's ``upper`` order (``numpy.triu_indices``, row-major).
    n_chans : int

    Returns
    -------
    ndarray, shape (..., n_chans, n_chans)
        Entry (i, j) = entry (j, i) = the coordinate of channel pair (i, j), as is (no sqrt(2) undone: the map
        shows what the decoder weighs).
    """
    v = np.asarray(v, np.float64)
    iu = np.triu_indices(n_chans)
    if v.shape[-1] != len(iu[0]):
        raise KitError(f"tangent_matrix: {v.shape[-1]} coordinates do not fit {n_chans} channels")
    M = np.zeros(v.shape[:-1] + (n_chans, n_chans))
    M[..., iu[0], iu[1]] = v
    return M + np.triu(M, 1).swapaxes(-1, -2)


@fill_doc
def subject_shift(X: np.ndarray, subject: np.ndarray, sfreq: float = 200.0, *,
                  band: tuple[float, float] = (8.0, 30.0), window: tuple[float, float] = (0.0, 1.0),
                  order: int = 4) -> dict:
    """What per-subject re-centring removes: the trials' tangent vectors before and after, and each subject's offset.

    One band and window: OAS covariance per trial (:func:`kit.signal.covariance.oas_covariances`), tangent
    vectors at the identity without and with the per-subject re-centring (:func:`recentre`), each set
    projected on its own first two principal components (:class:`sklearn.decomposition.PCA`); and the
    Riemannian distance (``pyriemann.geometry.distance.distance_riemann``) of each subject's Riemannian mean
    to the grand Riemannian mean of all subjects' means, before and after.

    Parameters
    ----------
    %(X_trials)s
    subject : ndarray, shape (n_trials,)
    %(sfreq)s
    band : (float, float)
        Hz.
    window : (float, float)
        s after the cue, [start, stop).
    order : int
        Butterworth order (zero phase).

    Returns
    -------
    dict
        ``before`` and ``after`` (n_trials, 2): PCA coordinates; ``explained_before`` / ``explained_after``
        (2,): explained variance ratios; ``subjects`` (n_subjects,); ``distance_before`` / ``distance_after``
        (n_subjects,); ``band``, ``window``.
    """
    from pyriemann.geometry.distance import distance_riemann
    from pyriemann.geometry.mean import mean_riemann
    from pyriemann.geometry.tangentspace import tangent_space
    from sklearn.decomposition import PCA

    X, _, subject = check_xy(X, None, subject, fit=False)
    sl = window_slice(window, sfreq, X.shape[2])
    C = oas_covariances(bandpass(X, sfreq, band, order)[:, :, sl])
    eye = np.eye(C.shape[-1])
    out = {"subjects": np.unique(subject), "band": tuple(band), "window": tuple(window)}
    for key, M in (("before", C), ("after", recentre(C, subject))):
        T = tangent_space(M, eye, metric="riemann")
        pca = PCA(n_components=2).fit(T)
        out[key] = pca.transform(T)
        out[f"explained_{key}"] = pca.explained_variance_ratio_
        means = np.stack([mean_riemann(M[subject == s]) for s in out["subjects"]])
        grand = mean_riemann(means)
        out[f"distance_{key}"] = np.array([distance_riemann(m, grand) for m in means])
    return out
