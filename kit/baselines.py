"""Classical baselines: the organisers' starter and the 2nd-place theta-covariance LDA.

Both take EEG arrays (n_trials, n_chans, n_times) in µV and return
P(emotional) per trial and sample, shape (n_trials, n_times), so their
out-of-fold predictions are scored by :func:`kit.cv.loso_score` exactly like
the deep models.  Per-subject normalisation at prediction time uses the
prediction data's own (unlabelled) statistics, subject by subject.

Sources
-------
- Organisers' starter (Abdellahi, Tsimpanouli & Lewis, bioRxiv
  10.1101/2025.08.11.669349): theta (4-8 Hz) Hilbert power z-scored per
  participant, one LDA per time sample, leave-one-participant-out; about
  0.52 LOSO, 0.516 public leaderboard.
- 2nd place (public LB 0.557): theta band-pass, per-subject z-score, channel
  covariance over samples 70-130, upper triangle z-scored per subject, top
  75 by cross-fold stability, shrinkage LDA (lsqr, auto), one score per trial.
- Shrinkage LDA: Ledoit & Wolf, "A well-conditioned estimator for
  large-dimensional covariance matrices", J. Multivar. Anal. 2004, as in
  :class:`sklearn.discriminant_analysis.LinearDiscriminantAnalysis`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import expit
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from .cv import cross_val_predict_loso, inner_loso_folds
from .errors import KitError
from .features import BANDS, bandpass, theta_power, zscore_per_subject


def _check_xy(X, y=None, subject=None, *, fit: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    X = np.asarray(X)
    if X.ndim != 3:
        raise KitError(f"X: expected (n_trials, n_chans, n_times) µV, got shape {X.shape}")
    subject = np.asarray(subject)
    if subject.shape != (X.shape[0],):
        raise KitError(f"subject: shape {subject.shape} does not match X's {X.shape[0]} trials")
    if not fit:
        return X, None, subject
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise KitError(f"y: shape {y.shape} does not match X's {X.shape[0]} trials")
    if not np.all(np.isin(y, (0, 1))) or np.unique(y).size != 2:
        raise KitError(f"y: training labels must be 0/1 with both classes, got {np.unique(y).tolist()}")
    return X, y.astype(np.int64), subject


# --------------------------------------------------------------------------- starter

@dataclass(frozen=True)
class StarterConfig:
    """Parameters of :class:`StarterLDA` (defaults reproduce the organisers' starter)."""

    band: tuple[float, float] = BANDS["theta"]  # Hz, theta 4-8 as in the paper
    order: int = 4                              # Butterworth order of the band-pass (zero phase)
    shrinkage: float | str | None = None        # None: plain LDA; float in [0, 1]; "auto": Ledoit-Wolf


class StarterLDA:
    """The organisers' starter: one LDA per time sample on theta Hilbert power.

    Features: :func:`kit.features.theta_power` (log |hilbert(theta)|², z-scored
    per subject and channel over trials and time), shape (n_trials, 16, n_times).
    At each sample ``t`` a two-class LDA over the channels gives
    ``P(emotional | x[:, t])``.

    The ``n_times`` LDAs are solved in closed form at once (batched
    ``numpy.linalg.solve``): class means, within-class covariance =
    prior-weighted biased class covariances (optionally shrunk towards
    ``trace/p * I`` with a fixed ``shrinkage``), ``w = Σ⁻¹(μ₁ - μ₀)``.  This
    is exactly sklearn's ``LinearDiscriminantAnalysis(solver="lsqr")``; its
    probabilities rank trials like the default ``svd`` solver, so the AUC is
    the same.  ``shrinkage="auto"`` (Ledoit-Wolf) falls back to one sklearn
    LDA per sample.

    Parameters
    ----------
    config : StarterConfig, optional
    sfreq : float
        Sampling rate in Hz (200).
    """

    def __init__(self, config: StarterConfig | None = None, *, sfreq: float = 200.0):
        self.config = config or StarterConfig()
        self.sfreq = float(sfreq)

    def _features(self, X, subject) -> np.ndarray:
        c = self.config
        return theta_power(X, self.sfreq, subject, band=c.band, order=c.order).astype(np.float64)

    def fit(self, X: np.ndarray, y: np.ndarray, subject: np.ndarray) -> "StarterLDA":
        """Fit one LDA per sample.

        Parameters
        ----------
        X : ndarray, shape (n_trials, n_chans, n_times), µV
        y : ndarray, shape (n_trials,), 1 emotional / 0 neutral
        subject : ndarray, shape (n_trials,)

        Raises
        ------
        KitError
            Bad shapes, labels not 0/1 or one class only.
        """
        X, y, subject = _check_xy(X, y, subject, fit=True)
        F = self._features(X, subject)  # (n, C, T)
        self.n_times_ = F.shape[2]
        shrink = self.config.shrinkage
        if isinstance(shrink, str):
            if shrink != "auto":
                raise KitError(f"shrinkage: expected None, a float in [0, 1] or 'auto', got {shrink!r}")
            coef, icpt = [], []
            for t in range(self.n_times_):
                lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(F[:, :, t], y)
                coef.append(lda.coef_[0])
                icpt.append(lda.intercept_[0])
            self.coef_, self.intercept_ = np.array(coef), np.array(icpt)
            return self
        if shrink is not None and not 0.0 <= float(shrink) <= 1.0:
            raise KitError(f"shrinkage: expected a float in [0, 1], got {shrink}")
        Ft = F.transpose(2, 0, 1)  # (T, n, C)
        n_chans = Ft.shape[2]
        means, cov, priors = [], np.zeros((self.n_times_, n_chans, n_chans)), []
        for k in (0, 1):
            Xk = Ft[:, y == k]
            mu = Xk.mean(axis=1)  # (T, C)
            D = Xk - mu[:, None]
            ck = np.einsum("tnc,tnd->tcd", D, D) / Xk.shape[1]
            if shrink:
                tr = np.trace(ck, axis1=1, axis2=2) / n_chans
                ck = (1 - shrink) * ck + shrink * tr[:, None, None] * np.eye(n_chans)
            prior = Xk.shape[1] / y.size
            cov += prior * ck
            means.append(mu)
            priors.append(prior)
        # a ridge of 1e-10 x the mean variance keeps a singular covariance (a flat channel,
        # fewer trials than channels) solvable; it changes nothing measurable otherwise
        ridge = 1e-10 * np.trace(cov, axis1=1, axis2=2) / n_chans + 1e-12
        W = np.linalg.solve(cov + ridge[:, None, None] * np.eye(n_chans), np.stack(means, axis=2))  # (T, C, 2)
        icpt = -0.5 * np.einsum("tck,tck->tk", np.stack(means, axis=2), W) + np.log(priors)
        self.coef_ = W[:, :, 1] - W[:, :, 0]  # (T, C)
        self.intercept_ = icpt[:, 1] - icpt[:, 0]  # (T,)
        return self

    def decision_function(self, X: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """LDA decision value (log-odds of emotional) per trial and sample.

        Parameters
        ----------
        X : ndarray, shape (n_trials, n_chans, n_times), µV
        subject : ndarray, shape (n_trials,)

        Returns
        -------
        ndarray, shape (n_trials, n_times)
        """
        if not hasattr(self, "coef_"):
            raise KitError("StarterLDA: call fit before predict")
        X, _, subject = _check_xy(X, None, subject, fit=False)
        if X.shape[2] != self.n_times_:
            raise KitError(f"X: {X.shape[2]} samples per trial, the model was fit on {self.n_times_}")
        F = self._features(X, subject)
        return np.einsum("nct,tc->nt", F, self.coef_) + self.intercept_

    def predict(self, X: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """P(emotional), shape (n_trials, n_times); features z-scored per subject of ``X`` itself.

        Raises
        ------
        KitError
            Not fitted, bad shapes, another ``n_times``.
        """
        return expit(self.decision_function(X, subject))


# --------------------------------------------------------------------------- thetacov

@dataclass(frozen=True)
class ThetaCovConfig:
    """Parameters of :class:`ThetaCov` (defaults: the 2nd-place public solution)."""

    band: tuple[float, float] = BANDS["theta"]  # Hz, theta band-pass
    order: int = 4                              # Butterworth order, zero phase (sosfiltfilt)
    window: tuple[int, int] = (70, 130)         # samples [start, stop): 350-645 ms after the cue at 200 Hz
    n_features: int = 75                        # kept of the n_chans*(n_chans+1)/2 = 136 covariance entries
    shrinkage: float | str = "auto"             # LDA covariance shrinkage (Ledoit-Wolf), solver="lsqr"


def covariance_features(Xf: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """Upper triangle (with diagonal) of each trial's channel covariance over ``window``.

    Parameters
    ----------
    Xf : ndarray, shape (n_trials, n_chans, n_times)
        Band-passed, per-subject z-scored signal.
    window : (int, int)
        Samples ``[start, stop)``.

    Returns
    -------
    ndarray, shape (n_trials, n_chans * (n_chans + 1) / 2), float64
        Covariance (trial-wise demeaned over the window, ddof 1), row-major
        upper triangle: (0,0), (0,1), ..., (1,1), ...

    Raises
    ------
    KitError
        If the window is empty, shorter than 2 samples or outside the trial.
    """
    start, stop = int(window[0]), int(window[1])
    if not 0 <= start < stop - 1 < Xf.shape[2]:
        raise KitError(f"window: need 0 <= start < stop - 1 < n_times={Xf.shape[2]}, got {window}")
    W = np.asarray(Xf[:, :, start:stop], dtype=np.float64)
    W = W - W.mean(axis=2, keepdims=True)
    C = np.einsum("nct,ndt->ncd", W, W) / (W.shape[2] - 1)
    iu = np.triu_indices(Xf.shape[1])
    return C[:, iu[0], iu[1]]


def welch_t(F: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Welch t statistic (class 1 minus class 0) per feature.

    Parameters
    ----------
    F : ndarray, shape (n_trials, n_features)
    y : ndarray, shape (n_trials,), 0/1 (at least two trials per class)

    Returns
    -------
    ndarray, shape (n_features,)
        ``(mean1 - mean0) / sqrt(var1/n1 + var0/n0)``; 0 where both variances are 0.
    """
    a, b = F[y == 1], F[y == 0]
    se = np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (a.mean(axis=0) - b.mean(axis=0)) / se
    return np.nan_to_num(t)


def stability_select(F: np.ndarray, y: np.ndarray, subject: np.ndarray, n_features: int) -> np.ndarray:
    """Pick features that rank high on every inner leave-one-subject-out fold.

    On each inner fold (all training subjects but one,
    :func:`kit.cv.inner_loso_folds`) the features are ranked by ``|t|``
    (:func:`welch_t`); a feature's stability is the fraction of inner folds
    in which it is among the top ``n_features``, ties broken by its mean
    ``|t|`` over folds.  Only the arrays passed in are used: called from
    :meth:`ThetaCov.fit`, those are the outer fold's training subjects, so
    the held-out subject's labels are never seen.  With a single training
    subject the ranking is by ``|t|`` on all of it.

    Parameters
    ----------
    F : ndarray, shape (n_trials, n_features_total)
    y : ndarray, shape (n_trials,), 0/1
    subject : ndarray, shape (n_trials,)
    n_features : int

    Returns
    -------
    ndarray of int, shape (min(n_features, n_features_total),)
        Selected column indices, most stable first.
    """
    n_total = F.shape[1]
    k = min(int(n_features), n_total)
    if np.unique(subject).size < 2:
        return np.argsort(-np.abs(welch_t(F, y)), kind="stable")[:k]
    counts = np.zeros(n_total)
    abs_t = np.zeros(n_total)
    folds = inner_loso_folds(subject)
    for tr, _ in folds:
        t = np.abs(welch_t(F[tr], y[tr]))
        counts[np.argsort(-t, kind="stable")[:k]] += 1
        abs_t += t
    order = np.lexsort((-abs_t / len(folds), -counts / len(folds)))  # primary key last
    return order[:k]


class ThetaCov:
    """2nd-place recipe: theta channel covariance, stable features, shrinkage LDA.

    1. theta band-pass (4th-order Butterworth, zero phase, :func:`kit.features.bandpass`);
    2. z-score the filtered signal per subject and channel (over trials and time);
    3. channel covariance over samples ``window`` (70-130: 350-650 ms), upper
       triangle with diagonal (136 features for 16 channels);
    4. z-score the features per subject;
    5. keep ``n_features`` (75) by inner-fold stability (:func:`stability_select`);
    6. ``LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")``;
    7. one P(emotional) per trial, copied to all ``n_times`` samples (a flat
       AUC curve: if above 0.5, the metric's window is the whole second).

    Parameters
    ----------
    config : ThetaCovConfig, optional
    sfreq : float
        Sampling rate in Hz (200).
    """

    def __init__(self, config: ThetaCovConfig | None = None, *, sfreq: float = 200.0):
        self.config = config or ThetaCovConfig()
        self.sfreq = float(sfreq)

    def features(self, X: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """Steps 1-4: per-subject z-scored covariance features, shape (n_trials, 136)."""
        c = self.config
        Xf = zscore_per_subject(bandpass(X, self.sfreq, c.band, c.order), subject)
        return zscore_per_subject(covariance_features(Xf, c.window), subject)

    def fit(self, X: np.ndarray, y: np.ndarray, subject: np.ndarray) -> "ThetaCov":
        """Fit on training trials only.

        Parameters
        ----------
        X : ndarray, shape (n_trials, n_chans, n_times), µV
        y : ndarray, shape (n_trials,), 1 emotional / 0 neutral
        subject : ndarray, shape (n_trials,)

        Raises
        ------
        KitError
            Bad shapes or labels, or a window outside the trial.
        """
        X, y, subject = _check_xy(X, y, subject, fit=True)
        F = self.features(X, subject)
        self.selected_ = stability_select(F, y, subject, self.config.n_features)
        self.lda_ = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=self.config.shrinkage)
        self.lda_.fit(F[:, self.selected_], y)
        return self

    def predict(self, X: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """P(emotional) per trial broadcast to (n_trials, n_times); each row constant.

        Features are z-scored per subject of ``X`` itself (unlabelled statistics).

        Raises
        ------
        KitError
            Not fitted, bad shapes.
        """
        if not hasattr(self, "lda_"):
            raise KitError("ThetaCov: call fit before predict")
        X, _, subject = _check_xy(X, None, subject, fit=False)
        p = self.lda_.predict_proba(self.features(X, subject)[:, self.selected_])[:, 1]
        return np.repeat(p[:, None], X.shape[2], axis=1)


# --------------------------------------------------------------------------- registry

BASELINES: dict[str, type] = {"starter": StarterLDA, "thetacov": ThetaCov}
"""Baseline name -> class; each is built as ``cls(config, sfreq=...)``."""

_CONFIGS = {"starter": StarterConfig, "thetacov": ThetaCovConfig}


def run_baseline(name: str, X: np.ndarray, y: np.ndarray, subject: np.ndarray,
                 X_test: np.ndarray | None = None, subject_test: np.ndarray | None = None,
                 sfreq: float = 200.0, **params) -> tuple[np.ndarray, np.ndarray | None]:
    """LOSO out-of-fold and fold-averaged test predictions of a baseline.

    Parameters
    ----------
    name : {"starter", "thetacov"}
    X : ndarray, shape (n_trials, n_chans, n_times), µV
        Training trials.
    y, subject : ndarray, shape (n_trials,)
    X_test : ndarray, shape (n_test, n_chans, n_times), optional
    subject_test : ndarray, shape (n_test,), required with ``X_test``
    sfreq : float
        Hz.
    **params
        Overrides of the config fields, e.g. ``n_features=50``.

    Returns
    -------
    oof : ndarray, shape (n_trials, n_times)
        P(emotional) of each trial from the fold that held its subject out.
    test_pred : ndarray, shape (n_test, n_times) or None
        Mean over the LOSO folds' models.

    Raises
    ------
    KitError
        Unknown name or parameter; see :func:`kit.cv.cross_val_predict_loso`.
    """
    if name not in BASELINES:
        raise KitError(f"baseline '{name}': unknown, choose one of {sorted(BASELINES)}")
    try:
        config = replace(_CONFIGS[name](), **params)
    except TypeError as exc:
        raise KitError(f"baseline '{name}': {exc}") from exc

    def fit_predict(X_tr, y_tr, s_tr, eval_sets):
        model = BASELINES[name](config, sfreq=sfreq).fit(X_tr, y_tr, s_tr)
        return [model.predict(Xe, se) for Xe, se in eval_sets]

    return cross_val_predict_loso(fit_predict, X, y, subject, X_test, subject_test)
