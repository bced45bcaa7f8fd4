"""The organisers' starter: theta Hilbert power z-scored per participant, one shrinkage LDA per time sample.

Abdellahi, Tsimpanouli & Lewis, bioRxiv 10.1101/2025.08.11.669349: about 0.52 LOSO, 0.516 public leaderboard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.methods.lda import Anchor, check_xy
from kit.signal.features import BANDS, band_power, check_trials, zscore_per_subject


@dataclass(frozen=True)
class StarterConfig:
    """Parameters of :class:`StarterLDA` (defaults reproduce the organisers' starter)."""

    band: tuple[float, float] = BANDS["theta"]  # Hz, theta 4-8 as in the paper
    order: int = 4                              # Butterworth order of the band-pass (zero phase)
    shrinkage: float | str | None = None        # None: plain LDA; float in [0, 1]; "auto": Ledoit-Wolf


@fill_doc
class StarterLDA(Anchor):
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

    %(anchor_params)s
    """

    config_class = StarterConfig

    def features(self, X: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """Theta log power z-scored per subject, (n_trials, n_chans, n_times) float64: what the LDAs see
        (:func:`kit.signal.features.theta_power`; :meth:`subject_features` of :meth:`trial_features`)."""
        return self.subject_features(self.trial_features(X), subject)

    def trial_features(self, X: np.ndarray) -> np.ndarray:
        """Theta Hilbert log power of each trial, (n_trials, n_chans, n_times) float32 (one trial at a time)."""
        c = self.config
        return band_power(check_trials(X), self.sfreq, {"band": c.band}, order=c.order)[..., 0]

    def subject_features(self, P: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """:meth:`trial_features` z-scored per subject and channel over its trials and samples, float64."""
        return zscore_per_subject(np.array(P, np.float32), np.asarray(subject)).astype(np.float64)

    @fill_doc
    def fit(self, X: np.ndarray, y: np.ndarray, subject: np.ndarray) -> "StarterLDA":
        """Fit one LDA per sample.

        %(fit_params)s

        Raises
        ------
        KitError
            Bad shapes, labels not 0/1 or one class only.
        """
        X, y, subject = check_xy(X, y, subject, fit=True)
        return self.fit_features(self.features(X, subject), y, subject)

    def fit_features(self, F: np.ndarray, y: np.ndarray, subject: np.ndarray) -> "StarterLDA":
        """:meth:`fit` on :meth:`features` ``F (n_trials, n_chans, n_times)`` (computed once for every fold)."""
        F = np.asarray(F, np.float64)
        _, y, subject = check_xy(np.zeros((len(F), 1, 1)), y, subject, fit=True)
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
        X, _, subject = check_xy(X, None, subject, fit=False)
        if X.shape[2] != self.n_times_:
            raise KitError(f"X: {X.shape[2]} samples per trial, the model was fit on {self.n_times_}")
        return self._decision(self.features(X, subject))

    def _decision(self, F: np.ndarray) -> np.ndarray:
        return np.einsum("nct,tc->nt", F, self.coef_) + self.intercept_

    def predict_features(self, F: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """P(emotional) ``(n_trials, n_times)`` from :meth:`features` ``F`` (``subject`` unused: ``F`` is z-scored)."""
        if not hasattr(self, "coef_"):
            raise KitError("StarterLDA: call fit before predict")
        if F.shape[2] != self.n_times_:
            raise KitError(f"features: {F.shape[2]} samples per trial, the model was fit on {self.n_times_}")
        return expit(self._decision(np.asarray(F, np.float64)))

    def predict(self, X: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """P(emotional), shape (n_trials, n_times); features z-scored per subject of ``X`` itself.

        Raises
        ------
        KitError
            Not fitted, bad shapes, another ``n_times``.
        """
        return expit(self.decision_function(X, subject))
