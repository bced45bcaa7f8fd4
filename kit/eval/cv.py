"""Leave-one-subject-out (LOSO) validation: folds, the fold table, the score dict, out-of-fold predictions.

Each fold holds out one training subject; fold ``k`` holds out the ``k``-th
subject in sorted order (:class:`sklearn.model_selection.LeaveOneGroupOut`).
The fold table is written once per data folder (``artifacts/{tag}/folds.csv``,
:func:`load_or_create_folds`) and reused, so every stage scores the same folds.  Out-of-fold predictions are
scored with the competition's window metric (:mod:`kit.eval.metric`), as the
organisers' starter and the paper do (leave-one-participant-out).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import LeaveOneGroupOut

from kit.core.errors import KitError
from kit.eval.metric import CHANCE, MIN_LEN, competition_score
from kit.store.artifacts import atomic_write
from kit.store.paths import existing_file

Fold = tuple[np.ndarray, np.ndarray]


def check_subjects(subject: np.ndarray) -> np.ndarray:
    """``subject`` as an array; KitError unless it is a non-empty ``(n_trials,)`` vector."""
    subject = np.asarray(subject)
    if subject.ndim != 1 or subject.size == 0:
        raise KitError(f"subject: expected a non-empty (n_trials,) array, got shape {subject.shape}")
    return subject


def loso_folds(subject: np.ndarray) -> list[Fold]:
    """Leave-one-subject-out folds.

    Parameters
    ----------
    subject : ndarray, shape (n_trials,)
        Subject id per trial.

    Returns
    -------
    list of (train_idx, val_idx)
        One fold per subject; fold ``k`` validates on the ``k``-th smallest
        subject id.  Indices are positions in ``subject``.

    Raises
    ------
    KitError
        Fewer than two subjects.
    """
    subject = check_subjects(subject)
    if np.unique(subject).size < 2:
        raise KitError(f"subject: LOSO needs at least two subjects, got {np.unique(subject).tolist()}")
    dummy = np.zeros((subject.size, 1))
    return [(tr, va) for tr, va in LeaveOneGroupOut().split(dummy, groups=subject)]


def inner_loso_folds(subject: np.ndarray, exclude=None) -> list[Fold]:
    """LOSO folds over the subjects left after removing ``exclude`` (nested selection).

    Use it inside an outer fold: with ``exclude`` = the outer held-out
    subject(s), every inner fold trains and validates on outer-training
    subjects only, so no choice made on inner folds sees held-out labels.

    Parameters
    ----------
    subject : ndarray, shape (n_trials,)
    exclude : int or sequence of int, optional
        Subject ids left out of every inner fold.

    Returns
    -------
    list of (train_idx, val_idx)
        Positions in ``subject`` (the excluded subjects' trials appear in neither).

    Raises
    ------
    KitError
        Fewer than two subjects remain.
    """
    subject = check_subjects(subject)
    keep = ~np.isin(subject, np.atleast_1d(exclude)) if exclude is not None else np.ones(subject.size, bool)
    pos = np.flatnonzero(keep)
    return [(pos[tr], pos[va]) for tr, va in loso_folds(subject[pos])]


def fold_table(subject: np.ndarray) -> pd.DataFrame:
    """One row per subject: ``subject``, ``fold`` (0-based, sorted subject order).

    Parameters
    ----------
    subject : ndarray, shape (n_trials,) or (n_subjects,)

    Returns
    -------
    DataFrame with int64 columns ``subject``, ``fold``.
    """
    subjects = np.unique(check_subjects(subject)).astype(np.int64)
    return pd.DataFrame({"subject": subjects, "fold": np.arange(subjects.size, dtype=np.int64)})


def folds_from_table(table: pd.DataFrame, subject: np.ndarray) -> list[Fold]:
    """(train_idx, val_idx) per fold of ``table``, as positions in ``subject``.

    Raises
    ------
    KitError
        If ``subject`` holds a subject the table lacks.
    """
    subject = check_subjects(subject)
    missing = np.setdiff1d(np.unique(subject), table["subject"].to_numpy())
    if missing.size:
        raise KitError(f"fold table has no fold for subjects {missing.tolist()}")
    folds = []
    for k in sorted(table["fold"].unique()):
        held = table.loc[table["fold"] == k, "subject"].to_numpy()
        va = np.isin(subject, held)
        folds.append((np.flatnonzero(~va), np.flatnonzero(va)))
    return folds


def save_folds(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write a fold table as CSV (``subject,fold``) atomically.

    Parameters
    ----------
    path : path
        The run's fold table, ``artifacts/{data_tag}/folds.csv`` (:attr:`kit.pipeline.run.Run.folds`).
    table : DataFrame with columns ``subject``, ``fold``

    Returns
    -------
    Path
    """
    path = Path(path)
    buf = io.StringIO()
    table[["subject", "fold"]].to_csv(buf, index=False)
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())
    return path


def load_folds(path: str | os.PathLike, subject: np.ndarray | None = None) -> pd.DataFrame:
    """Read a fold table written by :func:`save_folds`.

    Parameters
    ----------
    path : path
        The run's fold table, ``artifacts/{data_tag}/folds.csv`` (:attr:`kit.pipeline.run.Run.folds`).
    subject : ndarray, optional
        If given, the table's subject set must equal ``unique(subject)``.

    Raises
    ------
    KitError
        Missing or malformed file, or a table for another subject set.
    """
    path = existing_file(path, "fold table not found")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise KitError(f"{path}: unreadable fold table ({type(exc).__name__})") from exc
    if list(table.columns) != ["subject", "fold"]:
        raise KitError(f"{path}: fold table header must be 'subject,fold', got {','.join(map(str, table.columns))}")
    if not all(pd.api.types.is_integer_dtype(table[c]) for c in table) or table["subject"].duplicated().any():
        raise KitError(f"{path}: fold table needs integer subject/fold and one row per subject")
    table = table.astype(np.int64)
    if subject is not None:
        want = np.unique(check_subjects(subject)).tolist()
        have = sorted(table["subject"].tolist())
        if have != want:
            raise KitError(f"{path}: fold table is for subjects {have}, data has {want}; "
                           "delete it or pass another artifacts folder")
    return table


def load_or_create_folds(path: str | os.PathLike, subject: np.ndarray) -> pd.DataFrame:
    """The fold table at ``path``: created from ``subject`` on first use, then reused.

    Parameters
    ----------
    path : path
        The run's fold table, ``artifacts/{data_tag}/folds.csv`` (:attr:`kit.pipeline.run.Run.folds`).
    subject : ndarray, shape (n_trials,)
        Training subjects.

    Returns
    -------
    DataFrame ``subject, fold``

    Raises
    ------
    KitError
        If the stored table is malformed or for another subject set
        ("fold table is for subjects [...], data has [...]; delete it or pass
        another artifacts folder").
    """
    path = Path(path)
    if path.exists():
        return load_folds(path, subject)
    table = fold_table(subject)
    save_folds(path, table)
    return table


def loso_score(oof: np.ndarray, y: np.ndarray, subject: np.ndarray, *,
               threshold: float = CHANCE, min_len: int = MIN_LEN) -> dict:
    """Score out-of-fold predictions with the competition's window metric.

    Each subject's out-of-fold predictions come from the fold that held it
    out, so the per-subject AUC curves are averaged and the longest run above
    0.5 is scored exactly as the leaderboard scores the test subjects.

    Parameters
    ----------
    oof : ndarray, shape (n_trials, n_times)
        Out-of-fold P(emotional).
    y : ndarray, shape (n_trials,)
        Labels 0/1.
    subject : ndarray, shape (n_trials,)

    Returns
    -------
    dict (JSON-ready)
        ``loso_score`` float; ``window`` [start, stop] (inclusive samples, or
        [None, None]); ``per_subject_auc`` {subject: mean AUC over samples};
        ``mean_auc`` mean of the curve; ``curve`` list of floats (n_times).

    Raises
    ------
    KitError
        See :func:`kit.eval.metric.competition_score`.
    """
    ws = competition_score(oof, y, subject, threshold=threshold, min_len=min_len)
    return {
        "loso_score": float(ws.score),
        "window": [ws.start, ws.stop],
        "per_subject_auc": {int(k): float(v) for k, v in ws.per_subject_auc.items()},
        "mean_auc": float(ws.curve.mean()),
        "curve": [float(v) for v in ws.curve],
    }


FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray, list], list]


def cross_val_predict_loso(fit_predict: FitPredict, X: np.ndarray, y: np.ndarray, subject: np.ndarray,
                           X_test: np.ndarray | None = None, subject_test: np.ndarray | None = None, *,
                           folds: Sequence[Fold] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Out-of-fold predictions over LOSO folds, and the test prediction averaged over folds.

    Parameters
    ----------
    fit_predict : callable
        ``fit_predict(X_tr, y_tr, subject_tr, eval_sets) -> list of ndarray``
        where ``eval_sets`` is a list of ``(X_eval, subject_eval)`` pairs
        (the held-out fold, then the test set if any) and each returned array
        has shape (n_eval, n_times).  The subject ids let the method normalise
        the evaluation data per subject on its own, unlabelled statistics.
        It only ever receives the training subjects' labels.
    X : ndarray, shape (n_trials, ...)
        Training inputs, e.g. (n_trials, n_chans, n_times) µV.
    y : ndarray, shape (n_trials,)
    subject : ndarray, shape (n_trials,)
    X_test : ndarray, shape (n_test, ...), optional
    subject_test : ndarray, shape (n_test,), required with ``X_test``
    folds : list of (train_idx, val_idx), optional
        Default :func:`loso_folds` (``subject``).

    Returns
    -------
    oof : ndarray, shape (n_trials, n_times), float64
        Each trial predicted by the model that did not train on its subject.
    test_pred : ndarray, shape (n_test, n_times) or None
        Mean over folds of the test predictions.

    Raises
    ------
    KitError
        Mismatched lengths, ``X_test`` without ``subject_test``, a trial in no
        validation fold, or ``fit_predict`` returning the wrong shapes.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    subject = check_subjects(subject)
    if not (X.shape[0] == y.shape[0] == subject.shape[0]):
        raise KitError(f"cross_val_predict_loso: X has {X.shape[0]} trials, y {y.shape[0]}, "
                       f"subject {subject.shape[0]}")
    if X_test is not None:
        if subject_test is None or np.shape(subject_test) != (np.shape(X_test)[0],):
            raise KitError("cross_val_predict_loso: X_test needs subject_test of shape (n_test,)")
        subject_test = np.asarray(subject_test)
    folds = loso_folds(subject) if folds is None else list(folds)
    oof = None
    seen = np.zeros(subject.size, bool)
    test_sum = None
    for k, (tr, va) in enumerate(folds):
        eval_sets = [(X[va], subject[va])]
        if X_test is not None:
            eval_sets.append((X_test, subject_test))
        preds = fit_predict(X[tr], y[tr], subject[tr], eval_sets)
        if len(preds) != len(eval_sets):
            raise KitError(f"fold {k}: fit_predict returned {len(preds)} predictions for {len(eval_sets)} sets")
        p_va = np.asarray(preds[0], dtype=np.float64)
        if p_va.ndim != 2 or p_va.shape[0] != va.size:
            raise KitError(f"fold {k}: expected predictions ({va.size}, n_times), got {p_va.shape}")
        if oof is None:
            oof = np.full((subject.size, p_va.shape[1]), np.nan)
        oof[va] = p_va
        seen[va] = True
        if X_test is not None:
            p_te = np.asarray(preds[1], dtype=np.float64)
            if p_te.shape != (subject_test.size, oof.shape[1]):
                raise KitError(f"fold {k}: expected test predictions {(subject_test.size, oof.shape[1])}, "
                               f"got {p_te.shape}")
            test_sum = p_te if test_sum is None else test_sum + p_te
    if oof is None or not seen.all():
        raise KitError(f"cross_val_predict_loso: {int((~seen).sum())} trials are in no validation fold")
    return oof, (None if test_sum is None else test_sum / len(folds))
