"""The one table of methods (every anchor, stage and lever, with what it is), and the anchors' LOSO runs.

Every anchor takes EEG arrays (n_trials, n_chans, n_times) in µV and returns
P(emotional) per trial and sample, shape (n_trials, n_times), so its
out-of-fold predictions are scored by :func:`kit.eval.cv.loso_score` exactly like
the deep models.  Per-subject normalisation at prediction time uses the
prediction data's own (unlabelled) statistics, subject by subject.

Sources: :mod:`kit.methods.starter` (organisers), :mod:`kit.methods.thetacov` (2nd place),
:mod:`kit.methods.bandpower` (log-variance LDA), :mod:`kit.methods.eegnet` (EEGNet-8,2,
Lawhern et al., J. Neural Eng. 2018), :mod:`kit.methods.riemann` (re-centred tangent space, Zanini et al.,
IEEE TBME 2018).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from kit.core.errors import KitError
from kit.eval.crossfit import CROSSFIT_GROUPS, cross_fit_predict
from kit.eval.cv import cross_val_predict_loso
from kit.methods.bandpower import BandPowerConfig, BandPowerLDA
from kit.methods.eegnet import EEGNetClassifier, EEGNetConfig
from kit.methods.lda import check_xy
from kit.methods.riemann import RiemannConfig, RiemannTS
from kit.methods.starter import StarterConfig, StarterLDA
from kit.methods.thetacov import ThetaCov, ThetaCovConfig


@dataclass(frozen=True)
class Method:
    """One row of :data:`METHODS`.

    Attributes
    ----------
    name : str
        What the command line, the artifacts folder and the tables call it.
    kind : {"anchor", "stage", "lever"}
        An anchor (:data:`ANCHOR_CLASSES`), a stage of the notebook series, or a
        benchmark variant of a stage (not in the notebooks).
    summary : str
        One line for tables and ``--help``.
    in_ensemble : bool
        Blended by notebook 05 by default (:data:`ENSEMBLE_COMPONENTS`).
    options : dict
        For a lever: the fields of its stage's config it changes (:class:`kit.deep.experts.ExpertsConfig`,
        or the anchor ``base``'s config).
    base : str
        For an anchor lever: the anchor it changes ("" for every other method).
    """

    name: str
    kind: str
    summary: str
    in_ensemble: bool = False
    options: dict = field(default_factory=dict)
    base: str = ""


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("starter", "anchor", "organisers' starter: theta power, one LDA per sample", True),
    Method("thetacov", "anchor", "2nd place: theta channel covariance, shrinkage LDA", True),
    Method("bandpower", "anchor", "log-variance in 5 bands, window and band by inner LOSO, shrinkage LDA", True),
    Method("eegnet", "anchor", "EEGNet-8,2 (Lawhern et al. 2018)", True),
    Method("riemann", "anchor", "filter-bank covariances re-centred per subject, tangent space, shrinkage LDA", True),
    Method("riemann_flat", "lever", "riemann without the per-subject re-centring", options={"recentre": False},
           base="riemann"),
    Method("thetacov_ea", "lever", "thetacov after Euclidean alignment per subject (He & Wu 2020)",
           options={"align": True}, base="thetacov"),
    Method("eegnet_ea", "lever", "eegnet after Euclidean alignment per subject (He & Wu 2020)",
           options={"align": True}, base="eegnet"),
    Method("experts", "stage", "16 channel experts, attention pooling on the frozen MAE encoder", True),
    Method("experts_mldg", "lever", "experts with first-order MLDG meta-learning", options={"meta": "mldg"}),
    Method("experts_fomaml", "lever", "experts with first-order MAML", options={"meta": "fomaml"}),
    Method("experts_seeds3", "lever", "experts, 3 seeds averaged in logit space", options={"n_seeds": 3}),
    Method("experts_tent", "lever", "experts after entropy minimisation on the held-out subject's trials"),
    Method("fusion", "stage", "cross-channel Transformer over channel tokens (MAE encoder + re-centred covariance)",
           True),
    Method("fusion_tokens", "lever", "fusion without the covariance (phase) input: the MAE tokens alone"),
    Method("fusion_cov", "lever", "fusion without the MAE tokens: the covariance input alone"),
    Method("fusion_lda", "lever", "the reference fusion: shrinkage LDA on the experts' trial logits"),
    Method("thirdplace", "lever", "the 3rd place as published: 5 band powers x 200 samples, MAE, FOMAML experts"),
    Method("ensemble", "stage", "the components blended by a rule, chosen by nested LOSO"),
)}
"""Every method the kit scores, anchors first, then in pipeline order."""

ANCHORS = tuple(n for n, m in METHODS.items() if m.kind == "anchor")
"""The reference methods: starter, thetacov, bandpower, eegnet."""
ENSEMBLE_COMPONENTS = tuple(n for n, m in METHODS.items() if m.in_ensemble)
"""What notebook 05 blends by default (every anchor and the deep stages)."""
PIPELINE_METHODS = tuple(n for n, m in METHODS.items() if m.kind != "lever")
"""What the notebook series computes, and ``python -m kit cv --method`` accepts."""
EXPERT_LEVERS = {n: m.options for n, m in METHODS.items() if m.options and not m.base}
"""Expert stages that change fields of the profile's experts config (LOSO folds only)."""
ANCHOR_LEVERS = {n: (m.base, m.options) for n, m in METHODS.items() if m.base}
"""Anchor variants: name -> (anchor, config fields changed); run like their anchor, in their own stage folder."""

ANCHOR_CLASSES: dict[str, type] = {"starter": StarterLDA, "thetacov": ThetaCov, "bandpower": BandPowerLDA,
                              "eegnet": EEGNetClassifier, "riemann": RiemannTS}
"""Anchor name -> class; each is built as ``cls(config, sfreq=...)``."""

ANCHOR_CONFIGS = {"starter": StarterConfig, "thetacov": ThetaCovConfig, "bandpower": BandPowerConfig,
            "eegnet": EEGNetConfig, "riemann": RiemannConfig}


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
    X, X_test, fit_predict = _loso_parts(name, X, subject, X_test, sfreq, params, subject_test=subject_test)
    return cross_val_predict_loso(fit_predict, X, y, subject, X_test, subject_test)


def anchor_config(name: str, params: dict):
    """The anchor's config dataclass with ``params`` applied; KitError for an unknown anchor or field."""
    if name not in ANCHOR_CLASSES:
        raise KitError(f"baseline '{name}': unknown, choose one of {sorted(ANCHOR_CLASSES)}")
    try:
        return replace(ANCHOR_CONFIGS[name](), **params)
    except TypeError as exc:
        raise KitError(f"baseline '{name}': {exc}") from exc


def _predict_one(model, inputs, subject, n_times):
    """One fitted anchor on ``inputs`` (trial features or EEG): P(emotional), (n_trials, n_times)."""
    if hasattr(model, "trial_features"):
        p = model.predict_features(inputs, subject)  # (n_trials,), or (n_trials, n_times) for the starter
        return p if p.ndim == 2 else np.repeat(p[:, None], n_times, axis=1)
    return model.predict(inputs, subject)


def model_inputs(name: str, X: np.ndarray, subject: np.ndarray, sfreq: float = 200.0, **params) -> np.ndarray:
    """What an anchor's models take: its per-trial (and per-subject) features, or the EEG itself.

    ``trial_features`` use one trial at a time, ``subject_features`` one subject's own unlabelled trials
    at a time (Riemannian re-centring): neither mixes subjects, so both are computed once for all trials
    instead of once per fold, with the same numbers.

    Parameters
    ----------
    name : str
        An anchor of :data:`ANCHOR_CLASSES`.
    X : ndarray, shape (n_trials, n_chans, n_times), µV
    subject : ndarray, shape (n_trials,)

    Returns
    -------
    ndarray
        ``X`` itself, or the anchor's features (first axis: trials).

    Raises
    ------
    KitError
        Unknown anchor or parameter, bad shapes.
    """
    config = anchor_config(name, params)
    cls = ANCHOR_CLASSES[name]
    if not hasattr(cls, "trial_features"):
        return X
    proto = cls(config, sfreq=sfreq)
    X, _, subject = check_xy(X, None, subject, fit=False)
    F = proto.trial_features(X)
    return proto.subject_features(F, subject) if hasattr(proto, "subject_features") else F


def _loso_parts(name, X, subject, X_test, sfreq, params, keep: list | None = None, subject_test=None, inputs=None):
    """Validated config -> (inputs, test inputs, ``fit_predict`` callback of :mod:`kit.eval.cv`).

    With ``keep``, every fitted model is appended to it (in fit order); with ``inputs``, the
    :func:`model_inputs` of ``X`` and ``X_test`` computed by the caller (e.g. read from a cache).
    """
    config = anchor_config(name, params)
    cls = ANCHOR_CLASSES[name]
    n_times = np.shape(X)[2] if np.ndim(X) == 3 else None
    if inputs is not None and hasattr(cls, "trial_features"):
        X, X_test = inputs
    elif hasattr(cls, "trial_features"):
        X = model_inputs(name, X, subject, sfreq, **params)
        if X_test is not None:
            X_test = model_inputs(name, X_test, subject_test, sfreq, **params)

    def fit_predict(X_tr, y_tr, s_tr, eval_sets):
        model = cls(config, sfreq=sfreq)
        model = model.fit_features(X_tr, y_tr, s_tr) if hasattr(cls, "trial_features") else model.fit(X_tr, y_tr, s_tr)
        if keep is not None:
            keep.append(model)
        return [_predict_one(model, Xe, se, n_times) for Xe, se in eval_sets]
    return X, X_test, fit_predict


def predict_baseline(name: str, models: list, X_test: np.ndarray, subject_test: np.ndarray, sfreq: float = 200.0,
                     **params) -> np.ndarray:
    """The test prediction of a finished anchor stage from its saved LOSO fold models, without refitting.

    The same numbers as the ``test_pred`` of :func:`run_baseline` on these trials: each fold model's
    prediction, summed in float64 in fold order and divided by the number of folds
    (:func:`kit.eval.cv.cross_val_predict_loso`).

    Parameters
    ----------
    name : str
        The anchor.
    models : list
        Its fitted fold models, in fold order (``keep_models`` of :func:`baseline_predictions`).
    X_test : ndarray, shape (n_test, n_chans, n_times), µV
    subject_test : ndarray, shape (n_test,)
    sfreq, **params
        As the stage was run with.

    Returns
    -------
    ndarray, shape (n_test, n_times), float64

    Raises
    ------
    KitError
        No model, unknown name or parameter.
    """
    if not models:
        raise KitError(f"baseline '{name}': no fitted fold model to predict with")
    n_times = np.shape(X_test)[2]
    inputs = model_inputs(name, X_test, subject_test, sfreq, **params)
    total = None
    for model in models:
        p = np.asarray(_predict_one(model, inputs, np.asarray(subject_test), n_times), dtype=np.float64)
        total = p if total is None else total + p
    return total / len(models)


def baseline_predictions(name: str, X: np.ndarray, y: np.ndarray, subject: np.ndarray,
                         X_test: np.ndarray | None = None, subject_test: np.ndarray | None = None,
                         sfreq: float = 200.0, *, n_groups: int = CROSSFIT_GROUPS, keep_models: list | None = None,
                         inputs: tuple | None = None, **params):
    """:func:`run_baseline` and :func:`cross_fit_baseline` at once (per-trial features computed once for both).

    ``keep_models``, when given, receives the fitted LOSO fold models in fold order (for
    :func:`predict_baseline`); ``inputs``, when given, is ``(model_inputs of X, model_inputs of X_test)``
    (:func:`model_inputs`, computed by the caller; ignored by an anchor that reads the EEG itself).

    Returns
    -------
    oof, test_pred, inner, group
        As returned by those two functions.
    """
    fitted: list = []
    X, X_test, fit_predict = _loso_parts(name, X, subject, X_test, sfreq, params, keep=fitted,
                                         subject_test=subject_test, inputs=inputs)
    oof, test_pred = cross_val_predict_loso(fit_predict, X, y, subject, X_test, subject_test)
    if keep_models is not None:
        keep_models.extend(fitted)  # the LOSO fold models, in fold order (not the cross-fit ones below)
    fitted.clear()
    inner, group = cross_fit_predict(fit_predict, X, y, subject, n_groups=n_groups)
    fitted.clear()
    return oof, test_pred, inner, group


def cross_fit_baseline(name: str, X: np.ndarray, y: np.ndarray, subject: np.ndarray, sfreq: float = 200.0, *,
                       n_groups: int = CROSSFIT_GROUPS, **params) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted inner predictions of a baseline, for the leak-free ensemble (:func:`kit.eval.crossfit.crossfit_plan`).

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
