"""Figures of the cluster permutation tests (:mod:`kit.eval.clusters`): the difference with its clusters shaded."""

from __future__ import annotations

import math
import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from kit.eval.clusters import ClusterTest
from kit.report.common import EMO_COLOR, mark_cue_and_window, save_figure


def plot_cluster_test(test: ClusterTest, *, band: str = "theta", unit: str = "z log power", n_trials: int | None = None,
                      save_dir: str | os.PathLike | None = None, name: str = "cluster_test") -> Figure:
    """The emotional-minus-neutral difference over subjects with the test's clusters marked.

    A test over time (:func:`kit.eval.clusters.cluster_test_time`): the mean difference ± SEM over subjects,
    significant clusters shaded red (their span and p-value in the legend), clusters with p >= alpha hatched
    grey.  A spatio-temporal test (:func:`kit.eval.clusters.cluster_test_space_time`): the t map, channels x
    time, with the significant clusters outlined in black.

    Parameters
    ----------
    test : ClusterTest
        ``differences`` (n_subjects, n_times) or (n_subjects, n_times, n_chans).
    band, unit : str
        Title and y label (or colour-bar label).
    n_trials : int, optional
        Labelled trials behind the test, shown in the title beside the subjects.
    save_dir : path, optional
        Folder for ``{name}.png`` and ``{name}.pdf``.
    name : str
        File stem.

    Returns
    -------
    Figure
    """
    times, D = test.times, test.differences
    n = len(test.subjects)
    counts = f"n = {n} subjects" + (f", {n_trials} trials" if n_trials else "")
    sig = test.significant()
    if D.ndim == 2:
        fig, ax = plt.subplots(figsize=(7.5, 3.6), layout="constrained")
        mean, sem = D.mean(axis=0), D.std(axis=0, ddof=1) / math.sqrt(n)
        dt = times[1] - times[0] if len(times) > 1 else 0.0
        for c in test.clusters:
            span = (times[c.start] - dt / 2, times[c.stop] + dt / 2)
            if c.p_value < test.alpha:
                ax.axvspan(*span, color=EMO_COLOR, alpha=0.18, lw=0, zorder=0,
                           label=f"cluster {c.tmin:.3f}-{c.tmax:.3f} s, p = {c.p_value:.3f}")
            else:
                ax.axvspan(*span, facecolor="none", edgecolor="0.6", hatch="///", lw=0, zorder=0)
        mark_cue_and_window(ax, None)
        ax.axhline(0.0, color="0.5", lw=0.6)
        ax.fill_between(times, mean - sem, mean + sem, color="k", alpha=0.15, lw=0)
        ax.plot(times, mean, color="k", lw=1.4, label="emotional - neutral, mean ± SEM over subjects")
        ax.set_xlabel("time after cue (s)")
        ax.set_ylabel(f"{band} difference ({unit})")
        ax.legend(fontsize=7, frameon=False, loc="best")
    else:
        fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
        t = test.t_obs.T  # (n_times, n_chans) -> (n_chans, n_times)
        lim = float(np.abs(t).max()) or 1.0
        im = ax.imshow(t, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim,
                       extent=(times[0], times[-1], -0.5, t.shape[0] - 0.5), interpolation="nearest")
        fig.colorbar(im, ax=ax, label="t over subjects")
        mark_cue_and_window(ax, None)
        for c in sig:  # c.mask: (n_times, n_chans)
            ax.contour(times, np.arange(t.shape[0]), c.mask.T.astype(float), levels=[0.5], colors="k",
                       linewidths=1.0)
        ax.set_xlabel("time after cue (s)")
        ax.set_ylabel("channel")
        ax.set_yticks(range(t.shape[0]))
        ax.set_yticklabels(test.ch_names, fontsize=7)
    found = "; ".join(f"{c.tmin:.2f}-{c.tmax:.2f} s p = {c.p_value:.3f}" for c in sig) or f"no cluster p < {test.alpha:g}"
    ax.set_title(f"{band}: emotional - neutral, cluster permutation test ({counts})\n{found}", fontsize=9)
    save_figure(fig, save_dir, name)
    return fig
