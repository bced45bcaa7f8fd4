"""Tests for kit.methods.eegnet: EEGNet-8,2 shapes, parameter count, max-norm, learning, determinism, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from kit.core.errors import KitError
from kit.deep.nets import count_parameters
from kit.methods.eegnet import EEGNetClassifier, EEGNetConfig
from kit.methods.eegnet_net import EEGNet
from kit.methods.registry import run_baseline

SFREQ = 200.0


def test_forward_shapes_and_same_padding_equal_conv2d():
    torch.manual_seed(0)
    net = EEGNet(16, 200).eval()
    x = torch.randn(5, 16, 200)
    assert net(x).shape == (5, 2)
    assert net.n_flat == 16 * 6  # F2 x (200 // 4 // 8)
    # the 1-D convolutions with Keras "same" padding are the paper's (1, K) 2-D convolutions
    h = net.bn1(F.conv2d(x[:, None], net.conv_temporal.weight, padding="same"))
    h = net.pool1(F.elu(net.bn2(net.conv_spatial(h))))
    assert h.shape == (5, 16, 1, 50)
    h = F.conv2d(h, net.conv_sep_depth.weight, padding="same", groups=16)
    h = net.pool2(F.elu(net.bn3(net.conv_sep_point(h))))
    assert h.shape == (5, 16, 1, 6)
    torch.testing.assert_close(net.dense(h.flatten(1)), net(x), rtol=1e-5, atol=1e-6)


def test_window_moments_from_the_unpadded_gram_equal_the_padded_signals_bit_for_bit():
    # the zero rows and columns a padded Gram matrix adds are exact zeros: the same float32 products and sums
    from kit.methods.eegnet_net import _same_pad, window_moments

    g = torch.Generator().manual_seed(3)
    for B, k in ((64, 100), (37, 25), (2, 4)):
        x = torch.randn(B, 16, 200, generator=g) * 3.0 + 0.5
        xp = _same_pad(x.reshape(B * 16, 200), k)  # (B*C, L): the reference, as the convolution reads them
        L, n = xp.shape[1], B * 16 * 200
        cum = F.pad(xp.sum(0, dtype=torch.float64).cumsum(0), (1, 0))
        j = torch.arange(k)
        mean = ((cum[j + 200] - cum[j]) / n).float()
        second = ((xp.T @ xp).double().as_strided((k, k, 200), (L, 1, L + 1)).sum(-1) / n).float()
        got = window_moments(x, k)
        assert torch.equal(got[0], mean) and torch.equal(got[1], second)
        direct = torch.stack([xp[:, i:i + 200] for i in range(k)])  # (k, B*C, T): the windows themselves
        torch.testing.assert_close(got[1], torch.einsum("irt,jrt->ij", direct, direct) / n, rtol=1e-5, atol=1e-5)


def test_depthwise_kernel_gradient_in_blocks_equals_the_whole_product():
    # the blocks' entries are the whole matrix's entries (each a sum over the same trials), summed along the same
    # strided diagonals: at EEGNet's shape at 200 Hz (T = 200, K1 = 100; a full and two short minibatches) the
    # float32 numbers of the earlier whole-matrix gradient bit for bit; at any shape the float64 reference's
    from kit.methods.eegnet_net import _band_weight_grad

    g = torch.Generator().manual_seed(5)
    for B, G, T, k in ((64, 16, 200, 100), (37, 16, 200, 100), (2, 16, 200, 100), (7, 3, 50, 25), (5, 2, 9, 4),
                       (3, 2, 6, 1)):
        x = torch.randn(B, G, T + k - 1, generator=g)
        grad = torch.randn(B, G, T, generator=g) * 0.01
        L = T + k - 1
        got = _band_weight_grad(x, grad, k)
        assert got.shape == (G, 1, k)
        if (T, k) == (200, 100):
            whole = torch.bmm(x.permute(1, 2, 0), grad.permute(1, 0, 2))  # (G, L, T)
            assert torch.equal(got, whole.as_strided((G, k, T), (L * T, T, T + 1)).sum(-1)[:, None])
        by_hand = torch.stack([(x[:, :, j:j + T].double() * grad.double()).sum((0, 2)) for j in range(k)], 1)
        torch.testing.assert_close(got[:, 0].double(), by_hand, rtol=1e-5, atol=1e-6)


def test_parameter_count_of_eegnet_8_2_by_hand():
    # 16 channels x 200 samples at 200 Hz: K1 = 100 (64 at 128 Hz), K2 = 25 (16 at 32 Hz), 2 classes
    net = EEGNet(16, 200, 2, kernel_length=100, sep_kernel_length=25)
    hand = (8 * 100          # temporal conv, F1 x K1, no bias
            + 2 * 8          # batch norm gamma, beta
            + 16 * 16        # depthwise spatial conv: D*F1 filters x C electrodes
            + 2 * 16         # batch norm
            + 16 * 25        # separable: depthwise (1, K2) per map
            + 16 * 16        # separable: pointwise F2 x D*F1
            + 2 * 16         # batch norm
            + 16 * 6 * 2 + 2)  # dense: F2 x T//32 inputs x 2 classes + bias
    assert hand == 1986
    assert count_parameters(net) == hand
    # the paper's own sizes (128 Hz, K1 = 64, K2 = 16) for 64 channels x 128 samples, 4 classes
    net = EEGNet(64, 128, 4, kernel_length=64, sep_kernel_length=16)
    assert count_parameters(net) == 8 * 64 + 16 + 16 * 64 + 32 + 16 * 16 + 16 * 16 + 32 + 16 * 4 * 4 + 4


def test_kernel_lengths_scale_with_sfreq():
    clf = EEGNetClassifier(EEGNetConfig(epochs=1), sfreq=SFREQ)
    X, y, s = synthetic(n_subjects=1, n_trials=8)
    clf.fit(X, y, s)
    assert clf.model_.conv_temporal.weight.shape == (8, 1, 1, 100)
    assert clf.model_.conv_sep_depth.weight.shape == (16, 1, 1, 25)
    clf = EEGNetClassifier(EEGNetConfig(epochs=1), sfreq=128.0).fit(X, y, s)
    assert clf.model_.conv_temporal.weight.shape[-1] == 64 and clf.model_.conv_sep_depth.weight.shape[-1] == 16


def test_max_norm_clips_only_filters_above_the_bound():
    torch.manual_seed(0)
    net = EEGNet(16, 200)
    with torch.no_grad():
        net.conv_spatial.weight.mul_(0.0).add_(0.01)  # norm 0.04: untouched
        net.conv_spatial.weight[3].fill_(1.0)          # norm 4: clipped to 1
        net.dense.weight[1].fill_(1.0)                 # norm sqrt(96): clipped to 0.25
    small = net.conv_spatial.weight[0].clone()
    net.apply_max_norm(1.0, 0.25)
    norms = net.conv_spatial.weight.flatten(1).norm(dim=1)
    assert norms[3].item() == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(net.conv_spatial.weight[0], small)
    assert net.dense.weight[1].norm().item() == pytest.approx(0.25, rel=1e-5)
    # direction kept
    torch.testing.assert_close(net.conv_spatial.weight[3], torch.full_like(net.conv_spatial.weight[3], 0.25))


def synthetic(n_subjects=4, n_trials=64, effect=1.5, seed=0):
    """White noise x a per-subject gain; class 1 adds a 10 Hz burst on channels 2-5 (0.3-0.7 s)."""
    rng = np.random.default_rng(seed)
    t = np.arange(200) / SFREQ
    env = np.exp(-0.5 * ((t - 0.5) / 0.1) ** 2)
    X, Y, S = [], [], []
    for s in range(n_subjects):
        y = np.tile([0, 1], n_trials // 2)
        x = rng.normal(size=(n_trials, 16, 200))
        ph = rng.uniform(0, 2 * np.pi, (n_trials, 1, 1))
        x[:, 2:6] += effect * np.sin(2 * np.pi * 10 * t + ph) * env * y[:, None, None]
        X.append(x * rng.uniform(5, 20))
        Y.append(y)
        S.append(np.full(n_trials, s + 1))
    return np.concatenate(X).astype(np.float32), np.concatenate(Y), np.concatenate(S)


def test_learns_a_synthetic_class_difference_across_subjects_and_respects_max_norm():
    X, y, s = synthetic()
    cfg = EEGNetConfig(epochs=10, batch_size=32, lr=3e-3)
    train = s != 4  # fit on subjects 1-3, predict the unseen subject 4
    clf = EEGNetClassifier(cfg, sfreq=SFREQ).fit(X[train], y[train], s[train])
    p = clf.predict(X[~train], s[~train])
    assert p.shape == (64, 200) and np.all(p == p[:, :1])  # one score per trial, broadcast
    assert roc_auc_score(y[~train], p[:, 0]) > 0.8
    assert len(clf.history_) == 10 and clf.history_[-1] < clf.history_[0]
    assert clf.model_.conv_spatial.weight.flatten(1).norm(dim=1).max().item() <= 1.0 + 1e-5
    assert clf.model_.dense.weight.norm(dim=1).max().item() <= 0.25 + 1e-5
    # pure noise: near chance on the unseen subject
    Xn, yn, sn = synthetic(effect=0.0, seed=1)
    pn = EEGNetClassifier(cfg, sfreq=SFREQ).fit(Xn[train], yn[train], sn[train]).predict(Xn[~train], sn[~train])
    assert abs(roc_auc_score(yn[~train], pn[:, 0]) - 0.5) < 0.15


def test_runs_under_loso_through_run_baseline():
    X, y, s = synthetic(n_subjects=3, n_trials=16)
    oof, test = run_baseline("eegnet", X, y, s, X[:5], s[:5] + 100, SFREQ, epochs=1)
    assert oof.shape == (48, 200) and test.shape == (5, 200)
    assert np.all((oof > 0) & (oof < 1)) and np.all(oof == oof[:, :1])


def test_deterministic_with_a_seed_and_threads_restored():
    X, y, s = synthetic(n_subjects=2, n_trials=32)
    before = torch.get_num_threads()
    p1 = EEGNetClassifier(EEGNetConfig(epochs=2, seed=3)).fit(X, y, s).predict(X, s)
    p2 = EEGNetClassifier(EEGNetConfig(epochs=2, seed=3)).fit(X, y, s).predict(X, s)
    p3 = EEGNetClassifier(EEGNetConfig(epochs=2, seed=4)).fit(X, y, s).predict(X, s)
    np.testing.assert_array_equal(p1, p2)
    assert not np.allclose(p1, p3)
    assert torch.get_num_threads() == before


def test_errors():
    X, y, s = synthetic(n_subjects=1, n_trials=8)
    with pytest.raises(KitError, match="call fit"):
        EEGNetClassifier().predict(X, s)
    with pytest.raises(KitError, match="both classes"):
        EEGNetClassifier().fit(X, np.zeros_like(y), s)
    with pytest.raises(KitError, match="subject"):
        EEGNetClassifier().fit(X, y, s[:-1])
    with pytest.raises(KitError, match="at least 32 samples"):
        EEGNet(16, 20)
    clf = EEGNetClassifier(EEGNetConfig(epochs=1)).fit(X, y, s)
    with pytest.raises(KitError, match="fit on"):
        clf.predict(X[:, :8], s)


def test_pickle_keeps_predictions_and_stores_the_network_on_the_cpu():
    import pickle

    X, y, s = synthetic(n_subjects=2, n_trials=32)
    clf = EEGNetClassifier(EEGNetConfig(epochs=1, seed=1)).fit(X, y, s)
    state = clf.__getstate__()
    assert state["device"] is None and all(p.device.type == "cpu" for p in state["model_"].parameters())
    back = pickle.loads(pickle.dumps(clf))
    assert back.device == clf.device  # this machine's device
    np.testing.assert_array_equal(back.predict(X, s), clf.predict(X, s))
