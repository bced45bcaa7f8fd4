"""Activation patterns (Haufe et al. 2014), band permutation importance and the figures of what the models use."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from kit.core.errors import KitError  # noqa: E402
from kit.data.layout import CH_NAMES  # noqa: E402
from kit.deep.fusion import EXPERT_ARRAYS, fusion_pattern  # noqa: E402
from kit.methods.lda import haufe_pattern  # noqa: E402
from kit.methods.patterns import band_permutation_importance, bandpower_patterns, starter_patterns, thetacov_patterns  # noqa: E402
from kit.report import plots  # noqa: E402
from kit.report.models import window_mean  # noqa: E402
from kit.store.artifacts import save_npz  # noqa: E402

SFREQ = 200.0
TIMES = np.arange(200) / SFREQ


def test_pattern_of_a_noise_cancelling_filter_points_at_the_signal_channel():
    """Haufe et al.'s example: x1 = signal + distractor, x2 = distractor; w = (1, -1) decodes the signal."""
    rng = np.random.default_rng(0)
    s, d = rng.normal(size=20000), 3.0 * rng.normal(size=20000)
    F = np.column_stack([s + d, d])
    w = np.array([1.0, -1.0])
    a = haufe_pattern(F, w)
    np.testing.assert_allclose(a, np.cov(F.T) @ w / np.var(F @ w, ddof=1), rtol=1e-12)  # the formula itself
    np.testing.assert_allclose(a, [1.0, 0.0], atol=0.05)  # large weight on x2, but it carries no signal
    with pytest.raises(KitError, match="do not match"):
        haufe_pattern(F, np.ones(3))
    with pytest.raises(KitError, match="no variance"):
        haufe_pattern(np.ones((5, 2)), w)


def theta_trials(*, n_subjects=6, per_class=20, chans=(2, 3), seed=0):
    """EEG (n_trials, 16, 200) µV: emotional trials carry a 6-Hz burst on ``chans`` at 0.3-0.7 s."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.repeat([0, 1], per_class), n_subjects)
    subject = np.repeat(np.arange(n_subjects), 2 * per_class)
    X = rng.normal(size=(len(y), 16, 200)) * (1.0 + 0.3 * subject[:, None, None])
    burst = np.exp(-((TIMES - 0.5) / 0.1) ** 2)
    phase = rng.uniform(0, 2 * np.pi, size=(len(y), 1, 1))
    X[:, list(chans)] += (y[:, None, None] * 1.5 * burst * np.sin(2 * np.pi * 6.0 * TIMES + phase)
                          * (1.0 + 0.3 * subject[:, None, None]))
    return X, y, subject


def test_starter_pattern_peaks_on_the_channels_with_the_effect():
    X, y, subject = theta_trials()
    out = starter_patterns(X, y, subject, SFREQ)
    assert out["weights"].shape == out["patterns"].shape == (200, 16)
    a = window_mean(out["patterns"], TIMES, 0.4, 0.6)
    assert set(np.argsort(a)[-2:]) == {2, 3} and a[2] > 0
    with pytest.raises(KitError, match="no sample"):
        window_mean(out["patterns"], TIMES, 2.0, 3.0)


def test_thetacov_pattern_is_a_symmetric_channel_map_peaking_on_the_effect():
    X, y, subject = theta_trials(seed=2)
    out = thetacov_patterns(X, y, subject, SFREQ)
    P, W, sel = out["patterns"], out["weights"], out["selected"]
    assert P.shape == W.shape == sel.shape == (16, 16)
    assert np.array_equal(P, P.T) and np.array_equal(sel, sel.T) and sel[np.triu_indices(16)].sum() == 75
    assert (P[~sel] == 0).all() and (W[~sel] == 0).all()
    top = np.unravel_index(np.argsort(np.abs(np.triu(P)), axis=None)[-3:], P.shape)
    assert set(zip(*top)) <= {(2, 2), (2, 3), (3, 3)}  # the two channels with the burst, and their covariance
    fig = plots.plot_channel_matrix({"w": W, "a": P}, CH_NAMES)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["w", "a"]
    with pytest.raises(KitError, match=r"expected \(16, 16\)"):
        plots.plot_channel_matrix({"w": W[:3]}, CH_NAMES)


def test_bandpower_pattern_and_band_importance_find_theta():
    X, y, subject = theta_trials(seed=1)
    bp = bandpower_patterns(X, y, subject, SFREQ)
    assert bp["patterns"].shape == bp["weights"].shape == (len(bp["bands"]), 16)
    assert any("theta" in b for b in bp["bands"]) and "@" in bp["choice"]
    k = [i for i, b in enumerate(bp["bands"]) if "theta" in b][0]
    assert set(np.argsort(bp["patterns"][k])[-2:]) == {2, 3}
    imp = band_permutation_importance(X, y, subject, SFREQ, n_repeats=3, seed=0)
    assert imp["bands"] == ["delta", "theta", "alpha", "sigma", "beta"]
    assert imp["per_subject"].shape == (6, 5) and imp["auc"] > 0.7
    assert int(np.argmax(imp["importance"])) == 1 and imp["importance"][1] > 0.1
    assert abs(imp["importance"][4]) < 0.05  # beta carries nothing
    with pytest.raises(KitError, match="n_repeats"):
        band_permutation_importance(X, y, subject, SFREQ, n_repeats=0)


def test_fusion_pattern_is_the_haufe_pattern_on_z_scored_logits(tmp_path):
    rng = np.random.default_rng(2)
    n, c, T = 40, 16, 5
    subject = np.repeat([1, 2, 3, 4], 10)
    shapes = {"oof_logits": (n, c), "oof_course": (n, c, T), "test_logits": (4, 6, c), "test_course": (4, 6, c, T),
              "inner_logits": (2, n, c), "inner_course": (2, n, c, T)}
    arrays = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    arrays.update(inner_group=np.repeat([0, 1], 20), subject=subject, y=np.tile([0, 1], 20),
                  test_subject=np.repeat([9, 10], 3))
    assert set(arrays) == set(EXPERT_ARRAYS)
    path = save_npz(tmp_path / "predictions.npz", **arrays)
    # folds that weigh expert 3 alone (mean weight 2): on independent z-scored logits the pattern is
    # cov(F) w / var(F w) = 2 var(F_3) e_3 / (4 var(F_3)) = e_3 / 2, up to the sample correlations
    coef = np.zeros((4, c))
    coef[:, 3] = [1.0, 2.0, 3.0, 2.0]
    pattern = fusion_pattern(path, coef)
    assert pattern[3] == pytest.approx(0.5, abs=1e-12)
    assert np.abs(np.delete(pattern, 3)).max() < 0.25


def test_model_figures_save_png_and_pdf_and_check_shapes(tmp_path):
    fig = plots.plot_topomaps({"a": np.arange(16.0), "b": -np.arange(16.0)}, CH_NAMES, title="t (n = 3)",
                              save_dir=tmp_path, name="maps")
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["a", "b"]
    with pytest.raises(KitError, match=r"expected \(16,\)"):
        plots.plot_topomaps({"a": np.zeros(15)}, CH_NAMES)
    imp = {"bands": ["delta", "theta"], "importance": np.array([0.0, 0.1]), "sem": np.array([0.01, 0.02]),
           "per_subject": np.zeros((4, 2)), "auc": 0.6}
    fig = plots.plot_band_importance(imp, n_trials=80, save_dir=tmp_path, name="imp")
    assert "4 held-out subjects, 80 trials" in fig.axes[0].get_title()
    att = np.full((40, 16, 20), 1 / 20)
    att[:20, :, 10] += 0.05
    y, subject = np.tile(np.repeat([0, 1], 5), 4), np.repeat([1, 2, 3, 4], 10)
    fig = plots.plot_attention_by_class(att, y, subject, TIMES, save_dir=tmp_path, name="att")
    line = fig.axes[0].get_lines()[1]  # [0] is the cue line, then neutral
    assert len(line.get_xdata()) == 20 and line.get_xdata()[0] == pytest.approx(TIMES[:10].mean())
    with pytest.raises(KitError, match="do not divide"):
        plots.plot_attention_by_class(np.ones((40, 16, 7)), y, subject, TIMES)
    for stem in ("maps", "imp", "att"):
        assert (tmp_path / f"{stem}.png").is_file() and (tmp_path / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    plt.close("all")
