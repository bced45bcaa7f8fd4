"""Morlet time-frequency power, its cluster test, the filter edge effect, the low-pass and the evoked figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from kit.core.errors import KitError  # noqa: E402
from kit.data.layout import CH_NAMES  # noqa: E402
from kit.data.montage import CHANNEL_GROUPS  # noqa: E402
from kit.eval.clusters import cluster_test_tfr, group_cluster_tests, subject_differences  # noqa: E402
from kit.report import plots  # noqa: E402
from kit.signal.edges import colored_noise, edge_effect  # noqa: E402
from kit.signal.features import lowpass  # noqa: E402
from kit.signal.tfr import FREQS, default_n_cycles, morlet_log_power, tfr_by_trial  # noqa: E402

SFREQ = 200.0
TIMES = np.arange(200) / SFREQ


def _sine(f, amp=1.0, n=200):
    return amp * np.sin(2 * np.pi * f * np.arange(n) / SFREQ)


def test_morlet_power_peaks_at_the_sine_and_scales_with_its_square():
    X = np.stack([[_sine(10.0), _sine(20.0, 3.0)]])  # (1 trial, 2 chans, 200)
    T = morlet_log_power(X, SFREQ)
    assert T.shape == (1, 2, 200, len(FREQS)) and T.dtype == np.float32
    mid = T[0, :, 60:140].mean(axis=1)  # (2, n_freqs), away from the edges
    assert FREQS[mid[0].argmax()] == 10.0 and FREQS[mid[1].argmax()] == 20.0
    X2 = X * 2.0
    strong = T > np.log(1e-2)  # where the wavelets see the sines (elsewhere the log of ~0 + EPS)
    assert strong[0, 0, 100, FREQS == 10.0].all()
    np.testing.assert_allclose((morlet_log_power(X2, SFREQ) - T)[strong], np.log(4.0), atol=1e-3)  # ~ amplitude**2


def test_morlet_power_does_not_depend_on_the_chunk_bit_for_bit():
    # each trial's transforms are its own: the chunk (8 by default, once 32) changes the speed, not a number
    X = np.random.default_rng(4).normal(size=(19, 3, 200)) * 20.0
    ref = morlet_log_power(X, SFREQ, chunk=32)
    for chunk in (1, 8, 5):
        assert np.array_equal(morlet_log_power(X, SFREQ, chunk=chunk), ref)
    assert np.array_equal(morlet_log_power(X, SFREQ), ref)


def test_default_wavelets_have_80_ms_in_time_and_bad_frequencies_raise():
    f = np.array([2.0, 8.0, 30.0])
    np.testing.assert_allclose(default_n_cycles(f) / (2 * np.pi * f), 1 / (4 * np.pi))
    with pytest.raises(KitError, match="frequencies must be in"):
        morlet_log_power(np.zeros((1, 1, 200)), SFREQ, [0.0, 10.0])
    with pytest.raises(KitError, match="longer than the padded trial"):
        morlet_log_power(np.zeros((1, 1, 20)), SFREQ, [2.0], n_cycles=7.0)


def test_tfr_by_trial_is_zscored_per_subject_and_frequency():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3, 200))
    X[6:] *= 5.0  # the second subject is 5x larger: z-scoring removes it
    subject = np.repeat([1, 2], 6)
    T = tfr_by_trial(X, subject, SFREQ, [6.0, 12.0], progress=False)
    assert T.shape == (12, 200, 2)
    ref = morlet_log_power(X[:6], SFREQ, [6.0, 12.0])  # (6, 3, 200, 2)
    z = (ref - ref.mean(axis=(0, 2), keepdims=True)) / ref.std(axis=(0, 2), keepdims=True)
    np.testing.assert_allclose(T[:6], z.mean(axis=1), atol=1e-4)
    np.testing.assert_allclose(T[6:].mean(axis=(0, 1)), 0.0, atol=1e-5)


def test_tfr_cluster_test_finds_a_planted_patch_and_t_matches_scipy():
    rng = np.random.default_rng(1)
    n_subj, per = 10, 8
    T = rng.normal(size=(n_subj * 2 * per, 50, 12))
    y = np.tile(np.repeat([0, 1], per), n_subj)
    subject = np.repeat(np.arange(n_subj), 2 * per)
    T[np.ix_(y == 1, np.arange(20, 30), np.arange(2, 5))] += 0.8  # samples 20-29, freqs index 2-4
    times, freqs = np.arange(50) / 50.0, np.arange(4.0, 16.0)
    test = cluster_test_tfr(T, y, subject, times, freqs, n_permutations=512)
    _, D = subject_differences(T, y, subject)
    np.testing.assert_allclose(test.t_obs, stats.ttest_1samp(D, 0.0, axis=0).statistic, rtol=1e-10)
    sig = test.significant()
    assert len(sig) == 1
    c = sig[0]
    assert 0.36 <= c.tmin <= 0.42 and 0.56 <= c.tmax <= 0.62 and 5.0 <= c.fmin <= 6.0 and 8.0 <= c.fmax <= 9.0
    assert c.t_sum > 0 and "emotional > neutral" in c.describe()
    null = cluster_test_tfr(T[:, :, 6:], y, subject, times, freqs[6:], n_permutations=512)
    assert null.significant() == []
    with pytest.raises(KitError, match="n_freqs=3"):
        cluster_test_tfr(T, y, subject, times, freqs[:3])


def test_edge_effect_spans_more_samples_for_narrow_bands():
    eff = edge_effect(n_windows=120, bands={"theta": (4.0, 8.0), "beta": (16.0, 30.0)})
    th, be = eff["theta"], eff["beta"]
    assert th.r.shape == (200,) and 0.9 < th.centre <= 1.0
    assert th.r[0] < 0.6 * th.centre and th.r[100] > 0.9 * th.centre  # the ends are worse than the middle
    assert min(th.n_edge) > max(be.n_edge) > 0  # a 4-Hz-wide band needs more samples than a 14-Hz-wide one
    assert all(15 <= n <= 50 for n in th.n_edge) and th.first + th.n_edge[1] <= th.last
    with pytest.raises(KitError, match="level"):
        edge_effect(level=1.5)


def test_colored_noise_has_the_asked_slope():
    x = colored_noise(2 ** 16, SFREQ, 1.0, seed=0)
    f = np.fft.rfftfreq(x.size, 1 / SFREQ)
    p = np.abs(np.fft.rfft(x)) ** 2
    band = (f > 1) & (f < 50)
    slope = np.polyfit(np.log(f[band]), np.log(p[band]), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.1) and x.std() == pytest.approx(1.0)


def test_lowpass_keeps_slow_waves_and_removes_fast_ones():
    X = (_sine(2.0) + _sine(60.0))[None, None]
    out = lowpass(X, SFREQ, 30.0)
    np.testing.assert_allclose(out[0, 0, 20:-20], _sine(2.0)[20:-20], atol=0.02)
    assert out.dtype == np.float64 and lowpass(X.astype(np.float32), SFREQ).dtype == np.float32
    with pytest.raises(KitError, match="cut-off"):
        lowpass(X, SFREQ, 150.0)


@pytest.fixture(scope="module")
def evoked():
    """Low-passed EEG of 8 subjects, with a larger positive wave at 0.5 s after emotional cues over F3/F4."""
    rng = np.random.default_rng(2)
    n_subj, per = 8, 10
    y = np.tile(np.repeat([0, 1], per), n_subj)
    subject = np.repeat(np.arange(n_subj), 2 * per)
    X = rng.normal(size=(len(y), 16, 200)) + 5.0 * np.exp(-((TIMES - 0.5) / 0.08) ** 2)
    X[np.ix_(y == 1, [0, 1], np.arange(200))] += 3.0 * np.exp(-((TIMES - 0.5) / 0.08) ** 2)
    return lowpass(X, SFREQ, 30.0), y, subject


def test_group_cluster_tests_find_the_frontal_difference_only(evoked):
    X, y, subject = evoked
    tests = group_cluster_tests(X, y, subject, TIMES, n_permutations=256)
    assert list(tests) == list(CHANNEL_GROUPS)
    assert tests["frontal"].ch_names == CHANNEL_GROUPS["frontal"]
    sig = tests["frontal"].significant()
    assert len(sig) == 1 and sig[0].tmin < 0.5 < sig[0].tmax
    assert all(not tests[g].significant() for g in ("central", "centro-parietal", "parietal-occipital"))


def test_new_figures_save_png_and_pdf(evoked, tmp_path):
    X, y, subject = evoked
    tests = group_cluster_tests(X, y, subject, TIMES, n_permutations=64)
    fig = plots.plot_evoked_by_class(X, y, subject, TIMES, CH_NAMES, tests=tests, cutoff=30, save_dir=tmp_path,
                                     name="ev")
    assert len(fig.axes) == len(CHANNEL_GROUPS) and "8 subjects, 160 trials" in fig._suptitle.get_text()
    assert fig.axes[0].get_ylabel() == "µV"
    wrong = {"frontal": tests["central"]}
    with pytest.raises(KitError, match="not"):
        plots.plot_evoked_by_class(X, y, subject, TIMES, CH_NAMES, tests=wrong)
    rng = np.random.default_rng(3)
    T = rng.normal(size=(len(y), 200, 5))
    tt = cluster_test_tfr(T, y, subject, TIMES, np.arange(4.0, 9.0), n_permutations=64)
    fig2 = plots.plot_tfr_test(tt, n_trials=len(y), save_dir=tmp_path, name="tfr")
    assert fig2.axes[0].get_ylabel() == "frequency (Hz)"
    fig3 = plots.plot_edge_effect(edge_effect(n_windows=20, bands={"beta": (16.0, 30.0)}), TIMES, save_dir=tmp_path,
                                  name="edge")
    assert "beta: trusted" in fig3.axes[0].get_legend().get_texts()[0].get_text()
    for stem in ("ev", "tfr", "edge"):
        assert (tmp_path / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    plt.close("all")


def test_batched_fft_equals_mne_on_the_fully_padded_trial():
    """Short pad and short FFT are exact: mne's tfr_array_morlet on a trial padded by n_times - 1 edge values."""
    import mne

    X = np.random.default_rng(4).normal(size=(3, 2, 200))
    pad = 199
    xp = np.pad(X, ((0, 0), (0, 0), (pad, pad)), mode="edge")
    power = mne.time_frequency.tfr_array_morlet(xp, SFREQ, FREQS, n_cycles=FREQS / 2, output="power",
                                                verbose="error")
    ref = np.log(power[..., pad:pad + 200] + 1e-12).transpose(0, 1, 3, 2)
    np.testing.assert_allclose(morlet_log_power(X, SFREQ), ref, atol=1e-5)


def test_channel_groups_place_10_10_names_and_refuse_unknown_ones():
    from kit.data.montage import channel_groups

    assert channel_groups(["FC3", "C1", "Cz", "CP5", "Pz", "PO7", "Fp1"]) == {
        "frontal": ("FC3", "Fp1"), "central": ("C1", "Cz"), "centro-parietal": ("CP5",),
        "parietal-occipital": ("Pz", "PO7")}
    assert sum(map(len, CHANNEL_GROUPS.values())) == 16
    with pytest.raises(KitError, match="EOG1"):
        channel_groups(["Cz", "EOG1"])
