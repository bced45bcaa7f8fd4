"""The evoked response by class: the trial-averaged, low-passed EEG per scalp region, with its cluster tests."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.data.montage import channel_groups
from kit.eval.clusters import ClusterTest
from kit.report.common import (
    EMO_COLOR,
    NEU_COLOR,
    channel_names,
    channel_selection,
    check_epochs,
    class_means,
    draw_class_means,
    legend_outside,
    mark_cue_and_window,
    save_figure,
)


@fill_doc
def plot_evoked_by_class(X: np.ndarray, y: np.ndarray, subject: np.ndarray, times: np.ndarray,
                         ch_names: Sequence[str], *, groups: Mapping[str, Sequence[str]] | None = None,
                         tests: Mapping[str, ClusterTest] | None = None, cutoff: float | None = None,
                         save_dir: str | os.PathLike | None = None, name: str = "evoked_by_class") -> Figure:
    """Cue-evoked response per scalp region, emotional vs neutral, mean ± SEM over subjects.

    Parameters
    ----------
    X : ndarray, shape (n_trials, n_chans, n_times)
        Low-passed EEG in µV (:func:`kit.signal.features.lowpass`); averaged over each group's channels.
    y, subject : ndarray, shape (n_trials,)
        1 emotional, 0 neutral (others ignored); subject ids (each subject's class mean is one observation).
    times : ndarray, shape (n_times,)
        s after the cue.
    ch_names : sequence of str
        The ``n_chans`` channel names.
    groups : mapping region -> channel names
        One panel each (default :func:`kit.data.montage.channel_groups` of ``ch_names``); channels missing
        from ``ch_names`` are an error.
    tests : mapping region -> ClusterTest, optional
        Cluster tests over time of each region's difference (:func:`kit.eval.clusters.cluster_test_time` with
        ``channels=groups[region]``); significant clusters are shaded and named in the panel.
    cutoff : float, optional
        The low-pass cut-off in Hz, for the title.
    %(save_dir)s

    Returns
    -------
    Figure
        One panel per region, in µV.

    Raises
    ------
    KitError
        Shapes that do not match, a class with no trial, or an unknown channel.
    """
    X, y, times, subject = check_epochs(X, y, times, subject)
    names = channel_names(ch_names, X.shape[1])
    groups = channel_groups(names) if groups is None else groups
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 3.0), sharey=True, squeeze=False,
                             layout="constrained")
    for ax, (region, chans) in zip(axes[0], groups.items()):
        idx, _ = channel_selection(list(chans), names)
        stats = class_means(X[:, idx].mean(axis=1), y, subject)  # (n_trials, n_times) -> per class (n_times,)
        mark_cue_and_window(ax, None)
        ax.axhline(0.0, color="0.6", lw=0.5)
        if tests is not None and region in tests:
            test = tests[region]
            if tuple(test.ch_names) != tuple(chans):
                raise KitError(f"evoked test for {region!r} is over {test.ch_names}, not {tuple(chans)}")
            for c in test.significant():
                ax.axvspan(c.tmin, c.tmax, color=EMO_COLOR, alpha=0.15, lw=0, zorder=0,
                           label=f"{c.tmin:.2f}-{c.tmax:.2f} s, p = {c.p_value:.3f}")
        draw_class_means(ax, times, stats)
        ax.set_title(f"{region} ({' '.join(chans)})", fontsize=8)
        ax.set_xlabel("time after cue (s)", fontsize=8)
        ax.tick_params(labelsize=7)
        sig_spans = [h for h, t in zip(*ax.get_legend_handles_labels()) if t not in ("neutral", "emotional")]
        if sig_spans:
            ax.legend(sig_spans, [h.get_label() for h in sig_spans], fontsize=6, loc="upper center",
                      bbox_to_anchor=(0.5, -0.22), borderaxespad=0.0)
    axes[0, 0].set_ylabel("µV")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    keep = [i for i, t in enumerate(labels) if t in ("neutral", "emotional")]
    fig.legend([handles[i] for i in keep], [labels[i] for i in keep], loc="outside upper right", ncol=2, fontsize=8)
    lp = f"low-passed {cutoff:g} Hz, " if cutoff else ""
    fig.suptitle(f"evoked response by class ({lp}mean ± SEM over {len(np.unique(subject))} subjects, "
                 f"{len(y)} trials)", fontsize=9)
    save_figure(fig, save_dir, name)
    return fig


@fill_doc
def plot_mne_compare_evokeds(epochs, channels: Sequence[str], *, save_dir: str | os.PathLike | None = None,
                             name: str = "mne_compare_evokeds") -> Figure:
    """MNE's own figure of the two classes' evoked responses: one ``mne.Evoked`` per subject and class, compared
    with :func:`mne.viz.plot_compare_evokeds` (mean over subjects with its 95 %% confidence band, over the mean of
    ``channels``).

    Parameters
    ----------
    epochs : mne.Epochs
        With events ``neutral`` and ``emotional`` and a ``subject`` metadata column, as
        :meth:`kit.data.dataset.Dataset.to_epochs` makes them (test trials are ignored).
    channels : sequence of str
        Channels averaged (``combine="mean"``).
    %(save_dir)s

    Returns
    -------
    Figure
        MNE's figure: one axes, the mean of ``channels`` per class.

    Raises
    ------
    KitError
        No subject with both classes, or an unknown channel.
    """
    import mne

    missing = [c for c in channels if c not in epochs.ch_names]
    if missing:
        raise KitError(f"channels {missing} not among {epochs.ch_names}")
    evokeds: dict[str, list] = {"neutral": [], "emotional": []}
    for s in sorted(set(epochs.metadata["subject"])):
        sub = epochs[f"subject == {int(s)}"]
        if all(k in sub.event_id and len(sub[k]) for k in evokeds):
            for k in evokeds:
                evokeds[k].append(sub[k].average())
    if not evokeds["neutral"]:
        raise KitError("no subject has trials of both classes")
    n = len(evokeds["neutral"])
    with mne.utils.use_log_level("error"):
        figs = mne.viz.plot_compare_evokeds(evokeds, picks=list(channels), combine="mean", ci=0.95,
                                            colors={"neutral": NEU_COLOR, "emotional": EMO_COLOR},
                                            linestyles={"neutral": "-", "emotional": "--"}, show=False,
                                            title=f"evoked response, mean of {' '.join(channels)} "
                                                  f"(mne.viz.plot_compare_evokeds; 95 % CI over {n} subjects)")
    fig = figs[0] if isinstance(figs, list) else figs
    fig.set_size_inches(8.0, 3.4)
    for ax in fig.axes:
        ax.title.set_fontsize(8)
        if ax.get_legend() is not None:  # mne puts it over the data
            handles, labels = ax.get_legend_handles_labels()
            legend_outside(ax, handles, labels, fontsize=8)
    save_figure(fig, save_dir, name)
    return fig
