"""The anchors as scikit-learn classifiers: cross_validate with LeaveOneGroupOut gives the kit's own LOSO AUCs."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import LeaveOneGroupOut, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from kit.core.errors import KitError
from kit.methods.estimators import AnchorClassifier
from kit.methods.registry import run_baseline

SFREQ = 200.0


@pytest.fixture(scope="module")
def theta_burst():
    rng = np.random.default_rng(0)
    t = np.arange(200) / SFREQ
    X, y, s = [], [], []
    for subject in range(4):
        for k in range(40):
            label = k % 2
            x = rng.standard_normal((4, 200)) * 5
            burst = np.exp(-0.5 * ((t - 0.5) / 0.08) ** 2) * np.sin(2 * np.pi * 6 * t + rng.uniform(0, 6.3))
            x[:2] += (4.0 if label else 1.5) * burst
            X.append(x)
            y.append(label)
            s.append(subject + 1)
    return np.asarray(X), np.asarray(y), np.asarray(s)


@pytest.mark.parametrize("method", ["thetacov", "riemann"])
def test_cross_validate_equals_the_kit_loso(theta_burst, method):
    X, y, s = theta_burst
    params = {"feature_sets": (("theta",),), "windows": ((0.0, 1.0),)} if method == "riemann" else {}
    with sklearn.config_context(enable_metadata_routing=True):
        clf = AnchorClassifier(method, SFREQ, params).set_fit_request(groups=True)
        res = cross_validate(clf, X, y, cv=LeaveOneGroupOut(), params={"groups": s}, scoring="roc_auc")
    oof, _ = run_baseline(method, X, y, s, sfreq=SFREQ, **params)
    want = [roc_auc_score(y[s == k], oof[s == k, 0]) for k in np.unique(s)]
    np.testing.assert_allclose(res["test_score"], want, atol=1e-12)
    assert np.mean(want) > 0.8


def test_pipeline_clone_and_errors(theta_burst):
    X, y, s = theta_burst
    pipe = make_pipeline(FunctionTransformer(lambda a: a * 2.0), AnchorClassifier("thetacov", SFREQ))
    proba = clone(pipe).fit(X, y).predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1.0)
    clf = AnchorClassifier("thetacov", SFREQ).fit(X, y, s)
    assert set(clf.predict(X, s)) <= {0, 1} and clf.decision_function(X, s).shape == (len(X),)
    with pytest.raises(KitError, match="unknown method"):
        AnchorClassifier("csp").fit(X, y)
