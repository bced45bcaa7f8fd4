"""Run the notebook series top to bottom, as a user would, and keep the executed copies.

Each notebook is a jupytext pair, ``notebooks/NN_name.py`` (percent format,
the source of truth) and ``notebooks/NN_name.ipynb``.  :func:`run_notebook`
(:mod:`kit.app.notebook`) reads the ``.py``, injects parameters the way papermill does (after the cell
tagged ``parameters`` it inserts a cell tagged ``injected-parameters`` that
sets ``DATA`` and ``PROFILE``), executes it with nbclient in a ``python3``
kernel whose working directory is the project root (so ``import kit`` works
without any ``sys.path`` change), and writes the executed notebook to
``reports/runs/NN_name.ipynb`` under :func:`kit.store.paths.output_root`.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping

from kit.app import prefetch
from kit.app.notebook import DEFAULT_TIMEOUT, NotebookRun, notebook_source, notebooks_dir, run_notebook
from kit.app.prefetch import PREFETCH
from kit.core.errors import KitError
from kit.data.demo import ensure_data
from kit.data.layout import discover
from kit.pipeline.critical import work_list
from kit.store.paths import output_root

NOTEBOOKS = ("01_eda_theta_power", "02_mae_pretraining", "03_fomaml_experts", "04_fusion", "05_ensembling")
"""The series, in the order it must run (each notebook reads the artifacts of the ones before)."""

def run_notebooks(names: Iterable[str] = NOTEBOOKS, *, data: str | os.PathLike | None = None,
                  profile: str = "quick", out_dir: str | os.PathLike | None = None,
                  timeout: int = DEFAULT_TIMEOUT, notebooks: str | os.PathLike | None = None,
                  cwd: str | os.PathLike | None = None,
                  log: Callable[[str], None] | None = print) -> list[NotebookRun]:
    """Execute notebooks in order, like a user pressing "Run all" on each.

    Parameters
    ----------
    names : iterable of str
        Notebook stems, default the whole series :data:`NOTEBOOKS`.
    data : path, optional
        Data folder: injected as ``DATA`` and exported as ``$KIT_DATA`` to the
        kernel.  None lets each notebook resolve it (:func:`kit.data.demo.ensure_data`).
    profile : str
        Injected as ``PROFILE``: a key of :data:`kit.pipeline.profiles.PROFILES`
        ("quick", "full", "smoke").
    out_dir : path, optional
        Folder of the executed copies; default ``reports/runs`` under the output root.
    timeout : int
        Seconds a single cell may run.
    notebooks : path, optional
        Folder holding the notebooks; default the project's ``notebooks/``.
    cwd : path, optional
        The kernel's working directory; default the project root.
    log : callable or None
        Receives progress lines (default ``print``).

    Returns
    -------
    list of NotebookRun
        One per notebook, in order.

    Raises
    ------
    KitError
        Unknown profile, missing data folder or notebook, or a failing cell
        (the first failure stops the series).
    """
    from kit.pipeline.profiles import check_profile

    check_profile(profile)
    env = {}
    if data is not None:
        data = Path(data).expanduser().resolve()
        if not data.is_dir():
            raise KitError(f"{data}: data folder does not exist")
        env["KIT_DATA"] = str(data)
    params = {"DATA": str(data) if data is not None else None, "PROFILE": profile}
    folder = Path(notebooks) if notebooks is not None else notebooks_dir()
    out_dir = Path(out_dir) if out_dir is not None else output_root() / "reports" / "runs"
    names = list(names)
    for name in names:
        notebook_source(folder / name)  # every notebook exists before anything starts
    log = log or (lambda _msg: None)
    data_dir = data
    if any(n in PREFETCH for n in names[1:]) or NOTEBOOKS[-1] in names:
        data_dir = data if data is not None else ensure_data(None)  # simulates the demo once, here
        discover(data_dir)  # a folder the kit cannot read fails now, in one line, before any process starts
    defer: tuple = ()
    if names == list(NOTEBOOKS):  # a whole run: how long it should take here (measured stage costs x trials)
        from kit.pipeline.estimate import plan_line

        line, defer = plan_line(data_dir, profile, background=PREFETCH[NOTEBOOKS[-1]],
                                deferrable=prefetch.DEFERRABLE[NOTEBOOKS[-1]])
        if line:
            log(line)
    t_start = time.perf_counter()
    runs: dict[str, NotebookRun] = {}
    timings: dict[str, float] = {}  # notebook or background process -> wall time, s
    background = {}  # notebook -> [(process, log file, log path), ...] training its anchors ahead of it
    deferred = {}  # notebook executed in the anchors' processes -> the notebook that waits for them
    job = {"folder": str(folder), "out_dir": str(out_dir), "params": params, "env": env,
           "cwd": str(cwd) if cwd is not None else None, "timeout": timeout}
    try:
        for k, name in enumerate(names):
            if name in PREFETCH and k > 0:  # only worth it when earlier notebooks run meanwhile
                later = [n for n in prefetch.DEFERRABLE.get(name, ()) if n in defer and n in names[:k]]
                deferred.update(dict.fromkeys(later, name))
                background[name] = [_start_background(name, later, data_dir, profile, out_dir, cwd, log, job)]
        for k, name in enumerate(names, 1):
            if name in deferred:
                log(f"[{k}/{len(names)}] {name} (profile={profile}) runs in the anchors' processes, beside "
                    f"notebooks {' '.join(n[:2] for n in names[k:] if n != deferred[name])}")
                continue
            if name in background:
                procs = background.pop(name)
                mine = [n for n, later in deferred.items() if later == name]  # notebooks deferred to these processes
                if procs[0][0].poll() is None:  # still busy: the idle core takes the list from its other end
                    procs.append(prefetch.start_prefetch(work_list(PREFETCH[name], mine)[::-1], data_dir, profile,
                                                         out_dir / f"{name}.anchors-helper.log",
                                                         claims=_claims(out_dir, name), cwd=cwd, log=log,
                                                         role="from the other end beside it",
                                                         job={**job, "notebooks": mine}))
                for i, proc in enumerate(procs):
                    anchors_s = prefetch.wait_prefetch(*proc, log=log)
                    if anchors_s is not None:
                        timings[f"anchors ({', '.join(PREFETCH[name])}, {('background', 'helper')[i]})"] = anchors_s
                for nb in mine:
                    runs[nb] = _deferred_run(nb, [p[2] for p in procs], folder, params, out_dir, env, cwd, timeout,
                                             log)
                    timings[nb] = runs[nb].seconds
            log(f"[{k}/{len(names)}] {name} (profile={profile}) ...")
            run = run_notebook(folder / name, parameters=params, output=out_dir / f"{name}.ipynb", env=env,
                               cwd=cwd, timeout=timeout)
            log(f"[{k}/{len(names)}] {name} done in {run.seconds:.1f} s -> {run.output}")
            runs[name] = run
            timings[name] = run.seconds
            _raise_deferred_failure(background)  # a deferred notebook that failed stops the run now
    finally:
        for procs in background.values():  # a notebook failed: end the anchors' processes, close their logs
            for proc, fh, _ in procs:
                prefetch.stop_prefetch(proc, fh)
    total_s = time.perf_counter() - t_start
    runs = [runs[n] for n in names]
    if NOTEBOOKS[-1] in names:
        finish_run(data_dir, profile, timings, out_dir=out_dir, log=log, total_s=total_s if deferred else None)
    return runs


def _start_background(name: str, later: list, data_dir, profile: str, out_dir: Path, cwd, log, job: dict):
    """The anchors' process of notebook ``name``: its :data:`PREFETCH` list with the deferred notebooks ``later``,
    sharing a fresh claims folder with the helper the runner may start later."""
    claims = _claims(out_dir, name)  # fresh per run: the two processes share the list through it
    shutil.rmtree(claims, ignore_errors=True)
    claims.mkdir(parents=True)
    return prefetch.start_prefetch(work_list(PREFETCH[name], later), data_dir, profile, out_dir / f"{name}.anchors.log",
                                   claims=claims, cwd=cwd, log=log, job={**job, "notebooks": later})


def _claims(out_dir: Path, name: str) -> Path:
    """The claims folder (:func:`kit.app.prefetch.claim`) the anchors' process of ``name`` and its helper share."""
    return out_dir / f"{name}.claims"


def _raise_deferred_failure(background: dict) -> None:
    """Raise the error of a deferred notebook that failed in one of the anchors' processes, if any did."""
    for procs in background.values():
        for _, _, log_path in procs:
            failed = [v for v in prefetch.notebook_outcomes(log_path).values() if isinstance(v, str)]
            if failed:
                raise KitError(failed[0])


def _deferred_run(name: str, log_paths, folder: Path, params, out_dir: Path, env, cwd, timeout,
                  log: Callable[[str], None]) -> NotebookRun:
    """The outcome of a notebook the anchors' processes were to execute (:data:`kit.app.prefetch.DEFERRABLE`).

    Raises the notebook's own error when it failed there; executes it here when no process got to it (one
    failed or was ended before it).
    """
    for path in log_paths:
        outcome = prefetch.notebook_outcomes(path).get(name)
        if isinstance(outcome, str):
            raise KitError(outcome)
        if outcome is not None:
            log(f"[{name}] done in {outcome:.1f} s in the anchors' processes -> {out_dir / f'{name}.ipynb'}")
            return NotebookRun(name=name, output=out_dir / f"{name}.ipynb", seconds=outcome)
    log(f"[{name}] not executed by the anchors' processes: running it here ...")
    return run_notebook(folder / name, parameters=params, output=out_dir / f"{name}.ipynb", env=env, cwd=cwd,
                        timeout=timeout)


def finish_run(data, profile: str, timings: Mapping[str, float], *, out_dir: str | os.PathLike | None = None,
               log: Callable[[str], None] | None = print, total_s: float | None = None) -> dict | None:
    """The run's closing summary: computed from the ensemble stage's artifacts, written to
    ``{out_dir}/summary.json`` and logged as text.

    Parameters
    ----------
    data : path
        The data folder the run used (its tag names the artifacts folder).
    profile : str
        The profile the run used.
    timings : mapping name -> seconds
        Wall time of each notebook and of the background anchors.
    out_dir : path, optional
        Folder of the executed notebooks; default ``reports/runs`` under the output root.
    log : callable or None
        Receives the summary text.
    total_s : float, optional
        The run's wall time, s; default the sum of ``timings`` but the background process (notebooks that ran
        one after the other, the helper while notebook 05 waited).

    Returns
    -------
    dict or None
        :func:`kit.pipeline.summary.run_summary` with ``timings`` and ``total_s``; None when the ensemble
        stage left no artifacts (the summary is skipped, with a line saying so).
    """
    from kit.pipeline.run import data_tag
    from kit.pipeline.summary import run_summary, write_summary
    from kit.report.findings import summary_text

    log = log or (lambda _msg: None)
    out_dir = Path(out_dir) if out_dir is not None else output_root() / "reports" / "runs"
    artifacts = output_root() / "artifacts" / data_tag(data)
    try:
        summary = run_summary(artifacts, timings=dict(timings), profile=profile)
    except KitError as exc:
        log(f"no run summary: {exc}")
        return None
    if total_s is None:
        total_s = sum(v for k, v in timings.items() if "background" not in k)
    summary["total_s"] = round(float(total_s), 1)
    path = write_summary(out_dir / "summary.json", summary)
    log(summary_text(summary))
    log(f"summary: {path}")
    return summary


