"""The deep stages' inputs (02-04): per channel and sample, log band power, merged bands and the slow waveform.

Input ``X (n_trials, n_chans, n_times)`` in µV at ``sfreq`` Hz; output ``(n_trials, n_chans, n_times,
n_features)`` float32, z-scored per subject (:func:`kit.signal.features.zscore_per_subject`; no labels).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.signal import features
from kit.signal.features import BANDS, CHUNK_TRIALS, band_power, check_trials, zscore_per_subject

BROAD_BANDS: dict[str, tuple[float, float]] = {"mu_beta": (8.0, 30.0)}
"""Merged bands added to :data:`BANDS` for the deep stages (Hz).  8-30 Hz is where motor and
arousal-related power changes sit when the split into alpha/sigma/beta spreads a weak effect
thin (theta, 4-8 Hz, is already one of the five bands)."""

SLOW_CUTOFF = 4.0
"""Cut-off (Hz) of the low-passed waveform feature: below it lie the cue-evoked K-complexes and
slow oscillations, which are phase-locked to the cue and show in the waveform itself."""


def deep_feature_names(bands: Mapping[str, tuple[float, float]] = BANDS,
                       broad: Mapping[str, tuple[float, float]] = BROAD_BANDS,
                       slow_cutoff: float | None = SLOW_CUTOFF) -> list[str]:
    """Names of the last axis of :func:`deep_features`, in order (e.g. ``delta ... beta, mu_beta, slow``)."""
    return list(bands) + list(broad) + (["slow"] if slow_cutoff else [])


def describe_deep_features(bands: Mapping[str, tuple[float, float]] = BANDS,
                           broad: Mapping[str, tuple[float, float]] = BROAD_BANDS,
                           slow_cutoff: float | None = SLOW_CUTOFF) -> list[dict]:
    """One row per feature of :func:`deep_features`: ``name``, ``what``, ``band_hz``, ``unit_before_zscore``."""
    rows = [{"name": k, "what": "log Hilbert power", "band_hz": tuple(v), "unit_before_zscore": "ln(µV²)"}
            for k, v in {**dict(bands), **dict(broad)}.items()]
    if slow_cutoff:
        rows.append({"name": "slow", "what": "low-passed waveform", "band_hz": (0.0, float(slow_cutoff)),
                     "unit_before_zscore": "µV"})
    return rows


@fill_doc
def lowpass(X: np.ndarray, sfreq: float, cutoff: float, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass along the last axis, trials extended by their edge values.

    Parameters
    ----------
    X : ndarray, shape (..., n_times)
        Signals in µV.
    %(sfreq)s
    cutoff : float
        Cut-off in Hz, ``0 < cutoff < sfreq / 2``.
    order : int
        Butterworth order of the single-pass design (zero phase: effective ``2 * order``).

    Returns
    -------
    ndarray, same shape as ``X``, float32 (float64 for float64 input)

    Raises
    ------
    KitError
        Cut-off outside (0, Nyquist).
    """
    X = np.asarray(X)
    if not 0.0 < cutoff < sfreq / 2.0:
        raise KitError(f"low-pass cut-off {cutoff} Hz: need 0 < cutoff < Nyquist ({sfreq / 2:g} Hz)")
    out = features.lowpass(X, sfreq, cutoff, order)  # the same filter (one matrix product, filter_operator)
    return out if X.dtype == np.float64 else out.astype(np.float32)


@fill_doc
def deep_features(X: np.ndarray, subject: np.ndarray, sfreq: float, *,
                  bands: Mapping[str, tuple[float, float]] = BANDS,
                  broad: Mapping[str, tuple[float, float]] = BROAD_BANDS,
                  slow_cutoff: float | None = SLOW_CUTOFF) -> np.ndarray:
    """Per-channel, per-sample inputs of the MAE and the channel experts, z-scored per subject.

    For every channel and time sample (names from :func:`deep_feature_names`):

    ======== ======================================= ================ =========================
    name     what                                    band (Hz)        unit before the z-score
    ======== ======================================= ================ =========================
    delta    log Hilbert power                       0.5-4            ln(µV²)
    theta    log Hilbert power                       4-8              ln(µV²)
    alpha    log Hilbert power                       8-12             ln(µV²)
    sigma    log Hilbert power (spindles)            12-16            ln(µV²)
    beta     log Hilbert power                       16-30            ln(µV²)
    mu_beta  log Hilbert power, merged band          8-30             ln(µV²)
    slow     low-passed waveform (evoked K-complex,  < 4              µV
             slow oscillation: phase-locked)
    ======== ======================================= ================ =========================

    Each feature is then z-scored within each subject, per channel, over that
    subject's trials and samples (:func:`zscore_per_subject`; no labels, so
    test subjects are normalised on their own trials).  The first five are the
    3rd-place input (its public write-up); the merged band and the waveform make
    sure a cue-locked effect is visible whether it is a power change in a
    broad band or an evoked (phase-locked) response.

    Parameters
    ----------
    %(X_trials)s
    subject : ndarray, shape (n_trials,)
    %(sfreq)s
    bands, broad : mapping name -> (low, high) Hz
        Default :data:`BANDS` and :data:`BROAD_BANDS`.
    slow_cutoff : float or None
        Low-pass cut-off of the waveform feature in Hz (default 4); None drops it.

    Returns
    -------
    ndarray, shape (n_trials, n_chans, n_times, n_features), float32
        Unitless (z-scores).

    Raises
    ------
    KitError
        Bad shapes or a band outside (0, Nyquist).
    """
    X = check_trials(X)
    if np.asarray(subject).shape != (X.shape[0],):
        raise KitError(f"deep_features: subject has shape {np.shape(subject)}, X has {X.shape[0]} trials")
    power_bands = {**dict(bands), **dict(broad)}
    n_feat = len(power_bands) + (1 if slow_cutoff else 0)
    out = np.empty(X.shape + (n_feat,), np.float32)
    out[..., : len(power_bands)] = band_power(X, sfreq, power_bands)
    if slow_cutoff:
        for lo in range(0, X.shape[0], CHUNK_TRIALS):
            out[lo:lo + CHUNK_TRIALS, :, :, -1] = lowpass(np.asarray(X[lo:lo + CHUNK_TRIALS], np.float64),
                                                          sfreq, slow_cutoff)
    return zscore_per_subject(out, subject, out=out)
