"""Stage 03 and 04 on a small synthetic problem: the experts learn and never see the held-out subject;
fusion reads only the stored expert outputs and never the held-out subject's labels; TENT adapts."""

import shutil

import numpy as np
import pytest
import torch

from kit.core.errors import KitError
from kit.deep import experts_loso as experts_mod
from kit.deep.experts import ExpertsConfig, head_inputs, load_bank
from kit.deep.experts_loso import train_experts_loso
from kit.deep.fusion import FusionConfig, load_fusion, predict, train_fusion_loso, zscore_by_subject
from kit.deep.mae import MAEConfig, pretrain_mae
from kit.deep.nets import AttentionPoolHead, pool_time
from kit.deep.tta import TentConfig, binary_entropy, tent_adapt
from kit.eval.crossfit import crossfit_plan
from kit.eval.metric import subject_auc
from kit.store.artifacts import load_checkpoint, load_npz, save_npz

N_SUBJECTS, PER_SUBJECT, N_CHANS, N_TIMES, N_FEATURES = 6, 40, 3, 40, 7
WINDOW = slice(20, 30)  # samples where the emotional trials carry the effect


def _data(effect=1.5, seed=0):
    """Features ``(n, 3, 40, 7)``: emotional trials add ``effect`` to channel 0, feature 1, samples 20-29;
    two subjects are test subjects (no labels)."""
    rng = np.random.default_rng(seed)
    n = (N_SUBJECTS + 2) * PER_SUBJECT
    subject = np.repeat(np.arange(N_SUBJECTS + 2) + 1, PER_SUBJECT)
    y = np.tile(np.r_[np.zeros(PER_SUBJECT // 2), np.ones(PER_SUBJECT // 2)], N_SUBJECTS + 2).astype(np.int64)
    X = rng.standard_normal((n, N_CHANS, N_TIMES, N_FEATURES)).astype(np.float32)
    X[y == 1, 0, WINDOW, 1] += effect
    is_test = subject > N_SUBJECTS
    y[is_test] = -1
    return X, y, subject, is_test


MAE = dict(n_times=N_TIMES, n_features=N_FEATURES, pool=2, d_model=8, n_heads=2, d_ff=16, n_layers=1,
           epochs=1, batch_size=64, dropout=0.0)
CFG = ExpertsConfig(max_steps=60, eval_every=10, patience=0, n_support=8, n_query=8, meta_batch=3, lr=1e-2)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("experts")
    X, y, subject, is_test = _data()
    pretrain_mae(X, MAEConfig(**MAE), root / "mae", progress=False)
    arrays = train_experts_loso(X, y, subject, is_test, CFG, root / "mae" / "mae.pt", root / "experts",
                                progress=False, n_groups=3)
    return root, (X, y, subject, is_test), arrays


def test_experts_learn_the_effect_where_it_is(fitted):
    root, (X, y, subject, is_test), a = fitted
    n_train, T = int((~is_test).sum()), N_TIMES // 2
    assert a["oof"].shape == (n_train, N_TIMES) and a["test"].shape == (int(is_test.sum()), N_TIMES)
    assert a["oof_logits"].shape == (n_train, N_CHANS) and a["oof_attention"].shape == (n_train, N_CHANS, T)
    assert a["test_logits"].shape == (N_SUBJECTS, int(is_test.sum()), N_CHANS)
    assert a["inner_logits"].shape == (3, n_train, N_CHANS) and np.isfinite(a["inner_logits"]).all()
    s, yt = subject[~is_test], y[~is_test]
    assert subject_auc(a["oof_logits"][:, 0], yt, s) > 0.8  # the channel with the effect
    assert subject_auc(a["oof"][:, 0], yt, s) > 0.75  # the experts' mean
    att = a["oof_attention"][:, 0].mean(0)  # (T,), pooled 2x: the effect lies at model samples 10-14
    torch.testing.assert_close(torch.tensor(a["oof_attention"].sum(-1)), torch.ones(n_train, N_CHANS))
    assert att[10:15].sum() > 2 * att[:10].sum() / 2  # more weight per sample inside the window than before it


def test_fold_models_never_train_on_their_held_out_subject_and_reload_alone(fitted):
    root, (X, y, subject, is_test), a = fitted
    s = subject[~is_test]
    for k, held in enumerate(np.unique(s)):
        state = load_checkpoint(root / "experts" / f"fold{k}_seed0.pt")
        assert held not in state["trained_on"] and len(state["trained_on"]) == N_SUBJECTS - 1
    group, fits = crossfit_plan(s, 3)
    for fit in fits:
        trained = set(load_checkpoint(root / "experts" / f"inner_{fit.name}_seed0.pt")["trained_on"])
        assert not trained & set(s[fit.predict])
    bank, cfg = load_bank(root / "experts" / "fold2_seed0.pt")  # rebuilt from the file alone
    x = pool_time(torch.from_numpy(X[~is_test][s == np.unique(s)[2]]), 2, dim=2)
    with torch.no_grad():
        trial = bank(x).numpy()
    np.testing.assert_allclose(trial, a["oof_logits"][s == np.unique(s)[2]], rtol=1e-4, atol=1e-5)
    assert cfg == CFG


def test_finished_checkpoints_are_reused_and_another_config_refits(fitted, tmp_path, monkeypatch):
    root, (X, y, subject, is_test), a = fitted
    shutil.copytree(root / "experts", tmp_path / "experts")

    def no_fit(*args, **kwargs):
        raise AssertionError("refitted although every checkpoint matches")

    monkeypatch.setattr(experts_mod, "fit_heads", no_fit)
    again = train_experts_loso(X, y, subject, is_test, CFG, root / "mae" / "mae.pt", tmp_path / "experts",
                               progress=False, n_groups=3)
    np.testing.assert_array_equal(again["oof_logits"], a["oof_logits"])
    with pytest.raises(AssertionError, match="refitted"):
        train_experts_loso(X, y, subject, is_test, ExpertsConfig(**{**CFG.__dict__, "lr": 3e-3}),
                           root / "mae" / "mae.pt", tmp_path / "experts", progress=False, n_groups=3)


@pytest.mark.parametrize("meta", ["mldg", "fomaml"])
def test_meta_learning_modes_run_and_learn(fitted, tmp_path, meta):
    root, (X, y, subject, is_test), _ = fitted
    cfg = ExpertsConfig(**{**CFG.__dict__, "meta": meta, "max_steps": 30, "inner_steps": 1, "refit": False})
    a = train_experts_loso(X, y, subject, is_test, cfg, root / "mae" / "mae.pt", tmp_path / meta, progress=False,
                           n_groups=None)
    assert "inner_logits" not in a
    assert subject_auc(a["oof_logits"][:, 0], y[~is_test], subject[~is_test]) > 0.7


def test_unknown_meta_is_refused(fitted, tmp_path):
    root, (X, y, subject, is_test), _ = fitted
    with pytest.raises(KitError, match="meta must be one of"):
        train_experts_loso(X, y, subject, is_test, ExpertsConfig(meta="reptile"), root / "mae" / "mae.pt",
                           tmp_path, progress=False, n_groups=None)


# ----------------------------------------------------------------------------- fusion
def test_fusion_reads_only_the_stored_outputs_and_never_the_held_out_labels(fitted, tmp_path):
    root, (X, y, subject, is_test), _ = fitted
    only = tmp_path / "only"
    only.mkdir()
    shutil.copy(root / "experts" / "predictions.npz", only / "predictions.npz")  # no expert checkpoint beside it
    cfg = FusionConfig(epochs=2)
    f = train_fusion_loso(only / "predictions.npz", cfg, tmp_path / "fusion", N_TIMES, progress=False)
    assert f["oof"].shape == (int((~is_test).sum()), N_TIMES) and f["inner"].shape[0] == 3
    s, yt = subject[~is_test], y[~is_test]
    assert subject_auc(f["oof"][:, 0], yt, s) > 0.8
    # the stored logits are what fusion reads: fold 0's LDA applied to them gives its out-of-fold rows
    e = load_npz(only / "predictions.npz")
    model, kind = load_fusion(tmp_path / "fusion" / "fold0_lda.pt")
    rows = s == np.unique(s)[0]
    z = zscore_by_subject(e["oof_logits"], s)[rows]
    np.testing.assert_allclose(1 / (1 + np.exp(-predict(model, kind, z, None, N_TIMES))), f["oof_lda"][rows],
                               rtol=1e-5)
    # flipping the held-out subject's labels leaves its out-of-fold predictions unchanged
    flipped = dict(e)
    yf = e["y"].copy()
    yf[rows] = 1 - yf[rows]
    flipped["y"] = yf
    save_npz(only / "predictions.npz", **flipped)
    g = train_fusion_loso(only / "predictions.npz", cfg, tmp_path / "fusion2", N_TIMES, progress=False)
    np.testing.assert_array_equal(g["oof"][rows], f["oof"][rows])
    assert not np.array_equal(g["oof"][~rows], f["oof"][~rows])  # the others' folds did train on them


def test_fusion_on_null_outputs_stays_at_chance_where_an_in_sample_fit_would_not(tmp_path):
    rng = np.random.default_rng(1)
    n_sub, per, E, T, n_test = 12, 60, 16, 5, 20
    s = np.repeat(np.arange(n_sub) + 1, per)
    y = np.tile(np.r_[np.zeros(per // 2), np.ones(per // 2)], n_sub).astype(np.int64)
    group, _ = crossfit_plan(s, 4)
    G = group.max() + 1
    noise = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    save_npz(tmp_path / "experts.npz", oof_logits=noise(len(s), E), oof_course=noise(len(s), E, T),
             test_logits=noise(n_sub, n_test, E), test_course=noise(n_sub, n_test, E, T),
             inner_logits=noise(G, len(s), E), inner_course=noise(G, len(s), E, T), inner_group=group,
             subject=s, y=y, test_subject=np.repeat([91, 92], n_test // 2))
    f = train_fusion_loso(tmp_path / "experts.npz", FusionConfig(kind="lda"), tmp_path / "fusion", 10,
                          progress=False)
    assert subject_auc(f["oof"][:, 0], y, s) < 0.56
    # the same LDA fitted with the held-out subject's own rows (a leak) scores well above chance
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    z = zscore_by_subject(load_npz(tmp_path / "experts.npz")["oof_logits"], s)
    leaky = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(z, y).decision_function(z)
    assert subject_auc(leaky, y, s) > subject_auc(f["oof"][:, 0], y, s) + 0.03


def test_zscore_by_subject_by_hand():
    a = np.array([[1.0], [3.0], [10.0], [14.0]])
    out = zscore_by_subject(a, np.array([1, 1, 2, 2]))
    np.testing.assert_allclose(out[:, 0], [-1, 1, -1, 1])


def test_fusion_refuses_an_old_experts_file(tmp_path):
    save_npz(tmp_path / "old.npz", oof=np.zeros((2, 3)), subject=np.array([1, 2]))
    with pytest.raises(KitError, match="old.npz: no oof_logits"):
        train_fusion_loso(tmp_path / "old.npz", FusionConfig(), tmp_path / "f", 3, progress=False)
    with pytest.raises(KitError, match="kind must be one of"):
        train_fusion_loso(tmp_path / "old.npz", FusionConfig(kind="xgb"), tmp_path / "f", 3, progress=False)


# ----------------------------------------------------------------------------- TENT
def test_tent_lowers_each_models_entropy_on_its_own_trials_only(fitted):
    root, (X, y, subject, is_test), _ = fitted
    from kit.deep.mae import load_mae

    mae, mcfg = load_mae(root / "mae" / "mae.pt")
    x = head_inputs(mae, pool_time(torch.from_numpy(X[:80]), 2, dim=2))
    head = AttentionPoolHead(N_CHANS, x.shape[3], x.shape[2], n_models=2)
    target = torch.zeros(2, 80, dtype=torch.bool)
    target[0, :40] = True
    target[1, 40:] = True
    with torch.no_grad():
        before = binary_entropy(head(x)).mean(-1)  # (2, 80)
    tent_adapt(head, x, target, TentConfig(steps=30, lr=1e-2))
    with torch.no_grad():
        after = binary_entropy(head(x)).mean(-1)
    assert after[0, :40].mean() < before[0, :40].mean() and after[1, 40:].mean() < before[1, 40:].mean()
    with pytest.raises(KitError, match="trials for every model"):
        tent_adapt(head, x, torch.zeros(2, 80, dtype=torch.bool), TentConfig())


def test_binary_entropy_by_hand():
    z = torch.tensor([0.0, 2.0])
    p = torch.sigmoid(z)
    torch.testing.assert_close(binary_entropy(z), -(p * p.log() + (1 - p) * (1 - p).log()))
