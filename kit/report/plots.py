"""Figures for the EDA and the results: band power by class, subject differences, AUC over time (and, from
:mod:`kit.report.spectral`, spectra and topomaps: every figure is importable from here).

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
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.eval.clusters import subject_differences
from kit.report.clusters import plot_cluster_test
from kit.report.common import (
    EMO_COLOR,
    NEU_COLOR,
    WINDOW,
    channel_names,
    channel_selection,
    check_epochs,
    class_means,
    draw_class_means,
    grid_shape,
    legend_outside,
    mark_cue_and_window,
    mark_untrusted,
    method_color,
    method_key,
    method_linestyle,
    save_figure,
    untrusted_handle,
)
from kit.report.evoked import plot_evoked_by_class, plot_mne_compare_evokeds
from kit.report.models import plot_attention_by_class, plot_band_importance, plot_channel_auc, plot_channel_matrix, plot_topomaps
from kit.report.scores import plot_permutation_test, plot_subject_auc
from kit.report.spectral import plot_montage, plot_psd_by_class, plot_topomap_difference
from kit.report.timefreq import plot_edge_effect, plot_tfr_test

__all__ = ["EMO_COLOR", "NEU_COLOR", "WINDOW", "class_means", "plot_auc_timecourse", "plot_band_power_by_class",
           "plot_attention_by_class", "plot_band_importance", "plot_channel_auc", "plot_channel_matrix",
           "plot_cluster_test", "plot_edge_effect", "plot_evoked_by_class", "plot_mne_compare_evokeds", "plot_montage",
           "plot_permutation_test", "plot_subject_auc", "plot_tfr_test", "plot_topomaps",
           "plot_psd_by_class", "plot_subject_difference", "plot_topomap_difference", "save_figure",
           "subject_differences"]


@fill_doc
def plot_band_power_by_class(P: np.ndarray, y: np.ndarray, times: np.ndarray,
                             ch_names: Sequence[str] | None = None, *, subject: np.ndarray | None = None,
                             band: str = "theta", unit: str = "log power", window: tuple[float, float] | None = WINDOW,
                             trusted: tuple[float, float] | None = None, save_dir: str | os.PathLike | None = None,
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
    trusted : (float, float) or None
        First and last time (s) free of filter edge effects (:func:`kit.signal.edges.edge_effect`); the
        samples outside are hatched.
    %(save_dir)s

    Returns
    -------
    Figure
        n_chans axes on a near-square grid (4 x 4 for 16 channels), shared axes.

    Raises
    ------
    KitError
        Shapes that do not match, or a class with no trial.
    """
    P, y, times, subject = check_epochs(P, y, times, subject)
    names = channel_names(ch_names, P.shape[1])
    stats = class_means(P, y, subject)
    nrows, ncols = grid_shape(P.shape[1])
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.2 * nrows), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    flat = axes.ravel()
    for ax in flat[P.shape[1]:]:
        ax.remove()
    for c, ax in enumerate(flat[: P.shape[1]]):
        mark_cue_and_window(ax, window)
        draw_class_means(ax, times, {label: (mean[c], sem[c]) for label, (mean, sem) in stats.items()})
        if trusted is not None:
            mark_untrusted(ax, trusted)
        ax.set_title(names[c], fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        if ax in fig.axes:
            ax.set_xlabel("time after cue (s)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(unit, fontsize=8)
    over = f"{len(np.unique(subject))} subjects, {len(y)} trials" if subject is not None else f"{len(y)} trials"
    handles, texts = flat[0].get_legend_handles_labels()
    if trusted is not None:
        handles.append(untrusted_handle())
        texts.append(untrusted_handle().get_label())
    if window is not None:
        from matplotlib.patches import Patch

        handles.append(Patch(color="0.85", lw=0))
        texts.append(f"{window[0]:.1f}-{window[1]:.1f} s (the paper's cluster)")
    fig.legend(handles, texts, loc="outside lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(f"{band} power, emotional vs neutral (mean ± SEM over {over})")
    save_figure(fig, save_dir, name)
    return fig



@fill_doc
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
    %(save_dir)s

    Returns
    -------
    Figure
        Three axes: time courses, image, colour bar.

    Raises
    ------
    KitError
        Bad shapes, unknown channel names, or no subject with both classes.
    """
    P, y, times, subject = check_epochs(P, y, times, subject)
    if subject is None:
        raise KitError("subject ids are required")
    names = channel_names(ch_names, P.shape[1])
    idx, label = channel_selection(channels, names)
    subjects, D = subject_differences(P[:, idx].mean(axis=1), y, subject)  # (n_subjects, n_times)
    grand = D.mean(axis=0)
    sem = D.std(axis=0, ddof=1) / math.sqrt(len(D)) if len(D) > 1 else np.zeros_like(grand)

    fig, (ax, ax_img) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained",
                                     gridspec_kw={"width_ratios": [1.3, 1]})
    mark_cue_and_window(ax, window)
    ax.axhline(0.0, color="0.5", lw=0.8)
    cmap = plt.get_cmap("tab20")
    for k, (s, d) in enumerate(zip(subjects, D)):
        ax.plot(times, d, color=cmap(k % 20), lw=0.8, alpha=0.7, label=f"S{s}")
    ax.fill_between(times, grand - sem, grand + sem, color="k", alpha=0.2, lw=0)
    ax.plot(times, grand, color="k", lw=2.2, label="grand mean")
    ax.set_xlabel("time after cue (s)")
    ax.set_ylabel(f"emotional − neutral ({unit})")
    ax.set_title(f"{band} power difference per subject ({label}; n = {len(subjects)} subjects, {len(y)} trials)",
                 fontsize=9)
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



@fill_doc
def plot_auc_timecourse(curves: Mapping[str, np.ndarray] | np.ndarray, times: np.ndarray,
                        window: tuple[int, int] | Mapping[str, tuple[int, int] | None] | None = None, *,
                        title: str = "time-resolved LOSO AUC", chance: float = 0.5,
                        save_dir: str | os.PathLike | None = None, name: str = "auc_timecourse") -> Figure:
    """Time-resolved AUC curves m[t], each method in its colour, the metric's scored windows as bars below.

    Every series has its own colour (:func:`kit.report.common.method_color`: the same method has the same colour
    in every figure, levers a shade of their method's); the ensemble's line is drawn last and thicker.  The
    window the metric scored for each series is a thin bar in the series' colour in a strip under the axes (no
    shading over the data), and the legend, outside the data on the right, gives its span in s and its score.

    Parameters
    ----------
    curves : dict of name -> ndarray, shape (n_times,), or one ndarray
        m[t], the mean over subjects of the per-sample AUC (e.g. the
        ``curve`` of :func:`kit.eval.cv.loso_score`).
    times : ndarray, shape (n_times,)
        Seconds after the cue.
    window : (start, stop) or dict of name -> (start, stop) or None, optional
        The window the metric scored, as sample indices with ``stop``
        inclusive (:class:`kit.eval.metric.WindowScore`).  One tuple is one grey
        bar ("scored window"); a dict gives each curve its window, in its colour;
        the legend shows the window in s and the mean of m[t] over it (the score).
    title : str
        Axes title.
    chance : float
        Level of the dashed chance line.
    %(save_dir)s

    Returns
    -------
    Figure
        The curves' axes first; with any window, a second axes below holding one bar per window.

    Raises
    ------
    KitError
        A curve whose length is not n_times, a window outside the curve.
    """
    times = np.asarray(times, dtype=float).ravel()
    if not isinstance(curves, Mapping):
        curves = {"model": curves}
    labels = [str(k) for k in curves]
    per_curve = isinstance(window, Mapping)
    dt = times[1] - times[0] if len(times) > 1 else 0.0

    def checked(win):
        if win is None or win[0] is None:
            return None
        start, stop = int(win[0]), int(win[1])
        if not 0 <= start <= stop < len(times):
            raise KitError(f"window {tuple(win)} outside samples 0..{len(times) - 1}")
        return start, stop

    bars = []  # (label, colour, (start, stop))
    if not per_curve and window is not None and checked(window) is not None:
        bars.append(("scored window", "0.45", checked(window)))
    order = sorted(range(len(labels)), key=lambda k: method_key(labels[k]) == "ensemble")  # the ensemble last
    series = []
    for k in order:
        label, curve = labels[k], np.asarray(curves[list(curves)[k]], dtype=float).ravel()
        if len(curve) != len(times):
            raise KitError(f"curve {label!r} has {len(curve)} samples, times has {len(times)}")
        color = method_color(label, labels)
        win = checked(window.get(list(curves)[k]) if per_curve else window)
        text = label
        if win is not None:
            text += f" (window {times[win[0]]:.3f}-{times[win[1]]:.3f} s, score {curve[win[0]:win[1] + 1].mean():.3f})"
            if per_curve:
                bars.append((label, color, win))
        series.append((label, curve, color, text))

    n_bars = len(bars)
    if n_bars:
        fig, (ax, strip) = plt.subplots(2, 1, figsize=(9.5, 3.4 + 0.16 * n_bars), sharex=True, layout="constrained",
                                        gridspec_kw={"height_ratios": [1.0, 0.05 + 0.07 * n_bars]})
    else:
        fig, ax = plt.subplots(figsize=(9.5, 3.4), layout="constrained")
        strip = None
    ax.axhline(chance, color="0.4", lw=0.9, ls="--", label="chance")
    ax.axvline(0.0, color="0.3", lw=0.8, ls=":")
    for label, curve, color, text in series:
        is_ensemble = method_key(label) == "ensemble"
        ax.plot(times, curve, color=color, lw=2.4 if is_ensemble else 1.2, ls=method_linestyle(label),
                label=text, zorder=4 if is_ensemble else 3)
    ax.set_ylabel("AUC, mean over subjects")
    ax.set_title(title)
    legend_outside(ax, fontsize=7)
    if strip is None:
        ax.set_xlabel("time after cue (s)")
    else:
        for row, (label, color, (start, stop)) in enumerate(bars):
            strip.barh(row, times[stop] - times[start] + dt, left=times[start] - dt / 2, height=0.6, color=color,
                       lw=0)
        strip.set_yticks(range(n_bars), [b[0] for b in bars], fontsize=6)
        strip.set_ylim(n_bars - 0.5, -0.5)
        strip.set_xlabel("time after cue (s)")
        strip.set_title("window the metric scored", fontsize=7, loc="left")
        strip.tick_params(axis="y", length=0)
        strip.spines["left"].set_visible(False)
    save_figure(fig, save_dir, name)
    return fig
