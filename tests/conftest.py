"""Shared test settings."""

import pytest

from kit.core.runtime import set_threads


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The tests' models are tiny: one torch thread, as the kit's stages use (see kit.core.runtime.set_threads)."""
    set_threads(1)
