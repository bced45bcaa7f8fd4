"""The subject shift that re-centring removes: tangent vectors by subject before/after, and each subject's offset."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.report.common import save_figure


@fill_doc
def plot_subject_shift(shift: dict, subject: np.ndarray, *, save_dir: str | os.PathLike | None = None,
                       name: str = "subject_shift") -> Figure:
    """Three panels: trials' tangent vectors (PCA, one colour per subject) before and after re-centring, and
    each subject's Riemannian distance to the grand mean before and after.

    Parameters
    ----------
    shift : dict
        :func:`kit.methods.riemann.subject_shift` output.
    subject : ndarray, shape (n_trials,)
        The subjects of the trials it was computed on.
    %(save_dir)s

    Returns
    -------
    Figure
        Three axes: the tangent vectors before and after re-centring, the distances.

    Raises
    ------
    KitError
        ``subject`` does not match the trials of ``shift``.
    """
    subject = np.asarray(subject)
    if subject.shape != (len(shift["before"]),):
        raise KitError(f"plot_subject_shift: {subject.shape} subjects for {len(shift['before'])} trials")
    sids = list(shift["subjects"])
    cmap = plt.get_cmap("tab20", max(len(sids), 1))
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.2), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 0.9]})
    for ax, key, label in ((axes[0], "before", "before re-centring"), (axes[1], "after", "after re-centring")):
        P, ev = shift[key], shift[f"explained_{key}"]
        for i, s in enumerate(sids):
            m = subject == s
            ax.scatter(P[m, 0], P[m, 1], s=5, alpha=0.5, color=cmap(i), label=f"S{s}", rasterized=True)
        ax.set_xlabel(f"PC 1 ({100 * ev[0]:.0f} % of variance)")
        ax.set_ylabel(f"PC 2 ({100 * ev[1]:.0f} %)")
        ax.set_title(f"tangent vectors {label}", fontsize=9)
    x = np.arange(len(sids))
    axes[2].bar(x - 0.2, shift["distance_before"], 0.4, color="0.55", label="before")
    axes[2].bar(x + 0.2, shift["distance_after"], 0.4, color="#1b9e77", label="after")
    axes[2].set_xticks(x, [f"S{s}" for s in sids], rotation=90, fontsize=7)
    axes[2].set_ylabel("Riemannian distance to the grand mean")
    axes[2].set_title("each subject's mean covariance", fontsize=9, pad=20)
    axes[2].legend(frameon=False, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.06), ncol=2,
                   borderaxespad=0.0)
    axes[1].legend(frameon=False, fontsize=6, ncol=1, loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=3)
    lo, hi = shift["band"]
    fig.suptitle(f"Subject shift, {lo:g}-{hi:g} Hz covariance over {shift['window'][0]:.2f}-{shift['window'][1]:.2f} s "
                 f"({len(sids)} subjects, {len(subject)} trials)", fontsize=10)
    save_figure(fig, save_dir, name)
    return fig
