"""Scores over subjects: per-subject AUCs of each method against chance, and the label-permutation test of a
LOSO score (seaborn's statistical plots in the kit's style, :mod:`kit.report.common`)."""

from __future__ import annotations

import os
from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.report.common import legend_outside, method_color, save_figure


@fill_doc
def plot_subject_auc(per_subject: Mapping[str, Mapping], *, chance_band: tuple[float, float] | None = None,
                     chance: float = 0.5, title: str = "", save_dir: str | os.PathLike | None = None,
                     name: str = "subject_auc") -> Figure:
    """Each held-out subject's AUC per method, as points over a box, with the chance line and band.

    Parameters
    ----------
    per_subject : mapping method -> mapping subject -> AUC
        E.g. ``{"starter": loso_score(...)["per_subject_auc"]}`` (each subject's AUC averaged over samples).
    chance_band : (low, high), optional
        Where a subject's AUC falls by chance, drawn grey: e.g. the 2.5th and 97.5th percentiles of the
        per-subject AUCs under label permutations (:func:`kit.pipeline.significance.starter_permutation_test`,
        ``chance_band``).
    chance : float
        Level of the dashed chance line.
    title : str
        Axes title; default names the number of subjects.
    %(save_dir)s

    Returns
    -------
    Figure
        One axes: per method a box and the subjects' points.

    Raises
    ------
    KitError
        No method, or a method without subjects.
    """
    import seaborn as sns

    if not per_subject or any(len(v) == 0 for v in per_subject.values()):
        raise KitError("plot_subject_auc: need at least one method with per-subject AUCs")
    rows = [{"method": str(m), "subject": str(s), "AUC": float(a)}
            for m, d in per_subject.items() for s, a in d.items()]
    df = pd.DataFrame(rows)
    methods = list(dict.fromkeys(df["method"]))
    palette = {m: method_color(m, methods) for m in methods}
    fig, ax = plt.subplots(figsize=(max(6.4, 1.1 * len(methods) + 2.6), 3.4), layout="constrained")
    handles = []
    if chance_band is not None:
        lo, hi = (float(v) for v in chance_band)
        ax.axhspan(lo, hi, color="0.88", lw=0, zorder=0)
        handles.append(Patch(color="0.88", label=f"chance band {lo:.3f}-{hi:.3f} (95 % of subjects' AUCs\n"
                                                  "with the labels permuted)"))
    ax.axhline(chance, color="0.3", lw=0.9, ls="--", zorder=1)
    sns.boxplot(data=df, x="method", y="AUC", hue="method", palette=palette, ax=ax, width=0.5, fliersize=0,
                boxprops={"alpha": 0.35}, legend=False, order=methods)
    sns.stripplot(data=df, x="method", y="AUC", hue="method", palette=palette, ax=ax, size=4, jitter=0.12,
                  edgecolor="k", linewidth=0.4, legend=False, order=methods)
    for k, m in enumerate(methods):
        v = df.loc[df["method"] == m, "AUC"]
        ax.text(k, 1.0, f"{(v > chance).sum()}/{len(v)} > {chance:g}", transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=7)
    ax.set_xlabel("")
    ax.set_ylabel("AUC per held-out subject (mean over samples)")
    n = df["subject"].nunique()
    ax.set_title(title or f"per-subject AUC, leave-one-subject-out ({n} subjects)", pad=14)
    handles.append(plt.Line2D([], [], color="0.3", ls="--", label=f"chance ({chance:g})"))
    legend_outside(ax, handles, [h.get_label() for h in handles], fontsize=7)
    save_figure(fig, save_dir, name)
    return fig


@fill_doc
def plot_permutation_test(result: Mapping, *, title: str = "", save_dir: str | os.PathLike | None = None,
                          name: str = "permutation_test") -> Figure:
    """The null distribution of a LOSO score under label permutations, and the observed score.

    Parameters
    ----------
    result : mapping
        From :func:`kit.eval.effects.label_permutation_test` (``observed``, ``null``, ``p_value``,
        ``n_permutations``; ``method`` optional).
    title : str
        Axes title; default names the method, the permutations and p.
    %(save_dir)s

    Returns
    -------
    Figure
        One axes: the null distribution and the observed score.
    """
    import seaborn as sns

    null = np.asarray(result["null"], np.float64)
    method = str(result.get("method", "model"))
    fig, ax = plt.subplots(figsize=(7.0, 3.0), layout="constrained")
    sns.histplot(null, ax=ax, color="0.6", bins=min(30, max(5, len(null) // 4)),
                 label="labels permuted within subjects")
    ax.axvline(result["observed"], color=method_color(method), lw=2.0,
               label=f"{method} with the true labels ({result['observed']:.4f})")
    ax.set_xlabel("LOSO window score")
    ax.set_ylabel("permutations")
    ax.set_title(title or f"{method}: label-permutation test of the LOSO score ({result['n_permutations']} "
                          f"permutations, p = {result['p_value']:.3f})")
    legend_outside(ax, fontsize=7)
    save_figure(fig, save_dir, name)
    return fig
