"""MAE pretraining: learns structure, stops on NaN, resumes, reloads from the file alone."""

import numpy as np
import pytest
import torch

from kit.core.errors import CheckpointError, KitError
from kit.deep.mae import MAEConfig, load_mae, nearest_visible_error, nearest_visible_fill, pretrain_mae, reconstruction_error

SMALL = dict(n_times=40, n_features=5, pool=2, d_model=8, n_heads=2, d_ff=16, n_layers=1, batch_size=64, lr=3e-3)


def _smooth_features(n=64, seed=0):
    # a level per sequence and band that holds over time: a masked sample is predictable from
    # the visible ones (the mean of its sequence), not from its own position
    rng = np.random.default_rng(seed)
    level = rng.standard_normal((n, 2, 1, 5))
    return (level + 0.1 * rng.standard_normal((n, 2, 40, 5))).astype(np.float32)


def test_pretraining_beats_predicting_zero(tmp_path):
    F = _smooth_features(128)
    cfg = MAEConfig(**{**SMALL, "lr": 1e-2, "dropout": 0.0}, epochs=12)
    model, hist = pretrain_mae(F, cfg, tmp_path, progress=False)
    zero = float((F.reshape(-1, 20, 2, 5).mean(2) ** 2).mean())  # predict-zero MSE after 2x pooling
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert reconstruction_error(model, F, cfg) < 0.8 * zero
    # copying the nearest visible sample errs by the difference of two pooled noise draws:
    # 2 x 0.1^2 / 2 = 0.01 (the level is the same); the history records that reference
    assert nearest_visible_error(F, cfg, n_repeats=2) == pytest.approx(0.01, rel=0.15)
    assert hist[-1]["reference"] == pytest.approx(0.01, rel=0.15)
    reloaded, cfg2 = load_mae(tmp_path / "mae.pt")
    assert cfg2 == cfg and not (tmp_path / "last.pt").exists()
    for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_nan_loss_stops_training(tmp_path):
    F = _smooth_features()
    F[0, 0, 3, 1] = np.nan
    with pytest.raises(KitError, match="MAE loss is nan"):
        pretrain_mae(F, MAEConfig(**{**SMALL, "batch_size": 512}, epochs=2), tmp_path, progress=False)
    assert not (tmp_path / "mae.pt").exists()


def test_wrong_shape_is_refused(tmp_path):
    with pytest.raises(KitError, match="MAE input must be"):
        pretrain_mae(np.zeros((4, 2, 30, 5), np.float32), MAEConfig(**SMALL), tmp_path)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    F = _smooth_features()
    cfg = MAEConfig(**SMALL, epochs=3)
    straight, _ = pretrain_mae(F, cfg, tmp_path / "a", progress=False)

    # interrupt run b after its second epoch checkpoint
    import kit.deep.mae as mae_mod

    real_save, calls = mae_mod.save_checkpoint, []

    def save_then_crash(path, *a, **kw):
        real_save(path, *a, **kw)
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(mae_mod, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        pretrain_mae(F, cfg, tmp_path / "b", progress=False)
    monkeypatch.setattr(mae_mod, "save_checkpoint", real_save)
    assert (tmp_path / "b" / "last.pt").exists() and not (tmp_path / "b" / "mae.pt").exists()
    resumed, hist = pretrain_mae(F, cfg, tmp_path / "b", progress=False)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)
    # a leftover last.pt from another config is refused, not silently mixed in
    (tmp_path / "b" / "last.pt").write_bytes((tmp_path / "b" / "mae.pt").read_bytes())
    with pytest.raises(CheckpointError, match="config hash"):
        pretrain_mae(F, MAEConfig(**SMALL, epochs=4), tmp_path / "b", progress=False)


def test_nearest_visible_fill_by_hand():
    x = torch.arange(6.0).reshape(1, 6, 1)
    mask = torch.tensor([[True, False, True, True, False, True]])
    # sample 0 <- 1, 2 <- 1 (tie: the earlier), 3 <- 4, 5 <- 4
    assert nearest_visible_fill(x, mask)[0, :, 0].tolist() == [1.0, 1.0, 1.0, 4.0, 4.0, 4.0]
    assert nearest_visible_fill(x, torch.ones(1, 6, dtype=torch.bool)).abs().sum() == 0
