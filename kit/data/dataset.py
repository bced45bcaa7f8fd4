"""The Dataset: every trial of a data folder stacked into one array, with labels and subjects."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from kit.core.errors import DataError
from kit.data.demo import ensure_data
from kit.data.layout import discover
from kit.data.mat import Recording, env_nan_policy, read_mat


@dataclasses.dataclass(repr=False)
class Dataset:
    """All trials of a data folder, stacked.

    Rows are ordered: training subjects by id (neutral file, then emotional),
    then test subjects by id.

    Attributes
    ----------
    X : ndarray, shape (n_trials, n_chans, n_times), float32
        EEG in µV.
    y : ndarray, shape (n_trials,), int8
        1 emotional (``sleep_emo``), 0 neutral (``sleep_neu``), -1 test (unknown).
    subject : ndarray, shape (n_trials,), int64
        Subject id.
    trial : ndarray, shape (n_trials,), int64
        Index within the subject: test: file order 0..n-1 (the submission's
        trial id); training: neutral file 0..n_neu-1, then emotional n_neu...
    is_test : ndarray, shape (n_trials,), bool
    sfreq : float
        Hz.
    times : ndarray, shape (n_times,)
        s after the cue.
    ch_names : list of str
        Channel order of ``X`` (that of the first file read).
    root : Path
        The data folder.
    """

    X: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    trial: np.ndarray
    is_test: np.ndarray
    sfreq: float
    times: np.ndarray
    ch_names: list[str]
    root: Path

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        n_tr = int((~self.is_test).sum())
        return (f"Dataset({self.root}: {len(self)} trials ({n_tr} train, {len(self) - n_tr} test), "
                f"{len(self.subjects)} subjects, {len(self.ch_names)} chans x {self.X.shape[-1]} samples "
                f"@ {self.sfreq:g} Hz)")

    def subset(self, index) -> "Dataset":
        """Rows selected by a boolean mask or integer indices (arrays are copied)."""
        index = np.asarray(index)
        return dataclasses.replace(self, X=self.X[index], y=self.y[index], subject=self.subject[index],
                                   trial=self.trial[index], is_test=self.is_test[index])

    @property
    def train(self) -> "Dataset":
        """The labelled (training) trials."""
        return self.subset(~self.is_test)

    @property
    def test(self) -> "Dataset":
        """The unlabelled (test) trials."""
        return self.subset(self.is_test)

    @property
    def subjects(self) -> np.ndarray:
        """Sorted unique subject ids, (n_subjects,) int64."""
        return np.unique(self.subject)


def load_dataset(root: str | os.PathLike | None = None, *, splits=("train", "test"),
                 nan_policy: str | None = None) -> Dataset:
    """Load a data folder into one :class:`Dataset`.

    Parameters
    ----------
    root : path, optional
        Data folder; default :func:`kit.data.demo.ensure_data` (Kaggle input,
        ``data/raw`` or the simulated ``data/demo``, written on first use).
    splits : sequence of {"train", "test"}
        Which parts to load.
    nan_policy : {"raise", "zero", "interpolate"}, optional
        Passed to :func:`read_mat`; default ``$KIT_NAN_POLICY`` or ``"raise"``
        (the environment variable reaches the command line and the notebooks).

    Returns
    -------
    Dataset
        Channels in the order of the first file read; class labels from the
        folder names (``trialinfo`` is ignored).

    Raises
    ------
    DataError
        From :func:`discover` and :func:`read_mat`; a requested split with no
        files; a file whose channel set, sampling rate or number of samples
        differs from the first file's; an unknown ``$KIT_NAN_POLICY``.
    """
    splits = tuple(splits)
    if nan_policy is None:
        nan_policy = env_nan_policy()
    unknown = set(splits) - {"train", "test"}
    if unknown or not splits:
        raise ValueError(f"splits must be a non-empty subset of ('train', 'test'), got {splits}")
    root = ensure_data(root)
    layout = discover(root)
    jobs: list[tuple[Path, int, int]] = []  # (file, subject, label)
    if "train" in splits:
        if not layout.train:
            raise DataError(f"{root / 'training'}: no training files (sleep_neu/S_{{id}}_cleaned.mat)")
        for sid, (neu, emo) in layout.train.items():
            jobs += [(neu, sid, 0), (emo, sid, 1)]
    if "test" in splits:
        if not layout.test:
            raise DataError(f"{root / 'testing'}: no test files (test_subject_{{id}}.mat)")
        jobs += [(p, sid, -1) for sid, p in layout.test.items()]
    blocks, first = [], None
    y, subject, trial = [], [], []
    offset: dict[int, int] = {}
    for path, sid, label in jobs:
        rec = read_mat(path, nan_policy=nan_policy)
        if first is None:
            first = rec
        X = _align(rec, first)
        n = len(X)
        start = offset.get(sid, 0) if label >= 0 else 0
        offset[sid] = start + n
        blocks.append(X)
        y.append(np.full(n, label, np.int8))
        subject.append(np.full(n, sid, np.int64))
        trial.append(np.arange(start, start + n, dtype=np.int64))
        del rec
    X = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    del blocks
    y = np.concatenate(y)
    return Dataset(X=X, y=y, subject=np.concatenate(subject), trial=np.concatenate(trial), is_test=y < 0,
                   sfreq=first.sfreq, times=first.times, ch_names=list(first.ch_names), root=root)


def _align(rec: Recording, ref: Recording) -> np.ndarray:
    """``rec.trials`` with channels in ``ref``'s order; checks rate, samples and channel set."""
    if abs(rec.sfreq - ref.sfreq) > 1e-6 or rec.trials.shape[2] != ref.trials.shape[2]:
        raise DataError(f"{rec.path}: {rec.sfreq:g} Hz x {rec.trials.shape[2]} samples, but {ref.path} has "
                        f"{ref.sfreq:g} Hz x {ref.trials.shape[2]} samples")
    if not np.allclose(rec.times, ref.times, atol=1e-6):
        raise DataError(f"{rec.path}: time axis differs from {ref.path}'s")
    if rec.ch_names == ref.ch_names:
        return rec.trials
    if set(rec.ch_names) != set(ref.ch_names):
        diff = sorted(set(rec.ch_names) ^ set(ref.ch_names))
        raise DataError(f"{rec.path}: channel set differs from {ref.path}'s (differing: {', '.join(diff)})")
    order = [rec.ch_names.index(c) for c in ref.ch_names]
    return rec.trials[:, order]
