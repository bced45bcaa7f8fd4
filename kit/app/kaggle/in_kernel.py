"""What runs inside a Kaggle kernel: find the competition data, set up outputs and device, publish the submission.
"""

from __future__ import annotations

import os
from pathlib import Path

import kit
from kit import COMPETITION, __version__
from kit.core.errors import DataError
from kit.store.artifacts import atomic_write

KAGGLE_INPUT_ROOT = Path("/kaggle/input")
"""Where Kaggle mounts a kernel's inputs (``$KIT_KAGGLE_INPUT`` replaces it for tests)."""


# ============================================================================ inside a kernel
def find_competition_data(input_root: str | os.PathLike | None = None) -> Path | None:
    """The competition's data folder under a Kaggle input root, or None.

    ``{input_root}/predicting-emotions-using-brain-waves`` if it holds
    ``training/`` or ``testing/``; else the first folder at most three levels
    down that holds ``training/sleep_neu`` or ``testing/test_subject_*.mat``
    (Kaggle has changed its mount paths before).

    Parameters
    ----------
    input_root : path, optional
        Default ``$KIT_KAGGLE_INPUT`` or ``/kaggle/input``.
    """
    root = Path(input_root or os.environ.get("KIT_KAGGLE_INPUT") or KAGGLE_INPUT_ROOT)
    standard = root / COMPETITION
    if (standard / "training").is_dir() or (standard / "testing").is_dir():
        return standard
    if not root.is_dir():
        return None
    level = [root]
    for _ in range(3):
        level = sorted(p for folder in level for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        for p in level:
            if (p / "training" / "sleep_neu").is_dir() or any((p / "testing").glob("test_subject_*.mat")):
                return p
    return None


def kaggle_setup(*, expect_gpu: bool = False, input_root: str | os.PathLike | None = None,
                 log=print) -> dict[str, str]:
    """Called by a kernel's first cell: find the data, report where outputs go and the device.

    Sets ``$KIT_DATA`` to the competition folder found under the input root
    (:func:`find_competition_data`) unless ``$KIT_DATA`` is set already.

    Parameters
    ----------
    expect_gpu : bool
        The kernel was built with ``--gpu``: warn when torch sees no GPU.
    input_root : path, optional
        Default ``$KIT_KAGGLE_INPUT`` or ``/kaggle/input``.
    log : callable or None
        Receives the report lines (default ``print``).

    Returns
    -------
    dict
        ``kit`` (version and folder), ``data``, ``output``, ``device``.

    Raises
    ------
    DataError
        Inside a kernel (the input root exists) without the competition data attached.
    """
    from kit.core.runtime import get_device
    from kit.store.paths import output_root

    log = log or (lambda _msg: None)
    root = Path(input_root or os.environ.get("KIT_KAGGLE_INPUT") or KAGGLE_INPUT_ROOT)
    data = os.environ.get("KIT_DATA")
    if not data and root.is_dir():
        found = find_competition_data(root)
        if found is None:
            raise DataError(f"{root}: the competition data is not attached; in the notebook's side panel: "
                            f"Add Input -> Competitions -> {COMPETITION}")
        os.environ["KIT_DATA"] = data = str(found)
    device = get_device()
    name = str(device)
    if device.type == "cuda":
        import torch

        name = f"cuda ({torch.cuda.get_device_name(device)})"
    report = {"kit": f"{__version__} ({Path(kit.__file__).resolve().parent})", "data": data or "(default search)",
              "output": str(output_root()), "device": name}
    for key, value in report.items():
        log(f"{key:7} {value}")
    if expect_gpu and device.type != "cuda":
        log("warning: this kernel was built for a GPU but torch sees none; the stages run on the CPU "
            "(turn on Settings -> Accelerator -> GPU)")
    return report


def publish_submission(submission: str | os.PathLike | None, log=print) -> Path | None:
    """Copy ``submission`` (the file notebook 05 wrote) to ``{output_root}/submission.csv``.

    In a kernel that puts the file at the top of its Output tab, where
    Kaggle's "Submit" button finds it.  The kernel's last cell calls it with
    ``result.submission`` of :func:`kit.pipeline.stages.run_ensemble_stage`.
    Returns the copy, or None (and says why) when no submission was written.
    """
    from kit.store.paths import output_root

    log = log or (lambda _msg: None)
    if submission is None or not Path(submission).is_file():
        log(f"no submission to publish ({submission or 'none written: the data folder has no test trials'})")
        return None
    source = Path(submission)
    target = output_root() / "submission.csv"
    with atomic_write(target) as fh:
        fh.write(source.read_bytes())
    log(f"submission: {target} (a copy of {source.name}); submit it from this kernel's Output tab")
    return target


