"""What the models look at: scalp maps of weights and patterns, band importance, the experts' attention by class."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from kit.core.errors import KitError
from kit.data.montage import channel_info
from kit.report.common import (EMO_COLOR, NEU_COLOR, check_epochs, class_means, mark_cue_and_window, save_figure,
                               window_mask)


def plot_topomaps(maps: Mapping[str, np.ndarray], ch_names: Sequence[str], *, unit: str = "a.u.",
                  title: str = "", save_dir: str | os.PathLike | None = None, name: str = "topomaps") -> Figure:
    """One scalp map per entry (weights, patterns, ...), each with its own symmetric colour scale.

    Parameters
    ----------
    maps : mapping panel title -> ndarray, shape (n_chans,)
    ch_names : sequence of str
        10-20 names of the channels (template positions, :func:`kit.data.montage.channel_info`).
    unit : str
        Colour-bar label.
    title : str
        Figure title (give n subjects and trials there).
    save_dir, name
        Folder and stem of the PNG and PDF.

    Returns
    -------
    Figure

    Raises
    ------
    KitError
        A map of another length than ``ch_names``, no map, a channel without template position.
    """
    import mne

    if not maps:
        raise KitError("plot_topomaps: no map given")
    info = channel_info(list(ch_names))
    for label, m in maps.items():
        if np.shape(m) != (len(ch_names),):
            raise KitError(f"plot_topomaps: map {label!r} has shape {np.shape(m)}, expected ({len(ch_names)},)")
    fig, axes = plt.subplots(1, len(maps), figsize=(3.3 * len(maps), 3.3), squeeze=False, layout="constrained")
    for ax, (label, m) in zip(axes[0], maps.items()):
        m = np.asarray(m, np.float64)
        lim = float(np.abs(m).max()) or 1.0
        im, _ = mne.viz.plot_topomap(m, info, axes=ax, show=False, names=list(info.ch_names), cmap="RdBu_r",
                                     vlim=(-lim, lim), contours=4, sensors=True, extrapolate="local")
        fig.colorbar(im, ax=ax, shrink=0.7, label=unit)
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, save_dir, name)
    return fig


def plot_channel_matrix(maps: Mapping[str, np.ndarray], ch_names: Sequence[str], *, unit: str = "a.u.",
                        title: str = "", save_dir: str | os.PathLike | None = None,
                        name: str = "channel_matrix") -> Figure:
    """Channel x channel maps side by side (e.g. a covariance decoder's weights and patterns), own colour scales.

    Parameters
    ----------
    maps : mapping panel title -> ndarray, shape (n_chans, n_chans)
    ch_names : sequence of str
    unit, title, save_dir, name
        As in :func:`plot_topomaps`.

    Raises
    ------
    KitError
        A map that is not (n_chans, n_chans), or no map.
    """
    n = len(ch_names)
    if not maps:
        raise KitError("plot_channel_matrix: no map given")
    fig, axes = plt.subplots(1, len(maps), figsize=(4.6 * len(maps), 4.0), squeeze=False, layout="constrained")
    for ax, (label, M) in zip(axes[0], maps.items()):
        M = np.asarray(M, np.float64)
        if M.shape != (n, n):
            raise KitError(f"plot_channel_matrix: map {label!r} has shape {M.shape}, expected ({n}, {n})")
        lim = float(np.abs(M).max()) or 1.0
        im = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_xticks(range(n), list(ch_names), rotation=90, fontsize=6)
        ax.set_yticks(range(n), list(ch_names), fontsize=6)
        fig.colorbar(im, ax=ax, shrink=0.8, label=unit)
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, save_dir, name)
    return fig


def plot_band_importance(result: dict, *, n_trials: int | None = None, save_dir: str | os.PathLike | None = None,
                         name: str = "band_importance") -> Figure:
    """Permutation importance of each band, mean ± SEM over held-out subjects.

    Parameters
    ----------
    result : dict
        From :func:`kit.methods.patterns.band_permutation_importance`.
    n_trials : int, optional
        For the title.
    save_dir, name
        As for every figure.
    """
    imp, sem, bands = np.asarray(result["importance"]), np.asarray(result["sem"]), list(result["bands"])
    n = len(result["per_subject"])
    fig, ax = plt.subplots(figsize=(6.0, 3.2), layout="constrained")
    ax.bar(bands, imp, yerr=sem, color="tab:purple", capsize=3)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_ylabel("drop in held-out AUC when shuffled")
    counts = f"{n} held-out subjects" + (f", {n_trials} trials" if n_trials else "")
    ax.set_title(f"band importance, log-variance LDA under LOSO (AUC {result['auc']:.3f}; {counts})", fontsize=9)
    save_figure(fig, save_dir, name)
    return fig


def plot_attention_by_class(attention: np.ndarray, y: np.ndarray, subject: np.ndarray, times: np.ndarray, *,
                            save_dir: str | os.PathLike | None = None, name: str = "attention_by_class") -> Figure:
    """The experts' attention over the trial, averaged over experts, by class, mean ± SEM over subjects.

    Parameters
    ----------
    attention : ndarray, shape (n_trials, n_chans, T)
        Attention weights per trial, expert and pooled time step (each row sums to 1 over T), e.g. stage 03's
        ``oof_attention``.
    y, subject : ndarray, shape (n_trials,)
    times : ndarray, shape (n_times,)
        s after the cue of the unpooled samples; ``n_times`` must be a multiple of ``T`` (the bins' centres
        are plotted).
    save_dir, name
        As for every figure.

    Raises
    ------
    KitError
        Bad shapes, ``n_times`` not a multiple of ``T``, a class with no trial.
    """
    A = np.asarray(attention, np.float64)
    if A.ndim != 3:
        raise KitError(f"attention: expected (n_trials, n_chans, T), got shape {A.shape}")
    times = np.asarray(times, np.float64)
    T = A.shape[2]
    if len(times) % T:
        raise KitError(f"attention has {T} time steps, which do not divide n_times={len(times)}")
    centres = times.reshape(T, -1).mean(axis=1)
    a, y, centres, subject = check_epochs(A.mean(axis=1)[:, None], y, centres, subject)  # (n, 1, T)
    stats = class_means(a[:, 0], y, subject)
    fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
    mark_cue_and_window(ax, None)
    for label, color, text in ((0, NEU_COLOR, "neutral"), (1, EMO_COLOR, "emotional")):
        mean, sem = stats[label]
        ax.plot(centres, mean, color=color, lw=1.3, label=text)
        ax.fill_between(centres, mean - sem, mean + sem, color=color, alpha=0.25, lw=0)
    ax.axhline(1.0 / T, color="k", lw=0.8, ls=":", label="uniform")
    ax.set_xlabel("time after cue (s)")
    ax.set_ylabel("attention weight")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(f"experts' attention over the trial, mean of {A.shape[1]} experts "
                 f"(mean ± SEM over {len(np.unique(subject))} subjects, {len(y)} trials)", fontsize=9)
    save_figure(fig, save_dir, name)
    return fig


def window_mean(curves: np.ndarray, times: np.ndarray, tmin: float, tmax: float) -> np.ndarray:
    """Mean of ``curves (n_times, ...)`` over ``tmin <= times <= tmax`` (s); KitError on an empty window."""
    return np.asarray(curves)[window_mask(times, tmin, tmax)].mean(axis=0)
