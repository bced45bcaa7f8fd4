"""Thread settings of kit.core.runtime: what a Run changes in the process, and how to keep it from doing so."""

import numpy as np
import pytest
import torch

from kit.core.runtime import set_threads, thread_limit


def test_set_threads_follows_kit_threads_and_zero_leaves_torch_alone(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("KIT_THREADS", "2")
        assert set_threads() == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv("KIT_THREADS", "0")  # an embedding program keeps its own setting
        torch.set_num_threads(3)
        assert set_threads() == 3 and torch.get_num_threads() == 3
        assert set_threads(1) == 1 and torch.get_num_threads() == 1  # an explicit count wins over the environment
    finally:
        torch.set_num_threads(before)


def test_thread_limit_restores_torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with thread_limit(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_take_rows_is_advanced_indexing_along_the_first_axis():
    from kit.core.runtime import take_rows

    t = torch.arange(5 * 3 * 2, dtype=torch.float32).reshape(5, 3, 2)
    rows = np.array([4, 0, 4, 2])
    for r in (rows, torch.from_numpy(rows)):
        out = take_rows(t, r)
        assert out.shape == (4, 3, 2) and torch.equal(out, t[torch.as_tensor(rows)])
    assert torch.equal(take_rows(t.double(), rows[:1])[0], t[4].double())
    with pytest.raises(IndexError):
        take_rows(t, np.array([5]))
