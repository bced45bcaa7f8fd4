"""First-order meta-learning: gradients against a hand-written reference, task splits, the outer losses."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from kit.core.errors import KitError
from kit.deep.maml import draw_step, fast_adapt, mldg_task, outer_loss, sample_task, subject_tasks, trial_bce


class Linear(nn.Module):
    """trial logits (1, B, E) = x (B, E, K) @ w (K,): gradients are easy to write by hand."""

    def __init__(self, k):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-0.5, 0.5, k, dtype=torch.float64))

    def forward(self, x):
        return (x @ self.w)[None]


def _np_grad(w, X, y):
    # d/dw of mean BCE(sigmoid(X w), y) over all (B, E) entries
    p = 1 / (1 + np.exp(-(X @ w)))
    r = p - y[:, None]
    return np.einsum("be,bek->k", r, X) / r.size


def _task(seed, n=6):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2, 4)), np.array([0, 1] * (n // 2), dtype=np.int64)


def _adapt_np(w, X, y, steps, lr):
    for _ in range(steps):
        w = w - lr * _np_grad(w, X, y)
    return w


def test_first_order_gradient_matches_reference():
    model = Linear(4)
    (Xs, ys), (Xq, yq) = _task(0), _task(1)
    adapted = fast_adapt(model, dict(model.named_parameters()), torch.from_numpy(Xs), torch.from_numpy(ys),
                         steps=3, lr=0.3, first_order=True)
    trial_bce(functional_call(model, adapted, (torch.from_numpy(Xq),)), torch.from_numpy(yq)).backward()
    w_adapted = _adapt_np(model.w.detach().numpy(), Xs, ys, 3, 0.3)
    np.testing.assert_allclose(adapted["w"].detach().numpy(), w_adapted, rtol=1e-10)
    # first-order: the meta-gradient is the query gradient at the adapted weights
    np.testing.assert_allclose(model.w.grad.numpy(), _np_grad(w_adapted, Xq, yq), rtol=1e-10)


def test_second_order_gradient_matches_finite_differences():
    model = Linear(4)
    (Xs, ys), (Xq, yq) = _task(2), _task(3)
    adapted = fast_adapt(model, dict(model.named_parameters()), torch.from_numpy(Xs), torch.from_numpy(ys),
                         steps=2, lr=0.5, first_order=False)
    trial_bce(functional_call(model, adapted, (torch.from_numpy(Xq),)), torch.from_numpy(yq)).backward()

    def meta_loss(w):
        wa = _adapt_np(w, Xs, ys, 2, 0.5)
        z = Xq @ wa
        return float(np.mean(np.logaddexp(0, z) - yq[:, None] * z))

    w0, eps = model.w.detach().numpy(), 1e-6
    fd = [(meta_loss(w0 + eps * e) - meta_loss(w0 - eps * e)) / (2 * eps) for e in np.eye(4)]
    np.testing.assert_allclose(model.w.grad.numpy(), fd, rtol=1e-5, atol=1e-8)
    assert not np.allclose(fd, _np_grad(_adapt_np(w0, Xs, ys, 2, 0.5), Xq, yq))  # the two orders differ here


def test_trial_bce_weights_each_model_by_its_own_trials():
    logits = torch.tensor([[[0.5], [-1.0], [2.0]], [[1.0], [0.0], [-0.5]]])  # (M=2, B=3, E=1)
    y = torch.tensor([1, 0, 1])
    w = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    bce = nn.functional.binary_cross_entropy_with_logits
    want = bce(logits[0, :2, 0], y[:2].float()) + bce(logits[1, 1:, 0], y[1:].float())
    torch.testing.assert_close(trial_bce(logits, y, w), want)


def _tasks(n_subjects=5, per_class=10):
    y = np.tile(np.r_[np.zeros(per_class), np.ones(per_class)], n_subjects).astype(np.int64)
    subject = np.repeat(np.arange(n_subjects) + 1, 2 * per_class)
    return y, subject, subject_tasks(y, subject)


def test_sample_task_is_disjoint_and_balanced():
    y, subject, tasks = _tasks()
    s, q = sample_task(*tasks[2], 8, 8, np.random.default_rng(0))
    assert len(set(s) & set(q)) == 0 and len(s) == len(q) == 8
    assert set(subject[np.r_[s, q]]) == {2}
    assert y[s].sum() == 4 and y[q].sum() == 4


def test_mldg_query_subject_is_never_in_the_support():
    y, subject, tasks = _tasks()
    rng = np.random.default_rng(0)
    for _ in range(20):
        batch = rng.choice(sorted(tasks), size=3, replace=False)
        for qs in batch:
            s, q = mldg_task(tasks, batch, qs, 4, 6, rng)
            assert qs not in set(subject[s]) and set(subject[q]) == {qs}
            assert set(subject[s]) == set(batch) - {qs} and len(s) == 4 * 2 and y[q].sum() == 3
    cfg = SimpleNamespace(meta="mldg", meta_batch=3, n_support=4, n_query=4)
    for s, q in draw_step(tasks, rng, cfg):
        assert not set(subject[s]) & set(subject[q]) and len(set(subject[q])) == 1
    with pytest.raises(KitError, match="query subject 9"):
        mldg_task(tasks, np.array([1, 2]), 9, 4, 4, rng)
    with pytest.raises(KitError, match="with others"):
        mldg_task(tasks, np.array([1]), 1, 4, 4, rng)


def test_mldg_outer_loss_is_support_loss_plus_adapted_query_loss():
    model = Linear(4)
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.standard_normal((12, 2, 4)))
    y = torch.tensor([0, 1] * 6)
    allowed = torch.ones(1, 12, dtype=torch.float64)
    s_idx, q_idx = torch.arange(0, 8), torch.arange(8, 12)
    cfg = SimpleNamespace(meta="mldg", inner_steps=2, inner_lr=0.4)
    loss = outer_loss(model, x, y, allowed, [(s_idx, q_idx)], cfg)
    w = model.w.detach().numpy()
    Xs, ys, Xq, yq = x[s_idx].numpy(), y[s_idx].numpy(), x[q_idx].numpy(), y[q_idx].numpy()

    def np_loss(w, X, y):
        z = X @ w
        return float(np.mean(np.logaddexp(0, z) - y[:, None] * z))

    want = np_loss(w, Xs, ys) + np_loss(_adapt_np(w, Xs, ys, 2, 0.4), Xq, yq)
    assert loss.item() == pytest.approx(want, rel=1e-10)
    loss.backward()  # first-order: support gradient at w + query gradient at the adapted weights
    np.testing.assert_allclose(model.w.grad.numpy(),
                               _np_grad(w, Xs, ys) + _np_grad(_adapt_np(w, Xs, ys, 2, 0.4), Xq, yq), rtol=1e-9)


def test_a_model_takes_no_part_in_a_task_of_a_subject_it_may_not_see():
    model = Linear(4)
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((8, 2, 4)))
    y = torch.tensor([0, 1] * 4)
    cfg = SimpleNamespace(meta="fomaml", inner_steps=1, inner_lr=0.3)
    none_allowed = torch.zeros(1, 8, dtype=torch.float64)
    loss = outer_loss(model, x, y, none_allowed, [(torch.arange(4), torch.arange(4, 8))], cfg)
    assert loss.item() == 0.0


def test_unknown_meta_mode_is_refused():
    _, _, tasks = _tasks()
    with pytest.raises(KitError, match="meta must be one of"):
        draw_step(tasks, np.random.default_rng(0), SimpleNamespace(meta="maml2", meta_batch=2))
