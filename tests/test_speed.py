"""Issue 25, the main job's speed: EEGNet's commuted block 1 (the paper's numbers to float32 rounding), the deep
features' disk cache, ``kit profile-stages`` (kit.pipeline.timing) and the expected time of ``kit run``
(kit.pipeline.estimate)."""

import json

import numpy as np
import pytest
import torch

from kit.app.cli import main
from kit.core.errors import KitError
from kit.data.demo import write_demo_dataset
from kit.methods.eegnet import EEGNetClassifier, EEGNetConfig
from kit.methods.eegnet_net import DepthwiseConv1d, EEGNet, window_moments
from kit.methods.registry import run_baseline
from kit.pipeline import critical, estimate, timing
from kit.pipeline.run import Run


# ----------------------------------------------------------------------------- EEGNet, block 1 commuted
def _pair(**kw):
    torch.manual_seed(0)
    old = EEGNet(16, 200, commuted=False, **kw)
    new = EEGNet(16, 200, commuted=True, **kw)
    new.load_state_dict(old.state_dict())
    return old, new


def test_commuted_block1_is_the_papers_block1_with_its_gradients_and_running_statistics():
    old, new = _pair(dropout=0.0)
    x = torch.randn(24, 16, 200) * 3 + 0.5  # not centred: the batch mean matters
    a, b = old.block1(x), new.block1(x)
    assert a.shape == b.shape == (24, 16, 1, 200)
    np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), atol=1e-5 * float(a.abs().max()))
    old(x).square().sum().backward()
    new(x).square().sum().backward()
    for (name, p), q in zip(old.named_parameters(), new.parameters()):
        if name.startswith("bn1"):  # batch norm 2 cancels them: both are rounding noise around 0
            continue
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), atol=1e-5 * float(p.grad.abs().max()), err_msg=name)
    for (name, p), q in zip(old.named_buffers(), new.buffers()):
        np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-5, atol=1e-7, err_msg=name)
    old.eval(), new.eval()
    with torch.no_grad():
        np.testing.assert_allclose(new(x).numpy(), old(x).numpy(), atol=1e-5)


def test_depthwise_conv_backward_is_the_exact_gradient():
    x = torch.randn(3, 4, 30, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 1, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(DepthwiseConv1d.apply, (x, w))
    y = DepthwiseConv1d.apply(x, w)
    np.testing.assert_allclose(y.detach(), torch.nn.functional.conv1d(x, w, groups=4).detach(), atol=1e-12)


def test_window_moments_by_hand():
    x = torch.randn(2, 3, 11, dtype=torch.float64)
    k = 4
    pad = torch.nn.functional.pad(x.reshape(6, 11), ((k - 1) // 2, k // 2))
    win = pad.unfold(1, k, 1).reshape(-1, k)  # every window the kernel reads: (6 * 11, k)
    mean, second = window_moments(x, k)
    np.testing.assert_allclose(mean, win.mean(0), atol=1e-12)
    np.testing.assert_allclose(second, win.T @ win / len(win), atol=1e-12)


def test_commuted_eegnet_gives_the_papers_loso_predictions_on_tiny_data():
    """The anchor's whole LOSO + test run, both orders, same seed: equal to 1e-5 (float32 rounding only)."""
    rng = np.random.default_rng(0)
    s = np.repeat(np.arange(4), 40)
    y = np.tile(np.r_[np.zeros(20), np.ones(20)], 4).astype(int)
    X = rng.standard_normal((160, 16, 200)).astype(np.float32) * 20
    X[y == 1, :4, 80:120] += 8.0
    runs = [run_baseline("eegnet", X, y, s, X[:30], s[:30] + 10, 200.0, epochs=1, commuted=c) for c in (False, True)]
    np.testing.assert_allclose(runs[1][0], runs[0][0], atol=1e-5)  # out-of-fold
    np.testing.assert_allclose(runs[1][1], runs[0][1], atol=1e-5)  # test, mean over folds
    assert np.abs(runs[0][0] - 0.5).max() > 1e-3  # the networks did move


def test_a_network_pickled_before_the_flag_uses_the_papers_order():
    rng = np.random.default_rng(1)
    X, y, s = rng.standard_normal((40, 16, 64)).astype(np.float32), np.tile([0, 1], 20), np.repeat([1, 2], 20)
    clf = EEGNetClassifier(EEGNetConfig(epochs=1, commuted=True)).fit(X, y, s)
    assert clf.model_.commuted
    p = clf.predict_trials(X, s)
    del clf.model_.commuted  # as unpickled from kit <= 0.3
    np.testing.assert_allclose(clf.predict_trials(X, s), p, atol=1e-5)


# ----------------------------------------------------------------------------- the features' disk cache
def test_feature_cache_returns_identical_arrays_and_follows_the_data(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_OUTPUT", str(tmp_path / "out"))
    data = write_demo_dataset(tmp_path / "demo", scale=0.01, seed=2)
    first = Run(data, "smoke", verbose=False)
    F = first.features
    path = first.feature_cache
    assert path.is_file() and path.parent == first.artifacts / "cache"

    def boom(*a, **k):
        raise AssertionError("recomputed instead of read")

    import kit.pipeline.run as run_module

    monkeypatch.setattr(run_module, "deep_features", boom)
    again = Run(data, "smoke", verbose=False)
    G = again.features
    assert again.feature_cache == path and G.dtype == F.dtype and np.array_equal(G, F)
    monkeypatch.undo()
    monkeypatch.setenv("KIT_OUTPUT", str(tmp_path / "out"))
    # other data in the same folder: another key, recomputed, the old file removed
    write_demo_dataset(tmp_path / "demo", scale=0.01, seed=3, overwrite=True)
    other = Run(data, "smoke", verbose=False)
    H = other.features
    assert other.feature_cache != path and other.feature_cache.is_file() and not path.exists()
    assert H.shape[1:] == F.shape[1:] and not (H.shape == F.shape and np.array_equal(H, F))
    # a truncated file is recomputed and replaced
    other.feature_cache.write_bytes(b"not numpy")
    fresh = Run(data, "smoke", verbose=False)
    assert np.array_equal(fresh.features, H) and np.array_equal(np.load(fresh.feature_cache), H)
    # switched off
    monkeypatch.setenv("KIT_FEATURE_CACHE", "0")
    assert Run(data, "smoke", verbose=False).feature_cache is None


def test_shared_inputs_are_the_direct_ones_read_back_and_keyed_by_config_and_encoder(tmp_path, monkeypatch):
    # Run.anchor_inputs (riemann's tangent coordinates, shared by the anchor and the fusion) and Run.mae_tokens
    # (the encoder's tokens, shared by the experts and the fusion): one pass over all trials = the numbers of
    # separate passes over the training and the test trials; read back, not recomputed; another config or
    # encoder, another file
    from kit.deep.experts import head_inputs
    from kit.deep.mae import MAEConfig, pretrain_mae
    from kit.deep.nets import pool_time
    from kit.methods.registry import model_inputs

    monkeypatch.setenv("KIT_OUTPUT", str(tmp_path / "out"))
    data = write_demo_dataset(tmp_path / "demo", scale=0.01, seed=2)
    run = Run(data, "smoke", verbose=False)
    ds = run.dataset
    T = run.anchor_inputs("riemann")
    tr, te = ~ds.is_test, ds.is_test
    assert np.array_equal(T[tr], model_inputs("riemann", ds.X[tr], ds.subject[tr], ds.sfreq))
    assert np.array_equal(T[te], model_inputs("riemann", ds.X[te], ds.subject[te], ds.sfreq))
    files = sorted((run.artifacts / "cache").glob("riemann_inputs-*.npy"))
    assert len(files) == 1
    np.save(files[0], T + 1.0)  # what the cache holds is what comes back: read, not recomputed
    assert np.array_equal(Run(data, "smoke", verbose=False).anchor_inputs("riemann"), T + 1.0)
    U = run.anchor_inputs("riemann", {"recentre": False})
    assert not np.array_equal(U, T) and len(list((run.artifacts / "cache").glob("riemann_inputs-*.npy"))) == 1

    small = dict(epochs=1, d_model=8, n_layers=1, d_ff=16, pool=8)
    pretrain_mae(run.features[tr], MAEConfig(**small), tmp_path, progress=False)
    mae_path = tmp_path / "mae.pt"
    tokens = run.mae_tokens(mae_path)
    from kit.deep.mae import load_mae

    mae, mcfg = load_mae(mae_path)
    x = pool_time(torch.from_numpy(run.features), mcfg.pool, dim=2)
    assert np.array_equal(tokens[tr], head_inputs(mae, x[np.flatnonzero(tr)]).numpy())
    assert np.array_equal(tokens[te], head_inputs(mae, x[np.flatnonzero(te)]).numpy())
    path = next((run.artifacts / "cache").glob("tokens-*.npy"))
    pretrain_mae(run.features[tr], MAEConfig(**small, seed=1), tmp_path, progress=False)
    other = run.mae_tokens(mae_path)
    assert not path.exists() and not np.array_equal(other, tokens)


def test_early_stopping_scores_its_validation_models_alone_with_the_whole_heads_numbers():
    # stage 03's validation step computes only the validation models' trial logits (half the head, no per-sample
    # outputs): they must be, bit for bit, what the whole head gives those models
    from kit.deep.experts import predict_heads, trial_logits
    from kit.deep.nets import AttentionPoolHead

    torch.manual_seed(0)
    head = AttentionPoolHead(16, 23, 25, 6)
    with torch.no_grad():
        head.time_prior.normal_()
        head.bias.normal_()
    x = torch.randn(300, 16, 25, 23)
    whole = predict_heads(head, x, batch=128)
    part = trial_logits(head, x, slice(0, 3), batch=128)
    assert part.shape == (3, 300, 16) and np.array_equal(part, whole[0][:3])
    assert not np.array_equal(trial_logits(head, x, slice(3, 6), batch=128), part)


# ----------------------------------------------------------------------------- kit profile-stages
def test_critical_path_puts_the_stages_on_the_runs_two_processes():
    t = {"load": 1, "features": 10, "features_cached": 2, "starter": 5, "thetacov": 3, "bandpower": 4,
         "riemann": 6, "eegnet": 100, "mae": 7, "experts": 20, "fusion": 8, "fusion_lda": 1, "ensemble": 9,
         "nb01": 30, "nb02": 3, "nb03": 2, "nb04": 5, "nb05": 40}
    anchors = ("riemann", "eegnet", "bandpower", "thetacov")  # the anchors alone: 01-04 compute the rest
    path = critical.critical_path(t, anchors)
    # notebooks 01-04 with starter, mae, experts, fusion, fusion_lda, the features written (02) and read (03)
    assert sum(path.foreground.values()) == 30 + 5 + 3 + 7 + 2 + 20 + 5 + 8 + 1 + (10 - 2) + 2
    # the anchors' process: riemann from t = 1, then EEGNet until 107; notebooks 01-04 are done at 91, so the
    # helper takes thetacov (91-94) and bandpower (94-98) from the other end of the list
    assert path.background == {"load": 1, "riemann": 6, "eegnet": 100}
    assert path.helper == {"thetacov": 3, "bandpower": 4} and path.anchors_done == 107
    assert path.critical == "background" and path.slowest == "eegnet" and path.total == 107 + 40
    # the runner's list: the features' cache and the starter too (notebooks 02 and 01 find them done): the
    # foreground loses the starter and the features' writing (91 - 5 - 8 = 78); the process has features
    # (1-11), riemann (-17), starter (-22), EEGNet (-122); the helper takes thetacov and bandpower from 78
    assert critical.ANCHOR_ORDER == ("features", "riemann", "starter", "eegnet", "bandpower", "thetacov")
    path = critical.critical_path(t)
    assert sum(path.foreground.values()) == 78 and "starter" not in path.foreground
    assert path.background == {"load": 1, "features": 10, "riemann": 6, "starter": 5, "eegnet": 100}
    assert path.helper == {"thetacov": 3, "bandpower": 4} and path.anchors_done == 122 and path.total == 162
    t["eegnet"] = 10  # every anchor done (at 24 s) before notebooks 01-04: no helper
    path = critical.critical_path(t, anchors)
    assert path.helper == {} and path.anchors_done == 24 and sum(path.background.values()) == 24
    assert path.critical == "foreground" and path.slowest == "nb05" and path.total == 91 + 40
    done, ours, helper = critical.share_anchors(10, 0, {"a": 4, "b": 4, "c": 4, "d": 4})
    assert (done, list(ours), list(helper)) == (14, ["a", "b", "c"], ["d"])  # c claimed at 8, before the helper
    # notebook 01 in the list, right after EEGNet, without the features and the starter (notebook 02, first in the
    # foreground, writes the features: 91 - 30 - 5 = 56 s; notebook 01 trains its starter): the process has
    # riemann (1-7), EEGNet (7-17), notebook 01 with its starter (17-52), bandpower (52-56) and thetacov (claimed
    # at 56, when the foreground is done: a tie goes to the process): no helper
    bg = critical.work_list(critical.ANCHOR_ORDER, ["nb01"])
    assert bg == ("riemann", "eegnet", "nb01", "bandpower", "thetacov")
    path = critical.critical_path(t, bg)
    assert "nb01" not in path.foreground and "starter" not in path.foreground
    assert sum(path.foreground.values()) == 56 and path.helper == {}
    assert path.background == {"load": 1, "riemann": 6, "eegnet": 10, "nb01": 35, "bandpower": 4, "thetacov": 3}
    assert path.anchors_done == 59 and path.critical == "background" and path.total == 59 + 40
    assert critical.work_list(("riemann", "bandpower"), ["nb01"]) == ("riemann", "bandpower", "nb01")


def test_the_plan_moves_notebook_01_to_the_anchors_only_where_the_run_ends_sooner():
    from kit.pipeline.estimate import expected_run, plan_run

    small, large = plan_run(n_trials=2389, n_train=2042), plan_run(n_trials=11943, n_train=10209)
    assert small.deferred == ("nb01",) and large.deferred == ()
    assert small.total < expected_run(n_trials=2389, n_train=2042).total
    assert large.total == expected_run(n_trials=11943, n_train=10209).total
    assert "notebooks 02-04" in small.line() and "notebooks 01-04" in large.line()


def test_profile_stages_times_each_stage_in_its_own_process(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KIT_OUTPUT", str(tmp_path / "out"))
    data = write_demo_dataset(tmp_path / "demo", scale=0.01, seed=1)
    out = tmp_path / "profile.json"
    assert main(["profile-stages", "--data", str(data), "--profile", "smoke", "--stages", "load", "features",
                 "features_cached", "starter", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| starter |" in text and "critical path" in text
    res = timing.StageProfile.from_json(json.loads(out.read_text()))
    assert list(res.times) == ["load", "features", "features_cached", "starter"]
    for t in res.times.values():
        assert t.seconds > 0 and t.peak_mib > 50 and t.child_seconds >= t.seconds
    assert res.times["features"].peak_mib > res.times["features"].base_mib  # the features were built there
    root = tmp_path / "out" / "profile-stages" / "demo" / "artifacts" / "demo"
    assert (root / "starter" / "predictions.npz").is_file() and list((root / "cache").glob("features-*.npy"))
    assert not (tmp_path / "out" / "artifacts").exists()  # the user's artifacts are not touched
    with pytest.raises(KitError, match="unknown stages"):
        timing.profile_stages(data, stages=("load", "csp"))


# ----------------------------------------------------------------------------- expected time
def test_fitted_costs_reproduce_the_measurements_and_scale_with_trials():
    for profile, tables in estimate.MEASURED.items():
        for n_trials, n_train, times in tables:
            got = estimate.stage_seconds(n_trials, n_train, profile)
            for stage, seconds in times.items():
                if stage in got:
                    assert got[stage] == pytest.approx(seconds, rel=0.35, abs=3.0), (profile, stage)
    est = estimate.expected_run(n_trials=11943, n_train=10209)
    small = estimate.expected_run(n_trials=2389, n_train=2042)
    assert small.total < est.total and est.total == pytest.approx(max(est.foreground, est.background) + est.final)
    assert "expected" in est.line() and "on this machine" in est.line()
    assert estimate.expected_run(n_trials=11943, n_train=10209, speed=2.0).total == pytest.approx(est.total / 2)


def test_fit_costs_by_hand_and_errors(tmp_path):
    c = estimate.fit_costs([(1000, 800, {"eegnet": 18.0, "load": 2.0}), (5000, 4000, {"eegnet": 82.0, "load": 1.0})])
    assert c["eegnet"] == ("train", pytest.approx(2.0), pytest.approx(20.0), 1.0)  # 2 s + 20 s per 1,000 trials
    assert c["load"] == ("all", 2.0, 0.0, 1.0)  # falls with the trials: a constant, the larger time
    c = estimate.fit_costs([(1000, 800, {"nb01": 10.0}), (5000, 4000, {"nb01": 100.0})])
    power = np.log(10.0) / np.log(5.0)  # a negative fixed cost: the power law through both sizes
    assert c["nb01"] == ("train", 0.0, pytest.approx(100.0 / 4.0 ** power), pytest.approx(power))
    with pytest.raises(KitError, match="no measured stage costs"):
        estimate.stage_seconds(100, 80, "full")
    with pytest.raises(KitError, match="n_train"):
        estimate.stage_seconds(100, 0)
    assert estimate.plan_line(tmp_path / "missing") == (None, ())
    data = write_demo_dataset(tmp_path / "demo", scale=0.01, seed=0)
    line, _ = estimate.plan_line(data)
    assert line.startswith("expected ") and "trials" in line
    assert estimate.plan_line(data, profile="full") == (None, ())
