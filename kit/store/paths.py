"""Where the kit writes outputs: the project root and the output root; a file that must exist.

Outputs (``artifacts/``, ``submissions/``, ``reports/``) go under the output
root: ``$KIT_OUTPUT`` > ``/kaggle/working`` inside a Kaggle kernel > the
project root of a clone > the current folder.  Where data is read from is
:mod:`kit.data.layout`'s business.
"""

from __future__ import annotations

import os
from pathlib import Path

from kit.core.errors import KitError

KAGGLE_WORKING = Path("/kaggle/working")


def existing_file(path: str | os.PathLike, missing: str = "file not found", error: type[KitError] = KitError) -> Path:
    """``path`` as a :class:`~pathlib.Path`; ``error("{path}: {missing}")`` when it is not a file."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {missing}")
    return path


def project_root() -> Path:
    """The folder holding ``kit/`` (the repository root in a clone)."""
    return Path(__file__).resolve().parents[2]


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
