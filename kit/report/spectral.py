"""Frequency and scalp views: power spectra by class and the topomap of a band-power difference.

Same conventions as :mod:`kit.report.plots` (``P`` is (n_trials, n_chans, n_times) band power, ``y`` 1 emotional
and 0 neutral, ``times`` in s after the cue); figures are returned and saved with
:func:`kit.report.common.save_figure`.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from kit.core.docs import fill_doc
from kit.data.montage import channel_info
from kit.eval.clusters import subject_differences
from kit.report.common import (
    channel_names,
    channel_selection,
    check_epochs,
    class_means,
    draw_class_means,
    label_sensors,
    legend_outside,
    save_figure,
    window_mask,
)


@fill_doc
def plot_topomap_difference(P: np.ndarray, y: np.ndarray, times: np.ndarray, ch_names: Sequence[str], *,
                            subject: np.ndarray | None = None, tmin: float = 0.4, tmax: float = 0.6,
                            band: str = "theta", unit: str = "log power", sfreq: float = 200.0,
                            save_dir: str | os.PathLike | None = None, name: str = "topomap_difference") -> Figure:
    """Scalp map of the emotional-minus-neutral band power averaged over ``tmin``-``tmax``.

    Electrode positions come from mne's template 10-20 montage
    (``standard_1020``; ``mne.create_info`` + ``set_montage``), drawn with
    :func:`mne.viz.plot_topomap`.

    Parameters
    ----------
    P : ndarray, shape (n_trials, n_chans, n_times)
        Band power of one band.
    y : ndarray, shape (n_trials,)
        1 emotional, 0 neutral; others ignored.
    times : ndarray, shape (n_times,)
        Seconds after the cue.
    ch_names : sequence of str
        10-20 names of the n_chans channels (case-insensitive).
    subject : ndarray, shape (n_trials,), optional
        When given the difference is the mean of the per-subject differences
        (each subject weighs the same), otherwise of all trials pooled.
    tmin, tmax : float
        Window in s, inclusive (default 0.4-0.6 s, the paper's cluster).
    band, unit : str
        Title and colour-bar label.
    sfreq : float
        Sampling rate in Hz, only stored in the mne Info.
    %(save_dir)s

    Returns
    -------
    Figure
        Two axes: the head and its colour bar.

    Raises
    ------
    KitError
        A channel name that the montage does not know, an empty window, bad shapes.
    """
    import mne

    P, y, times, subject = check_epochs(P, y, times, subject)
    names = channel_names(ch_names, P.shape[1])
    info = channel_info(names, sfreq)  # KitError naming a channel without template position
    Pw = P[:, :, window_mask(times, tmin, tmax)].mean(axis=2)  # (n_trials, n_chans)
    if subject is not None:
        diff = subject_differences(Pw, y, subject)[1].mean(axis=0)
    else:
        diff = Pw[y == 1].mean(axis=0) - Pw[y == 0].mean(axis=0)

    lim = float(np.abs(diff).max()) or 1.0
    fig, ax = plt.subplots(figsize=(4.6, 4.0), layout="constrained")
    im, _ = mne.viz.plot_topomap(diff, info, axes=ax, show=False, names=names, cmap="RdBu_r",
                                 vlim=(-lim, lim), contours=4, sensors=True,
                                 extrapolate="local")
    label_sensors(ax, names)
    fig.colorbar(im, ax=ax, shrink=0.8, label=f"emotional − neutral ({unit})")
    counts = (f"{len(np.unique(subject))} subjects, " if subject is not None else "") + f"{len(y)} trials"
    ax.set_title(f"{band} power, {tmin:.2f}-{tmax:.2f} s after cue\n(n = {counts})", fontsize=9)
    save_figure(fig, save_dir, name)
    return fig


@fill_doc
def plot_psd_by_class(X: np.ndarray, y: np.ndarray, sfreq: float, ch_names: Sequence[str] | None = None, *,
                      subject: np.ndarray | None = None, channels: str | Sequence[str] | None = None,
                      bands: Mapping[str, tuple[float, float]] | None = None, fmax: float = 30.0,
                      save_dir: str | os.PathLike | None = None, name: str = "psd_by_class") -> Figure:
    """Power spectrum of the trials (Welch), emotional vs neutral, with the frequency bands marked.

    Each trial's spectrum is computed with :func:`scipy.signal.welch` over
    its whole length (1 s at 200 Hz: 1 Hz resolution, Hann window), in
    10·log10(µV²/Hz) = dB, averaged over the selected channels, then mean ±
    SEM per class (over subjects when ``subject`` is given).

    Parameters
    ----------
    %(X_trials)s
    y : ndarray, shape (n_trials,)
        1 emotional, 0 neutral; others ignored.
    %(sfreq)s
    ch_names : sequence of str, optional
        Needed when ``channels`` names channels.
    subject : ndarray, shape (n_trials,), optional
        SEM over subjects instead of trials.
    channels : str or sequence of str, optional
        Channels to average; default all.
    bands : mapping name -> (low, high) Hz, optional
        Shaded and labelled; default :data:`kit.signal.features.BANDS`.
    fmax : float
        Highest frequency shown, Hz.
    %(save_dir)s

    Returns
    -------
    Figure
        One axes.

    Raises
    ------
    KitError
        Bad shapes, unknown channels, a class with no trial.
    """
    from scipy.signal import welch

    from kit.signal.features import BANDS

    X = np.asarray(X)
    times = np.arange(X.shape[-1]) / float(sfreq) if X.ndim == 3 else np.zeros(0)
    X, y, _, subject = check_epochs(X, y, times, subject)
    names = channel_names(ch_names, X.shape[1])
    idx, label = channel_selection(channels, names)
    freqs, psd = welch(X[:, idx], fs=sfreq, nperseg=X.shape[-1], axis=-1)  # (n_trials, n_sel, n_freqs)
    db = 10 * np.log10(psd.mean(axis=1) + 1e-20)  # (n_trials, n_freqs)
    keep = (freqs > 0) & (freqs <= fmax)
    stats = class_means(db[:, keep], y, subject)
    fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    for k, (band, (lo, hi)) in enumerate((bands or BANDS).items()):
        ax.axvspan(lo, min(hi, fmax), color="0.92" if k % 2 else "0.85", lw=0, zorder=0)
        ax.text((lo + min(hi, fmax)) / 2, 1.0, band, transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=8)
    draw_class_means(ax, freqs[keep], stats, lw=1.4)
    ax.set_xlim(freqs[keep][0], fmax)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("power (dB re 1 µV²/Hz)")
    over = f"{len(np.unique(subject))} subjects, " if subject is not None else ""
    ax.set_title(f"spectrum of the 1 s after the cue ({label}; mean ± SEM, n = {over}{len(y)} trials)", pad=16,
                 fontsize=9)
    legend_outside(ax)
    save_figure(fig, save_dir, name)
    return fig




@fill_doc
def plot_montage(ch_names: Sequence[str], *, title: str = "", save_dir: str | os.PathLike | None = None,
                 name: str = "montage") -> Figure:
    """The channels on the scalp (mne's 10-20 template, seen from above, nose up), each named, and the
    neighbours the spatio-temporal cluster tests join (:func:`kit.data.montage.channel_adjacency`) as lines.

    Parameters
    ----------
    ch_names : sequence of str
        10-20 names of the channels.
    title : str
        Axes title; default names the number of channels.
    %(save_dir)s

    Returns
    -------
    Figure
        One axes (head outline, sensors, names, adjacency).

    Raises
    ------
    KitError
        A channel without template position.
    """
    import mne

    from kit.data.montage import channel_adjacency

    names = [str(c) for c in ch_names]
    info = channel_info(names)
    fig, ax = plt.subplots(figsize=(4.4, 4.4), layout="constrained")
    mne.viz.plot_sensors(info, kind="topomap", show_names=True, axes=ax, show=False, pointsize=14)
    dots = [c for c in ax.collections if len(c.get_offsets()) == len(names)]
    if dots:  # mne draws the sensors as one scatter, in channel order, and one name beside each
        xy = np.asarray(dots[0].get_offsets())
        where = dict(zip(info.ch_names, xy))
        for text in ax.texts:
            if text.get_text() in where:
                x, y = where[text.get_text()]
                text.set(position=(x, y + 0.005), ha="center", va="bottom", fontsize=7)
        adj = channel_adjacency(names).toarray()
        for i, j in zip(*np.nonzero(np.triu(adj, 1))):
            ax.plot(xy[[i, j], 0], xy[[i, j], 1], color="0.7", lw=0.7, zorder=0)
    ax.set_title(title or f"{len(names)} channels (10-20 template)\nlines: neighbours in the cluster tests")
    save_figure(fig, save_dir, name)
    return fig
