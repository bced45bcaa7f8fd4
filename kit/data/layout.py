"""The competition's folder layout: its constants, finding the files of a data folder, choosing the folder.

Layout of a data folder (the competition's data page; README, "Real data")::

    training/sleep_neu/S_{id}_cleaned.mat     neutral cues   -> label 0
    training/sleep_emo/S_{id}_cleaned.mat     emotional cues -> label 1
    testing/test_subject_{id}.mat             unlabelled     -> label -1

Nothing here writes: :func:`resolve_data_dir` only names a folder
(:func:`kit.data.demo.ensure_data` simulates the default demo when it is missing).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from kit import COMPETITION
from kit.core.errors import DataError
from kit.store.paths import project_root

CH_NAMES = ("F3", "F4", "C3", "C4", "Cz", "C5", "C6", "CP3", "CP4", "CP5", "CP6", "P7", "P8", "Pz", "O1", "O2")
SFREQ = 200.0
N_TIMES = 200
TRAIN_IDS = (2, 3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16, 17)
TEST_IDS = (1, 7, 12)
KAGGLE_INPUT = Path("/kaggle/input") / COMPETITION

_TRAIN_RE = re.compile(r"^S_(\d+)_cleaned\.mat$")
_TEST_RE = re.compile(r"^test_subject_(\d+)\.mat$")


@dataclasses.dataclass
class DataLayout:
    """The files of a data folder.

    Attributes
    ----------
    root : Path
        The folder holding ``training/`` and/or ``testing/``.
    train : dict[int, tuple[Path, Path]]
        Subject id -> (neutral file, emotional file), sorted by id.
    test : dict[int, Path]
        Subject id -> test file, sorted by id.
    """

    root: Path
    train: dict[int, tuple[Path, Path]]
    test: dict[int, Path]


def discover(root: str | os.PathLike) -> DataLayout:
    """Find the competition's files under ``root``.

    Every ``.mat`` file below ``root`` (hidden files and folders aside) must
    be ``training/sleep_neu/S_{id}_cleaned.mat``,
    ``training/sleep_emo/S_{id}_cleaned.mat`` or
    ``testing/test_subject_{id}.mat``; other files are ignored.

    Parameters
    ----------
    root : path
        The data folder.

    Returns
    -------
    DataLayout

    Raises
    ------
    DataError
        ``root`` missing or not a folder; no ``.mat`` file in it; a ``.mat``
        file with a foreign name or place; a training subject with a neutral
        file but no emotional one, or the reverse.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found" if not root.exists() else f"{root}: not a folder")
    neu: dict[int, Path] = {}
    emo: dict[int, Path] = {}
    test: dict[int, Path] = {}
    n_mat = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        rel = here.relative_to(root).parts
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(".mat"):
                continue
            n_mat += 1
            m_train, m_test = _TRAIN_RE.match(name), _TEST_RE.match(name)
            if rel in (("training", "sleep_neu"), ("training", "sleep_emo")) and m_train:
                (neu if rel[1] == "sleep_neu" else emo)[int(m_train.group(1))] = here / name
            elif rel == ("testing",) and m_test:
                test[int(m_test.group(1))] = here / name
            else:
                raise DataError(
                    f"{here / name}: unexpected .mat file; expected training/sleep_neu/S_{{id}}_cleaned.mat, "
                    "training/sleep_emo/S_{id}_cleaned.mat or testing/test_subject_{id}.mat")
    if n_mat == 0:
        raise DataError(f"{root}: no .mat files (expected training/sleep_neu, training/sleep_emo, testing)")
    for sid in sorted(set(neu) ^ set(emo)):
        have, miss = ("sleep_neu", "sleep_emo") if sid in neu else ("sleep_emo", "sleep_neu")
        raise DataError(f"{root / 'training' / miss / f'S_{sid}_cleaned.mat'}: missing "
                        f"(subject {sid} has a {have} file but no {miss} file)")
    train = {sid: (neu[sid], emo[sid]) for sid in sorted(neu)}
    return DataLayout(root, train, dict(sorted(test.items())))


def is_data_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds ``training/`` or ``testing/``."""
    path = Path(path)
    return (path / "training").is_dir() or (path / "testing").is_dir()


def default_demo_dir() -> Path:
    """``data/demo`` under the project root: where the simulated default dataset lives."""
    return project_root() / "data" / "demo"


def resolve_data_dir(data: str | os.PathLike | None = None) -> Path:
    """Name the data folder, without touching the disk beyond looking.

    The order: explicit argument > ``$KIT_DATA`` >
    ``/kaggle/input/predicting-emotions-using-brain-waves`` > ``data/raw`` >
    ``data/demo`` (:func:`default_demo_dir`, returned even when it does not
    exist yet: :func:`kit.data.demo.ensure_data` simulates it).

    Parameters
    ----------
    data : path or None
        Explicit folder; wins over everything else and must exist.

    Returns
    -------
    Path
        A folder with ``training/`` and/or ``testing/``, or the default demo folder.

    Raises
    ------
    DataError
        If an explicit folder (argument or ``$KIT_DATA``) does not exist or
        holds neither ``training/`` nor ``testing/``.
    """
    for origin, value in (("argument", data), ("KIT_DATA", os.environ.get("KIT_DATA"))):
        if value:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise DataError(f"{path}: data folder ({origin}) does not exist")
            if not is_data_folder(path):
                raise DataError(f"{path}: not a competition data folder (no training/ or testing/ inside)")
            return path
    for path in (KAGGLE_INPUT, project_root() / "data" / "raw"):
        if is_data_folder(path):
            return path
    return default_demo_dir()
