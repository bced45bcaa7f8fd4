"""What the linear anchors look at: their activation patterns (Haufe et al. 2014) and the bands they need.

Each function fits an anchor once on all the training trials given (not under LOSO: the figure shows the
model that would be submitted, fitted on every training subject) and turns its weights into patterns
(:func:`kit.methods.lda.haufe_pattern`), or measures, under LOSO, how much each band's features are worth by
permuting them (Breiman, Machine Learning 2001; on held-out subjects, so the importance is for new subjects).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from kit.core.errors import KitError
from kit.eval.cv import loso_folds
from kit.methods.bandpower import BandPowerConfig, BandPowerLDA
from kit.methods.lda import check_xy, haufe_pattern
from kit.methods.riemann import RiemannConfig, RiemannTS, tangent_matrix
from kit.methods.starter import StarterLDA
from kit.methods.thetacov import ThetaCov, ThetaCovConfig
from kit.signal.features import BANDS


def starter_patterns(X: np.ndarray, y: np.ndarray, subject: np.ndarray, sfreq: float = 200.0) -> dict[str, np.ndarray]:
    """Weights and patterns of the organisers' starter (one theta LDA per sample) fitted on all trials.

    Parameters
    ----------
    X : ndarray, shape (n_trials, n_chans, n_times)
        Training EEG in µV.
    y, subject : ndarray, shape (n_trials,)
        1 emotional / 0 neutral; subject ids.
    sfreq : float
        Hz.

    Returns
    -------
    dict
        ``weights`` and ``patterns``, each (n_times, n_chans): sample t's LDA weights on the 16 channels'
        z-scored theta power, and their Haufe patterns (z per unit of LDA output; positive: more theta
        power where the LDA says emotional).

    Raises
    ------
    KitError
        As :meth:`StarterLDA.fit`.
    """
    X, y, subject = check_xy(X, y, subject, fit=True)
    model = StarterLDA(sfreq=sfreq).fit(X, y, subject)
    F = model.features(X, subject)  # (n_trials, n_chans, n_times)
    patterns = np.stack([haufe_pattern(F[:, :, t], model.coef_[t]) for t in range(F.shape[2])])
    return {"weights": model.coef_.copy(), "patterns": patterns}


def thetacov_patterns(X: np.ndarray, y: np.ndarray, subject: np.ndarray, sfreq: float = 200.0,
                      config: ThetaCovConfig | None = None) -> dict[str, np.ndarray]:
    """Weights and patterns of the 2nd-place theta-covariance anchor fitted on all trials, as channel x channel maps.

    Parameters
    ----------
    X, y, subject, sfreq
        As in :func:`starter_patterns`.
    config : ThetaCovConfig, optional
        Default the anchor's (theta 4-8 Hz, window 70-130, 75 of the 136 covariance entries kept).

    Returns
    -------
    dict
        ``weights`` and ``patterns``, each (n_chans, n_chans), symmetric: entry (i, j) for the covariance of
        channels i and j (the diagonal: theta variance); entries the stability selection dropped are 0;
        ``selected`` (n_chans, n_chans) bool.
    """
    X, y, subject = check_xy(X, y, subject, fit=True)
    model = ThetaCov(config, sfreq=sfreq).fit(X, y, subject)
    F = model.features(X, subject)[:, model.selected_]  # (n_trials, n_selected)
    w = np.asarray(model.lda_.coef_[0], np.float64)
    a = haufe_pattern(F, w)
    n_chans = X.shape[1]
    iu = np.triu_indices(n_chans)  # the order of kit.methods.thetacov.covariance_features
    out = {}
    for key, values in (("weights", w), ("patterns", a), ("selected", np.ones_like(w))):
        full = np.zeros(len(iu[0]))
        full[model.selected_] = values
        M = np.zeros((n_chans, n_chans))
        M[iu] = full
        out[key] = M + np.triu(M, 1).T
    out["selected"] = out["selected"] > 0
    return out


def bandpower_patterns(X: np.ndarray, y: np.ndarray, subject: np.ndarray, sfreq: float = 200.0,
                       config: BandPowerConfig | None = None, *, features: np.ndarray | None = None) -> dict:
    """Weights and patterns of the band-power anchor (its band and window chosen by inner LOSO) on all trials.

    Parameters
    ----------
    X, y, subject, sfreq
        As in :func:`starter_patterns`.
    config : BandPowerConfig, optional
        Default the anchor's.
    features : ndarray, optional
        The anchor's features of these trials (:func:`kit.methods.registry.model_inputs`, e.g. read from
        :meth:`kit.pipeline.run.Run.anchor_inputs`); computed from ``X`` when not given.

    Returns
    -------
    dict
        ``choice`` (the feature set chosen, e.g. ``"alpha-beta @ (0, 200)"``), ``bands`` (its band names),
        ``weights`` and ``patterns`` of shape (n_bands_chosen, n_chans) (patterns: z log-variance per unit
        of LDA output).
    """
    X, y, subject = check_xy(X, y, subject, fit=True)
    model = BandPowerLDA(config, sfreq=sfreq)
    L = model.trial_features(X) if features is None else np.asarray(features)
    model.fit_features(L, y, subject)
    F, bands = model.chosen_features(L, subject)  # (n_trials, n_bands_chosen * n_chans)
    coef = np.asarray(model.lda_[0], np.float64)
    n_chans = X.shape[1]
    return {"choice": model.choice_[0], "bands": bands, "weights": coef.reshape(len(bands), n_chans),
            "patterns": haufe_pattern(F, coef).reshape(len(bands), n_chans)}


def riemann_patterns(X: np.ndarray, y: np.ndarray, subject: np.ndarray, sfreq: float = 200.0,
                     config: RiemannConfig | None = None, *, features: np.ndarray | None = None) -> dict:
    """Weights and patterns of the Riemannian anchor (its bands and window chosen by inner LOSO), per band.

    Parameters
    ----------
    X, y, subject, sfreq
        As in :func:`starter_patterns`.
    config : RiemannConfig, optional
        Default the anchor's.
    features : ndarray, optional
        The anchor's features of these trials (:func:`kit.methods.registry.model_inputs`, e.g. read from
        :meth:`kit.pipeline.run.Run.anchor_inputs`); computed from ``X`` when not given.

    Returns
    -------
    dict
        ``choice`` (e.g. ``"alpha-beta @ 0.00-1.00 s"``), ``bands`` (the chosen bands' names), ``weights``
        and ``patterns`` of shape (n_bands_chosen, n_chans, n_chans): the LDA's weight on, and the Haufe
        pattern of, each tangent coordinate (channel pair) of the re-centred covariance, z per unit of LDA
        output.
    """
    X, y, subject = check_xy(X, y, subject, fit=True)
    model = RiemannTS(config, sfreq=sfreq)
    T = model.features(X, subject) if features is None else np.asarray(features)
    model.fit_features(T, y, subject)
    F = model.take(T, model.choice_)  # (n_trials, n_bands_chosen * n_tangent)
    names = [n for n, _ in model.used_bands()]
    bands = [names[i] for i in model.choice_[1]]
    n_chans = X.shape[1]
    w = np.asarray(model.coef_, np.float64)
    return {"choice": model.choice_[0], "bands": bands,
            "weights": tangent_matrix(w.reshape(len(bands), -1), n_chans),
            "patterns": tangent_matrix(haufe_pattern(F, w).reshape(len(bands), -1), n_chans)}


def band_permutation_importance(X: np.ndarray, y: np.ndarray, subject: np.ndarray, sfreq: float = 200.0, *,
                                bands=tuple(BANDS.items()), window: tuple[int, int] | None = None,
                                n_repeats: int = 10, seed: int = 0) -> dict:
    """How much each band is worth to a band-power LDA on new subjects: permutation importance under LOSO.

    The model is the band-power anchor restricted to one feature set (every band side by side, log-variance
    per channel over ``window``, z-scored per subject, Ledoit-Wolf shrinkage LDA).  For each held-out subject
    it is fitted on the others; its trial AUC on the held-out subject is measured as is and with one band's
    ``n_chans`` features shuffled across that subject's trials (``n_repeats`` times): the drop is the band's
    importance.

    Parameters
    ----------
    X, y, subject, sfreq
        As in :func:`starter_patterns`.
    bands : sequence of (name, (low, high))
        Default the five bands.
    window : (int, int), optional
        Samples [start, stop); default the whole trial.
    n_repeats : int
        Shuffles per band and subject.
    seed : int

    Returns
    -------
    dict
        ``auc`` (mean over subjects of the held-out trial AUC), ``bands`` (names), ``importance`` and
        ``sem`` (n_bands,): mean drop in AUC and its SEM over subjects, ``per_subject`` (n_subjects, n_bands).

    Raises
    ------
    KitError
        Fewer than 3 subjects, ``n_repeats < 1``; as :meth:`BandPowerLDA.fit`.
    """
    X, y, subject = check_xy(X, y, subject, fit=True)
    if n_repeats < 1:
        raise KitError(f"band_permutation_importance: n_repeats must be >= 1, got {n_repeats}")
    if np.unique(subject).size < 3:
        raise KitError("band_permutation_importance: needs at least 3 subjects")
    window = (0, X.shape[2]) if window is None else tuple(window)
    cfg = BandPowerConfig(bands=tuple(bands), merge=False, windows=(window,))
    model = BandPowerLDA(cfg, sfreq=sfreq)
    L = model.trial_features(X)  # (n_trials, n_bands, 1, n_chans)
    rng = np.random.default_rng(seed)
    base, drops = [], []
    for tr, va in loso_folds(subject):
        if np.unique(y[va]).size < 2:
            continue
        m = BandPowerLDA(cfg, sfreq=sfreq).fit_features(L[tr], y[tr], subject[tr])
        auc = roc_auc_score(y[va], m.predict_features(L[va], subject[va]))
        row = []
        for b in range(L.shape[1]):
            aucs = []
            for _ in range(n_repeats):
                Lp = L[va].copy()
                Lp[:, b] = Lp[rng.permutation(len(va)), b]
                aucs.append(roc_auc_score(y[va], m.predict_features(Lp, subject[va])))
            row.append(auc - float(np.mean(aucs)))
        base.append(auc)
        drops.append(row)
    D = np.asarray(drops)  # (n_subjects, n_bands)
    return {"auc": float(np.mean(base)), "bands": [str(n) for n, _ in bands], "importance": D.mean(axis=0),
            "sem": D.std(axis=0, ddof=1) / np.sqrt(len(D)), "per_subject": D}
