"""Figures for the EDA and the results: band power by class, subject differences, topomaps, AUC over time.

Every function takes arrays, returns the :class:`matplotlib.figure.Figure`
and, when ``save_dir`` is given, also writes ``save_dir/{name}.png``
atomically (:func:`kit.store.artifacts.atomic_write`), e.g. under
``reports/figures/``.  Figures are made with ``pyplot`` so that a notebook
shows them inline; in scripts close them with ``plt.close(fig)``.  Nothing
here selects a GUI backend: on a headless machine matplotlib falls back to
Agg by itself.

Conventions: ``P`` is band power of shape (n_trials, n_chans, n_times), e.g.
one band of :func:`kit.signal.features.band_power` (log µV²) or of
:func:`kit.signal.features.band_features` (z-scored, no unit); ``y`` holds 1 for
emotional, 0 for neutral; trials with any other label (-1, test) are ignored.
``times`` is in seconds after the cue.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from kit.store.artifacts import atomic_write
from kit.core.errors import KitError

EMO_COLOR = "#c0392b"
NEU_COLOR = "#2c7fb8"
WINDOW = (0.4, 0.6)
"""The paper's cluster, in s after the cue (Abdellahi, Tsimpanouli & Lewis 2025)."""


# ----------------------------------------------------------------------------- helpers
def save_figure(fig: Figure, save_dir: str | os.PathLike | None, name: str, *, dpi: int = 110) -> Path | None:
    """Write ``fig`` as ``save_dir/{name}.png`` atomically; do nothing when ``save_dir`` is None.

    Returns
    -------
    Path or None
        The PNG written, or None.
    """
    if save_dir is None:
        return None
    path = Path(save_dir) / f"{name}.png"
    with atomic_write(path) as fh:
        fig.savefig(fh, format="png", dpi=dpi, bbox_inches="tight")
    return path


def _check(P: np.ndarray, y: np.ndarray, times: np.ndarray,
           subject: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate shapes; keep only labelled trials (y in {0, 1})."""
    P = np.asarray(P)
    y = np.asarray(y).ravel()
    times = np.asarray(times, dtype=float).ravel()
    if P.ndim != 3:
        raise KitError(f"band power must be (n_trials, n_chans, n_times), got shape {P.shape}")
    if len(y) != len(P):
        raise KitError(f"y has {len(y)} labels for {len(P)} trials")
    if len(times) != P.shape[2]:
        raise KitError(f"times has {len(times)} values for n_times={P.shape[2]}")
    keep = (y == 0) | (y == 1)
    if subject is not None:
        subject = np.asarray(subject).ravel()
        if len(subject) != len(P):
            raise KitError(f"subject has {len(subject)} entries for {len(P)} trials")
        subject = subject[keep]
    P, y = P[keep], y[keep]
    if not (y == 1).any() or not (y == 0).any():
        raise KitError("need labelled trials of both classes (1 emotional, 0 neutral)")
    return P, y.astype(int), times, subject


def _channel_names(ch_names: Sequence[str] | None, n_chans: int) -> list[str]:
    if ch_names is None:
        return [f"ch{i}" for i in range(n_chans)]
    ch_names = [str(c) for c in ch_names]
    if len(ch_names) != n_chans:
        raise KitError(f"{len(ch_names)} channel names for {n_chans} channels")
    return ch_names


def class_means(P: np.ndarray, y: np.ndarray, subject: np.ndarray | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Mean and SEM of ``P`` per class.

    Parameters
    ----------
    P : ndarray, shape (n_trials, ...)
        Any per-trial quantity, e.g. band power (n_trials, n_chans, n_times).
    y : ndarray, shape (n_trials,)
        Labels 0/1.
    subject : ndarray, shape (n_trials,), optional
        When given, each subject's class mean is one observation: the mean
        and SEM are over subjects (n_subjects - 1 degrees of freedom), which
        is how a group effect is judged.  Otherwise over trials.

    Returns
    -------
    dict
        ``{label: (mean, sem)}``, each of shape ``P.shape[1:]``.
    """
    out = {}
    for label in (0, 1):
        sel = P[y == label]
        if subject is not None:
            subj = subject[y == label]
            sel = np.stack([sel[subj == s].mean(axis=0) for s in np.unique(subj)])
        n = len(sel)
        sem = sel.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(sel.shape[1:])
        out[label] = (sel.mean(axis=0), sem)
    return out


def subject_differences(P: np.ndarray, y: np.ndarray, subject: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Emotional-minus-neutral mean of ``P`` for each subject that has both classes.

    Parameters
    ----------
    P : ndarray, shape (n_trials, ...)
    y, subject : ndarray, shape (n_trials,)

    Returns
    -------
    subjects : ndarray, shape (n_subjects,)
    D : ndarray, shape (n_subjects, ...)
        ``mean(P[emotional]) - mean(P[neutral])`` per subject.
    """
    subjects, diffs = [], []
    for s in np.unique(subject):
        m = subject == s
        emo, neu = m & (y == 1), m & (y == 0)
        if emo.any() and neu.any():
            subjects.append(s)
            diffs.append(P[emo].mean(axis=0) - P[neu].mean(axis=0))
    if not subjects:
        raise KitError("no subject has trials of both classes")
    return np.asarray(subjects), np.stack(diffs)


def _mark_cue_and_window(ax, window: tuple[float, float] | None) -> None:
    ax.axvline(0.0, color="0.3", lw=0.8, ls="--")
    if window is not None:
        ax.axvspan(window[0], window[1], color="0.85", zorder=0, lw=0)


def _grid(n: int) -> tuple[int, int]:
    ncols = math.ceil(math.sqrt(n))
    return math.ceil(n / ncols), ncols


# ----------------------------------------------------------------------------- figures
def plot_band_power_by_class(P: np.ndarray, y: np.ndarray, times: np.ndarray,
                             ch_names: Sequence[str] | None = None, *, subject: np.ndarray | None = None,
                             band: str = "theta", unit: str = "log power", window: tuple[float, float] | None = WINDOW,
                             save_dir: str | os.PathLike | None = None,
                             name: str = "band_power_by_class") -> Figure:
    """Trial-averaged band power over time, emotional vs neutral, one panel per channel.

    Parameters
    ----------
    P : ndarray, shape (n_trials, n_chans, n_times)
        Band power of one band (e.g. theta 4-8 Hz Hilbert power, log µV² or z-scored).
    y : ndarray, shape (n_trials,)
        1 emotional, 0 neutral; other labels are ignored.
    times : ndarray, shape (n_times,)
        Seconds after the cue (the cue is at 0).
    ch_names : sequence of str, optional
        n_chans names for the panel titles.
    subject : ndarray, shape (n_trials,), optional
        When given the shaded band is ± SEM over subjects (each subject's
        class mean is one observation), otherwise ± SEM over trials.
    band, unit : str
        Used in the title and the y label.
    window : (float, float) or None
        Interval in s shaded grey (default 0.4-0.6 s, the paper's cluster).
    save_dir : path, optional
        Folder for ``{name}.png``.
    name : str
        File stem of the PNG.

    Returns
    -------
    Figure
        n_chans axes on a near-square grid (4 x 4 for 16 channels), shared axes.

    Raises
    ------
    KitError
        Shapes that do not match, or a class with no trial.
    """
    P, y, times, subject = _check(P, y, times, subject)
    names = _channel_names(ch_names, P.shape[1])
    stats = class_means(P, y, subject)
    nrows, ncols = _grid(P.shape[1])
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.2 * nrows), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    flat = axes.ravel()
    for ax in flat[P.shape[1]:]:
        ax.remove()
    for c, ax in enumerate(flat[: P.shape[1]]):
        _mark_cue_and_window(ax, window)
        for label, color, text in ((0, NEU_COLOR, "neutral"), (1, EMO_COLOR, "emotional")):
            mean, sem = stats[label]
            ax.plot(times, mean[c], color=color, lw=1.2, label=text)
            ax.fill_between(times, mean[c] - sem[c], mean[c] + sem[c], color=color, alpha=0.25, lw=0)
        ax.set_title(names[c], fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        if ax in fig.axes:
            ax.set_xlabel("time after cue (s)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(unit, fontsize=8)
    over = f"{len(np.unique(subject))} subjects" if subject is not None else f"{len(y)} trials"
    flat[0].legend(fontsize=7, loc="upper right", frameon=False)
    fig.suptitle(f"{band} power, emotional vs neutral (mean ± SEM over {over})")
    save_figure(fig, save_dir, name)
    return fig


def _channel_selection(channels: str | Sequence[str] | None, names: list[str]) -> tuple[list[int], str]:
    if channels is None:
        return list(range(len(names))), "mean of all channels"
    if isinstance(channels, str):
        channels = [channels]
    missing = [c for c in channels if c not in names]
    if missing:
        raise KitError(f"channels {missing} not among {names}")
    return [names.index(c) for c in channels], "+".join(channels)


def plot_subject_difference(P: np.ndarray, y: np.ndarray, subject: np.ndarray, times: np.ndarray,
                            ch_names: Sequence[str] | None = None, *, channels: str | Sequence[str] | None = None,
                            band: str = "theta", unit: str = "log power",
                            window: tuple[float, float] | None = WINDOW,
                            save_dir: str | os.PathLike | None = None, name: str = "subject_difference") -> Figure:
    """Per-subject emotional-minus-neutral time courses and their grand mean.

    Left panel: one thin line per subject, the grand mean ± SEM over
    subjects in black.  Right panel: the same differences as an image
    (subjects x time), which shows whether an effect is shared or carried by
    a few subjects.

    Parameters
    ----------
    P : ndarray, shape (n_trials, n_chans, n_times)
        Band power of one band.
    y, subject : ndarray, shape (n_trials,)
        Labels (1 emotional, 0 neutral, others ignored) and subject ids.
    times : ndarray, shape (n_times,)
        Seconds after the cue.
    ch_names : sequence of str, optional
        Channel names (needed when ``channels`` names channels).
    channels : str or sequence of str, optional
        Channel(s) to average; default: all channels.
    band, unit : str
        Title and y label.
    window : (float, float) or None
        Interval in s shaded grey.
    save_dir : path, optional
        Folder for ``{name}.png``.
    name : str
        File stem of the PNG.

    Returns
    -------
    Figure
        Three axes: time courses, image, colour bar.

    Raises
    ------
    KitError
        Bad shapes, unknown channel names, or no subject with both classes.
    """
    P, y, times, subject = _check(P, y, times, subject)
    if subject is None:
        raise KitError("subject ids are required")
    names = _channel_names(ch_names, P.shape[1])
    idx, label = _channel_selection(channels, names)
    subjects, D = subject_differences(P[:, idx].mean(axis=1), y, subject)  # (n_subjects, n_times)
    grand = D.mean(axis=0)
    sem = D.std(axis=0, ddof=1) / math.sqrt(len(D)) if len(D) > 1 else np.zeros_like(grand)

    fig, (ax, ax_img) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained",
                                     gridspec_kw={"width_ratios": [1.3, 1]})
    _mark_cue_and_window(ax, window)
    ax.axhline(0.0, color="0.5", lw=0.8)
    cmap = plt.get_cmap("tab20")
    for k, (s, d) in enumerate(zip(subjects, D)):
        ax.plot(times, d, color=cmap(k % 20), lw=0.8, alpha=0.7, label=f"S{s}")
    ax.fill_between(times, grand - sem, grand + sem, color="k", alpha=0.2, lw=0)
    ax.plot(times, grand, color="k", lw=2.2, label="grand mean")
    ax.set_xlabel("time after cue (s)")
    ax.set_ylabel(f"emotional − neutral ({unit})")
    ax.set_title(f"{band} power difference per subject ({label})")
    ax.legend(fontsize=6, ncol=2, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))

    lim = float(np.abs(D).max()) or 1.0
    dt = times[1] - times[0] if len(times) > 1 else 1.0
    im = ax_img.imshow(D, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                       extent=(times[0] - dt / 2, times[-1] + dt / 2, len(D) - 0.5, -0.5))
    ax_img.set_yticks(range(len(D)), [f"S{s}" for s in subjects], fontsize=7)
    ax_img.set_xlabel("time after cue (s)")
    ax_img.set_title("emotional − neutral, subjects x time")
    if window is not None:
        for t in window:
            ax_img.axvline(t, color="k", lw=0.8, ls=":")
    fig.colorbar(im, ax=ax_img, label=unit)
    save_figure(fig, save_dir, name)
    return fig


def _montage():
    """mne's template 10-20 montage ('standard_1020', renamed 'colin27_1020' in mne 1.13)."""
    import mne

    montage_name = "colin27_1020" if "colin27_1020" in mne.channels.get_builtin_montages() else "standard_1020"
    return mne.channels.make_standard_montage(montage_name)


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
    save_dir : path, optional
        Folder for ``{name}.png``.
    name : str
        File stem of the PNG.

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

    P, y, times, subject = _check(P, y, times, subject)
    names = _channel_names(ch_names, P.shape[1])
    montage = _montage()
    known = {c.lower(): c for c in montage.ch_names}
    missing = [c for c in names if c.lower() not in known]
    if missing:
        raise KitError(f"channels {missing} are not in the standard_1020 montage; cannot place them on the scalp")
    sel = (times >= tmin - 1e-9) & (times <= tmax + 1e-9)
    if not sel.any():
        raise KitError(f"no sample between {tmin} s and {tmax} s (times run {times[0]:.3f}-{times[-1]:.3f} s)")
    Pw = P[:, :, sel].mean(axis=2)  # (n_trials, n_chans)
    if subject is not None:
        diff = subject_differences(Pw, y, subject)[1].mean(axis=0)
    else:
        diff = Pw[y == 1].mean(axis=0) - Pw[y == 0].mean(axis=0)

    info = mne.create_info([known[c.lower()] for c in names], sfreq, ch_types="eeg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        info.set_montage(montage)
    lim = float(np.abs(diff).max()) or 1.0
    fig, ax = plt.subplots(figsize=(4.6, 4.0), layout="constrained")
    im, _ = mne.viz.plot_topomap(diff, info, axes=ax, show=False, names=names, cmap="RdBu_r",
                                 vlim=(-lim, lim), contours=4, sensors=True,
                                 extrapolate="local")
    fig.colorbar(im, ax=ax, shrink=0.8, label=f"emotional − neutral ({unit})")
    ax.set_title(f"{band} power, {tmin:.2f}-{tmax:.2f} s after cue")
    save_figure(fig, save_dir, name)
    return fig


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
    X : ndarray, shape (n_trials, n_chans, n_times)
        EEG in µV.
    y : ndarray, shape (n_trials,)
        1 emotional, 0 neutral; others ignored.
    sfreq : float
        Sampling rate in Hz.
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
    save_dir : path, optional
        Folder for ``{name}.png``.
    name : str
        File stem of the PNG.

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
    X, y, _, subject = _check(X, y, times, subject)
    names = _channel_names(ch_names, X.shape[1])
    idx, label = _channel_selection(channels, names)
    freqs, psd = welch(X[:, idx], fs=sfreq, nperseg=X.shape[-1], axis=-1)  # (n_trials, n_sel, n_freqs)
    db = 10 * np.log10(psd.mean(axis=1) + 1e-20)  # (n_trials, n_freqs)
    keep = (freqs > 0) & (freqs <= fmax)
    stats = class_means(db[:, keep], y, subject)
    fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    for k, (band, (lo, hi)) in enumerate((bands or BANDS).items()):
        ax.axvspan(lo, min(hi, fmax), color="0.92" if k % 2 else "0.85", lw=0, zorder=0)
        ax.text((lo + min(hi, fmax)) / 2, 1.0, band, transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=8)
    for lab, color, text in ((0, NEU_COLOR, "neutral"), (1, EMO_COLOR, "emotional")):
        mean, sem = stats[lab]
        ax.plot(freqs[keep], mean, color=color, lw=1.4, label=text)
        ax.fill_between(freqs[keep], mean - sem, mean + sem, color=color, alpha=0.25, lw=0)
    ax.set_xlim(freqs[keep][0], fmax)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("power (dB re 1 µV²/Hz)")
    ax.set_title(f"spectrum of the 1 s after the cue ({label})", pad=16)
    ax.legend(frameon=False)
    save_figure(fig, save_dir, name)
    return fig


def plot_auc_timecourse(curves: Mapping[str, np.ndarray] | np.ndarray, times: np.ndarray,
                        window: tuple[int, int] | Mapping[str, tuple[int, int] | None] | None = None, *,
                        title: str = "time-resolved LOSO AUC", chance: float = 0.5,
                        save_dir: str | os.PathLike | None = None, name: str = "auc_timecourse") -> Figure:
    """Time-resolved AUC curves m[t] with the metric's scored window shaded.

    Parameters
    ----------
    curves : dict of name -> ndarray, shape (n_times,), or one ndarray
        m[t], the mean over subjects of the per-sample AUC (e.g. the
        ``curve`` of :func:`kit.eval.cv.loso_score`).
    times : ndarray, shape (n_times,)
        Seconds after the cue.
    window : (start, stop) or dict of name -> (start, stop) or None, optional
        The window the metric scored, as sample indices with ``stop``
        inclusive (:class:`kit.eval.metric.WindowScore`).  One tuple is shaded
        grey; a dict shades each curve's window in its colour, and the
        legend shows the mean of m[t] over it (the score).
    title : str
        Axes title.
    chance : float
        Level of the dashed chance line.
    save_dir : path, optional
        Folder for ``{name}.png``.
    name : str
        File stem of the PNG.

    Returns
    -------
    Figure
        One axes.

    Raises
    ------
    KitError
        A curve whose length is not n_times, a window outside the curve.
    """
    times = np.asarray(times, dtype=float).ravel()
    if not isinstance(curves, Mapping):
        curves = {"model": curves}
    fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
    ax.axhline(chance, color="0.4", lw=0.9, ls="--", label="chance")
    ax.axvline(0.0, color="0.3", lw=0.8, ls=":")

    def shade(win, color, alpha):
        start, stop = int(win[0]), int(win[1])
        if not 0 <= start <= stop < len(times):
            raise KitError(f"window {win} outside samples 0..{len(times) - 1}")
        dt = times[1] - times[0] if len(times) > 1 else 0.0
        ax.axvspan(times[start] - dt / 2, times[stop] + dt / 2, color=color, alpha=alpha, lw=0, zorder=0)
        return start, stop

    if window is not None and not isinstance(window, Mapping) and window[0] is not None:
        shade(window, "0.8", 0.6)
    colors = plt.get_cmap("tab10")
    for k, (label, curve) in enumerate(curves.items()):
        curve = np.asarray(curve, dtype=float).ravel()
        if len(curve) != len(times):
            raise KitError(f"curve {label!r} has {len(curve)} samples, times has {len(times)}")
        color = colors(k % 10)
        text = str(label)
        win = window.get(label) if isinstance(window, Mapping) else window
        if win is not None and win[0] is not None:
            if isinstance(window, Mapping):
                shade(win, color, 0.15)
            start, stop = int(win[0]), int(win[1])
            text += f" (window {times[start]:.3f}-{times[stop]:.3f} s, score {curve[start:stop + 1].mean():.3f})"
        ax.plot(times, curve, color=color, lw=1.4, label=text)
    ax.set_xlabel("time after cue (s)")
    ax.set_ylabel("AUC, mean over subjects")
    ax.set_title(title)
    ax.legend(fontsize=7, frameon=False, loc="best")
    save_figure(fig, save_dir, name)
    return fig
