"""``kit run``'s background process: the anchors a later notebook needs, trained while the notebooks before it run.

:func:`kit.app.runner.run_notebooks` starts one process per notebook of :data:`PREFETCH` (:func:`start_prefetch`),
waits for it before that notebook (:func:`wait_prefetch`) and ends it if an earlier notebook fails
(:func:`stop_prefetch`).  The process writes the anchors' stage artifacts where the notebook looks for them, so
the notebook finds them fresh and skips them; if it fails, the notebook computes them itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from kit.store.paths import project_root

PREFETCH = {"05_ensembling": ("thetacov", "bandpower", "riemann", "eegnet")}
"""Anchors a notebook needs that no earlier notebook computes: a full run trains them in a second process
while the notebooks before it execute (each notebook uses one core), and waits for them before it."""

_PREFETCH_CODE = (
    "import sys, time\n"
    "t0 = time.perf_counter()\n"
    "from kit.pipeline import stages\n"
    "run = stages.open_run(sys.argv[1] or None, sys.argv[2], verbose=True)\n"
    "for name in sys.argv[3:]:\n"
    "    stages.run_baseline_stage(run, name)\n"
    "print(f'anchors wall time: {time.perf_counter() - t0:.1f} s', flush=True)\n"
)

_PREFETCH_DONE = re.compile(r"anchors wall time: ([0-9.]+) s")


def start_prefetch(anchors, data, profile: str, log_path: Path, *, cwd=None, log=print):
    """Start a process computing the ``anchors``' stages (:func:`kit.pipeline.stages.run_baseline_stage`).

    It runs with one thread per numeric library, writes its progress to ``log_path``, and its stage
    artifacts land where the notebook will look for them (same data, profile and output root), so the
    notebook finds them fresh and skips them; if the process fails, the notebook computes them itself.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(project_root()), *filter(None, [os.environ.get("PYTHONPATH")])])}
    if data is not None:
        env["KIT_DATA"] = str(data)
    fh = open(log_path, "w")  # noqa: SIM115 - closed by wait_prefetch
    proc = subprocess.Popen([sys.executable, "-c", _PREFETCH_CODE, str(data or ""), profile, *anchors],
                            cwd=cwd or project_root(), env=env, stdout=fh, stderr=subprocess.STDOUT)
    log(f"[anchors] {', '.join(anchors)} training in the background (progress: {log_path})")
    return proc, fh, log_path


def stop_prefetch(proc, fh, timeout: float = 10.0) -> None:
    """End a background anchor process (terminate, then kill after ``timeout`` s) and close its log file."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    fh.close()


def wait_prefetch(proc, fh, log_path: Path, *, log=print) -> float | None:
    """Wait for a background anchor process; on failure say so (the notebook then computes them itself).

    Returns the process's own wall time in s (the last line of its log), or None when it failed."""
    t0 = time.perf_counter()
    if proc.poll() is None:
        log("[anchors] waiting for the background anchors ...")
    code = proc.wait()
    fh.close()
    if code != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        log(f"[anchors] background process failed ({tail[0]}); the notebook computes them itself")
        return None
    if time.perf_counter() - t0 > 1:
        log(f"[anchors] ready after {time.perf_counter() - t0:.0f} s more")
    found = _PREFETCH_DONE.findall(log_path.read_text(errors="replace"))
    return float(found[-1]) if found else None
