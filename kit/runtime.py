"""Device, seeds and threads: the few process-wide settings a training stage needs."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def get_device(prefer: str | None = None) -> torch.device:
    """``cuda`` when a GPU is visible (a Kaggle GPU kernel), else ``cpu``.

    ``prefer`` (or ``$KIT_DEVICE``) forces a device, e.g. ``"cpu"``.
    """
    choice = prefer or os.environ.get("KIT_DEVICE")
    if choice:
        return torch.device(choice)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU ``torch.Generator`` seeded with ``seed``.

    On CPU, the same seed, data and config give bit-identical weights.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
