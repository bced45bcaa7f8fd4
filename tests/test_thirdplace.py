"""The 3rd place's design as published (kit.deep.thirdplace): sizes, FOMAML, LOSO hygiene, at smoke size on the CPU."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from kit.deep.thirdplace import (
    SampleExperts,
    ThirdPlaceConfig,
    expert_parameters,
    fomaml_train,
    predict_samples,
    thirdplace_features,
    train_thirdplace,
)
from kit.pipeline.profiles import stage_config

SMOKE = replace(stage_config("thirdplace", "smoke"), n_layers=1)


def _data(n_sub=4, per=12, n_chans=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_sub * per, n_chans, 200)).astype(np.float32) * 10
    y = np.tile(np.r_[np.zeros(per // 2), np.ones(per // 2)], n_sub).astype(np.int64)
    return X, y, np.repeat(np.arange(n_sub) + 1, per)


def test_published_sizes():
    assert expert_parameters() == 19_489  # 96 + 3,200 + 3 x 5,392 + 17 (COMPETITION.md)
    cfg = stage_config("thirdplace", "thirdplace")
    assert (cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.n_layers, cfg.inner_steps) == (16, 4, 128, 3, 3)
    out = SampleExperts(16, 200, 5, ThirdPlaceConfig())(torch.zeros(2, 16, 200, 5))
    assert out.shape == (2, 16, 200)  # a logit per expert and sample


def test_features_are_the_five_band_powers():
    X, _, s = _data()
    f = thirdplace_features(X, s, 200.0)
    assert f.shape == (len(X), 3, 200, 5) and f.dtype == np.float32
    np.testing.assert_allclose(f[s == 1].mean(axis=(0, 2)), 0.0, atol=1e-4)  # z-scored per subject


def test_fomaml_moves_the_initialisation_and_predicts_per_sample():
    X, y, s = _data()
    x = torch.from_numpy(thirdplace_features(X, s, 200.0))
    model = fomaml_train(x, y, s, None, replace(SMOKE, outer_steps=3))
    ref = fomaml_train(x, y, s, None, replace(SMOKE, outer_steps=0))  # the same initialisation, never updated
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))
    p = predict_samples(model, x[:5])
    assert p.shape == (5, 200) and np.all((p > 0) & (p < 1)) and p.std(axis=1).max() > 0  # time-resolved


def test_loso_never_sees_the_held_out_labels(tmp_path):
    X, y, s = _data()
    is_test = np.zeros(len(y), bool)
    a = train_thirdplace(X, y, s, is_test, 200.0, SMOKE, tmp_path / "a", progress=False)
    y2 = y.copy()
    y2[s == 2] = 1 - y[s == 2]
    b = train_thirdplace(X, y2, s, is_test, 200.0, SMOKE, tmp_path / "b", progress=False)
    np.testing.assert_array_equal(a["oof"][s == 2], b["oof"][s == 2])
    assert a["oof"].shape == (len(y), 200) and len(list((tmp_path / "a").glob("fold*.pt"))) == 4
    assert (tmp_path / "a" / "mae" / "mae.pt").is_file()
