"""First-order MAML: gradients against a hand-written reference, task sampling, LOSO hygiene."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from kit import maml
from kit.maml import MAMLConfig, bce_loss, fast_adapt, meta_train, sample_task
from kit.models import ExpertBank


class Linear(nn.Module):
    """logits (B, E, T) = x (B, E, T, K) @ w (K,) : gradients are easy to write by hand."""

    def __init__(self, k):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-0.5, 0.5, k, dtype=torch.float64))

    def forward(self, x):
        return x @ self.w


def _np_grad(w, X, y):
    # d/dw of mean BCE(sigmoid(X w), y) over all (B, E, T) entries
    z = X @ w
    p = 1 / (1 + np.exp(-z))
    r = p - y[:, None, None]
    return np.einsum("bet,betk->k", r, X) / r.size


def _np_loss(w, X, y):
    z = X @ w
    t = y[:, None, None]
    return float(np.mean(np.logaddexp(0, z) - t * z))


def _task(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6, 2, 3, 4))
    y = np.array([0, 1, 0, 1, 1, 0], dtype=np.int64)
    return X, y


def _adapt_np(w, X, y, steps, lr):
    for _ in range(steps):
        w = w - lr * _np_grad(w, X, y)
    return w


def test_first_order_gradient_matches_reference():
    model = Linear(4)
    (Xs, ys), (Xq, yq) = _task(0), _task(1)
    params = dict(model.named_parameters())
    adapted = fast_adapt(model, params, torch.from_numpy(Xs), torch.from_numpy(ys), steps=3, lr=0.3,
                         first_order=True)
    bce_loss(functional_call(model, adapted, (torch.from_numpy(Xq),)), torch.from_numpy(yq)).backward()
    w_adapted = _adapt_np(model.w.detach().numpy(), Xs, ys, 3, 0.3)
    np.testing.assert_allclose(adapted["w"].detach().numpy(), w_adapted, rtol=1e-10)
    # FOMAML: the outer gradient is the query gradient at the adapted weights
    np.testing.assert_allclose(model.w.grad.numpy(), _np_grad(w_adapted, Xq, yq), rtol=1e-10)


def test_second_order_gradient_matches_finite_differences():
    model = Linear(4)
    (Xs, ys), (Xq, yq) = _task(2), _task(3)
    params = dict(model.named_parameters())
    adapted = fast_adapt(model, params, torch.from_numpy(Xs), torch.from_numpy(ys), steps=3, lr=0.3,
                         first_order=False)
    bce_loss(functional_call(model, adapted, (torch.from_numpy(Xq),)), torch.from_numpy(yq)).backward()
    w0, eps = model.w.detach().numpy(), 1e-6
    fd = np.array([(_np_loss(_adapt_np(w0 + eps * e, Xs, ys, 3, 0.3), Xq, yq)
                    - _np_loss(_adapt_np(w0 - eps * e, Xs, ys, 3, 0.3), Xq, yq)) / (2 * eps) for e in np.eye(4)])
    np.testing.assert_allclose(model.w.grad.numpy(), fd, rtol=1e-6, atol=1e-9)
    # and it differs from the first-order approximation
    assert not np.allclose(fd, _np_grad(_adapt_np(w0, Xs, ys, 3, 0.3), Xq, yq), rtol=1e-3)


def test_zero_inner_steps_is_plain_training():
    model = Linear(4)
    X, y = _task(4)
    params = dict(model.named_parameters())
    assert fast_adapt(model, params, torch.from_numpy(X), torch.from_numpy(y), steps=0, lr=1.0)["w"] is model.w


def test_sample_task_is_disjoint_and_balanced():
    rng = np.random.default_rng(0)
    neg, pos = np.arange(0, 50), np.arange(50, 90)
    s, q = sample_task(neg, pos, 16, 16, rng)
    assert len(s) == 16 and len(q) == 16 and not set(s) & set(q)
    assert (s < 50).sum() == 8 and (q < 50).sum() == 8
    s, q = sample_task(np.arange(10), np.arange(10, 20), 16, 16, rng)  # too few trials: shrink, stay disjoint
    assert not set(s) & set(q) and len(s) + len(q) <= 20 and (s < 10).sum() == (s >= 10).sum()


def test_meta_train_learns_a_theta_burst():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, subject = 240, np.repeat([1, 2, 3, 4], 60)
    y = np.tile([0, 1], n // 2)
    x = rng.standard_normal((n, 2, 5, 5)).astype(np.float32)
    x[y == 1, :, :, 1] += 1.0
    bank = ExpertBank(2, 5, d_model=8, n_heads=2, d_ff=16, n_layers=1, dropout=0.0)
    cfg = MAMLConfig(outer_steps=30, n_support=8, n_query=8, meta_batch=2, outer_lr=1e-2)
    hist = meta_train(bank, torch.from_numpy(x), torch.from_numpy(y), subject, cfg, device=torch.device("cpu"))
    assert np.mean(hist[-5:]) < 0.6 < np.mean(hist[:3])


def test_experts_never_train_on_the_held_out_subject(tmp_path, monkeypatch):
    from kit.mae import MAEConfig, pretrain_mae

    rng = np.random.default_rng(1)
    subject = np.repeat([2, 3, 4, 5, 1], 12)
    y = np.tile([0, 1], 30)
    is_test = subject == 1
    y[is_test] = -1
    F = rng.standard_normal((60, 2, 40, 5)).astype(np.float32)
    pretrain_mae(F, MAEConfig(n_times=40, pool=8, epochs=1, d_model=8, n_heads=2, d_ff=16, n_layers=1),
                 tmp_path / "mae", progress=False)
    seen = []
    real = maml.meta_train

    def spy(model, x, y_, subj, cfg, **kw):
        seen.append(set(np.unique(subj).tolist()))
        assert (y_.numpy() >= 0).all()  # never a test trial
        return real(model, x, y_, subj, cfg, **kw)

    monkeypatch.setattr(maml, "meta_train", spy)
    out = maml.train_experts_loso(F, y, subject, is_test, MAMLConfig(outer_steps=2, n_support=4, n_query=4),
                                  tmp_path / "mae" / "mae.pt", tmp_path / "experts", progress=False)
    # LOSO folds, then the cross-fit models (groups {2}, {3}, {4}, {5}: without one group, then without two)
    assert seen == [{3, 4, 5}, {2, 4, 5}, {2, 3, 5}, {2, 3, 4},
                    {3, 4, 5}, {2, 4, 5}, {2, 3, 5}, {2, 3, 4}, {4, 5}, {3, 5}, {3, 4}, {2, 5}, {2, 4}, {2, 3}]
    assert out["oof"].shape == (48, 2, 40) and out["test"].shape == (12, 2, 40)
    assert ((out["oof"] > 0) & (out["oof"] < 1)).all()
    assert out["inner"].shape == (4, 48, 40) and np.isfinite(out["inner"]).all()
    assert out["inner_group"].tolist() == np.repeat([0, 1, 2, 3], 12).tolist()
    assert sorted(p.name for p in (tmp_path / "experts").glob("fold*.pt")) == [
        "fold0_seed0.pt", "fold1_seed0.pt", "fold2_seed0.pt", "fold3_seed0.pt"]
    assert len(list((tmp_path / "experts").glob("inner_g*_seed0.pt"))) == 10
    # a rerun with the same config reuses the fold checkpoints and gives the same predictions
    seen.clear()
    again = maml.train_experts_loso(F, y, subject, is_test, MAMLConfig(outer_steps=2, n_support=4, n_query=4),
                                    tmp_path / "mae" / "mae.pt", tmp_path / "experts", progress=False)
    assert seen == []
    np.testing.assert_array_equal(again["oof"], out["oof"])


def test_anil_shortcut_equals_generic_head_only_adaptation():
    # cached encoder features + head-only inner steps == the generic path with adapt=<head names>
    rng = np.random.default_rng(0)
    xs, xq = (torch.from_numpy(rng.standard_normal((8, 2, 5, 5)).astype(np.float32)) for _ in range(2))
    ys = yq = torch.tensor([0, 1] * 4)
    cfg = MAMLConfig(inner_params="head", inner_steps=3, inner_lr=0.5)
    grads = []
    for shortcut in (True, False):
        torch.manual_seed(0)
        bank = ExpertBank(2, 5, d_model=8, n_heads=2, d_ff=16, n_layers=1, dropout=0.0)
        maml.task_loss(bank, xs, ys, xq, yq, cfg, shortcut=shortcut).backward()
        grads.append(torch.cat([p.grad.flatten() for p in bank.parameters()]))
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1])
    with pytest.raises(Exception, match="inner_params"):
        maml.task_loss(bank, xs, ys, xq, yq, MAMLConfig(inner_params="body"))


def test_augmentations_by_hand():
    x = torch.arange(6.0).reshape(1, 1, 6, 1).repeat(3, 1, 1, 1)  # three trials, samples 0..5
    shifted = maml.augment(x, MAMLConfig(aug_shift=2), torch.Generator().manual_seed(0))
    shifts = torch.randint(-2, 3, (3,), generator=torch.Generator().manual_seed(0)).tolist()
    for row, s in zip(shifted[:, 0, :, 0].tolist(), shifts):  # sample t takes sample t - s, edges repeated
        assert row == [float(min(max(t - s, 0), 5)) for t in range(6)]
    masked = maml.augment(x + 1, MAMLConfig(aug_mask=0.5), torch.Generator().manual_seed(0))
    assert ((masked == 0).sum(dim=2) == 3).all()  # one span of 3 of the 6 samples per trial
    zeros = (masked[:, 0, :, 0] == 0).int()
    assert (zeros.diff(dim=1).abs().sum(dim=1) <= 2).all()  # the masked samples are contiguous
    offset = maml.augment(x, MAMLConfig(aug_offset=1.0), torch.Generator().manual_seed(0)) - x
    assert torch.allclose(offset, offset[:, :, :1].expand_as(offset)) and offset.abs().sum() > 0
    assert torch.equal(maml.augment(x, MAMLConfig(), torch.Generator()), x)


def test_test_time_adaptation_fits_the_new_subject_and_leaves_the_fold_bank_alone(tmp_path):
    from kit.mae import MAEConfig, load_mae, pretrain_mae
    from kit.models import MaskedAutoencoder, pool_time

    rng = np.random.default_rng(0)
    F = rng.standard_normal((40, 2, 40, 5)).astype(np.float32)
    pretrain_mae(F, MAEConfig(n_times=40, pool=8, epochs=1, d_model=8, n_heads=2, d_ff=16, n_layers=1),
                 tmp_path / "mae", progress=False)
    mae, _ = load_mae(tmp_path / "mae" / "mae.pt")
    bank = maml.build_bank(2, tmp_path / "mae" / "mae.pt", MAMLConfig()).eval()
    x = pool_time(torch.from_numpy(F[:20] * 3 + 1), 8, dim=2)  # a new subject: other scale and offset, (20, 2, 5, 5)
    before = {k: v.clone() for k, v in bank.state_dict().items()}
    adapted = maml.test_time_adapt(bank, mae, x, maml.TTAConfig(steps=30, lr=1e-2))
    assert all(torch.equal(v, bank.state_dict()[k]) for k, v in before.items())  # the fold's bank is unchanged
    assert torch.equal(adapted.head.weight, bank.head.weight) and not adapted.training  # heads untouched

    @torch.no_grad()
    def reconstruction(b):  # the MAE loss on x with one fixed mask
        mask = MaskedAutoencoder.random_masking(40, 5, 0.4, torch.Generator().manual_seed(1)).view(20, 2, 5)
        h = torch.where(mask[..., None], mae.mask_token + b.encoder.pos, b.encoder.embed(x))
        return MaskedAutoencoder.forward_loss(x, mae.head(b.encoder.encode(h)), mask).item()

    assert reconstruction(adapted) < 0.8 * reconstruction(bank)
    assert maml.predict_bank(adapted, x, 40).shape == (20, 2, 40)
