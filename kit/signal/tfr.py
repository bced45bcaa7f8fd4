"""Time-frequency power by Morlet wavelets (mne), with the same edge handling and normalisation as band power.

Source: mne's Morlet wavelets (``mne.time_frequency.morlet``, as ``tfr_array_morlet`` uses them: complex,
Gaussian in time and frequency; Tallon-Baudry et al., J Neurosci 1997; Cohen, *Analyzing Neural Time Series
Data*, ch. 13).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.signal.features import EPS, check_trials, zscore_per_subject

FREQS = np.arange(2.0, 31.0)
"""Default frequencies of the time-frequency maps: 2-30 Hz in 1-Hz steps."""


def default_n_cycles(freqs: np.ndarray) -> np.ndarray:
    """``freqs / 2`` cycles: the same time resolution at every frequency.

    The wavelet's temporal standard deviation is ``n_cycles / (2 pi f) = 1 / (4 pi) = 80 ms`` and its spectral
    one ``2 Hz``: fine enough in time for a 1-s trial, as wide in frequency as about half a band.
    """
    return np.asarray(freqs, np.float64) / 2.0


@fill_doc
def morlet_log_power(X: np.ndarray, sfreq: float, freqs: Sequence[float] = FREQS,
                     n_cycles: Sequence[float] | float | None = None, *, chunk: int = 8) -> np.ndarray:
    """Log Morlet power of each trial, channel, sample and frequency.

    Each trial is extended with its edge values on each side (as :func:`kit.signal.features.band_power`
    does; by half the longest wavelet, beyond which the pad cannot reach the trial), convolved with the wavelets
    (mne's zero-mean Morlet wavelets, ``mne.time_frequency.morlet``, by one batched FFT per chunk: the numbers of
    ``mne.time_frequency.tfr_array_morlet(..., output="power")``, which the tests use as the oracle) and cut back
    to the trial.

    Parameters
    ----------
    %(X_trials)s
    sfreq : float
        Hz.
    freqs : sequence of float
        Hz, each in (0, sfreq / 2); default :data:`FREQS` (2-30 Hz).
    n_cycles : float or sequence of float, optional
        Cycles per wavelet; default :func:`default_n_cycles` (``freqs / 2``).
    chunk : int
        Trials transformed at once (bounds the complex temporaries: 8 trials of 16 channels x 29 frequencies,
        about 23 MB, took 0.5-0.7 of the time of 32 on a 2-core EPYC; the numbers do not depend on it, each trial's
        transforms are its own).

    Returns
    -------
    ndarray, shape (n_trials, n_chans, n_times, n_freqs), float32
        Natural log of power in µV² (the layout of :func:`kit.signal.features.band_power`, frequencies
        in place of bands).

    Raises
    ------
    KitError
        Bad shape, no frequency, a frequency outside (0, Nyquist), or a wavelet longer than the padded trial.
    """
    from mne.time_frequency import morlet
    from scipy.fft import fft, ifft, next_fast_len

    X = check_trials(X)
    freqs = np.asarray(freqs, np.float64).ravel()
    if freqs.size == 0 or freqs.min() <= 0 or freqs.max() >= sfreq / 2:
        raise KitError(f"morlet_log_power: frequencies must be in (0, {sfreq / 2:g}) Hz, got {freqs}")
    n_cycles = default_n_cycles(freqs) if n_cycles is None else np.broadcast_to(np.asarray(n_cycles, float),
                                                                                freqs.shape)
    n_trials, n_chans, n_times = X.shape
    half = int(np.ceil(5 * np.max(n_cycles / (2 * np.pi * freqs)) * sfreq))  # mne's wavelet spans +-5 temporal sd
    if 2 * half + 1 > 3 * n_times - 2:
        raise KitError(f"morlet_log_power: a {2 * half + 1}-sample wavelet is longer than the padded trial "
                       f"({3 * n_times - 2} samples): use fewer cycles at {freqs.min():g} Hz")
    # edge values beyond half a wavelet cannot reach the trial: padding n_times - 1 or half + 1 gives the same
    pad = min(n_times - 1, half + 1)
    wavelets = morlet(sfreq, freqs, n_cycles=n_cycles, zero_mean=True)  # mne's, as tfr_array_morlet uses them
    # 'same' convolution, as mne's: output sample t is full-convolution sample t + (len(w) - 1) // 2; the
    # circular convolution of length nfft wraps only samples before the trial's start back onto the trial's
    # part when nfft >= n_times + pad + len(w) - 1 - (len(w) - 1) // 2, so nfft need not hold the whole pad
    starts = [pad + (w.size - 1) // 2 for w in wavelets]
    nfft = next_fast_len(max(n_times + pad + w.size - 1 - (w.size - 1) // 2 for w in wavelets))
    fw = np.stack([fft(w, nfft) for w in wavelets])  # (n_freqs, nfft)
    out = np.empty((n_trials, n_chans, n_times, freqs.size), np.float32)
    for lo in range(0, n_trials, max(1, int(chunk))):
        xp = np.pad(np.asarray(X[lo:lo + chunk], np.float64), ((0, 0), (0, 0), (pad, pad)), mode="edge")
        fx = fft(xp, nfft, axis=-1)  # (chunk, n_chans, nfft)
        conv = ifft(fx[:, :, None, :] * fw[None, None], axis=-1)  # (chunk, n_chans, n_freqs, nfft)
        power = np.stack([np.abs(conv[:, :, i, a:a + n_times]) ** 2 for i, a in enumerate(starts)], axis=-1)
        out[lo:lo + chunk] = np.log(power + EPS)  # (chunk, n_chans, n_times, n_freqs)
    return out


@fill_doc
def tfr_by_trial(X: np.ndarray, subject: np.ndarray, sfreq: float, freqs: Sequence[float] = FREQS, *,
                 n_cycles: Sequence[float] | float | None = None, channels: Sequence[int] | None = None,
                 progress: bool = True) -> np.ndarray:
    """Log Morlet power z-scored per subject, channel and frequency, then averaged over channels.

    Baseline-free: the trials begin at the cue, so there is no pre-cue baseline; as for the band power
    everywhere in the kit, each subject's power at each channel and frequency is z-scored over all its trials
    and samples (:func:`kit.signal.features.zscore_per_subject`): 0 is the subject's mean power at that
    frequency, and a map of emotional minus neutral compares the classes within subjects.  Subjects are
    transformed one at a time, so memory stays at one subject's ``(n_trials_s, n_chans, n_times, n_freqs)``.

    Parameters
    ----------
    %(X_trials)s
    subject : ndarray, shape (n_trials,)
    sfreq, freqs, n_cycles
        As in :func:`morlet_log_power`.
    channels : sequence of int, optional
        Channel indices averaged; default all.
    progress : bool
        A tqdm bar over the subjects (about 3 s per 150 trials of 16 channels on one core).

    Returns
    -------
    ndarray, shape (n_trials, n_times, n_freqs), float32

    Raises
    ------
    KitError
        As :func:`morlet_log_power`; ``subject`` of another length.
    """
    X = check_trials(X)
    subject = np.asarray(subject).ravel()
    if subject.shape != (X.shape[0],):
        raise KitError(f"tfr_by_trial: {subject.size} subject ids for {X.shape[0]} trials")
    picks = np.arange(X.shape[1]) if channels is None else np.asarray(channels, int)
    freqs = np.asarray(freqs, np.float64).ravel()
    out = np.empty((X.shape[0], X.shape[2], freqs.size), np.float32)
    for sid in tqdm(np.unique(subject), desc="Morlet power", unit="subject", disable=not progress):
        idx = np.flatnonzero(subject == sid)
        T = morlet_log_power(X[idx][:, picks], sfreq, freqs, n_cycles)  # (n_s, n_picks, n_times, n_freqs)
        zscore_per_subject(T, np.zeros(len(idx), int), out=T)
        out[idx] = T.mean(axis=1)
    return out
