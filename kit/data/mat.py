"""FieldTrip ``.mat`` files: read one (MATLAB v7.3/HDF5 or v5) into a :class:`Recording`.

Each file holds one FieldTrip raw-data struct named ``data`` (Oostenveld et
al., "FieldTrip", Comput. Intell. Neurosci. 2011; ``ft_datatype_raw``):
``trial`` (EEG in µV), ``time`` (s), ``fsample`` (Hz), ``label`` (channel
names, a cell of char arrays) and, in training files, ``trialinfo``.  The
competition saved them as MATLAB v7.3 files, which are HDF5 files behind a
512-byte text header (MathWorks, "MAT-File Versions"); h5py sees every
array with its axes reversed, so ``trial`` appears as
``(n_times, n_chans, n_trials)``.  Older MATLAB v5 files (``scipy.io``) are
read too.  :mod:`kit.data.mat_write` writes such files.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from pathlib import Path

import numpy as np

from kit.core.errors import DataError
from kit.data.layout import CH_NAMES, N_TIMES, SFREQ

NAN_POLICIES = ("raise", "zero", "interpolate")
"""What :func:`read_mat` does with NaN samples: raise, set them to 0 µV, or interpolate them in time."""


def env_nan_policy() -> str:
    """``$KIT_NAN_POLICY``, ``"raise"`` when unset.

    Raises
    ------
    DataError
        When it is not one of :data:`NAN_POLICIES`.
    """
    policy = os.environ.get("KIT_NAN_POLICY") or "raise"
    if policy not in NAN_POLICIES:
        raise DataError(f"KIT_NAN_POLICY={policy!r}: expected one of {', '.join(NAN_POLICIES)}")
    return policy

_FIELDS = ("trial", "time", "label", "fsample", "trialinfo")


@dataclasses.dataclass(repr=False)
class Recording:
    """One ``.mat`` file: the trials of one subject (and one class, for training files).

    Attributes
    ----------
    trials : ndarray, shape (n_trials, n_chans, n_times), float32
        EEG in µV.
    times : ndarray, shape (n_times,), float64
        Time of each sample after the cue, in s.
    sfreq : float
        Sampling rate in Hz.
    ch_names : list of str, length n_chans
        Channel names in the order of ``trials``' second axis.
    path : Path
        The file read.
    trialinfo : ndarray, shape (n_trials, n_info), float64, or None
        FieldTrip's ``trialinfo`` (MATLAB order: one row per trial); not a class label.
    """

    trials: np.ndarray
    times: np.ndarray
    sfreq: float
    ch_names: list[str]
    path: Path
    trialinfo: np.ndarray | None = None

    def __repr__(self) -> str:
        n, c, t = self.trials.shape
        return f"Recording({self.path.name}: {n} trials x {c} chans x {t} samples @ {self.sfreq:g} Hz)"


# --------------------------------------------------------------------------- reading


def read_mat(path: str | os.PathLike, *, nan_policy: str = "raise") -> Recording:
    """Read one competition ``.mat`` file (MATLAB v7.3/HDF5 or v5).

    The struct ``data`` may hold ``trial`` as one numeric array or as a cell
    of per-trial ``(n_chans, n_times)`` arrays, in single or double precision;
    any field may be stored as an HDF5 object reference.  The axes are told
    apart by size (``n_times = len(time)``, ``n_chans = len(label)``); when
    several orders fit, the FieldTrip/MATLAB order (trials, chans, times) wins.
    Without ``label`` the channels are taken to be :data:`CH_NAMES` (only if
    there are 16); without ``fsample`` the rate comes from ``time``.

    Parameters
    ----------
    path : path
        The ``.mat`` file.
    nan_policy : {"raise", "zero", "interpolate"}
        What to do with NaN/inf samples: raise :class:`DataError`; set them to
        0 µV; or interpolate linearly along time within each trial and channel
        (samples before the first / after the last good one take its value;
        a trial/channel with no good sample is set to 0 µV).

    Returns
    -------
    Recording
        ``trials`` (n_trials, 16, 200) float32 µV, ``times`` (200,) s,
        ``sfreq`` 200.0 Hz, ``ch_names`` from the file.

    Raises
    ------
    DataError
        Missing, empty, truncated or non-MAT file; no ``data`` struct; a
        sampling rate other than 200 Hz; n_times != 200; n_chans != 16; zero
        trials; axes that cannot be identified; NaN/inf samples with
        ``nan_policy="raise"``.  The message starts with the path.
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: empty file (0 bytes), not a MATLAB .mat file")
    import h5py

    if h5py.is_hdf5(path):
        fields = _read_h5(path)
    else:
        with open(path, "rb") as fh:
            head = fh.read(128)
        if b"7.3 MAT-file" in head:
            raise DataError(f"{path}: truncated or corrupt MATLAB v7.3 file (no HDF5 superblock after the header)")
        fields = _read_v5(path)
    return _build(path, fields, nan_policy)


def _no_data_error(path: Path, found: dict[str, bool]) -> DataError:
    if not found:
        return DataError(f"{path}: no variable 'data' in the file (it holds no variables)")
    structs = [k for k, is_ft in found.items() if is_ft]
    hint = f"; '{structs[0]}' looks like a FieldTrip struct: save it as 'data'" if structs else ""
    return DataError(f"{path}: no struct 'data' in the file (variables found: {', '.join(sorted(found))}){hint}")


def _read_h5(path: Path) -> dict:
    """The FieldTrip fields of ``data`` in a v7.3 file, each in MATLAB axis order."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "data" not in f:
                found = {k: isinstance(f[k], h5py.Group) and "trial" in f[k] for k in f if not k.startswith("#")}
                raise _no_data_error(path, found)
            g = f["data"]
            if isinstance(g, h5py.Dataset) and g.dtype == h5py.ref_dtype and g.size == 1:
                g = f[g[()].flat[0]]
            if not isinstance(g, h5py.Group):
                raise DataError(f"{path}: 'data' is a {_h5_class(g) or 'dataset'}, not a FieldTrip struct")
            return {k: _h5_value(f, g[k], want_float32=(k == "trial")) for k in _FIELDS if k in g}
    except OSError as exc:
        raise DataError(f"{path}: truncated or corrupt MATLAB v7.3/HDF5 file ({exc})") from exc


def _h5_class(obj) -> str:
    cls = obj.attrs.get("MATLAB_class", b"")
    return cls.decode() if isinstance(cls, bytes) else str(cls)


def _h5_value(f, obj, want_float32: bool = False):
    """Convert an HDF5 object to MATLAB order: ndarray, object ndarray (cell) or str (char)."""
    import h5py

    if isinstance(obj, h5py.Group):
        return {k: None for k in obj}  # a nested struct; not a field the kit uses
    if obj.attrs.get("MATLAB_empty", 0):
        return np.zeros((0, 0))
    if obj.dtype == h5py.ref_dtype:
        refs = obj[()]
        if refs.size == 1 and _h5_class(obj) != "cell":  # a field stored as an object reference
            return _h5_value(f, f[refs.flat[0]], want_float32)
        cell = np.empty(refs.shape[::-1], dtype=object)
        for idx, ref in np.ndenumerate(refs.T):
            cell[idx] = _h5_value(f, f[ref], want_float32)
        return cell
    if _h5_class(obj) == "char":
        codes = np.atleast_2d(obj[()].T)  # MATLAB order: (n_rows, n_chars)
        rows = ["".join(map(chr, row)).rstrip() for row in codes]
        return rows[0] if len(rows) == 1 else np.array(rows, dtype=object)  # char row or char matrix
    arr = obj.astype(np.float32)[()] if want_float32 and obj.dtype.kind == "f" else obj[()]
    return np.asarray(arr).T


def _read_v5(path: Path) -> dict:
    """The FieldTrip fields of ``data`` in a MATLAB v4/v5/v7 file (scipy.io), MATLAB order."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path, squeeze_me=False, struct_as_record=True, chars_as_strings=True)
    except Exception as exc:  # scipy raises ValueError, MatReadError, TypeError, OSError... on bad files
        raise DataError(f"{path}: not a readable MATLAB .mat file ({type(exc).__name__}: {exc})") from exc
    mat = {k: v for k, v in mat.items() if not k.startswith("__")}
    data = mat.get("data")
    if data is None:
        found = {k: getattr(v.dtype, "names", None) is not None and "trial" in v.dtype.names for k, v in mat.items()}
        raise _no_data_error(path, found)
    if data.dtype.names is None or data.size != 1:
        raise DataError(f"{path}: 'data' is an array of shape {data.shape}, not a FieldTrip struct")
    rec = data.flat[0]
    return {k: _v5_value(rec[k]) for k in _FIELDS if k in data.dtype.names}


def _v5_value(v):
    if isinstance(v, np.ndarray) and v.dtype.kind == "U":
        return "".join(v.ravel()) if v.size <= 1 else np.array([s.rstrip() for s in v.ravel()], dtype=object)
    return v


def _as_str(v) -> str:
    while isinstance(v, np.ndarray) and v.dtype == object and v.size == 1:
        v = v.flat[0]
    if isinstance(v, str):
        return v.strip()
    arr = np.asarray(v)
    if arr.dtype.kind == "U":
        return "".join(arr.ravel()).strip()
    if arr.dtype.kind in "ui":
        return "".join(map(chr, arr.ravel(order="F"))).strip()
    raise TypeError(f"not a string: {type(v).__name__}")


def _scalar(v) -> float:
    while isinstance(v, np.ndarray) and v.dtype == object and v.size == 1:
        v = v.flat[0]
    arr = np.asarray(v, dtype=float).ravel()
    if arr.size != 1:
        raise TypeError(f"expected a scalar, got {arr.size} values")
    return float(arr[0])


def _vector(v) -> np.ndarray:
    while isinstance(v, np.ndarray) and v.dtype == object and v.size >= 1:
        v = v.flat[0]  # FieldTrip may store time as a cell (one vector per trial): use the first
    return np.asarray(v, dtype=np.float64).ravel()


def _order(shape: tuple, sizes: tuple, what: str, path: Path) -> tuple:
    """Permutation taking ``shape`` to the roles of ``sizes`` (None = any size); MATLAB order wins ties."""
    fits = [p for p in itertools.permutations(range(len(shape)))
            if all(s is None or shape[a] == s for a, s in zip(p, sizes))]
    canonical = tuple(range(len(shape)))
    if canonical in fits:
        return canonical
    if len(fits) == 1:
        return fits[0]
    want = ", ".join(f"{n}={s}" for n, s in zip(what.split(","), sizes) if s is not None)
    if not fits:
        raise DataError(f"{path}: trial array of shape {shape} does not match {want}")
    raise DataError(f"{path}: cannot tell the axes of the trial array {shape} apart ({want}): ambiguous")


def _trials(v, n_chans: int | None, n_times: int | None, path: Path) -> np.ndarray:
    """Trials as a C-contiguous float32 (n_trials, n_chans, n_times) array."""
    if isinstance(v, np.ndarray) and v.dtype == object:  # a cell of per-trial (n_chans, n_times) arrays
        cells = [np.asarray(c) for c in v.ravel(order="F")]
        cells = [c for c in cells if c.size]
        if not cells:
            return np.zeros((0, n_chans or len(CH_NAMES), n_times or N_TIMES), np.float32)
        if any(c.ndim != 2 or c.shape != cells[0].shape for c in cells):
            raise DataError(f"{path}: trials in the cell differ in shape or are not 2-D (first {cells[0].shape})")
        perm = _order(cells[0].shape, (n_chans, n_times), "n_chans,n_times", path)
        out = np.empty((len(cells),) + tuple(cells[0].shape[a] for a in perm), np.float32)
        for i, c in enumerate(cells):
            out[i] = c.transpose(perm)
        return out
    arr = np.asarray(v)
    if arr.dtype.kind not in "fiu":
        raise DataError(f"{path}: 'trial' is of type {arr.dtype}, not numeric")
    if arr.size == 0:
        return np.zeros((0, n_chans or len(CH_NAMES), n_times or N_TIMES), np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise DataError(f"{path}: 'trial' has {arr.ndim} dimensions, expected 3 (trials, chans, times)")
    perm = _order(arr.shape, (None, n_chans, n_times), "n_trials,n_chans,n_times", path)
    return np.ascontiguousarray(arr.transpose(perm), dtype=np.float32)


def _build(path: Path, fields: dict, nan_policy: str) -> Recording:
    if "trial" not in fields:
        raise DataError(f"{path}: struct 'data' has no field 'trial' (fields: {', '.join(sorted(fields)) or 'none'})")
    try:
        times = _vector(fields["time"]) if "time" in fields else None
        sfreq = _scalar(fields["fsample"]) if "fsample" in fields else None
        label = fields.get("label")
        if isinstance(label, str):
            label = np.array([label], dtype=object)
        ch_names = [_as_str(x) for x in np.asarray(label).ravel(order="F")] if label is not None else None
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: malformed field in struct 'data' ({exc})") from exc
    if sfreq is None:
        if times is None or times.size < 2:
            raise DataError(f"{path}: no 'fsample' and no usable 'time' field: cannot tell the sampling rate")
        sfreq = round(float((times.size - 1) / (times[-1] - times[0])), 6)
    if not np.isclose(sfreq, SFREQ, rtol=0, atol=0.01):
        raise DataError(f"{path}: sampling rate {sfreq:g} Hz, expected {SFREQ:g} Hz (resample to {SFREQ:g} Hz)")
    n_chans_hint = len(ch_names) if ch_names is not None else len(CH_NAMES)
    try:
        X = _trials(fields["trial"], n_chans_hint, None if times is None else times.size, path)
    except DataError as exc:
        if ch_names is None:
            raise DataError(f"{exc} (no 'label' field: assumed the {len(CH_NAMES)} channels of CH_NAMES)") from exc
        raise
    n_trials, n_chans, n_times = X.shape
    if n_trials == 0:
        raise DataError(f"{path}: zero trials")
    if times is None:
        times = np.arange(n_times) / sfreq
    if n_times != N_TIMES:
        raise DataError(f"{path}: {n_times} samples per trial, expected {N_TIMES} (1 s at {SFREQ:g} Hz)")
    if n_chans != len(CH_NAMES):
        raise DataError(f"{path}: {n_chans} channels, expected {len(CH_NAMES)}")
    if ch_names is None:
        ch_names = list(CH_NAMES)
    if len(set(ch_names)) != len(ch_names):
        raise DataError(f"{path}: duplicate channel names in 'label': {ch_names}")
    info = _trialinfo(fields.get("trialinfo"), n_trials, path)
    _repair(X, path, ch_names, nan_policy)
    return Recording(X, times, float(sfreq), ch_names, path, info)


def _trialinfo(v, n_trials: int, path: Path) -> np.ndarray | None:
    if v is None or (isinstance(v, np.ndarray) and v.dtype == object):
        return None
    info = np.asarray(v, dtype=np.float64)
    if info.size == 0:
        return None
    if info.ndim == 1:
        info = info[:, None]
    if info.ndim == 2 and info.shape[0] != n_trials and info.shape[1] == n_trials:
        info = info.T
    if info.ndim != 2 or info.shape[0] != n_trials:
        raise DataError(f"{path}: 'trialinfo' has shape {info.shape} but the file holds {n_trials} trials")
    return np.ascontiguousarray(info)


def _repair(X: np.ndarray, path: Path, ch_names: list[str], nan_policy: str) -> None:
    """Apply ``nan_policy`` to the NaN/inf samples of ``X`` (n_trials, n_chans, n_times), in place."""
    bad = ~np.isfinite(X)
    n_bad = int(bad.sum())
    if not n_bad:
        return
    rows = bad.any(axis=2)
    if nan_policy == "raise":
        i, c = np.argwhere(rows)[0]
        raise DataError(
            f"{path}: {n_bad} NaN/inf samples in {int(rows.any(axis=1).sum())} of {len(X)} trials "
            f"(first: trial {i}, channel {c} {ch_names[c]}); pass nan_policy='zero' (set to 0 µV) "
            "or nan_policy='interpolate' (linear in time) to repair (command line and notebooks: "
            "KIT_NAN_POLICY=zero or interpolate)")
    if nan_policy == "zero":
        X[bad] = 0.0
        return
    t = np.arange(X.shape[2])
    for i, c in np.argwhere(rows):  # only the damaged rows: rare, not a hot path
        m = bad[i, c]
        X[i, c] = 0.0 if m.all() else np.where(m, np.interp(t, t[~m], X[i, c, ~m]), X[i, c])
