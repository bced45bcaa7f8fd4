"""Submission files: write, validate, score.

Format (``COMPETITION.md``): CSV with header ``id,prediction``, one row per
test trial and sample, ``id = {subject}_{trial}_{sample}`` (trial counted from
0 in file order, sample 0..199), ``prediction`` = P(emotional) in [0, 1];
1,734 trials x 200 samples = 346,800 rows for the real test set.

Labels files (for scoring simulated or held-out data) have the header
``id,label`` and ids ``{subject}_{trial}``.
"""

from __future__ import annotations

import gzip
import io
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from kit.core.errors import KitError, SubmissionError
from kit.eval.metric import CHANCE, MIN_LEN, WindowScore, competition_score
from kit.store.artifacts import atomic_write

HEADER = "id,prediction"
DIGITS = 6
"""Significant digits of a written prediction (``%.6g``: relative error <= 5e-6, absolute <= 5e-7 in [0, 1])
instead of the 17 of a float's repr: the file is about a third smaller, and the metric (AUCs within a subject)
moves by less than 1e-4 (a pair of trials that the rounding ties counts half instead of one)."""
LABELS_HEADER = "id,label"
N_TIMES = 200


def expected_ids(subject: np.ndarray, trial: np.ndarray, n_times: int = N_TIMES) -> np.ndarray:
    """The ids ``{subject}_{trial}_{sample}``, trial by trial, samples 0..n_times-1.

    Parameters
    ----------
    subject, trial : ndarray, shape (n_test_trials,)
        Integer subject id and trial index (file order) of each test trial.
    n_times : int
        Samples per trial (200).

    Returns
    -------
    ndarray of str, shape (n_test_trials * n_times,)
    """
    subject = np.asarray(subject).astype(np.int64)
    trial = np.asarray(trial).astype(np.int64)
    prefix = np.char.add(np.char.add(subject.astype(str), "_"), np.char.add(trial.astype(str), "_"))
    samples = np.arange(n_times).astype(str)
    return np.char.add(np.repeat(prefix, n_times), np.tile(samples, prefix.size))


_make_ids = expected_ids  # validate_submission's parameter of the same name shadows it


def _check_arrays(path: Path, pred, subject, trial) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    subject = np.asarray(subject)
    trial = np.asarray(trial)
    if pred.ndim != 2:
        raise SubmissionError(f"{path}: predictions must be (n_test_trials, n_times), got shape {pred.shape}")
    if subject.shape != (pred.shape[0],) or trial.shape != (pred.shape[0],):
        raise SubmissionError(f"{path}: subject {subject.shape} and trial {trial.shape} must both be "
                              f"({pred.shape[0]},) like the predictions' first axis")
    for name, a in (("subject", subject), ("trial", trial)):
        if not np.issubdtype(a.dtype, np.integer) and not np.all(np.mod(a, 1) == 0):
            raise SubmissionError(f"{path}: {name} ids must be integers")
        if np.any(a < 0):
            raise SubmissionError(f"{path}: {name} ids must be >= 0")
    bad = ~np.isfinite(pred)
    if bad.any():
        raise SubmissionError(f"{path}: {int(bad.sum())} predictions are NaN/inf; nothing written")
    out = (pred < 0) | (pred > 1)
    if out.any():
        raise SubmissionError(f"{path}: {int(out.sum())} predictions outside [0, 1] (min {pred.min():.4g}, "
                              f"max {pred.max():.4g}); nothing written")
    pairs = pd.DataFrame({"s": subject, "t": trial})
    if pairs.duplicated().any():
        s, t = pairs[pairs.duplicated()].iloc[0]
        raise SubmissionError(f"{path}: trial {s}_{t} appears twice; nothing written")
    return pred, subject.astype(np.int64), trial.astype(np.int64)


def write_submission(path: str | os.PathLike, pred: np.ndarray, subject: np.ndarray,
                     trial: np.ndarray) -> Path:
    """Validate and write a submission atomically (``.csv`` or ``.csv.gz``).

    Parameters
    ----------
    path : path
        Output file; a ``.gz`` suffix writes gzip.
    pred : ndarray, shape (n_test_trials, n_times)
        P(emotional) in [0, 1], finite.
    subject, trial : ndarray, shape (n_test_trials,)
        Subject id and trial index (file order, from 0) of each row of ``pred``.

    Returns
    -------
    Path
        The file written, predictions with :data:`DIGITS` significant digits.  It is written to a temporary
        name and renamed, so a
        failure never leaves a half-written or invalid file at ``path``.

    Raises
    ------
    SubmissionError
        Bad shapes, NaN/inf, values outside [0, 1], duplicate trials.
    """
    path = Path(path)
    pred, subject, trial = _check_arrays(path, pred, subject, trial)
    frame = pd.DataFrame({"id": expected_ids(subject, trial, pred.shape[1]), "prediction": pred.ravel()})
    text = frame.to_csv(index=False, lineterminator="\n", float_format=f"%.{DIGITS}g").encode()
    if path.suffix == ".gz":
        text = gzip.compress(text, compresslevel=6, mtime=0)
    with atomic_write(path, "wb") as fh:
        fh.write(text)
    return path


def _read_ids(path: Path, header: str, parts: tuple[str, ...]) -> tuple[pd.DataFrame, pd.Series]:
    """The file's rows (:func:`_read_two_columns`) and its ids as str; SubmissionError naming the first id that is
    not ``parts`` integers joined by ``_`` (e.g. ``subject_trial_sample``) and its line."""
    df = _read_two_columns(path, header)
    ids = df["id"].astype(str)
    ok = ids.str.fullmatch("_".join([r"\d{1,9}"] * len(parts)))
    if not ok.all():
        raise SubmissionError(f"{path}: {int((~ok).sum())} unparsable ids, expected {'_'.join(parts)} "
                              f"(first '{_first(ids[~ok])}' on line {int(np.flatnonzero(~ok)[0]) + 2})")
    return df, ids


def _first_line(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            return fh.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise SubmissionError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc


def _read_two_columns(path: Path, header: str) -> pd.DataFrame:
    if not path.is_file():
        raise SubmissionError(f"{path}: a folder, not a file" if path.is_dir() else f"{path}: file not found")
    if path.stat().st_size == 0:
        raise SubmissionError(f"{path}: empty file (0 bytes), expected the header '{header}' and rows")
    first = _first_line(path)
    if first != header:
        raise SubmissionError(f"{path}: header must be exactly '{header}', got '{first[:60]}'")
    try:
        with warnings.catch_warnings():
            # index_col=False: a first row with an extra field must not become an index;
            # pandas then only warns (and drops the field), so the warning is an error here
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, index_col=False)
    except pd.errors.ParserWarning as exc:
        raise SubmissionError(f"{path}: unparsable rows (a row has more fields than the header)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        msg = str(exc).splitlines()[-1] if str(exc) else type(exc).__name__
        raise SubmissionError(f"{path}: unparsable rows ({msg})") from exc
    if df.empty:
        raise SubmissionError(f"{path}: no rows after the header")
    return df.fillna("")


def _split_ids(ids: pd.Series, n: int) -> np.ndarray:
    """Already-validated ``a_b[_c]`` ids -> int64 array (n_rows, n) via pandas' C tokenizer (fast)."""
    table = pd.read_csv(io.StringIO("\n".join(ids)), sep="_", header=None, dtype=np.int64)
    return table.to_numpy().reshape(len(ids), n)


def _first(values) -> str:
    return str(np.asarray(values)[0])


def validate_submission(path: str | os.PathLike, expected_ids: np.ndarray | None = None, *,
                        subject: np.ndarray | None = None, trial: np.ndarray | None = None,
                        n_times: int = N_TIMES, data=None) -> pd.DataFrame:
    """Read and check a submission file (``.csv`` or ``.csv.gz``).

    Checks, in order: the file exists; the header is exactly ``id,prediction``;
    every row has two fields, an id ``{subject}_{trial}_{sample}`` of
    non-negative integers and a number; no duplicate ids; no NaN/inf; every
    value in [0, 1]; and, when the expected ids are known, no missing and no
    unexpected ids.

    Parameters
    ----------
    path : path
    expected_ids : ndarray of str, optional
        The ids the file must hold (see :func:`expected_ids`).
    subject, trial : ndarray, shape (n_test_trials,), optional
        Alternative to ``expected_ids``: build them with ``n_times`` samples.
    n_times : int
    data : kit.data.dataset.Dataset, optional
        Alternative: its test trials' ``subject``/``trial`` and ``X.shape[-1]``.

    Returns
    -------
    DataFrame
        Columns ``id`` (str), ``prediction`` (float64), ``subject``, ``trial``,
        ``sample`` (int64), in file order.

    Raises
    ------
    SubmissionError
        One line starting with the path, e.g. ``sub.csv: 3 duplicate ids (first 1_0_4)``.
    """
    path = Path(path)
    if data is not None:
        test = data.test if hasattr(data, "test") else data
        subject, trial, n_times = test.subject, test.trial, test.X.shape[-1]
    if expected_ids is None and subject is not None and trial is not None:
        expected_ids = _make_ids(subject, trial, n_times)
    df, ids = _read_ids(path, HEADER, ("subject", "trial", "sample"))
    raw = df["prediction"].astype(str).str.strip()
    pred = pd.to_numeric(raw, errors="coerce")
    unparsable = pred.isna() & ~raw.str.lower().isin(["nan", "-nan", "+nan"])
    if unparsable.any():
        i = int(np.flatnonzero(unparsable)[0])
        raise SubmissionError(f"{path}: {int(unparsable.sum())} unparsable predictions "
                              f"(first '{raw.iloc[i]}' for id {ids.iloc[i]}, line {i + 2})")
    dup = ids.duplicated()
    if dup.any():
        raise SubmissionError(f"{path}: {int(dup.sum())} duplicate ids (first {_first(ids[dup])})")
    values = pred.to_numpy(dtype=np.float64)
    nonfinite = ~np.isfinite(values)
    if nonfinite.any():
        raise SubmissionError(f"{path}: {int(nonfinite.sum())} NaN/inf predictions "
                              f"(first id {_first(ids[nonfinite])})")
    outside = (values < 0) | (values > 1)
    if outside.any():
        raise SubmissionError(f"{path}: {int(outside.sum())} predictions outside [0, 1] "
                              f"(min {values.min():.6g}, max {values.max():.6g})")
    if expected_ids is not None:
        expected = pd.Index(np.asarray(expected_ids).astype(str))
        have = pd.Index(ids.to_numpy())
        missing = ~expected.isin(have)
        if missing.any():
            raise SubmissionError(f"{path}: {int(missing.sum())} missing ids of {expected.size} expected "
                                  f"(first {expected[missing][0]})")
        extra = ~have.isin(expected)
        if extra.any():
            raise SubmissionError(f"{path}: {int(extra.sum())} unexpected ids (first {have[extra][0]})")
    parts = _split_ids(ids, 3)
    return pd.DataFrame({"id": ids.to_numpy(), "prediction": values, "subject": parts[:, 0],
                         "trial": parts[:, 1], "sample": parts[:, 2]})


def read_labels(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a labels file: header ``id,label``, ids ``{subject}_{trial}``, labels 0/1.

    Parameters
    ----------
    path : path (``.csv`` or ``.csv.gz``)

    Returns
    -------
    subject, trial, label : ndarray of int64, shape (n_trials,)
        In file order.

    Raises
    ------
    SubmissionError
        Missing file, wrong header, unparsable ids, duplicate ids, labels not in {0, 1}.
    """
    path = Path(path)
    df, ids = _read_ids(path, LABELS_HEADER, ("subject", "trial"))
    if ids.duplicated().any():
        raise SubmissionError(f"{path}: {int(ids.duplicated().sum())} duplicate ids "
                              f"(first {_first(ids[ids.duplicated()])})")
    raw = df["label"].astype(str).str.strip()
    bad = ~raw.isin(["0", "1"])
    if bad.any():
        raise SubmissionError(f"{path}: {int(bad.sum())} labels not in {{0, 1}} (first '{_first(raw[bad])}' "
                              f"for id {_first(ids[bad])})")
    parts = _split_ids(ids, 2)
    return parts[:, 0], parts[:, 1], raw.astype(np.int64).to_numpy()


def score_submission(path: str | os.PathLike, labels_csv: str | os.PathLike, *,
                     threshold: float = CHANCE, min_len: int = MIN_LEN) -> WindowScore:
    """Score a submission file against a labels file with the competition metric.

    Parameters
    ----------
    path : path
        Submission (``id,prediction``), validated by :func:`validate_submission`.
    labels_csv : path
        Labels (``id,label``), read by :func:`read_labels`.  Only labelled
        trials are scored; extra submission rows are ignored.
    threshold, min_len
        See :func:`kit.eval.metric.window_score`.

    Returns
    -------
    WindowScore

    Raises
    ------
    SubmissionError
        Invalid files, a labelled trial missing from the submission or
        lacking samples, or a subject with one class only in the labels.
    """
    path = Path(path)
    df = validate_submission(path)
    subject, trial, label = read_labels(labels_csv)
    n_times = int(df["sample"].max()) + 1
    lab = pd.DataFrame({"subject": subject, "trial": trial, "row": np.arange(subject.size)})
    merged = df.merge(lab, on=["subject", "trial"], how="inner")
    M = np.full((subject.size, n_times), np.nan)
    M[merged["row"].to_numpy(), merged["sample"].to_numpy()] = merged["prediction"].to_numpy()
    missing_rows = np.isnan(M).all(axis=1)
    if missing_rows.any():
        i = int(np.flatnonzero(missing_rows)[0])
        raise SubmissionError(f"{path}: lacks {int(missing_rows.sum())} labelled trials of {labels_csv} "
                              f"(first {subject[i]}_{trial[i]})")
    partial = np.isnan(M).any(axis=1)
    if partial.any():
        i = int(np.flatnonzero(partial)[0])
        raise SubmissionError(f"{path}: {int(partial.sum())} labelled trials lack some of the {n_times} "
                              f"samples (first {subject[i]}_{trial[i]})")
    try:
        return competition_score(M, label, subject, threshold=threshold, min_len=min_len)
    except KitError as exc:  # e.g. a subject with one class only in the labels
        raise SubmissionError(f"{labels_csv}: {exc}") from exc
