"""The anchors as scikit-learn classifiers: ``fit(X, y, groups)``, ``predict_proba(X)``, in ``Pipeline`` and ``cross_validate``.

The kit's anchors (:data:`kit.methods.registry.ANCHOR_CLASSES`) normalise every subject on its own trials (the
organisers' per-participant z-score; the Riemannian re-centring), so they need each trial's subject: at ``fit``
through ``groups`` (scikit-learn's metadata routing: ``set_fit_request(groups=True)`` and
``params={"groups": subject}``), at ``predict_proba`` through ``groups`` as well, or, without it, all the
trials given are taken as one subject: exactly right under :class:`sklearn.model_selection.LeaveOneGroupOut`,
whose test fold is one subject.  The estimators give one probability per trial (the metric's per-sample
courses stay with :func:`kit.methods.registry.run_baseline`).

Example::

    import sklearn
    from sklearn.model_selection import LeaveOneGroupOut, cross_validate
    from kit.methods.estimators import AnchorClassifier

    sklearn.set_config(enable_metadata_routing=True)
    clf = AnchorClassifier("riemann").set_fit_request(groups=True)
    cross_validate(clf, X, y, cv=LeaveOneGroupOut(), params={"groups": subject},
                   scoring="roc_auc")["test_score"]   # one AUC per held-out subject
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from kit.core.errors import KitError
from kit.methods.registry import ANCHOR_CLASSES, anchor_config, model_inputs, predict_baseline

__all__ = ["AnchorClassifier"]


class AnchorClassifier(ClassifierMixin, BaseEstimator):
    """One kit anchor as a scikit-learn classifier of trials.

    Parameters
    ----------
    method : str
        An anchor of :data:`kit.methods.registry.ANCHOR_CLASSES` (starter, thetacov, bandpower, eegnet, riemann).
    sfreq : float
        Sampling rate in Hz.
    params : dict, optional
        Fields of the anchor's config to change (e.g. ``{"recentre": False}`` for riemann).

    Attributes
    ----------
    model_ : object
        The fitted anchor.
    classes_ : ndarray
        ``[0, 1]`` (neutral, emotional).

    Notes
    -----
    ``X`` is ``(n_trials, n_chans, n_times)`` in µV; ``y`` 0/1; ``groups`` the subject of each trial.
    """

    def __init__(self, method: str = "riemann", sfreq: float = 200.0, params: dict | None = None):
        self.method = method
        self.sfreq = sfreq
        self.params = params

    def _groups(self, X, groups):
        return np.zeros(len(X), np.int64) if groups is None else np.asarray(groups)

    def fit(self, X, y, groups=None) -> "AnchorClassifier":
        """Fit the anchor on trials ``X`` with labels ``y`` (0/1) and subjects ``groups`` (None: one subject).

        Raises
        ------
        KitError
            Unknown method or parameter, bad shapes or labels.
        """
        if self.method not in ANCHOR_CLASSES:
            raise KitError(f"AnchorClassifier: unknown method {self.method!r}; choose from {sorted(ANCHOR_CLASSES)}")
        params = dict(self.params or {})
        groups = self._groups(X, groups)
        inputs = model_inputs(self.method, np.asarray(X), groups, self.sfreq, **params)
        model = ANCHOR_CLASSES[self.method](anchor_config(self.method, params), sfreq=self.sfreq)
        self.model_ = (model.fit_features(inputs, y, groups) if hasattr(model, "trial_features")
                       else model.fit(inputs, y, groups))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X, groups=None) -> np.ndarray:
        """``(n_trials, 2)``: P(neutral), P(emotional) per trial; each subject normalised on its own trials."""
        check_is_fitted(self, "model_")
        X = np.asarray(X)
        p = predict_baseline(self.method, [self.model_], X, self._groups(X, groups), self.sfreq,
                             **dict(self.params or {}))[:, 0]
        return np.column_stack([1.0 - p, p])

    def decision_function(self, X, groups=None) -> np.ndarray:
        """Log-odds of emotional per trial, ``(n_trials,)``."""
        p = np.clip(self.predict_proba(X, groups)[:, 1], 1e-12, 1 - 1e-12)
        return np.log(p) - np.log1p(-p)

    def predict(self, X, groups=None) -> np.ndarray:
        """0/1 per trial (emotional when P > 0.5)."""
        return (self.predict_proba(X, groups)[:, 1] > 0.5).astype(np.int64)
