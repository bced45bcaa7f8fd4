"""What every figure shares: colours, the metric window, input checks, class means, subject differences, saving.


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
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from kit.store.artifacts import atomic_write
from kit.core.errors import KitError


EMO_COLOR = "#c0392b"
NEU_COLOR = "#2c7fb8"
WINDOW = (0.4, 0.6)
"""The paper's cluster, in s after the cue (Abdellahi, Tsimpanouli & Lewis 2025)."""


# ----------------------------------------------------------------------------- helpers
def save_figure(fig: Figure, save_dir: str | os.PathLike | None, name: str, *, dpi: int = 110) -> Path | None:
    """Write ``fig`` as ``save_dir/{name}.png`` and, for papers, the vector ``save_dir/{name}.pdf``, atomically.

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


def mark_cue_and_window(ax, window: tuple[float, float] | None) -> None:
    """Dashed line at the cue (0 s) and, when given, the window (s) shaded grey."""
    ax.axvline(0.0, color="0.3", lw=0.8, ls="--")
    if window is not None:
        ax.axvspan(window[0], window[1], color="0.85", zorder=0, lw=0)


def mark_untrusted(ax, trusted: tuple[float, float]) -> None:
    """Hatch the samples outside ``trusted`` (first and last trusted time in s, e.g. from
    :func:`kit.signal.edges.edge_effect`); call after plotting, so the hatching spans the data's x range."""
    lo, hi = ax.get_xlim()
    for a, b in ((min(lo, trusted[0]), trusted[0]), (trusted[1], max(hi, trusted[1]))):
        ax.axvspan(a, b, facecolor="none", edgecolor="0.85", hatch="\\\\", lw=0, zorder=0)
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


