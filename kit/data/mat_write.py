"""Write FieldTrip ``.mat`` files in the competition's format (MATLAB v7.3: HDF5 behind the 512-byte header).

What the simulator (:mod:`kit.data.demo`) and the tests use; :func:`kit.data.mat.read_mat` reads them back.
"""

from __future__ import annotations

import os
import time as _time
from pathlib import Path

import numpy as np

from kit.core.errors import DataError
from kit.data.layout import SFREQ
from kit.store.artifacts import atomic_write

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _header() -> bytes:
    """The 512-byte MATLAB v7.3 userblock: 116 bytes of text, 8 zero bytes, version 0x0200, 'IM'.

    The date is ``$SOURCE_DATE_EPOCH`` (reproducible builds) if set, else now (UTC).
    """
    tm = _time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", _time.time())))
    stamp = (f"{_DAYS[tm.tm_wday]} {_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} "
             f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {tm.tm_year}")
    text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {stamp} HDF5 schema 1.00 .".encode("ascii")
    return text.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02" + b"IM" + b"\0" * 384


def write_mat(path: str | os.PathLike, trials, *, times, ch_names, sfreq: float = SFREQ,
              trialinfo=None) -> Path:
    """Write trials as a MATLAB v7.3 file laid out like the competition's files.

    HDF5 behind a 512-byte MATLAB header; group ``data`` (``MATLAB_class``
    ``struct``) with ``trial`` single ``(n_times, n_chans, n_trials)`` as h5py
    sees it, ``time`` double ``(n_times, 1)``, ``fsample`` double ``(1, 1)``,
    ``trialinfo`` double ``(n_info, n_trials)`` if given, and ``label`` a
    ``(n_chans, 1)`` cell of object references to uint16 char arrays in
    ``#refs#``.  MATLAB, :func:`read_mat` and h5py read it; scipy.io does not
    (no reader of v7.3 does without HDF5).  Written atomically.

    Parameters
    ----------
    path : path
        Destination ``.mat`` file (parent folders are created).
    trials : array, shape (n_trials, n_chans, n_times)
        EEG in µV; stored as float32 (MATLAB single).
    times : array, shape (n_times,)
        Sample times in s.
    ch_names : sequence of str, length n_chans
        Channel names (ASCII).
    sfreq : float
        Sampling rate in Hz.
    trialinfo : array, shape (n_trials,) or (n_trials, n_info), optional
        Per-trial information (stored as double).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    DataError
        If the shapes of ``trials``, ``times``, ``ch_names`` and ``trialinfo`` disagree.
    """
    import h5py

    path = Path(path)
    X = np.asarray(trials)
    if X.ndim != 3:
        raise DataError(f"{path}: trials must be (n_trials, n_chans, n_times), got shape {X.shape}")
    n_trials, n_chans, n_times = X.shape
    times = np.asarray(times, dtype=np.float64).ravel()
    names = [str(c) for c in ch_names]
    if times.size != n_times or len(names) != n_chans:
        raise DataError(f"{path}: trials {X.shape} vs {times.size} times and {len(names)} channel names")
    info = None
    if trialinfo is not None:
        info = np.asarray(trialinfo, dtype=np.float64)
        info = info[:, None] if info.ndim == 1 else info
        if info.ndim != 2 or info.shape[0] != n_trials:
            raise DataError(f"{path}: trialinfo of shape {info.shape} for {n_trials} trials")
    with atomic_write(path, "w+b") as fh:
        with h5py.File(fh, "w", userblock_size=512, libver="earliest") as f:
            data = f.create_group("data")
            data.attrs["MATLAB_class"] = np.bytes_(b"struct")
            arrays = [("trial", np.ascontiguousarray(X.transpose(2, 1, 0), dtype=np.float32), b"single"),
                      ("time", times[:, None], b"double"),
                      ("fsample", np.full((1, 1), float(sfreq)), b"double")]
            if info is not None:
                arrays.append(("trialinfo", np.ascontiguousarray(info.T), b"double"))
            for name, arr, cls in arrays:
                data.create_dataset(name, data=arr).attrs["MATLAB_class"] = np.bytes_(cls)
            refs = f.create_group("#refs#")
            label = np.empty((n_chans, 1), dtype=h5py.ref_dtype)
            for i, name in enumerate(names):
                codes = np.array([ord(ch) for ch in name], dtype=np.uint16)[:, None]  # UTF-16 code units
                ds = refs.create_dataset(f"c{i}", data=codes)
                ds.attrs["MATLAB_class"] = np.bytes_(b"char")
                label[i, 0] = ds.ref
            data.create_dataset("label", data=label).attrs["MATLAB_class"] = np.bytes_(b"cell")
        fh.seek(0)
        fh.write(_header())
    return path
