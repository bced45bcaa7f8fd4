"""What the models look at: scalp maps of weights and patterns, band importance, the experts' attention by class."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.data.montage import channel_info
from kit.report.common import (
    EMO_COLOR,
    NEU_COLOR,
    check_epochs,
    class_means,
    label_sensors,
    legend_outside,
    mark_cue_and_window,
    mark_untrusted,
    method_color,
    save_figure,
    scalp_order,
    untrusted_handle,
    window_mask,
)


@fill_doc
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
    %(save_dir)s

    Returns
    -------
    Figure
        One head per map, each with its colour bar.

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
        label_sensors(ax, info.ch_names)
        fig.colorbar(im, ax=ax, shrink=0.7, label=unit)
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, save_dir, name)
    return fig


@fill_doc
def plot_channel_matrix(maps: Mapping[str, np.ndarray], ch_names: Sequence[str], *, unit: str = "a.u.",
                        title: str = "", mask: np.ndarray | Mapping[str, np.ndarray] | None = None,
                        save_dir: str | os.PathLike | None = None, name: str = "channel_matrix") -> Figure:
    """Channel x channel maps side by side (e.g. a covariance decoder's weights and patterns), own colour scales.

    Rows and columns are ordered by scalp position (front to back, left to right:
    :func:`kit.report.common.scalp_order`); tick labels are 7 pt.

    Parameters
    ----------
    maps : mapping panel title -> ndarray, shape (n_chans, n_chans)
    ch_names : sequence of str
    unit, title
        As in :func:`plot_topomaps`.
    mask : ndarray of bool, shape (n_chans, n_chans), or mapping panel title -> such array, optional
        True where an entry was dropped (e.g. by a stability selection): drawn grey and named in the legend,
        so that a dropped entry is not read as a zero.  One array applies to every panel.
    %(save_dir)s

    Raises
    ------
    KitError
        A map or mask that is not (n_chans, n_chans), or no map.
    """
    from matplotlib.patches import Patch

    n = len(ch_names)
    if not maps:
        raise KitError("plot_channel_matrix: no map given")
    order = scalp_order(ch_names)
    names = [str(ch_names[i]) for i in order]
    fig, axes = plt.subplots(1, len(maps), figsize=(4.8 * len(maps), 4.4), squeeze=False, layout="constrained")
    any_masked = False
    for ax, (label, M) in zip(axes[0], maps.items()):
        M = np.asarray(M, np.float64)
        if M.shape != (n, n):
            raise KitError(f"plot_channel_matrix: map {label!r} has shape {M.shape}, expected ({n}, {n})")
        drop = mask.get(label) if isinstance(mask, Mapping) else mask
        M = M[np.ix_(order, order)]
        lim = float(np.abs(M).max()) or 1.0
        if drop is not None:
            drop = np.asarray(drop, bool)
            if drop.shape != (n, n):
                raise KitError(f"plot_channel_matrix: mask for {label!r} has shape {drop.shape}, expected ({n}, {n})")
            drop = drop[np.ix_(order, order)]
            any_masked |= bool(drop.any())
            M = np.ma.masked_array(M, drop)
        cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.72")
        im = ax.imshow(M, cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_xticks(range(n), names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), names, fontsize=7)
        ax.tick_params(length=0)
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)
        fig.colorbar(im, ax=ax, shrink=0.8, label=unit)
        ax.set_title(label, fontsize=9)
    if any_masked:
        fig.legend([Patch(color="0.72")], ["dropped by the stability selection (not a zero)"],
                   loc="outside lower center", fontsize=8)
    if title:
        fig.suptitle(title + "\n(channels front to back, left to right)", fontsize=9)
    save_figure(fig, save_dir, name)
    return fig


@fill_doc
def plot_channel_auc(auc: Sequence[float] | np.ndarray, ch_names: Sequence[str], *,
                     per_subject: np.ndarray | None = None,
                     chance: float = 0.5, title: str = "", save_dir: str | os.PathLike | None = None,
                     name: str = "channel_auc") -> Figure:
    """Bars of a per-channel AUC drawn from chance (0.5): above-chance channels point up, below-chance down.

    Parameters
    ----------
    auc : array, shape (n_chans,)
        Mean per-subject AUC of each channel's model (e.g. each channel expert's out-of-fold trial logit).
    ch_names : sequence of str
        Channel names, ordered on the axis by scalp position (:func:`kit.report.common.scalp_order`).
    per_subject : ndarray, shape (n_subjects, n_chans), optional
        Each subject's AUC per channel: the error bars are ± SEM over subjects.
    chance : float
        The level bars start from.
    title : str
        Axes title (give n subjects there).
    %(save_dir)s

    Returns
    -------
    Figure
        One axes, a bar per channel.

    Raises
    ------
    KitError
        ``auc`` or ``per_subject`` not matching ``ch_names``.
    """
    auc = np.asarray(auc, np.float64).ravel()
    if len(auc) != len(ch_names):
        raise KitError(f"plot_channel_auc: {len(auc)} AUCs for {len(ch_names)} channels")
    sem = None
    if per_subject is not None:
        per_subject = np.asarray(per_subject, np.float64)
        if per_subject.ndim != 2 or per_subject.shape[1] != len(auc):
            raise KitError(f"plot_channel_auc: per_subject must be (n_subjects, {len(auc)}), got {per_subject.shape}")
        sem = per_subject.std(axis=0, ddof=1) / np.sqrt(len(per_subject)) if len(per_subject) > 1 else None
    order = scalp_order(ch_names)
    x = np.arange(len(auc))
    d = auc[order] - chance
    fig, ax = plt.subplots(figsize=(8.0, 3.2), layout="constrained")
    colors = [method_color("experts") if v >= 0 else "0.55" for v in d]
    ax.bar(x, d, bottom=chance, color=colors, yerr=None if sem is None else sem[order], capsize=2,
           error_kw={"lw": 0.8})
    ax.axhline(chance, color="k", lw=0.8)
    ax.set_xticks(x, [str(ch_names[i]) for i in order], rotation=0, fontsize=7)
    ax.set_ylabel("mean per-subject AUC")
    ax.set_xlabel("channel (front to back, left to right)")
    lim = max(0.03, float(np.abs(d).max()) + (0.0 if sem is None else float(np.nanmax(sem))) + 0.005)
    ax.set_ylim(chance - lim, chance + lim)
    ax.set_title(title or "AUC per channel (bars from chance: below-chance channels point down)")
    save_figure(fig, save_dir, name)
    return fig


@fill_doc
def plot_band_importance(result: dict, *, n_trials: int | None = None, save_dir: str | os.PathLike | None = None,
                         name: str = "band_importance") -> Figure:
    """Permutation importance of each band, mean ± SEM over held-out subjects.

    Each bar is the drop in the held-out subjects' AUC when that band's features are shuffled; the title names
    the model's AUC and the number of held-out subjects (and trials).

    Parameters
    ----------
    result : dict
        From :func:`kit.methods.patterns.band_permutation_importance`.
    n_trials : int, optional
        For the title.
    %(save_dir)s

    Returns
    -------
    Figure
        One axes, a bar per band (± SEM).
    """
    imp, sem, bands = np.asarray(result["importance"]), np.asarray(result["sem"]), list(result["bands"])
    n = len(result["per_subject"])
    fig, ax = plt.subplots(figsize=(6.0, 3.2), layout="constrained")
    ax.bar(bands, imp, yerr=sem, color=method_color("bandpower"), capsize=3)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_ylabel("drop in held-out AUC when shuffled (± SEM)")
    counts = f"{n} held-out subjects" + (f", {n_trials} trials" if n_trials else "")
    ax.set_title(f"band importance, log-variance LDA under LOSO (AUC {result['auc']:.3f}; {counts})", fontsize=9)
    save_figure(fig, save_dir, name)
    return fig


@fill_doc
def plot_attention_by_class(attention: np.ndarray, y: np.ndarray, subject: np.ndarray, times: np.ndarray, *,
                            trusted: tuple[float, float] | None = None, save_dir: str | os.PathLike | None = None,
                            name: str = "attention_by_class") -> Figure:
    """The experts' attention over the trial, averaged over experts, by class, mean ± SEM over subjects.

    The two classes differ in line style and marker (neutral solid with circles, emotional dashed with
    triangles), so that one curve never hides the other; the samples outside ``trusted`` are hatched
    (:data:`kit.report.common.HATCH_UNTRUSTED`) and named in the legend, which sits outside the data.

    Parameters
    ----------
    attention : ndarray, shape (n_trials, n_chans, T)
        Attention weights per trial, expert and pooled time step (each row sums to 1 over T), e.g. stage 03's
        ``oof_attention``.
    y, subject : ndarray, shape (n_trials,)
    times : ndarray, shape (n_times,)
        s after the cue of the unpooled samples; ``n_times`` must be a multiple of ``T`` (the bins' centres
        are plotted).
    trusted : (float, float), optional
        First and last time (s) free of the filter edge effect of the features the experts read
        (:func:`kit.signal.edges.edge_effect`); the samples outside are hatched.
    %(save_dir)s

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
    fig, ax = plt.subplots(figsize=(8.0, 3.2), layout="constrained")
    mark_cue_and_window(ax, None)
    every = max(1, T // 25)
    for label, color, text, ls, marker in ((0, NEU_COLOR, "neutral", "-", "o"),
                                           (1, EMO_COLOR, "emotional", "--", "^")):
        mean, sem = stats[label]
        ax.plot(centres, mean, color=color, lw=1.4, ls=ls, marker=marker, ms=3.5, markevery=every, label=text,
                zorder=3 + label)
        ax.fill_between(centres, mean - sem, mean + sem, color=color, alpha=0.2, lw=0)
    ax.axhline(1.0 / T, color="k", lw=0.8, ls=":", label="uniform (plain averaging)")
    handles, labels = ax.get_legend_handles_labels()
    if trusted is not None:
        ax.set_xlim(times[0], times[-1])
        mark_untrusted(ax, trusted)
        handles.append(untrusted_handle())
        labels.append(untrusted_handle().get_label())
    ax.set_xlabel("time after cue (s)")
    ax.set_ylabel("attention weight")
    legend_outside(ax, handles, labels, fontsize=7)
    ax.set_title(f"experts' attention over the trial, mean of {A.shape[1]} experts "
                 f"(mean ± SEM over {len(np.unique(subject))} subjects, {len(y)} trials)", fontsize=9)
    save_figure(fig, save_dir, name)
    return fig


def window_mean(curves: np.ndarray, times: np.ndarray, tmin: float, tmax: float) -> np.ndarray:
    """Mean of ``curves (n_times, ...)`` over ``tmin <= times <= tmax`` (s); KitError on an empty window."""
    return np.asarray(curves)[window_mask(times, tmin, tmax)].mean(axis=0)
