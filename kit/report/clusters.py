"""Figures of the cluster permutation tests (:mod:`kit.eval.clusters`): the difference with its clusters shaded."""

from __future__ import annotations

import math
import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from kit.core.docs import fill_doc
from kit.eval.clusters import ClusterTest
from kit.eval.effects import cluster_effect_size
from kit.report.common import (
    EMO_COLOR,
    HATCH_NOT_SIGNIFICANT,
    legend_outside,
    mark_cue_and_window,
    mark_untrusted,
    not_significant_handle,
    save_figure,
    scalp_order,
    untrusted_handle,
)


@fill_doc
def plot_cluster_test(test: ClusterTest, *, band: str = "theta", unit: str = "z log power", n_trials: int | None = None,
                      trusted: tuple[float, float] | None = None, save_dir: str | os.PathLike | None = None,
                      name: str = "cluster_test") -> Figure:
    """The emotional-minus-neutral difference over subjects with the test's clusters marked.

    A test over time (:func:`kit.eval.clusters.cluster_test_time`): the mean difference ± SEM over subjects,
    significant clusters shaded red (their span, sum of t, p-value and Cohen's dz with its 95 %% interval in the
    legend), clusters with p >= alpha hatched ``xx`` (:data:`kit.report.common.HATCH_NOT_SIGNIFICANT`), the
    samples the filter edge effect spoils hatched ``//`` (``trusted``); both hatches are named in the legend,
    which sits outside the data.  A spatio-temporal test (:func:`kit.eval.clusters.cluster_test_space_time`):
    the t map, channels x time, channels ordered by scalp position (front to back, left to right), the
    significant clusters outlined in black.  The title names the cluster-forming threshold and the
    number of permutations.

    Parameters
    ----------
    test : ClusterTest
        ``differences`` (n_subjects, n_times) or (n_subjects, n_times, n_chans).
    band, unit : str
        Title and y label (or colour-bar label).
    n_trials : int, optional
        Labelled trials behind the test, shown in the title beside the subjects.
    trusted : (float, float), optional
        First and last time (s) free of the filter edge effect; outside, the samples are hatched.
    %(save_dir)s

    Returns
    -------
    Figure
        One axes: the difference curve over time, or the t map (channels x time) with its colour bar.
    """
    times, D = test.times, test.differences
    n = len(test.subjects)
    counts = f"n = {n} subjects" + (f", {n_trials} trials" if n_trials else "")
    sig = test.significant()
    extra = []
    if D.ndim == 2:
        fig, ax = plt.subplots(figsize=(9.0, 3.6), layout="constrained")
        mean, sem = D.mean(axis=0), D.std(axis=0, ddof=1) / math.sqrt(n)
        dt = times[1] - times[0] if len(times) > 1 else 0.0
        for c in test.clusters:
            span = (times[c.start] - dt / 2, times[c.stop] + dt / 2)
            if c.p_value < test.alpha:
                es = cluster_effect_size(test, c)
                ax.axvspan(*span, color=EMO_COLOR, alpha=0.18, lw=0, zorder=0,
                           label=f"cluster {c.tmin:.3f}-{c.tmax:.3f} s: sum t = {c.t_sum:.1f}, p = {c.p_value:.3f}, "
                                 f"{es.describe()}")
            else:
                ax.axvspan(*span, facecolor="none", edgecolor="0.45", hatch=HATCH_NOT_SIGNIFICANT, lw=0, zorder=0)
        if any(c.p_value >= test.alpha for c in test.clusters):
            extra.append(not_significant_handle(test.alpha))
        mark_cue_and_window(ax, None)
        ax.axhline(0.0, color="0.5", lw=0.6)
        ax.fill_between(times, mean - sem, mean + sem, color="k", alpha=0.15, lw=0)
        ax.plot(times, mean, color="k", lw=1.4, label="emotional - neutral, mean ± SEM over subjects")
        if trusted is not None:
            ax.set_xlim(times[0], times[-1])
            mark_untrusted(ax, trusted)
            extra.append(untrusted_handle())
        ax.set_xlabel("time after cue (s)")
        ax.set_ylabel(f"{band} difference ({unit})")
        handles, labels = ax.get_legend_handles_labels()
        legend_outside(ax, handles + extra, labels + [h.get_label() for h in extra], where="below", ncol=1,
                       fontsize=7)
    else:
        fig, ax = plt.subplots(figsize=(8.0, 4.4), layout="constrained")
        order = scalp_order(test.ch_names)
        t = test.t_obs.T[order]  # (n_times, n_chans) -> (n_chans, n_times), scalp order
        lim = float(np.abs(t).max()) or 1.0
        im = ax.imshow(t, aspect="auto", origin="upper", cmap="RdBu_r", vmin=-lim, vmax=lim,
                       extent=(times[0], times[-1], t.shape[0] - 0.5, -0.5), interpolation="nearest")
        fig.colorbar(im, ax=ax, label=f"t over subjects (|t| > {test.threshold:.2f} forms clusters)")
        mark_cue_and_window(ax, None)
        for c in sig:  # c.mask: (n_times, n_chans)
            ax.contour(times, np.arange(t.shape[0]), c.mask.T[order].astype(float), levels=[0.5], colors="k",
                       linewidths=1.0)
        ax.set_xlabel("time after cue (s)")
        ax.set_ylabel("channel (front to back, left to right)")
        ax.set_yticks(range(t.shape[0]))
        ax.set_yticklabels([test.ch_names[i] for i in order], fontsize=7)
    found = "; ".join(f"{c.tmin:.2f}-{c.tmax:.2f} s, p = {c.p_value:.3f}, {cluster_effect_size(test, c).describe()}"
                      for c in sig) or f"no cluster at p < {test.alpha:g}"
    stats_line = (f"threshold |t| > {test.threshold:.2f} (two-sided p < {test.threshold_p:g}, df {n - 1}), "
                  f"{test.n_permutations} sign-flip permutations")
    ax.set_title(f"{band}: emotional - neutral, cluster permutation test ({counts})\n{stats_line}\n{found}",
                 fontsize=8)
    save_figure(fig, save_dir, name)
    return fig
