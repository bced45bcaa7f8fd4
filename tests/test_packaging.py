"""The package as a user installs it: ``pip install .`` gives the ``kit`` package and a working ``sleep-kit`` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from kit.store.paths import project_root


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``pip install --no-deps --target`` of the project into an empty folder (the dependencies are this venv's).

    Installed from a copy of what the build reads (pyproject.toml, README.md, kit/): setuptools writes its
    ``build/`` and ``*.egg-info`` beside the sources, which must not land in the clone."""
    target, src = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(project_root() / name, src / name)
    shutil.copytree(project_root() / "kit", src / "kit", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return target


def test_console_script_runs_from_a_fresh_install(installed, tmp_path):
    script = installed / "bin" / "sleep-kit"
    assert script.is_file()
    env = {**os.environ, "PYTHONPATH": str(installed)}
    proc = subprocess.run([sys.executable, str(script), "demo-data", "--help"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--kind" in proc.stdout
    where = subprocess.run([sys.executable, "-c", "import kit; print(kit.__file__)"], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=120).stdout.strip()
    assert where.startswith(str(installed))  # the installed copy, not the repository


def test_the_install_carries_every_module(installed):
    have = {p.relative_to(installed).as_posix() for p in (installed / "kit").rglob("*.py")}
    want = {p.relative_to(project_root()).as_posix() for p in (project_root() / "kit").rglob("*.py")}
    assert have == want
