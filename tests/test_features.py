"""Tests for kit.signal.features: band-pass, Hilbert band power, per-subject z-score."""

import numpy as np
import pytest

from kit.core.errors import KitError
from kit.signal import features
from kit.signal.features import BANDS, band_features, band_power, bandpass, theta_power, zscore_per_subject

SFREQ = 200.0
T = np.arange(200) / SFREQ


def sine(freq, amp=1.0, phase=0.0):
    return amp * np.sin(2 * np.pi * freq * T + phase)


def test_bandpass_passes_in_band_and_rejects_out_of_band():
    x = np.stack([sine(6.0, 3.0), sine(25.0, 3.0), sine(1.0, 3.0)])[None]  # (1, 3, 200)
    y = bandpass(x, SFREQ, (4.0, 8.0))
    mid = slice(50, 150)
    assert y.shape == x.shape
    # 6 Hz is kept: amplitude ~3 in the middle of the trial (within 10 %: a 4 Hz-wide
    # filter rings for ~250 ms after the trial edges), phase unchanged (zero phase)
    assert np.max(np.abs(y[0, 0, mid])) == pytest.approx(3.0, rel=0.1)
    assert np.corrcoef(y[0, 0, mid], x[0, 0, mid])[0, 1] > 0.995  # cos(5.7 deg)
    # 25 Hz and 1 Hz are attenuated
    assert np.max(np.abs(y[0, 1, mid])) < 0.1
    assert np.max(np.abs(y[0, 2, mid])) < 0.3


def test_bandpass_dtype_and_errors():
    x32 = np.random.default_rng(0).normal(size=(2, 3, 200)).astype(np.float32)
    assert bandpass(x32, SFREQ, (4, 8)).dtype == np.float32
    assert bandpass(x32.astype(np.float64), SFREQ, (4, 8)).dtype == np.float64
    with pytest.raises(KitError, match="Nyquist"):
        bandpass(x32, SFREQ, (4, 120))
    with pytest.raises(KitError, match="Nyquist"):
        bandpass(x32, SFREQ, (8, 4))


def test_band_power_of_a_sine_is_log_amplitude_squared():
    amp = 4.0
    x = np.zeros((2, 2, 200))
    x[0, 0] = sine(6.0, amp)
    x[1, 1] = sine(10.0, amp, 0.7)
    P = band_power(x, SFREQ)
    assert P.shape == (2, 2, 200, 5) and P.dtype == np.float32
    th, al = list(BANDS).index("theta"), list(BANDS).index("alpha")
    mid = slice(60, 140)
    # 4 Hz-wide bands ring after the trial edges: +-0.15 in log power (+-8 % in amplitude)
    np.testing.assert_allclose(P[0, 0, mid, th], np.log(amp ** 2), atol=0.15)
    np.testing.assert_allclose(P[1, 1, mid, al], np.log(amp ** 2), atol=0.15)
    assert np.median(P[0, 0, mid, th]) == pytest.approx(np.log(amp ** 2), abs=0.05)
    # A silent channel gives log(EPS), finite
    np.testing.assert_allclose(P[0, 1], np.log(features.EPS), atol=1e-3)
    # Out-of-band power is far below in-band power
    assert P[0, 0, mid, list(BANDS).index("beta")].max() < np.log(amp ** 2) - 5


def test_band_power_chunking_is_exact():
    X = np.random.default_rng(1).normal(size=(7, 3, 200)).astype(np.float32)
    a = band_power(X, SFREQ, chunk=2)
    b = band_power(X, SFREQ, chunk=100)
    np.testing.assert_array_equal(a, b)
    # and vectorised over trials == trial by trial
    c = np.concatenate([band_power(X[i:i + 1], SFREQ) for i in range(7)])
    np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-6)


def test_band_power_errors():
    with pytest.raises(KitError, match="n_trials"):
        band_power(np.zeros((3, 200)), SFREQ)
    with pytest.raises(KitError, match="no bands"):
        band_power(np.zeros((1, 1, 200)), SFREQ, {})


def test_zscore_per_subject_statistics_and_independence():
    rng = np.random.default_rng(2)
    F = rng.normal(size=(30, 4, 50, 2)) * np.array([1.0, 5.0])[None, None, None] + 7.0
    subject = np.repeat([3, 8, 5], 10)
    Z = zscore_per_subject(F.astype(np.float32), subject)
    assert Z.shape == F.shape and Z.dtype == np.float32
    for sid in (3, 5, 8):
        blk = Z[subject == sid].astype(np.float64)
        np.testing.assert_allclose(blk.mean(axis=(0, 2)), 0.0, atol=1e-5)
        np.testing.assert_allclose(blk.std(axis=(0, 2)), 1.0, atol=1e-5)
    # one subject's statistics do not leak into another's
    F2 = F.copy()
    F2[subject == 8] *= 100.0
    Z2 = zscore_per_subject(F2.astype(np.float32), subject)
    np.testing.assert_allclose(Z2[subject == 3], Z[subject == 3], atol=1e-6)
    # hand-computed 2-D case (std over trials only, ddof=0)
    F = np.array([[1.0], [3.0], [10.0], [10.0]])
    Z = zscore_per_subject(F, np.array([1, 1, 2, 2]))
    np.testing.assert_allclose(Z[:, 0], [-1.0, 1.0, 0.0, 0.0])  # constant feature -> 0


def test_zscore_per_subject_in_place():
    F = np.random.default_rng(4).normal(3.0, 2.0, size=(6, 2, 10)).astype(np.float32)
    subject = np.array([1, 1, 1, 2, 2, 2])
    want = zscore_per_subject(F, subject)
    got = zscore_per_subject(F, subject, out=F)
    assert got is F
    np.testing.assert_allclose(F, want, atol=1e-6)
    with pytest.raises(KitError, match="out has shape"):
        zscore_per_subject(F, subject, out=np.empty((6, 2)))


def test_zscore_per_subject_errors():
    with pytest.raises(KitError, match="subject"):
        zscore_per_subject(np.zeros((4, 2, 3)), np.zeros(5))
    with pytest.raises(KitError, match="2-D, 3-D or 4-D"):
        zscore_per_subject(np.zeros(4), np.zeros(4))


def test_band_features_and_theta_power_agree():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 2, 200)).astype(np.float32) * 10
    subject = np.repeat([1, 2], 6)
    BF = band_features(X, subject, SFREQ)
    TP = theta_power(X, SFREQ, subject)
    assert BF.shape == (12, 2, 200, 5) and TP.shape == (12, 2, 200)
    np.testing.assert_allclose(TP, BF[..., list(BANDS).index("theta")], atol=1e-5)
    # subject=None: one group
    np.testing.assert_allclose(theta_power(X, SFREQ), zscore_per_subject(TP * 0 + band_power(
        X, SFREQ, {"t": BANDS["theta"]})[..., 0], np.zeros(12)), atol=1e-5)
    with pytest.raises(KitError, match="subject"):
        band_features(X, subject[:5], SFREQ)


def test_euclidean_alignment_whitens_each_subject():
    from kit.signal.features import euclidean_alignment

    rng = np.random.default_rng(0)
    mix = [rng.standard_normal((4, 4)), rng.standard_normal((4, 4)) * 3]
    X = np.concatenate([np.einsum("cd,ndt->nct", m, rng.standard_normal((30, 4, 50))) for m in mix])
    subject = np.repeat([1, 2], 30)
    Z = euclidean_alignment(X, subject)
    for s in (1, 2):
        Zs = Z[subject == s].astype(np.float64)
        R = np.einsum("nct,ndt->cd", Zs, Zs) / (Zs.shape[0] * Zs.shape[2])
        np.testing.assert_allclose(R, np.eye(4), atol=1e-4)
    # the alignment of one subject does not depend on another subject's trials
    np.testing.assert_allclose(euclidean_alignment(X[:30], subject[:30]), Z[:30], rtol=1e-5, atol=1e-6)
