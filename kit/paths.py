"""Where the kit reads data and writes outputs.

The data folder is chosen as: explicit argument > ``$KIT_DATA`` >
``/kaggle/input/predicting-emotions-using-brain-waves`` > ``data/raw`` >
``data/demo`` (simulated on first use).  Outputs (``artifacts/``,
``submissions/``, ``reports/``) go under the output root: ``$KIT_OUTPUT`` >
``/kaggle/working`` inside a Kaggle kernel > the current project root.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import COMPETITION
from .errors import DataError

KAGGLE_INPUT = Path("/kaggle/input") / COMPETITION
KAGGLE_WORKING = Path("/kaggle/working")


def project_root() -> Path:
    """The folder holding ``kit/`` (the repository root in a clone)."""
    return Path(__file__).resolve().parent.parent


def _is_data_folder(path: Path) -> bool:
    return (path / "training").is_dir() or (path / "testing").is_dir()


def resolve_data_dir(data: str | os.PathLike | None = None, *, make_demo: bool = True) -> Path:
    """Pick the data folder.

    Parameters
    ----------
    data : path or None
        Explicit folder; wins over everything else and must exist.
    make_demo : bool
        When nothing else is found, simulate the demo data into ``data/demo``.

    Returns
    -------
    Path
        A folder with ``training/`` and/or ``testing/``.

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
            if not _is_data_folder(path):
                raise DataError(f"{path}: not a competition data folder (no training/ or testing/ inside)")
            return path
    root = project_root()
    for path in (KAGGLE_INPUT, root / "data" / "raw"):
        if _is_data_folder(path):
            return path
    demo = root / "data" / "demo"
    if not _is_data_folder(demo):
        if not make_demo:
            raise DataError(f"{demo}: no data folder found and demo data not generated")
        from .demo import write_demo_dataset

        write_demo_dataset(demo)
    return demo


def output_root() -> Path:
    """Root for ``artifacts/``, ``submissions/`` and ``reports/``.

    ``$KIT_OUTPUT`` if set, else ``/kaggle/working`` inside a Kaggle kernel,
    else the project root of a clone, else (an installed kit) the current folder.
    """
    env = os.environ.get("KIT_OUTPUT")
    if env:
        return Path(env).expanduser()
    if KAGGLE_WORKING.is_dir() and os.access(KAGGLE_WORKING, os.W_OK):
        return KAGGLE_WORKING
    root = project_root()
    # in a clone, outputs sit beside notebooks/; an installed kit (site-packages) writes to the cwd
    return root if (root / "notebooks").is_dir() else Path.cwd()
