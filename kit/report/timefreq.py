"""Time-frequency figures: the emotional-minus-neutral Morlet map with its clusters, and the filter edge effect."""

from __future__ import annotations

import os
from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from kit.core.docs import fill_doc
from kit.eval.clusters import TFRTest
from kit.eval.effects import cluster_effect_size
from kit.report.common import legend_outside, mark_cue_and_window, save_figure
from kit.signal.edges import EdgeEffect


@fill_doc
def plot_tfr_test(test: TFRTest, *, n_trials: int | None = None, save_dir: str | os.PathLike | None = None,
                  name: str = "tfr_difference") -> Figure:
    """Emotional minus neutral time-frequency power, mean over subjects, with the significant clusters outlined.

    Parameters
    ----------
    test : TFRTest
        From :func:`kit.eval.clusters.cluster_test_tfr`; ``differences`` (n_subjects, n_times, n_freqs).
    n_trials : int, optional
        Labelled trials behind the test, for the title.
    %(save_dir)s

    Returns
    -------
    Figure
        Left: the mean difference (z log power); right: the t map over subjects; black contours: clusters with
        p < alpha.
    """
    times, freqs = test.times, test.freqs
    mean = test.differences.mean(axis=0).T  # (n_times, n_freqs) -> (n_freqs, n_times)
    sig = test.significant()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True, layout="constrained")
    df = freqs[1] - freqs[0] if len(freqs) > 1 else 1.0
    extent = (times[0], times[-1], freqs[0] - df / 2, freqs[-1] + df / 2)
    for ax, data, label in ((axes[0], mean, "emotional - neutral (z log power)"),
                            (axes[1], test.t_obs.T, "t over subjects")):
        lim = float(np.abs(data).max()) or 1.0
        im = ax.imshow(data, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent,
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, label=label)
        for c in sig:
            ax.contour(times, freqs, c.mask.T.astype(float), levels=[0.5], colors="k", linewidths=1.0)
        mark_cue_and_window(ax, None)
        ax.set_xlabel("time after cue (s)")
    axes[0].set_ylabel("frequency (Hz)")
    counts = f"n = {len(test.subjects)} subjects" + (f", {n_trials} trials" if n_trials else "")
    found = "; ".join(f"{c.describe()}, sum t = {c.t_sum:.1f}, {cluster_effect_size(test, c).describe()}"
                      for c in sig) or f"no cluster at p < {test.alpha:g}"
    stats_line = (f"clusters: |t| > {test.threshold:.2f} (two-sided p < {test.threshold_p:g}), "
                  f"{test.n_permutations} sign-flip permutations; outlined: p < {test.alpha:g}")
    fig.suptitle(f"Morlet power, emotional - neutral, channel mean ({counts})\n{stats_line}\n{found}", fontsize=9)
    save_figure(fig, save_dir, name)
    return fig


@fill_doc
def plot_edge_effect(effects: Mapping[str, EdgeEffect], times: np.ndarray, *,
                     save_dir: str | os.PathLike | None = None, name: str = "edge_effect") -> Figure:
    """Per band, how well a trial's band power at each sample matches that of the uncut recording.

    Parameters
    ----------
    effects : mapping band -> EdgeEffect
        From :func:`kit.signal.edges.edge_effect`.
    times : ndarray, shape (n_times,)
        s after the cue.
    %(save_dir)s

    Returns
    -------
    Figure
        One curve per band (correlation r against time), dots at the first and last trusted sample.
    """
    fig, ax = plt.subplots(figsize=(9.5, 3.6), layout="constrained")
    for k, (band, e) in enumerate(effects.items()):
        color = plt.cm.viridis(k / max(1, len(effects) - 1))
        a, b = e.n_edge
        ax.plot(times, e.r, color=color, lw=1.3,
                label=f"{band}: trusted {times[e.first]:.3f}-{times[e.last]:.3f} s ({a} + {b} samples cut)")
        ax.plot([times[e.first], times[e.last]], [e.r[e.first], e.r[e.last]], "o", color=color, ms=4)
    ax.set_xlabel("time after cue (s)")
    ax.set_ylabel("r, trial vs uncut recording")
    ax.set_ylim(0, 1.02)
    legend_outside(ax, fontsize=7)
    n = len(next(iter(effects.values())).r) if effects else 0
    ax.set_title(f"band-pass + Hilbert edge effect on {n}-sample trials (1/f noise; trusted: r >= 90 % of the "
                 "centre's)", fontsize=9)
    save_figure(fig, save_dir, name)
    return fig
