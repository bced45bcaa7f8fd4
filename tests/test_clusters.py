"""kit.eval.clusters: cluster permutation tests over subjects, against scipy's t and on the demo and its null copy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from kit.core.errors import KitError
from kit.data.dataset import load_dataset
from kit.data.demo import write_demo_dataset
from kit.data.layout import CH_NAMES
from kit.data.montage import channel_adjacency
from kit.eval.clusters import band_cluster_table, cluster_test_space_time, cluster_test_time, subject_differences
from kit.report import plots
from kit.signal.features import theta_power

TIMES = np.arange(200) / 200.0


def synthetic(effect: float, *, n_subjects: int = 12, n_per_class: int = 20, chans=(2, 3, 4), seed: int = 0):
    """Band power (n_trials, 16, 200): emotional trials + ``effect`` on ``chans`` over samples 80-119 (0.4-0.6 s)."""
    rng = np.random.default_rng(seed)
    n = n_subjects * 2 * n_per_class
    P = rng.normal(size=(n, 16, 200))
    P = (P + np.roll(P, 1, axis=2) + np.roll(P, 2, axis=2)) / 3  # some temporal smoothness, as band power has
    y = np.tile(np.repeat([0, 1], n_per_class), n_subjects)
    subject = np.repeat(np.arange(n_subjects), 2 * n_per_class)
    P[np.ix_(y == 1, list(chans), np.arange(80, 120))] += effect
    return P, y, subject


def test_t_map_is_the_one_sample_t_of_the_subject_differences():
    P, y, subject = synthetic(0.3)
    test = cluster_test_time(P, y, subject, TIMES, n_permutations=256)
    _, D = subject_differences(P, y, subject)  # (12, 16, 200)
    ref = stats.ttest_1samp(D.mean(axis=1), 0.0, axis=0).statistic
    np.testing.assert_allclose(test.t_obs, ref, rtol=1e-10)
    assert test.threshold == pytest.approx(stats.t.ppf(0.975, 11))
    np.testing.assert_allclose(test.differences, D.mean(axis=1))


def test_a_planted_effect_is_one_significant_cluster_where_it_was_put():
    P, y, subject = synthetic(0.5)
    sig = cluster_test_time(P, y, subject, TIMES, channels=["C3", "C4", "Cz"], n_permutations=512).significant()
    assert len(sig) == 1
    c = sig[0]
    assert 75 <= c.start <= 82 and 117 <= c.stop <= 124 and c.t_sum > 0 and c.p_value < 0.01
    assert (c.tmin, c.tmax) == (TIMES[c.start], TIMES[c.stop])
    assert c.mask.sum() == c.stop - c.start + 1


def test_no_effect_no_significant_cluster_and_a_fixed_seed_repeats():
    P, y, subject = synthetic(0.0, seed=3)
    a = cluster_test_time(P, y, subject, TIMES, n_permutations=512, seed=1)
    b = cluster_test_time(P, y, subject, TIMES, n_permutations=512, seed=1)
    assert a.significant() == []
    assert [c.p_value for c in a.clusters] == [c.p_value for c in b.clusters]


def test_space_time_cluster_names_the_channels_with_the_effect():
    P, y, subject = synthetic(0.6, chans=(2, 4, 3))  # C3, Cz, C4: neighbours on the scalp
    test = cluster_test_space_time(P, y, subject, TIMES, n_permutations=256)
    assert test.t_obs.shape == (200, 16) and test.differences.shape == (12, 200, 16)
    sig = test.significant()
    assert len(sig) == 1
    assert {"C3", "Cz", "C4"} <= set(sig[0].channels)
    planted, others = [2, 3, 4], [i for i in range(16) if i not in (2, 3, 4)]
    assert sig[0].mask[80:120][:, planted].mean() > 0.9  # the planted block is in the cluster...
    assert sig[0].mask[:, others].sum() < 0.3 * sig[0].mask[:, planted].sum()  # ...and little noise joins it
    assert 70 <= sig[0].start <= 85 and 115 <= sig[0].stop <= 130


def test_adjacency_is_symmetric_and_links_neighbours():
    adj = channel_adjacency(CH_NAMES).toarray().astype(bool)
    assert adj.shape == (16, 16) and (adj == adj.T).all()
    idx = {c: i for i, c in enumerate(CH_NAMES)}
    assert adj[idx["C3"], idx["C5"]] and adj[idx["C4"], idx["C6"]] and not adj[idx["F3"], idx["O2"]]


def test_bad_input_is_one_clear_error():
    P, y, subject = synthetic(0.0, n_subjects=2)
    with pytest.raises(KitError, match="at least 3 subjects"):
        cluster_test_time(P, y, subject, TIMES)
    P, y, subject = synthetic(0.0)
    with pytest.raises(KitError, match=r"channels \['Fz'\] not among"):
        cluster_test_time(P, y, subject, TIMES, channels=["Fz"])
    with pytest.raises(KitError, match="times has 10 values"):
        cluster_test_time(P, y, subject, TIMES[:10])


@pytest.mark.parametrize("effect, found", [(1.0, True), (0.0, False)])
def test_demo_theta_cluster_near_0_4_0_6_s_and_none_on_its_null_copy(tmp_path, effect, found):
    """The simulator puts a theta effect at 0.4-0.6 s; its null copy (effect 0) must show no cluster."""
    tr = load_dataset(write_demo_dataset(tmp_path / "demo", scale=0.2, seed=0, effect=effect), splits=("train",))
    P = theta_power(tr.X, tr.sfreq, tr.subject)
    sig = cluster_test_time(P, tr.y, tr.subject, tr.times, ch_names=tr.ch_names, seed=0).significant()
    if found:
        assert len(sig) == 1 and sig[0].t_sum > 0
        assert 0.35 <= sig[0].tmin <= 0.45 and 0.55 <= sig[0].tmax <= 0.7, sig[0].describe()
    else:
        assert sig == []


def test_band_table_and_cluster_figures(tmp_path):
    rng = np.random.default_rng(0)
    n_subjects, n = 8, 30
    t = np.arange(200) / 200.0
    X = rng.normal(size=(n_subjects * 2 * n, 16, 200)) * 5.0
    y = np.tile(np.repeat([0, 1], n), n_subjects)
    subject = np.repeat(np.arange(n_subjects), 2 * n)
    burst = np.sin(np.pi * np.clip((t - 0.3) / 0.4, 0, 1)) ** 2  # smooth 0.3-0.7 s envelope: no broadband onset
    X[np.ix_(y == 1, [2, 3, 4], np.arange(200))] += 20.0 * np.sin(2 * np.pi * 6.0 * t) * burst
    rows = band_cluster_table(X, y, subject, 200.0, t, n_permutations=128)
    assert [r["band"] for r in rows] == ["delta", "theta", "alpha", "sigma", "beta"]
    theta = rows[1]
    assert theta["significant"] >= 1 and "emotional > neutral" in theta["clusters"] and theta["min_p"] < 0.05
    assert rows[4]["significant"] == 0 and rows[4]["clusters"] == "-"
    P, y2, s2 = synthetic(0.5)
    for test, name in ((cluster_test_time(P, y2, s2, TIMES, n_permutations=128), "time"),
                       (cluster_test_space_time(P, y2, s2, TIMES, n_permutations=128), "space_time")):
        fig = plots.plot_cluster_test(test, n_trials=len(P), save_dir=tmp_path, name=name)
        assert "n = 12 subjects, 480 trials" in fig.axes[0].get_title()
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
