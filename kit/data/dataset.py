"""The Dataset: every trial of a data folder stacked into one array, with labels and subjects."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from kit.core.errors import DataError, KitError
from kit.data.demo import ensure_data
from kit.data.layout import discover
from kit.data.mat import Recording, env_nan_policy, read_mat
from kit.data.montage import channel_info


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

    def to_epochs(self, *, verbose: str = "error"):
        """The trials as an ``mne.EpochsArray``, for MNE-Python's tools in one line.

        Data in volts (mne's unit: ``X * 1e-6``), ``tmin`` the first sample's time after the cue, the 10-20
        template montage set (:func:`kit.data.montage.channel_info`), no baseline correction, events
        ``neutral`` (1), ``emotional`` (2) and ``unlabelled`` (3, the test trials; only the kinds present),
        and ``metadata`` with one row per trial: ``subject``, ``trial`` (index within the subject, the
        submission's trial id for test trials), ``split`` (``"train"``/``"test"``) and ``label``
        (1/0/-1).  :func:`dataset_from_epochs` reads it back, bit for bit; after ``epochs.save(path)`` /
        ``mne.read_epochs(path)`` too with ``fmt="double"`` (mne's default ``"single"`` rounds to float32
        volts: about 1e-5 µV off).

        Returns
        -------
        mne.EpochsArray
            ``n_trials`` epochs of ``n_chans x n_times``, in the row order of the Dataset.

        Raises
        ------
        KitError
            When a channel has no position in the 10-20 template.
        """
        import mne
        import pandas as pd

        info = channel_info(self.ch_names, self.sfreq)
        codes = np.where(self.y == 1, EVENT_ID["emotional"], np.where(self.y == 0, EVENT_ID["neutral"],
                                                                       EVENT_ID["unlabelled"]))
        n_times = self.X.shape[-1]
        # events (n_trials, 3): a made-up onset per trial (trials are not contiguous in a recording), 0, code
        events = np.column_stack([np.arange(len(self)) * n_times, np.zeros(len(self), int), codes]).astype(int)
        event_id = {k: v for k, v in EVENT_ID.items() if (codes == v).any()}
        metadata = pd.DataFrame({"subject": self.subject, "trial": self.trial,
                                 "split": np.where(self.is_test, "test", "train"), "label": self.y.astype(int)})
        return mne.EpochsArray(self.X.astype(np.float64) * 1e-6, info, events, tmin=float(self.times[0]),
                               event_id=event_id, baseline=None, metadata=metadata, verbose=verbose)


EVENT_ID = {"neutral": 1, "emotional": 2, "unlabelled": 3}
"""Event codes of :meth:`Dataset.to_epochs`."""


def dataset_from_epochs(epochs, root: str | os.PathLike | None = None) -> Dataset:
    """A :class:`Dataset` from ``mne.Epochs`` written by :meth:`Dataset.to_epochs` (or shaped like them).

    Parameters
    ----------
    epochs : mne.Epochs or mne.EpochsArray
        EEG channels (data in volts, returned in µV); labels and subjects from ``metadata`` columns
        ``label``, ``subject`` and ``trial`` when present, else the label from the event names
        ``emotional``/``neutral`` (anything else unlabelled), the subject 0 and the trial its index.
    root : path, optional
        Recorded as ``Dataset.root``; default the epochs' file name, or ``"epochs"``.

    Returns
    -------
    Dataset
        ``X (n_trials, n_chans, n_times)`` float32 µV, in the epochs' order.

    Raises
    ------
    KitError
        When the epochs hold no EEG channel or their metadata lacks a column the others need.
    """
    import mne

    picks = mne.pick_types(epochs.info, eeg=True, exclude=())
    if len(picks) == 0:
        raise KitError("dataset_from_epochs: the epochs hold no EEG channel")
    X = epochs.get_data(picks=picks, units="uV").astype(np.float32)  # (n_trials, n_chans, n_times)
    n = len(X)
    meta = epochs.metadata
    if meta is not None and {"label", "subject", "trial"} <= set(meta.columns):
        y = meta["label"].to_numpy(np.int8)
        subject = meta["subject"].to_numpy(np.int64)
        trial = meta["trial"].to_numpy(np.int64)
    elif meta is not None and set(meta.columns) & {"label", "subject", "trial"}:
        missing = sorted({"label", "subject", "trial"} - set(meta.columns))
        raise KitError(f"dataset_from_epochs: metadata lacks column(s) {missing}")
    else:
        names = {v: k for k, v in epochs.event_id.items()}
        kind = [names.get(int(c), "") for c in epochs.events[:, 2]]
        y = np.array([1 if k == "emotional" else 0 if k == "neutral" else -1 for k in kind], np.int8)
        subject, trial = np.zeros(n, np.int64), np.arange(n, dtype=np.int64)
    filenames = getattr(epochs, "filename", None)
    root = Path(root) if root is not None else Path(filenames) if filenames else Path("epochs")
    return Dataset(X=X, y=y, subject=subject, trial=trial, is_test=y < 0, sfreq=float(epochs.info["sfreq"]),
                   times=np.asarray(epochs.times, np.float64), ch_names=[epochs.ch_names[i] for i in picks],
                   root=root)


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
