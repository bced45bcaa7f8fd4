"""The cross-channel fusion (stage 04): shapes, channel mixing the score LDA cannot do, LOSO hygiene, predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kit.deep.channel_fusion import (
    ChannelFusionConfig,
    channel_attention,
    fit_fusion_model,
    fusion_inputs,
    predict_channel_fusion_test,
    train_channel_fusion,
)
from kit.deep.cross_channel import CrossChannelFusion
from kit.deep.mae import MAEConfig, pretrain_mae
from kit.eval.cv import loso_score
from kit.methods.lda import ledoit_wolf_lda
from kit.signal.sequences import deep_features

SFREQ = 200.0
N_SUBJECTS, N_TRIALS, N_CHANS = 5, 40, 6
CFG = ChannelFusionConfig(d_model=8, d_ff=16, epochs=3, patience=2)


def _zero_lag(seed=0, coupling=0.9):
    """The class is the sign of the zero-lag correlation of channels 0 and 1 in 8-30 Hz: in phase (emotional) or
    in anti-phase (neutral); each channel's power is the same in both classes."""
    rng = np.random.default_rng(seed)
    t = np.arange(200) / SFREQ
    X, y, subject = [], [], []
    for s in range(N_SUBJECTS):
        gain = rng.uniform(0.5, 2.0, N_CHANS)[:, None]
        lab = rng.permutation(np.r_[np.zeros(N_TRIALS // 2, int), np.ones(N_TRIALS // 2, int)])
        for k in lab:
            x = rng.standard_normal((N_CHANS, 200))
            osc = np.sin(2 * np.pi * rng.uniform(10, 20) * t + rng.uniform(0, 2 * np.pi))
            x[0] += osc
            x[1] += osc * (coupling if k == 1 else -coupling)
            X.append(gain * x * 10.0)
        y += list(lab)
        subject += [s + 1] * len(lab)
    return np.asarray(X, np.float32), np.asarray(y), np.asarray(subject)


@pytest.fixture(scope="module")
def zero_lag(tmp_path_factory):
    X, y, subject = _zero_lag()
    feats = deep_features(X, subject, SFREQ)
    out = tmp_path_factory.mktemp("mae")
    mcfg = MAEConfig(n_features=feats.shape[3], pool=8, epochs=1, sequences_per_epoch=256, batch_size=128)
    pretrain_mae(feats, mcfg, out, progress=False)
    inputs = fusion_inputs(feats, X, subject, SFREQ, out / "mae.pt", CFG)
    return X, y, subject, feats, inputs, out / "mae.pt"


def test_shapes_and_the_residual_starts_at_zero(zero_lag):
    _, _, _, _, inputs, _ = zero_lag
    n = len(inputs["seq"])
    assert inputs["seq"].shape[:3] == (n, N_CHANS, 25) and inputs["cov"].shape == (n, 6, N_CHANS, N_CHANS)
    assert inputs["tangent"].shape == (n, 3, 2, N_CHANS * (N_CHANS + 1) // 2)
    net = CrossChannelFusion(N_CHANS, 25, inputs["seq"].shape[3], 6, CFG).eval()
    logit, att = net(inputs["seq"][:7], inputs["cov"][:7], return_attention=True)
    assert logit.shape == (7,) and att.shape == (7, N_CHANS + 1, N_CHANS + 1)
    np.testing.assert_allclose(att.detach().sum(-1).numpy(), 1.0, atol=1e-5)
    assert torch.count_nonzero(logit) == 0  # zero output layer: the untrained fusion is its LDA readout


def test_fusion_learns_the_zero_lag_covariance_that_channel_scores_cannot(zero_lag, tmp_path):
    X, y, subject, feats, inputs, _ = zero_lag
    out = train_channel_fusion(inputs, y, subject, np.zeros(len(y), bool), 200, CFG, tmp_path, n_groups=None,
                               progress=False)
    assert loso_score(out["oof"], y, subject)["mean_auc"] > 0.85
    # the score fusion's best case: an LDA on the 16 per-channel band powers (what per-channel experts can see)
    power = feats.mean(axis=2).reshape(len(y), -1)
    aucs = []
    for s in np.unique(subject):
        tr, te = subject != s, subject == s
        coef, icpt = ledoit_wolf_lda(power[tr], y[tr])
        aucs.append(np.repeat((power[te] @ coef + icpt)[:, None], 200, 1))
    oof = np.zeros((len(y), 200))
    for s, p in zip(np.unique(subject), aucs):
        oof[subject == s] = p
    assert loso_score(oof, y, subject)["mean_auc"] < 0.65


def test_held_out_predictions_never_see_the_held_out_labels(zero_lag, tmp_path):
    X, y, subject, _, inputs, _ = zero_lag
    a = train_channel_fusion(inputs, y, subject, np.zeros(len(y), bool), 200, CFG, tmp_path / "a", n_groups=None,
                             progress=False)
    y2 = y.copy()
    held = subject == 3
    y2[held] = np.random.default_rng(1).permutation(y[held])
    b = train_channel_fusion(inputs, y2, subject, np.zeros(len(y), bool), 200, CFG, tmp_path / "b", n_groups=None,
                             progress=False)
    np.testing.assert_array_equal(a["oof"][held], b["oof"][held])
    assert not np.array_equal(a["oof"][~held], b["oof"][~held])


def test_saved_folds_reproduce_the_stage_test_prediction(zero_lag, tmp_path):
    X, y, subject, _, inputs, _ = zero_lag
    is_test = subject == N_SUBJECTS  # the last subject plays the test set
    out = train_channel_fusion(inputs, y, subject, is_test, 200, CFG, tmp_path, n_groups=4, progress=False)
    assert out["test"].shape == (int(is_test.sum()), 200) and out["inner"].shape == (4, int((~is_test).sum()), 200)
    test_inputs = {k: (None if v is None else v[is_test]) for k, v in inputs.items()}
    np.testing.assert_array_equal(predict_channel_fusion_test(tmp_path, test_inputs, 200), out["test"])
    att = channel_attention(out["models"][0].net, inputs, np.flatnonzero(is_test)[:4])
    assert att.shape == (4, N_CHANS + 1, N_CHANS + 1)


def test_early_stopping_keeps_the_lda_when_the_network_does_not_help(zero_lag):
    _, y, subject, _, inputs, _ = zero_lag
    rows = np.arange(len(y))
    model = fit_fusion_model(inputs, rows, y, subject, ChannelFusionConfig(d_model=8, d_ff=16, epochs=2,
                                                                           min_delta=1.0), SFREQ)
    assert model.info["best_epoch"] == 0 and len(model.info["val_auc"]) >= 2
    np.testing.assert_array_equal(model.logits(inputs, rows), model.lda.decision_features(inputs["tangent"]))
