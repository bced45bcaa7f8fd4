"""``kit run``'s background process: the anchors a later notebook needs, trained while the notebooks before it run.

:func:`kit.app.runner.run_notebooks` starts one process per notebook of :data:`PREFETCH` (:func:`start_prefetch`),
and, when the notebooks before it are done and that process is still busy, a helper process that takes the same
anchors from the other end of the list (the two claim each anchor before training it, :func:`claim`, so none is
trained twice and the idle core does the short ones); it waits for both before that notebook
(:func:`wait_prefetch`) and ends them if an earlier notebook fails (:func:`stop_prefetch`).  The processes write
the anchors' stage artifacts where the notebook looks for them, so the notebook finds them fresh and skips them; if
one fails, the notebook computes what is missing itself.

The list may also hold a notebook of :data:`DEFERRABLE` (:func:`kit.pipeline.critical.work_list`): one whose
results only the later notebook reads.  The process that claims it executes it (:func:`kit.app.notebook.run_notebook`,
the executed copy where the runner keeps the others) and logs its outcome (:func:`notebook_outcomes`); the runner
waits for it with the anchors.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from kit.core.errors import KitError
from kit.store.paths import project_root

PREFETCH = {"05_ensembling": ("features", "riemann", "starter", "eegnet", "bandpower", "thetacov")}
"""Work a notebook needs that no earlier notebook needs before it: a full run does it in a second process while
the notebooks before it execute (each notebook uses one core), and waits for it before that notebook.  In this
order: the deep features' cache (``"features"``, :attr:`kit.pipeline.run.Run.features`: notebooks 02-04 read it),
riemann (notebook 04's fusion reads its features from the run's cache), the starter (notebook 01 then finds it
done), EEGNet (the long one), then the short anchors, which the helper takes from the end when the notebooks are
done first."""

DEFERRABLE = {"05_ensembling": ("01_eda_theta_power",)}
"""Notebooks whose results only the later notebook reads (notebook 01: its figures and the starter, an anchor of
05): ``kit run`` may execute them in the anchors' processes rather than first in line, where the measured costs
say that the run ends sooner (:func:`kit.pipeline.estimate.plan_run`: on a small folder the anchors are done long
before notebooks 02-04, and the idle core takes notebook 01)."""

_PREFETCH_CODE = "from kit.app.prefetch import work_through; work_through()"

_PREFETCH_DONE = re.compile(r"anchors wall time: ([0-9.]+) s")
_NOTEBOOK_OUTCOME = re.compile(r"^notebook (\S+) (done in ([0-9.]+) s|failed: (.*))$", re.MULTILINE)


def work_through() -> None:
    """The anchors' process (``python -c _PREFETCH_CODE data profile claims job item...``): each item it claims,
    an anchor's stage or a deferred notebook (``job``: JSON of :func:`run_notebook`'s arguments)."""
    t0 = time.perf_counter()
    from kit.pipeline import stages

    data, profile, claims, job = sys.argv[1:5]
    job = json.loads(job)
    run = stages.open_run(data or None, profile, verbose=True)
    for name in sys.argv[5:]:
        if not claim(claims, name):
            continue
        if name in job.get("notebooks", ()):
            _execute(name, job)
        elif name == "features":
            run.features  # noqa: B018 - computed and written to the run's cache
            run.__dict__.pop("features", None)  # not kept in this process's memory (1 GiB at full size)
        else:
            stages.run_baseline_stage(run, name)
    print(f"anchors wall time: {time.perf_counter() - t0:.1f} s", flush=True)


def _execute(name: str, job: dict) -> None:
    """Execute a deferred notebook as the runner would; its outcome is a line of the log (:func:`notebook_outcomes`)."""
    from kit.app.notebook import run_notebook

    print(f"notebook {name} ...", flush=True)
    try:
        done = run_notebook(Path(job["folder"]) / name, parameters=job["params"],
                            output=Path(job["out_dir"]) / f"{name}.ipynb", env=job["env"], cwd=job["cwd"],
                            timeout=job["timeout"])
    except KitError as exc:
        print(f"notebook {name} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", flush=True)
        raise SystemExit(3) from None
    print(f"notebook {name} done in {done.seconds:.1f} s", flush=True)


def notebook_outcomes(log_path: Path) -> dict[str, float | str]:
    """Deferred notebooks a process's log reports: name -> its wall time in s (done) or the error line (failed)."""
    text = Path(log_path).read_text(errors="replace") if Path(log_path).is_file() else ""
    return {m.group(1): float(m.group(3)) if m.group(3) else m.group(4) for m in _NOTEBOOK_OUTCOME.finditer(text)}


def claim(claims: str | os.PathLike, name: str) -> bool:
    """True if this process may train anchor ``name``: it created ``{claims}/{name}`` (exclusively) first.

    ``claims`` empty: always True (a process alone).  The runner makes a fresh folder per run, so a claim never
    outlives the run that made it.
    """
    if not str(claims):
        return True
    try:
        os.close(os.open(Path(claims) / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def start_prefetch(anchors, data, profile: str, log_path: Path, *, claims=None, cwd=None, log=print,
                   role: str = "in the background", job: dict | None = None):
    """Start a process computing the ``anchors``' stages (:func:`kit.pipeline.stages.run_baseline_stage`).

    It runs with one thread per numeric library, writes its progress to ``log_path``, and its stage
    artifacts land where the notebook will look for them (same data, profile and output root), so the
    notebook finds them fresh and skips them; if the process fails, the notebook computes them itself.
    With ``claims`` (a folder), it trains only the anchors it claims first (:func:`claim`): two processes
    given the same folder share the list.  ``job``: :func:`kit.app.notebook.run_notebook`'s arguments
    (``folder``, ``out_dir``, ``params``, ``env``, ``cwd``, ``timeout``) and ``notebooks``, the items of
    ``anchors`` that are deferred notebooks (:func:`kit.pipeline.critical.work_list`).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(project_root()), *filter(None, [os.environ.get("PYTHONPATH")])])}
    if data is not None:
        env["KIT_DATA"] = str(data)
    fh = open(log_path, "w")  # noqa: SIM115 - closed by wait_prefetch
    proc = subprocess.Popen([sys.executable, "-c", _PREFETCH_CODE, str(data or ""), profile, str(claims or ""),
                             json.dumps(job or {}), *anchors], cwd=cwd or project_root(), env=env, stdout=fh,
                            stderr=subprocess.STDOUT)
    doing = "executing" if (job or {}).get("notebooks") else "training"
    log(f"[anchors] {', '.join(anchors)}: {doing} {role} (progress: {log_path})")
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
