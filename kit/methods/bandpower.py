"""Band power: log-variance of band-passed EEG per channel with shrinkage LDA, window and band by inner LOSO.

The classic motor-imagery recipe (Pfurtscheller & Neuper, Proc. IEEE 2001; Blankertz et al., NeuroImage
2011), over the five bands of :data:`kit.signal.features.BANDS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from threadpoolctl import threadpool_limits

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.methods.lda import Anchor, check_xy, inner_candidate_auc, ledoit_wolf_lda
from kit.signal.features import BANDS, bandpass, check_trials, zscore_per_subject


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


@fill_doc
class BandPowerLDA(Anchor):
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

    %(anchor_params)s
    """

    config_class = BandPowerConfig

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
        X = check_trials(X)
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
    @fill_doc
    def fit(self, X: np.ndarray, y: np.ndarray, subject: np.ndarray) -> "BandPowerLDA":
        """Choose the feature set on inner LOSO folds of these trials, then fit the LDA on all of them.

        %(fit_params)s

        Raises
        ------
        KitError
            Bad shapes or labels, no band or window, a window outside the trial.
        """
        X, y, subject = check_xy(X, y, subject, fit=True)
        return self.fit_features(self.trial_features(X), y, subject)

    def fit_features(self, L: np.ndarray, y: np.ndarray, subject: np.ndarray) -> "BandPowerLDA":
        """:meth:`fit` on features of :meth:`trial_features`, shape (n_trials, n_bands_total, n_windows, n_chans)."""
        L = np.asarray(L)
        _, y, subject = check_xy(np.zeros((len(L), 1, 1)), y, subject, fit=True)
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
        """Mean per-subject AUC of every candidate's inner-LOSO out-of-fold LDA scores (:func:`inner_candidate_auc`)."""
        fit = None
        if self.config.shrinkage != "auto":
            def fit(Fb, yt):
                return tuple(map(np.array, zip(*(self._lda(f, yt) for f in Fb))))
        return inner_candidate_auc([self._take(Z, c) for c in cands], y, subject, fit)

    def predict(self, X: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """P(emotional) per trial broadcast to (n_trials, n_times); features z-scored per subject of ``X``.

        Raises
        ------
        KitError
            Not fitted, bad shapes.
        """
        X, _, subject = check_xy(X, None, subject, fit=False)
        return np.repeat(self.predict_features(self.trial_features(X), subject)[:, None], X.shape[2], axis=1)

    def chosen_features(self, L: np.ndarray, subject: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """What the fitted LDA sees: the chosen feature set, z-scored per subject.

        Parameters
        ----------
        L : ndarray, shape (n_trials, n_bands_total, n_windows, n_chans)
            :meth:`trial_features` output.
        subject : ndarray, shape (n_trials,)

        Returns
        -------
        F : ndarray, shape (n_trials, n_chosen_bands * n_chans)
            Band-major: the chosen bands' ``n_chans`` columns one after the other.
        bands : list of str
            The chosen bands' names, in that order.
        """
        if not hasattr(self, "lda_"):
            raise KitError("BandPowerLDA: call fit first")
        names = [n for n, _ in self.band_list()]
        return self._take(self._zscored(np.asarray(L), np.asarray(subject)), self.choice_), \
            [names[i] for i in self.choice_[1]]

    def predict_features(self, L: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """P(emotional) per trial, shape (n_trials,), from :meth:`trial_features` output."""
        if not hasattr(self, "lda_"):
            raise KitError("BandPowerLDA: call fit before predict")
        Z = self._zscored(np.asarray(L), np.asarray(subject))
        coef, icpt = self.lda_
        return expit(self._take(Z, self.choice_) @ coef + icpt)
