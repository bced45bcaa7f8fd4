"""Baselines (anchors): the organisers' starter, the 2nd-place theta-covariance LDA, band power, EEGNet.

All take EEG arrays (n_trials, n_chans, n_times) in µV and return
P(emotional) per trial and sample, shape (n_trials, n_times), so their
out-of-fold predictions are scored by :func:`kit.eval.cv.loso_score` exactly like
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
- Band power (``bandpower``): log-variance of band-passed EEG per channel
  with (shrinkage) LDA, the classic motor-imagery recipe (Pfurtscheller &
  Neuper, Proc. IEEE 2001; Blankertz et al., NeuroImage 2011), over the
  five bands of :data:`kit.signal.features.BANDS`.
- EEGNet-8,2 (``eegnet``, :mod:`kit.methods.eegnet`): Lawhern et al., J. Neural
  Eng. 2018.
- Shrinkage LDA: Ledoit & Wolf, "A well-conditioned estimator for
  large-dimensional covariance matrices", J. Multivar. Anal. 2004, as in
  :class:`sklearn.discriminant_analysis.LinearDiscriminantAnalysis`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import expit
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from threadpoolctl import threadpool_limits

from kit.eval.cv import CROSSFIT_GROUPS, cross_fit_predict, cross_val_predict_loso, inner_loso_folds
from kit.methods.eegnet import EEGNetClassifier, EEGNetConfig
from kit.core.errors import KitError
from kit.signal.features import BANDS, bandpass, theta_power, zscore_per_subject
from kit.eval.metric import per_sample_auc


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

    Features: :func:`kit.signal.features.theta_power` (log |hilbert(theta)|², z-scored
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
    :func:`kit.eval.cv.inner_loso_folds`) the features are ranked by ``|t|``
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

    1. theta band-pass (4th-order Butterworth, zero phase, :func:`kit.signal.features.bandpass`);
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


# --------------------------------------------------------------------------- bandpower

@dataclass(frozen=True)
class BandPowerConfig:
    """Parameters of :class:`BandPowerLDA` (log-variance per channel and band, shrinkage LDA).

    The candidate feature sets are: the log-variance in each band of
    ``bands`` side by side (5 x n_chans features), and, if ``merge``, the
    log-variance in each contiguous union of them taken as one band
    (delta, delta-theta ... alpha-beta = 8-30 Hz ... delta-beta; n_chans
    features each), each over every window of ``windows``: 16 x 5 = 80
    candidates by default, one chosen by inner LOSO.
    """

    bands: tuple = tuple(BANDS.items())  # (name, (low, high) Hz), adjacent and ordered: kit.signal.features.BANDS
    merge: bool = True                   # also contiguous unions of the bands as single bands
    windows: tuple = ((0, 200), (0, 100), (50, 150), (100, 200), (70, 130))  # candidate [start, stop) samples
    order: int = 4                       # Butterworth order, zero phase (sosfiltfilt)
    shrinkage: float | str = "auto"      # LDA covariance shrinkage (Ledoit-Wolf), solver="lsqr"


def log_variance_features(Xb: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """Log of each trial's variance over ``window``, per band and channel.

    Parameters
    ----------
    Xb : ndarray, shape (n_bands, n_trials, n_chans, n_times)
        Band-passed signals in µV.
    window : (int, int)
        Samples ``[start, stop)``.

    Returns
    -------
    ndarray, shape (n_trials, n_bands, n_chans), float64
        ``log(var + 1e-12)`` of µV² (ddof 0).

    Raises
    ------
    KitError
        If the window is shorter than 2 samples or outside the trial.
    """
    start, stop = int(window[0]), int(window[1])
    if not 0 <= start < stop - 1 <= Xb.shape[-1] - 1:
        raise KitError(f"window: need 0 <= start < stop - 1 < n_times={Xb.shape[-1]}, got {window}")
    v = np.asarray(Xb[..., start:stop], dtype=np.float64).var(axis=-1)  # (B, n, C)
    return np.log(v + 1e-12).transpose(1, 0, 2)


def ledoit_wolf_lda(F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | float]:
    """Two-class shrinkage LDA: sklearn's ``LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")``.

    Per class: standardise the features (mean 0, sd 1), Ledoit-Wolf shrunk
    covariance (Ledoit & Wolf, J. Multivar. Anal. 2004; the formula of
    :func:`sklearn.covariance.ledoit_wolf_shrinkage`), scaled back; the
    within-class covariance is their prior-weighted sum; ``w = Σ⁻¹ μ_k``.
    Written out, and batched over feature sets, because :class:`BandPowerLDA`
    fits it thousands of times in its inner loop, where sklearn's input
    checks cost more than the algebra (a test checks it against sklearn).

    Parameters
    ----------
    F : ndarray, shape (n_trials, n_features) or (n_sets, n_trials, n_features)
        One feature matrix, or a batch of them on the same trials.
    y : ndarray, shape (n_trials,), 0/1 with both classes

    Returns
    -------
    coef : ndarray, shape (n_features,) or (n_sets, n_features)
    intercept : float or ndarray, shape (n_sets,)
        ``F @ coef + intercept`` is the log-odds of class 1 (sklearn's ``decision_function``).
    """
    F = np.asarray(F, dtype=np.float64)
    single = F.ndim == 2
    if single:
        F = F[None]
    B, n_all, p = F.shape
    cov, means, priors = np.zeros((B, p, p)), [], []
    eye = np.eye(p)
    for k in (0, 1):
        Xk = F[:, y == k]  # (B, n, p)
        n = Xk.shape[1]
        mu = Xk.mean(axis=1)
        sd = Xk.std(axis=1)
        sd[sd == 0] = 1.0
        Z = (Xk - mu[:, None]) / sd[:, None]
        emp = np.matmul(Z.transpose(0, 2, 1), Z) / n  # batched BLAS; einsum was 10x slower here
        if p > 1:
            Z2 = Z ** 2
            tr = Z2.sum(axis=1) / n  # (B, p)
            m = tr.sum(axis=1) / p
            delta_ = (emp ** 2).sum(axis=(1, 2))
            beta = ((Z2.sum(axis=2) ** 2).sum(axis=1) / n - delta_) / (p * n)
            delta = (delta_ - 2.0 * m * tr.sum(axis=1) + p * m ** 2) / p
            beta = np.minimum(beta, delta)
            with np.errstate(divide="ignore", invalid="ignore"):
                shrink = np.where(beta == 0, 0.0, beta / delta)
            emp = (1.0 - shrink)[:, None, None] * emp + (shrink * m)[:, None, None] * eye
        prior = n / n_all
        cov += prior * (sd[:, :, None] * emp * sd[:, None, :])
        means.append(mu)
        priors.append(prior)
    M = np.stack(means, axis=2)  # (B, p, 2)
    try:
        W = np.linalg.solve(cov, M)
    except np.linalg.LinAlgError:  # singular (no shrinkage, fewer trials than features): least squares
        W = np.linalg.pinv(cov) @ M
    icpt = -0.5 * np.einsum("bpk,bpk->bk", M, W) + np.log(priors)
    coef, icpt = W[:, :, 1] - W[:, :, 0], icpt[:, 1] - icpt[:, 0]
    return (coef[0], float(icpt[0])) if single else (coef, icpt)


class BandPowerLDA:
    """Band-power anchor: log-variance per channel and band, shrinkage LDA, one score per trial.

    1. band-pass every channel (zero-phase Butterworth, :func:`kit.signal.features.bandpass`)
       in each band of ``config.bands`` (the five of :data:`kit.signal.features.BANDS`)
       and in each contiguous union of them (e.g. alpha-beta, 8-30 Hz);
    2. log-variance of each band-passed channel over each candidate window
       (:meth:`trial_features`; per trial, no statistics across trials);
    3. z-score every feature per subject (over that subject's trials, no labels);
    4. choose the feature set (five bands side by side, or one merged band)
       and the window by an inner leave-one-subject-out loop over the
       training subjects given to :meth:`fit` (mean per-subject AUC of the
       inner out-of-fold LDA scores): under :func:`run_baseline` the held-out
       subject's labels never take part;
    5. shrinkage LDA (Ledoit-Wolf, as ``LinearDiscriminantAnalysis(solver="lsqr",
       shrinkage="auto")``: :func:`ledoit_wolf_lda`) on the chosen features
       of all training trials; ``lda_`` = (coef, intercept);
    6. P(emotional) per trial copied to all ``n_times`` samples.

    No band is hard-coded: on sleep data the theta band can win, on motor
    imagery the 8-30 Hz mu/beta band.  The small LDA problems run on one
    BLAS thread (``threadpoolctl``): a second thread does not help at this
    size and, on a busy 2-core machine, made sklearn's Ledoit-Wolf about 80x
    slower (measured: 194 ms vs 2.3 ms for 1,800 x 80).

    Sources: log-variance of band-passed EEG with LDA is the classic
    motor-imagery recipe (Pfurtscheller & Neuper, Proc. IEEE 2001);
    shrinkage LDA for EEG: Blankertz et al., NeuroImage 2011.

    Parameters
    ----------
    config : BandPowerConfig, optional
    sfreq : float
        Sampling rate in Hz (200).
    """

    def __init__(self, config: BandPowerConfig | None = None, *, sfreq: float = 200.0):
        self.config = config or BandPowerConfig()
        self.sfreq = float(sfreq)

    # -- the candidate feature sets
    def band_list(self) -> list[tuple[str, tuple[float, float]]]:
        """Every band filtered: the configured bands, then their contiguous unions (if ``merge``)."""
        c = self.config
        if not c.bands or not c.windows:
            raise KitError("BandPowerConfig: need at least one band and one window")
        base = [(str(n), (float(b[0]), float(b[1]))) for n, b in c.bands]
        merged = [(f"{base[i][0]}-{base[j][0]}", (base[i][1][0], base[j][1][1]))
                  for i in range(len(base)) for j in range(i + 1, len(base))] if c.merge else []
        return base + merged

    def candidates(self) -> list[tuple[str, list[int], int]]:
        """``(label, band indices into band_list(), window index)`` of every candidate feature set."""
        names = [n for n, _ in self.band_list()]
        n_sep = len(self.config.bands)
        sets = [("+".join(names[:n_sep]), list(range(n_sep)))] if n_sep > 1 else []
        if self.config.merge or n_sep == 1:
            sets += [(n, [i]) for i, n in enumerate(names)]
        return [(f"{label} @ {tuple(w)}", idx, k) for label, idx in sets for k, w in enumerate(self.config.windows)]

    def trial_features(self, X: np.ndarray) -> np.ndarray:
        """Log-variance of every band and window: shape (n_trials, n_bands_total, n_windows, n_chans).

        Per trial only (no statistics across trials or subjects), so it may be
        computed once for all trials before the LOSO folds.

        Raises
        ------
        KitError
            Bad shape, a band outside (0, Nyquist), a window outside the trial.
        """
        X = np.asarray(X)
        if X.ndim != 3:
            raise KitError(f"X: expected (n_trials, n_chans, n_times) µV, got shape {X.shape}")
        out = np.empty((X.shape[0], len(self.band_list()), len(self.config.windows), X.shape[1]))
        for b, (_, band) in enumerate(self.band_list()):
            Xb = bandpass(X, self.sfreq, band, self.config.order)[None]
            for k, w in enumerate(self.config.windows):
                out[:, b, k] = log_variance_features(Xb, w)[:, 0]
        return out

    def _zscored(self, L: np.ndarray, subject: np.ndarray) -> np.ndarray:
        return zscore_per_subject(L.reshape(len(L), -1), subject).reshape(L.shape)

    @staticmethod
    def _take(Z: np.ndarray, cand) -> np.ndarray:
        _, idx, k = cand
        return Z[:, idx, k].reshape(len(Z), -1)

    def _lda(self, F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        """``(coef, intercept)`` of the shrinkage LDA (Ledoit-Wolf: :func:`ledoit_wolf_lda`; else sklearn)."""
        if self.config.shrinkage == "auto":
            return ledoit_wolf_lda(F, y)
        lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=self.config.shrinkage).fit(F, y)
        return lda.coef_[0], float(lda.intercept_[0])

    # -- fit / predict
    def fit(self, X: np.ndarray, y: np.ndarray, subject: np.ndarray) -> "BandPowerLDA":
        """Choose the feature set on inner LOSO folds of these trials, then fit the LDA on all of them.

        Parameters
        ----------
        X : ndarray, shape (n_trials, n_chans, n_times), µV
        y : ndarray, shape (n_trials,), 1 emotional / 0 neutral
        subject : ndarray, shape (n_trials,)

        Raises
        ------
        KitError
            Bad shapes or labels, no band or window, a window outside the trial.
        """
        X, y, subject = _check_xy(X, y, subject, fit=True)
        return self.fit_features(self.trial_features(X), y, subject)

    def fit_features(self, L: np.ndarray, y: np.ndarray, subject: np.ndarray) -> "BandPowerLDA":
        """:meth:`fit` on features of :meth:`trial_features`, shape (n_trials, n_bands_total, n_windows, n_chans)."""
        L = np.asarray(L)
        _, y, subject = _check_xy(np.zeros((len(L), 1, 1)), y, subject, fit=True)
        Z = self._zscored(L, subject)
        cands = self.candidates()
        self.inner_scores_ = {}
        best = cands[0]
        if len(cands) > 1 and np.unique(subject).size > 2:
            with threadpool_limits(limits=1):
                scores = self._inner_auc(Z, cands, y, subject)
            self.inner_scores_ = {c[0]: float(v) for c, v in zip(cands, scores)}
            best = cands[int(np.argmax(scores))]  # first maximum on ties
        self.choice_ = best
        with threadpool_limits(limits=1):
            self.lda_ = self._lda(self._take(Z, best), y)
        return self

    def _inner_auc(self, Z: np.ndarray, cands: list, y: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """Mean per-subject AUC of every candidate's inner-LOSO out-of-fold LDA scores, shape (n_candidates,).

        Only the trials passed in (the outer fold's training subjects) are
        used.  Candidates with the same number of features are fitted as one
        batch (:func:`ledoit_wolf_lda`).
        """
        groups: dict[int, list[int]] = {}
        for i, c in enumerate(cands):
            groups.setdefault(len(c[1]) * Z.shape[3], []).append(i)
        stacks = {p: np.stack([self._take(Z, cands[i]) for i in idx]) for p, idx in groups.items()}
        total, count = np.zeros(len(cands)), 0
        for tr, va in inner_loso_folds(subject):
            if np.unique(y[va]).size < 2 or np.unique(y[tr]).size < 2:
                continue
            for p, idx in groups.items():
                Fb = stacks[p]
                if self.config.shrinkage == "auto":
                    coef, icpt = ledoit_wolf_lda(Fb[:, tr], y[tr])
                else:
                    coef, icpt = map(np.array, zip(*(self._lda(f[tr], y[tr]) for f in Fb)))
                score = np.matmul(Fb[:, va], coef[:, :, None])[:, :, 0].T + icpt  # (n_va, n_group)
                total[idx] += per_sample_auc(score, y[va])
            count += 1
        return total / count if count else np.full(len(cands), 0.5)

    def predict(self, X: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """P(emotional) per trial broadcast to (n_trials, n_times); features z-scored per subject of ``X``.

        Raises
        ------
        KitError
            Not fitted, bad shapes.
        """
        X, _, subject = _check_xy(X, None, subject, fit=False)
        return np.repeat(self.predict_features(self.trial_features(X), subject)[:, None], X.shape[2], axis=1)

    def predict_features(self, L: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """P(emotional) per trial, shape (n_trials,), from :meth:`trial_features` output."""
        if not hasattr(self, "lda_"):
            raise KitError("BandPowerLDA: call fit before predict")
        Z = self._zscored(np.asarray(L), np.asarray(subject))
        coef, icpt = self.lda_
        return expit(self._take(Z, self.choice_) @ coef + icpt)


# --------------------------------------------------------------------------- registry

BASELINES: dict[str, type] = {"starter": StarterLDA, "thetacov": ThetaCov, "bandpower": BandPowerLDA,
                              "eegnet": EEGNetClassifier}
"""Baseline name -> class; each is built as ``cls(config, sfreq=...)``."""

_CONFIGS = {"starter": StarterConfig, "thetacov": ThetaCovConfig, "bandpower": BandPowerConfig,
            "eegnet": EEGNetConfig}


def run_baseline(name: str, X: np.ndarray, y: np.ndarray, subject: np.ndarray,
                 X_test: np.ndarray | None = None, subject_test: np.ndarray | None = None,
                 sfreq: float = 200.0, **params) -> tuple[np.ndarray, np.ndarray | None]:
    """LOSO out-of-fold and fold-averaged test predictions of a baseline.

    Parameters
    ----------
    name : {"starter", "thetacov", "bandpower", "eegnet"}
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
        Unknown name or parameter; see :func:`kit.eval.cv.cross_val_predict_loso`.
    """
    X, X_test, fit_predict = _loso_parts(name, X, subject, X_test, sfreq, params)
    return cross_val_predict_loso(fit_predict, X, y, subject, X_test, subject_test)


def _loso_parts(name, X, subject, X_test, sfreq, params):
    """Validated config -> (inputs, test inputs, ``fit_predict`` callback of :mod:`kit.eval.cv`)."""
    if name not in BASELINES:
        raise KitError(f"baseline '{name}': unknown, choose one of {sorted(BASELINES)}")
    try:
        config = replace(_CONFIGS[name](), **params)
    except TypeError as exc:
        raise KitError(f"baseline '{name}': {exc}") from exc

    cls = BASELINES[name]
    if hasattr(cls, "trial_features"):
        # per-trial features (no statistics across trials): computed once, not once per fold
        proto = cls(config, sfreq=sfreq)
        n_times = np.shape(X)[2] if np.ndim(X) == 3 else None
        X, _, _ = _check_xy(X, None, subject, fit=False)
        X = proto.trial_features(X)
        if X_test is not None:
            X_test = proto.trial_features(X_test)

        def fit_predict(L_tr, y_tr, s_tr, eval_sets):
            model = cls(config, sfreq=sfreq).fit_features(L_tr, y_tr, s_tr)
            return [np.repeat(model.predict_features(Le, se)[:, None], n_times, axis=1) for Le, se in eval_sets]
    else:
        def fit_predict(X_tr, y_tr, s_tr, eval_sets):
            model = cls(config, sfreq=sfreq).fit(X_tr, y_tr, s_tr)
            return [model.predict(Xe, se) for Xe, se in eval_sets]
    return X, X_test, fit_predict


def baseline_predictions(name: str, X: np.ndarray, y: np.ndarray, subject: np.ndarray,
                         X_test: np.ndarray | None = None, subject_test: np.ndarray | None = None,
                         sfreq: float = 200.0, *, n_groups: int = CROSSFIT_GROUPS, **params):
    """:func:`run_baseline` and :func:`cross_fit_baseline` at once (per-trial features computed once for both).

    Returns
    -------
    oof, test_pred, inner, group
        As returned by those two functions.
    """
    X, X_test, fit_predict = _loso_parts(name, X, subject, X_test, sfreq, params)
    oof, test_pred = cross_val_predict_loso(fit_predict, X, y, subject, X_test, subject_test)
    inner, group = cross_fit_predict(fit_predict, X, y, subject, n_groups=n_groups)
    return oof, test_pred, inner, group


def cross_fit_baseline(name: str, X: np.ndarray, y: np.ndarray, subject: np.ndarray, sfreq: float = 200.0, *,
                       n_groups: int = CROSSFIT_GROUPS, **params) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted inner predictions of a baseline, for the leak-free ensemble (:func:`kit.eval.cv.crossfit_plan`).

    Parameters
    ----------
    name, X, y, subject, sfreq, **params
        As in :func:`run_baseline` (training trials only).
    n_groups : int
        Subject groups of the plan.

    Returns
    -------
    inner : ndarray, shape (n_groups, n_trials, n_times), float32
    group : ndarray of int, shape (n_trials,)

    Raises
    ------
    KitError
        Unknown name or parameter; fewer than 4 subjects.
    """
    X, _, fit_predict = _loso_parts(name, X, subject, None, sfreq, params)
    return cross_fit_predict(fit_predict, X, y, subject, n_groups=n_groups)
