"""The Riemannian anchor and the re-centring/alignment it and the other anchors use."""

from __future__ import annotations

import numpy as np
import pytest

from kit.core.errors import KitError
from kit.eval.cv import loso_score
from kit.methods.registry import model_inputs, run_baseline
from kit.methods.riemann import RiemannConfig, RiemannTS, recentre, subject_shift, tangent_matrix
from kit.signal.covariance import oas_covariances
from kit.signal.features import euclidean_alignment

SFREQ = 200.0
N_SUBJECTS, N_TRIALS, N_CHANS = 6, 40, 6


def _covariance_effect(seed=0, effect=0.3, n_subjects=N_SUBJECTS, amp=1.0):
    """Trials whose class is in the zero-lag covariance of channels 0 and 1 (in 8-30 Hz), each subject seen through
    its own symmetric positive definite mixing (a subject shift that re-centring removes: the mean of each subject's
    covariances is about ``A_s I A_s``, whitened by ``A_s^-1``); channel powers equal in both classes."""
    rng = np.random.default_rng(seed)
    t = np.arange(200) / SFREQ
    X, y, subject = [], [], []
    for s in range(n_subjects):
        w, V = np.linalg.eigh(np.cov(rng.standard_normal((N_CHANS, 3 * N_CHANS))))
        A = (V * np.exp(1.2 * (np.log(w) - np.log(w).mean()))) @ V.T  # the subject's SPD mixing
        lab = rng.permutation(np.r_[np.zeros(N_TRIALS // 2, int), np.ones(N_TRIALS // 2, int)])
        for k in lab:
            src = rng.standard_normal((N_CHANS, 200))
            osc = np.sin(2 * np.pi * rng.uniform(10, 20) * t + rng.uniform(0, 2 * np.pi))
            src[0] += amp * osc
            src[1] += amp * osc * (effect if k == 1 else -effect)  # in phase vs anti-phase: same power
            X.append(A @ src)
        y += list(lab)
        subject += [s + 1] * len(lab)
    return np.asarray(X), np.asarray(y), np.asarray(subject)


CFG = RiemannConfig(feature_sets=(("theta",), ("alpha-beta",)), windows=((0.0, 1.0),))


def test_oas_covariances_equal_pyriemann():
    from pyriemann.geometry.covariance import covariances

    X = np.random.default_rng(1).standard_normal((20, 5, 60)) * 7.0
    np.testing.assert_allclose(oas_covariances(X), covariances(X, estimator="oas"), rtol=0, atol=1e-10)
    with pytest.raises(KitError, match="oas_covariances"):
        oas_covariances(X[0])


def test_recentring_makes_each_subject_mean_the_identity():
    from pyriemann.geometry.mean import mean_riemann

    X, _, subject = _covariance_effect()
    C = oas_covariances(X)
    R = recentre(C, subject)
    for s in np.unique(subject):
        assert np.abs(mean_riemann(C[subject == s]) - np.eye(N_CHANS)).max() > 0.1  # not the identity before
        np.testing.assert_allclose(mean_riemann(R[subject == s]), np.eye(N_CHANS), atol=1e-6)


def test_euclidean_alignment_makes_each_subject_mean_covariance_the_identity():
    X, _, subject = _covariance_effect()
    Z = euclidean_alignment(X, subject)
    assert Z.dtype == np.float64
    for s in np.unique(subject):
        Zs = Z[subject == s]
        np.testing.assert_allclose(np.einsum("nct,ndt->cd", Zs, Zs) / (Zs.shape[0] * Zs.shape[2]), np.eye(N_CHANS),
                                   atol=1e-6)


def test_features_of_a_subject_never_depend_on_other_subjects():
    X, _, subject = _covariance_effect()
    T = model_inputs("riemann", X, subject, SFREQ)
    assert T.shape == (len(X), 3, 2, N_CHANS * (N_CHANS + 1) // 2)  # delta, theta, alpha-beta x 2 windows
    one = subject == 3
    np.testing.assert_allclose(model_inputs("riemann", X[one], subject[one], SFREQ), T[one], atol=1e-10)
    # another subject's trials changed: subject 3's features unchanged
    X2 = X.copy()
    X2[subject == 1] *= 5.0
    np.testing.assert_allclose(model_inputs("riemann", X2, subject, SFREQ)[one], T[one], atol=1e-10)


def test_held_out_predictions_never_see_the_held_out_labels():
    X, y, subject = _covariance_effect()
    oof, _ = run_baseline("riemann", X, y, subject, sfreq=SFREQ, feature_sets=CFG.feature_sets, windows=CFG.windows)
    held = subject == 2
    y2 = y.copy()
    y2[held] = np.random.default_rng(5).permutation(y[held])
    oof2, _ = run_baseline("riemann", X, y2, subject, sfreq=SFREQ, feature_sets=CFG.feature_sets,
                           windows=CFG.windows)
    np.testing.assert_array_equal(oof2[held], oof[held])
    assert not np.array_equal(oof2[~held], oof[~held])  # the other folds trained on the permuted labels


def test_riemann_decodes_the_covariance_of_two_channels():
    X, y, subject = _covariance_effect(amp=0.7)
    oof, _ = run_baseline("riemann", X, y, subject, sfreq=SFREQ, feature_sets=CFG.feature_sets, windows=CFG.windows)
    assert loso_score(oof, y, subject)["mean_auc"] > 0.9
    assert np.all(oof == oof[:, :1])  # one score per trial, copied to every sample
    # the band chosen by inner LOSO is the one that holds the effect
    model = RiemannTS(CFG, sfreq=SFREQ).fit(X, y, subject)
    assert model.choice_[0] == "alpha-beta @ 0.00-1.00 s"
    assert model.inner_scores_["alpha-beta @ 0.00-1.00 s"] > model.inner_scores_["theta @ 0.00-1.00 s"] + 0.2


def test_patterns_point_at_the_informative_channel_pair():
    from kit.methods.patterns import riemann_patterns

    X, y, subject = _covariance_effect()
    out = riemann_patterns(X, y, subject, SFREQ, CFG)
    assert out["bands"] == ["alpha-beta"] and out["patterns"].shape == (1, N_CHANS, N_CHANS)
    P = np.abs(out["patterns"][0])
    np.testing.assert_allclose(P, P.T)
    assert np.unravel_index(np.argmax(np.triu(P, 1)), P.shape) == (0, 1)


def test_tangent_matrix_round_trip():
    from pyriemann.geometry.tangentspace import unupper, upper

    M = np.random.default_rng(0).standard_normal((4, 4))
    M = M + M.T
    v = upper(M)
    want = unupper(v)
    want[np.triu_indices(4, 1)] *= np.sqrt(2)  # tangent_matrix keeps the sqrt(2) weight of off-diagonal entries
    want[np.tril_indices(4, -1)] *= np.sqrt(2)
    np.testing.assert_allclose(tangent_matrix(v, 4), want)
    with pytest.raises(KitError, match="do not fit"):
        tangent_matrix(v[:-1], 4)


def test_subject_shift_is_removed_by_recentring():
    X, _, subject = _covariance_effect()
    out = subject_shift(X, subject, SFREQ)
    assert out["before"].shape == (len(X), 2) and out["distance_before"].shape == (N_SUBJECTS,)
    assert out["distance_before"].min() > 0.3
    np.testing.assert_allclose(out["distance_after"], 0.0, atol=1e-6)


def test_bad_configs_are_refused():
    with pytest.raises(KitError, match="names bands"):
        RiemannTS(RiemannConfig(feature_sets=(("gamma",),))).candidates()
    with pytest.raises(KitError, match="window"):
        RiemannTS(RiemannConfig(windows=((0.9, 1.5),))).trial_features(np.zeros((2, 3, 200)))
    with pytest.raises(KitError, match="fit before"):
        RiemannTS().predict_features(np.zeros((2, 1, 1, 6)), np.zeros(2))
    assert len(RiemannTS().candidates()) <= 12
