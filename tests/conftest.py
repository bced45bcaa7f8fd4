"""Shared test settings, and one finished smoke run that the tests reading a run share."""

import os
import subprocess
import sys

import pytest

from kit.core.runtime import set_threads


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The tests' models are tiny: one torch thread, as the kit's stages use (see kit.core.runtime.set_threads)."""
    set_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _private_output_root(tmp_path_factory):
    """Every test writes its artifacts, submissions and reports under a temporary root (``$KIT_OUTPUT``), never
    into the clone's own ``artifacts/`` (a test folder named ``demo`` would otherwise replace the demo's stages).
    A test that needs its own root still sets ``KIT_OUTPUT`` with ``monkeypatch.setenv``."""
    before = os.environ.get("KIT_OUTPUT")
    os.environ["KIT_OUTPUT"] = str(tmp_path_factory.mktemp("kit_output"))
    yield
    if before is None:
        os.environ.pop("KIT_OUTPUT", None)
    else:
        os.environ["KIT_OUTPUT"] = before


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One ``python -m kit run --profile smoke`` on a tiny simulated folder (scale 0.03, seed 3), in a temporary
    output root: ``(data, output root, stdout)``.  Shared by the pipeline and notebook tests (only read)."""
    from kit.data.demo import write_demo_dataset
    from kit.store.paths import project_root

    root = tmp_path_factory.mktemp("smoke_run")
    data = write_demo_dataset(root / "demo", scale=0.03, seed=3)
    env = {**os.environ, "KIT_OUTPUT": str(root / "out"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "kit", "run", "--data", str(data), "--profile", "smoke"],
                          cwd=project_root(), env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return data, root / "out", proc.stdout
