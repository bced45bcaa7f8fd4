"""The 2nd-place solution (public LB 0.557): theta channel covariance, stability-selected, shrinkage LDA.

Theta band-pass, per-subject z-score, channel covariance over samples 70-130, upper triangle z-scored
per subject, top 75 by cross-fold stability, shrinkage LDA (lsqr, auto), one score per trial.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.methods.lda import Anchor, check_xy, stability_select
from kit.signal.features import BANDS, bandpass, euclidean_alignment, zscore_per_subject


@dataclass(frozen=True)
class ThetaCovConfig:
    """Parameters of :class:`ThetaCov` (defaults: the 2nd-place public solution)."""

    band: tuple[float, float] = BANDS["theta"]  # Hz, theta band-pass
    order: int = 4                              # Butterworth order, zero phase (sosfiltfilt)
    window: tuple[int, int] = (70, 130)         # samples [start, stop): 350-645 ms after the cue at 200 Hz
    n_features: int = 75                        # kept of the n_chans*(n_chans+1)/2 = 136 covariance entries
    shrinkage: float | str = "auto"             # LDA covariance shrinkage (Ledoit-Wolf), solver="lsqr"
    align: bool = False                         # Euclidean alignment of each subject's raw trials first (He & Wu 2020)


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


@fill_doc
class ThetaCov(Anchor):
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

    %(anchor_params)s
    """

    config_class = ThetaCovConfig

    def features(self, X: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """Steps 1-4: per-subject z-scored covariance features, shape (n_trials, 136)."""
        c = self.config
        if c.align:
            X = euclidean_alignment(X, subject)
        Xf = zscore_per_subject(bandpass(X, self.sfreq, c.band, c.order), subject)
        return zscore_per_subject(covariance_features(Xf, c.window), subject)

    @fill_doc
    def fit(self, X: np.ndarray, y: np.ndarray, subject: np.ndarray) -> "ThetaCov":
        """Fit on training trials only.

        %(fit_params)s

        Raises
        ------
        KitError
            Bad shapes or labels, or a window outside the trial.
        """
        X, y, subject = check_xy(X, y, subject, fit=True)
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
        X, _, subject = check_xy(X, None, subject, fit=False)
        p = self.lda_.predict_proba(self.features(X, subject)[:, self.selected_])[:, 1]
        return np.repeat(p[:, None], X.shape[2], axis=1)
