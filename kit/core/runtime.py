"""Device, seeds and threads: the few process-wide settings a training stage needs; its gradient step."""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager

import numpy as np
import torch

from kit.core.errors import KitError


def get_device(prefer: str | None = None) -> torch.device:
    """``cuda`` when a GPU is visible (a Kaggle GPU kernel), else ``cpu``.

    ``prefer`` (or ``$KIT_DEVICE``) forces a device, e.g. ``"cpu"``.
    """
    choice = prefer or os.environ.get("KIT_DEVICE")
    if choice:
        return torch.device(choice)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generator (weight initialisation, dropout); return a CPU ``torch.Generator`` seeded
    with ``seed`` (batch order, masks).

    Call it inside a function decorated with :func:`keeps_global_rng`, so that the caller's random state is
    restored afterwards (a fit does not reseed the caller's process).  On CPU, the same seed, data and config
    give bit-identical weights.  The kit draws no numbers from Python's or NumPy's global generators (it uses
    ``numpy.random.default_rng``), so those are left alone.
    """
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def keeps_global_rng(fn):
    """Decorator: run ``fn`` inside :func:`torch.random.fork_rng`, so its seeding leaves the caller's torch
    random state (CPU and visible GPUs) as it was."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.random.fork_rng():
            return fn(*args, **kwargs)

    return wrapper


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads for the small models of the kit; returns the number set.

    Default ``$KIT_THREADS`` or 1; 0 leaves torch's setting as it is (for a program that embeds the kit and
    manages its own threads: a :class:`kit.pipeline.run.Run` calls this when it is built).  The experts and
    the fusion model are tiny (d_model 16), so their cost is per-operation overhead: one thread is
    as fast as two on an idle 2-core machine, and many times faster when
    other processes share the cores (OpenMP workers spin-wait for each other).
    """
    n = int(os.environ.get("KIT_THREADS", 1) if n is None else n)
    if n <= 0:
        return torch.get_num_threads()
    torch.set_num_threads(n)
    return n


@contextmanager
def thread_limit(n: int):
    """Limit BLAS/OpenMP (threadpoolctl) and torch CPU threads to ``n`` inside the block (0: unchanged).

    On a shared 2-core machine two threads per library made small problems
    20-80x slower than one (oversubscription: spinning OpenMP threads).
    """
    if n <= 0:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(old)


def gradient_step(opt: torch.optim.Optimizer, loss: torch.Tensor, what: str, when: str) -> None:
    """One optimiser step on ``loss``: zero the gradients, backward, step.

    A loss that is not finite stops the training first, with ``KitError("{what} is {loss} at {when}; stopping")``
    (e.g. ``"EEGNet: loss is nan at epoch 3; stopping"``).
    """
    if not torch.isfinite(loss):
        raise KitError(f"{what} is {loss.item()} at {when}; stopping")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def take_rows(t: torch.Tensor, rows) -> torch.Tensor:
    """``t[rows]`` along the first axis (a minibatch of trials), the same values.

    Parameters
    ----------
    t : Tensor, shape (n_trials, ...)
    rows : ndarray or Tensor of int, shape (n_rows,)

    Returns
    -------
    Tensor, shape (n_rows, ...)
        On ``t``'s device; for a CPU tensor gathered by :func:`numpy.take` (about 10x faster than torch's advanced
        indexing for a (128, 16, 25, 23) batch of the fusion's token sequences: 0.2 against 2.5 ms), elsewhere by
        :func:`torch.index_select`.
    """
    if t.device.type == "cpu" and t.dtype != torch.bfloat16:
        idx = rows.numpy() if isinstance(rows, torch.Tensor) else rows
        return torch.from_numpy(np.take(t.numpy(), idx, axis=0))
    return torch.index_select(t, 0, torch.as_tensor(rows, dtype=torch.long, device=t.device))
