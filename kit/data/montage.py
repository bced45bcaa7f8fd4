"""Where the channels sit: mne's 10-20 template montage, an ``mne.Info`` for the channels, their adjacency."""

from __future__ import annotations

from typing import Sequence

from kit.core.errors import KitError
from kit.data.layout import CH_NAMES, SFREQ

REGIONS: dict[str, tuple[str, ...]] = {
    "frontal": ("Fp", "AF", "F", "FC", "FT"),
    "central": ("C", "T"),
    "centro-parietal": ("CP", "TP"),
    "parietal-occipital": ("P", "PO", "O", "I"),
}
"""Scalp regions, front to back, by the letters of a 10-20 / 10-10 name (``FC3`` -> ``FC`` -> frontal)."""


def channel_groups(ch_names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The channels of each region of :data:`REGIONS` (in ``ch_names`` order; regions without a channel left out).

    Raises
    ------
    KitError
        When a name has no 10-20 letters the regions know (e.g. ``EOG1``).
    """
    out: dict[str, list[str]] = {r: [] for r in REGIONS}
    for name in ch_names:
        letters = str(name).rstrip("0123456789zZ").upper()
        region = next((r for r, pre in REGIONS.items() if letters in {p.upper() for p in pre}), None)
        if region is None:
            raise KitError(f"channel {name!r}: no scalp region for its letters {letters!r}")
        out[region].append(str(name))
    return {r: tuple(c) for r, c in out.items() if c}


CHANNEL_GROUPS: dict[str, tuple[str, ...]] = channel_groups(CH_NAMES)
"""The competition's 16 channels in four scalp regions, front to back (for evoked responses by region)."""


def montage():
    """mne's template 10-20 montage (``standard_1020``, renamed ``colin27_1020`` in mne 1.13)."""
    import mne

    name = "colin27_1020" if "colin27_1020" in mne.channels.get_builtin_montages() else "standard_1020"
    return mne.channels.make_standard_montage(name)


def channel_info(ch_names: Sequence[str] = CH_NAMES, sfreq: float = SFREQ):
    """``mne.Info`` of EEG channels ``ch_names`` at ``sfreq`` Hz with the template montage set.

    Raises
    ------
    KitError
        When a channel is not in the 10-20 template (it has no position).
    """
    import mne

    mont = montage()
    known = {c.lower(): c for c in mont.ch_names}  # case-insensitive: "CZ" is "Cz"
    missing = [c for c in ch_names if c.lower() not in known]
    if missing:
        raise KitError(f"channels {missing} have no position in mne's 10-20 template")
    info = mne.create_info([known[c.lower()] for c in ch_names], float(sfreq), "eeg")
    info.set_montage(mont)
    return info


def channel_adjacency(ch_names: Sequence[str] = CH_NAMES):
    """Adjacency of the channels on the scalp, ``(n_chans, n_chans)`` scipy sparse, booleans.

    Neighbours from a Delaunay triangulation of the template positions
    (``mne.channels.find_ch_adjacency``; mne has no stored neighbour file for
    this 16-channel set), as spatio-temporal cluster tests need.
    """
    import mne

    with mne.utils.use_log_level("error"):  # mne prints its choice of the Delaunay rule
        adjacency, _ = mne.channels.find_ch_adjacency(channel_info(ch_names), "eeg")
    return adjacency
