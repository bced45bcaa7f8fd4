"""What every figure shares: the style, colours per method and class, the metric window, hatching, input checks,
class means, subject differences, saving.

The style is seaborn's (``seaborn.set_theme``, "paper" context, "ticks" style, the colour-blind-safe
"colorblind" palette), set once when this module is imported (:func:`apply_style`).  Every method of the kit has
one colour everywhere (:func:`method_color`); legends go outside the data (:func:`legend_outside`); a hatch means
one thing in every figure and is named in the legend (:data:`HATCH_UNTRUSTED`, :data:`HATCH_NOT_SIGNIFICANT`);
PNGs are written at :data:`DPI` dpi beside a vector PDF (:func:`save_figure`).

Conventions: ``P`` is band power of shape (n_trials, n_chans, n_times), e.g.
one band of :func:`kit.signal.features.band_power` (log µV²) or of
:func:`kit.signal.features.band_features` (z-scored, no unit); ``y`` holds 1 for
emotional, 0 for neutral; trials with any other label (-1, test) are ignored.
``times`` is in seconds after the cue.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from kit.core.errors import KitError
from kit.store.artifacts import atomic_write

PALETTE = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4", "#949494", "#ece133",
           "#56b4e9")
"""seaborn's "colorblind" palette (Okabe-Ito based), in its order."""

EMO_COLOR = PALETTE[3]  # vermillion
NEU_COLOR = PALETTE[0]  # blue
WINDOW = (0.4, 0.6)
"""The paper's cluster, in s after the cue (Abdellahi, Tsimpanouli & Lewis 2025)."""

DPI = 150
"""Resolution of every PNG (the PDF beside it is vector)."""

METHOD_COLORS = {
    "starter": PALETTE[0], "thetacov": PALETTE[1], "bandpower": PALETTE[2], "experts": PALETTE[3],
    "eegnet": PALETTE[4], "riemann": PALETTE[5], "fusion": PALETTE[9], "fusion_lda": PALETTE[7],
    "thirdplace": "#6a3d9a", "ensemble": "#000000",
}
"""One colour per method across the kit (colour-blind safe; the ensemble black)."""

LEVER_BASE = {"riemann_flat": "riemann", "thetacov_ea": "thetacov", "eegnet_ea": "eegnet",
              "experts_mldg": "experts", "experts_fomaml": "experts", "experts_seeds3": "experts",
              "experts_tent": "experts", "fusion_tokens": "fusion", "fusion_cov": "fusion"}
"""Each lever of :data:`kit.methods.registry.METHODS` and the method it changes: its colour is a shade of that
method's (and its line dashed), so a lever reads as a variant without reusing a colour."""

_EXTRA = ("#b15928", "#1f78b4", "#33a02c", "#e31a1c", "#ff7f00", "#6a3d9a")  # names outside the maps above

HATCH_UNTRUSTED = "////"
"""Hatch of the samples the filter edge effect spoils (:func:`mark_untrusted`)."""
HATCH_NOT_SIGNIFICANT = "xx"
"""Hatch of a cluster with p >= alpha (kit.report.clusters)."""


def apply_style() -> None:
    """The kit's figure style: seaborn's "paper" context, "ticks" style, "colorblind" palette, no top/right spines.

    Called once when :mod:`kit.report.common` is imported; call again after changing matplotlib's rcParams.
    """
    import seaborn as sns

    sns.set_theme(context="paper", style="ticks", palette=list(PALETTE), font_scale=1.0,
                  rc={"axes.spines.top": False, "axes.spines.right": False, "savefig.dpi": DPI,
                      "figure.dpi": 100, "legend.frameon": False, "hatch.linewidth": 0.6,
                      "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
                      "legend.fontsize": 8, "image.cmap": "RdBu_r"})


def method_key(label: str) -> str:
    """The method name a series label starts with: ``"experts (mean of 16)"`` -> ``"experts"``."""
    return str(label).split(" ")[0].split("(")[0].strip().lower()


def _shade(color: str, k: int) -> tuple[float, float, float]:
    """``color`` mixed with black (k odd) or white (k even), further for larger ``k``."""
    from matplotlib.colors import to_rgb

    rgb = np.asarray(to_rgb(color))
    f = 0.25 + 0.15 * (k // 2)
    target = np.zeros(3) if k % 2 == 0 else np.ones(3)
    return tuple(float(v) for v in (1 - f) * rgb + f * target)


def method_color(label: str, others: Iterable[str] = ()):
    """The colour of a method in every figure of the kit.

    Parameters
    ----------
    label : str
        A series label; its first word names the method (:func:`method_key`).
    others : iterable of str
        The other labels drawn in the same figure: a name unknown to the kit takes the first colour of the
        palette none of them uses (so one figure never reuses a colour).

    Returns
    -------
    colour
        :data:`METHOD_COLORS` for a method; for a lever (:data:`LEVER_BASE`) a shade of its method's colour.
    """
    from kit.methods.registry import METHODS

    key = method_key(label)
    if key in METHOD_COLORS:
        return METHOD_COLORS[key]
    if key in LEVER_BASE:
        levers = [k for k, b in LEVER_BASE.items() if b == LEVER_BASE[key]]
        return _shade(METHOD_COLORS[LEVER_BASE[key]], levers.index(key))
    newer = [m for m in METHODS if m not in METHOD_COLORS and m not in LEVER_BASE]  # added to the registry since
    if key in newer:
        return _EXTRA[newer.index(key) % len(_EXTRA)]
    known = set(METHOD_COLORS) | set(LEVER_BASE) | set(newer)
    taken = {method_color(o) for o in others if method_key(o) in known}
    unknown = [method_key(o) for o in others if method_key(o) not in known]
    free = [c for c in (*PALETTE, *_EXTRA[::-1]) if c not in taken and c not in METHOD_COLORS.values()]
    index = unknown.index(key) if key in unknown else len(unknown)
    return free[index % len(free)]


def method_linestyle(label: str) -> str:
    """Solid for a method, dashed for a lever of one (:data:`LEVER_BASE`)."""
    return "--" if method_key(label) in LEVER_BASE else "-"


def legend_outside(ax, handles=None, labels=None, *, where: str = "right", **kwargs):
    """A legend outside the data: to the right of ``ax`` (``where="right"``) or below it (``"below"``)."""
    kw = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0} if where == "right" else \
        {"loc": "upper center", "bbox_to_anchor": (0.5, -0.2), "borderaxespad": 0.0, "ncol": 3}
    kw.setdefault("handleheight", 1.4)  # room for a hatch to show in the legend
    kw.setdefault("handlelength", 2.4)
    kw.update(kwargs)
    args = () if handles is None else (handles,) if labels is None else (handles, labels)
    return ax.legend(*args, **kw)


def untrusted_handle() -> Patch:
    """Legend entry of the hatching of :func:`mark_untrusted`."""
    return Patch(facecolor="none", edgecolor="0.55", hatch=HATCH_UNTRUSTED, lw=0,
                 label="untrusted samples (filter edge effect)")


def not_significant_handle(alpha: float = 0.05) -> Patch:
    """Legend entry of a cluster with p >= ``alpha`` (:data:`HATCH_NOT_SIGNIFICANT`)."""
    return Patch(facecolor="none", edgecolor="0.45", hatch=HATCH_NOT_SIGNIFICANT, lw=0,
                 label=f"cluster with p >= {alpha:g}")


def scalp_order(ch_names: Sequence[str]) -> list[int]:
    """Indices of ``ch_names`` ordered front to back, then left to right (10-20 template positions).

    Rows come from the 10-20 letters (Fp, AF, F, FC/FT, C/T, CP/TP, P, PO, O, I); within a row channels go by
    their template x position (left negative).  Names the template lacks keep their order at the end.
    """
    from kit.data.montage import montage

    rows = ("FP", "AF", "F", "FC", "FT", "C", "T", "CP", "TP", "P", "PO", "O", "I")
    pos = {k.lower(): v for k, v in montage().get_positions()["ch_pos"].items()}
    keys = []
    for i, name in enumerate(ch_names):
        letters = str(name).rstrip("0123456789zZ").upper()
        p = pos.get(str(name).lower())
        if p is None:
            keys.append((len(rows) + 1, 0.0, i))
        else:
            row = rows.index(letters) if letters in rows else len(rows)
            keys.append((row, float(p[0]), i))
    return [k[2] for k in sorted(keys)]


def label_sensors(ax, names: Sequence[str], *, fontsize: float = 5.5) -> None:
    """Shrink and lift the channel names :func:`mne.viz.plot_topomap` drew on ``ax`` (``names=``), so that
    neighbours (CP4 / CP6, C3 / C5) do not run into each other: each name sits just above its sensor dot."""
    wanted = {str(n) for n in names}
    for text in ax.texts:
        if text.get_text() in wanted:
            x, y = text.get_position()
            text.set_fontsize(fontsize)
            text.set_verticalalignment("bottom")
            text.set_position((x, y + 0.004))  # head coordinates in m: 4 mm above the dot
            text.set_color("0.15")


apply_style()


# ----------------------------------------------------------------------------- helpers
def save_figure(fig: Figure, save_dir: str | os.PathLike | None, name: str, *, dpi: int = DPI) -> Path | None:
    """Write ``fig`` as ``save_dir/{name}.png`` (``dpi``, default 150) and, for papers, the vector
    ``save_dir/{name}.pdf``, atomically.

    Does nothing when ``save_dir`` is None.

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
    with atomic_write(path.with_suffix(".pdf")) as fh:
        fig.savefig(fh, format="pdf", bbox_inches="tight")
    return path


def check_epochs(P: np.ndarray, y: np.ndarray, times: np.ndarray,
                 subject: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate ``P (n_trials, n_chans, n_times)``, ``y (n_trials,)``, ``times (n_times,)`` in s and ``subject``.

    Returns them with only the labelled trials (y in {0, 1}) kept.

    Raises
    ------
    KitError
        On a shape mismatch, or when either class has no trial.
    """
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


def channel_names(ch_names: Sequence[str] | None, n_chans: int) -> list[str]:
    """``ch_names`` as strings (``ch0``, ``ch1``, ... when None); KitError unless there are ``n_chans``."""
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


def draw_class_means(ax, x: np.ndarray, stats: dict, *, lw: float = 1.2) -> None:
    """Each class's mean (a line) and ± SEM (a band) on ``ax``, neutral then emotional, in the class colours.

    ``stats`` is :func:`class_means`' ``{label: (mean, sem)}``, each of shape ``x.shape``; the lines are
    labelled "neutral" and "emotional" for the legend.
    """
    for label, color, text in ((0, NEU_COLOR, "neutral"), (1, EMO_COLOR, "emotional")):
        mean, sem = stats[label]
        ax.plot(x, mean, color=color, lw=lw, label=text)
        ax.fill_between(x, mean - sem, mean + sem, color=color, alpha=0.25, lw=0)


def mark_cue_and_window(ax, window: tuple[float, float] | None) -> None:
    """Dashed line at the cue (0 s) and, when given, the window (s) shaded grey."""
    ax.axvline(0.0, color="0.3", lw=0.8, ls="--")
    if window is not None:
        ax.axvspan(window[0], window[1], color="0.85", zorder=0, lw=0)


def mark_untrusted(ax, trusted: tuple[float, float]) -> None:
    """Hatch (:data:`HATCH_UNTRUSTED`) the samples outside ``trusted`` (first and last trusted time in s, e.g.
    from :func:`kit.signal.edges.edge_effect`); call after plotting, so the hatching spans the data's x range.
    Add :func:`untrusted_handle` to the legend."""
    lo, hi = ax.get_xlim()
    for a, b in ((min(lo, trusted[0]), trusted[0]), (trusted[1], max(hi, trusted[1]))):
        ax.axvspan(a, b, facecolor="none", edgecolor="0.55", hatch=HATCH_UNTRUSTED, lw=0, zorder=0)
    ax.set_xlim(lo, hi)


def window_mask(times: np.ndarray, tmin: float, tmax: float) -> np.ndarray:
    """Samples with ``tmin <= times <= tmax`` (s, inclusive to 1e-9 s), (n_times,) bool; KitError when none."""
    times = np.asarray(times)
    sel = (times >= tmin - 1e-9) & (times <= tmax + 1e-9)
    if not sel.any():
        raise KitError(f"no sample between {tmin} s and {tmax} s (times run {times[0]:.3f}-{times[-1]:.3f} s)")
    return sel


def grid_shape(n: int) -> tuple[int, int]:
    """``(n_rows, n_cols)`` of a near-square grid of ``n`` panels."""
    ncols = math.ceil(math.sqrt(n))
    return math.ceil(n / ncols), ncols


def channel_selection(channels: str | Sequence[str] | None, names: list[str]) -> tuple[list[int], str]:
    """Indices of ``channels`` (a name, names, or None for all) in ``names``, and a label for the title.

    Raises
    ------
    KitError
        When a channel is not among ``names``.
    """
    if channels is None:
        return list(range(len(names))), "mean of all channels"
    if isinstance(channels, str):
        channels = [channels]
    missing = [c for c in channels if c not in names]
    if missing:
        raise KitError(f"channels {missing} not among {names}")
    return [names.index(c) for c in channels], "+".join(channels)


