"""Run the notebook series top to bottom, as a user would, and keep the executed copies.

Each notebook is a jupytext pair, ``notebooks/NN_name.py`` (percent format,
the source of truth) and ``notebooks/NN_name.ipynb``.  :func:`run_notebook`
reads the ``.py``, injects parameters the way papermill does (after the cell
tagged ``parameters`` it inserts a cell tagged ``injected-parameters`` that
sets ``DATA`` and ``PROFILE``), executes it with nbclient in a ``python3``
kernel whose working directory is the project root (so ``import kit`` works
without any ``sys.path`` change), and writes the executed notebook to
``reports/runs/NN_name.ipynb`` under :func:`kit.store.paths.output_root`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from kit.core.errors import KitError
from kit.data.demo import ensure_data
from kit.data.layout import discover
from kit.store.artifacts import atomic_write
from kit.store.paths import output_root, project_root

NOTEBOOKS = ("01_eda_theta_power", "02_mae_pretraining", "03_fomaml_experts", "04_fusion", "05_ensembling")
"""The series, in the order it must run (each notebook reads the artifacts of the ones before)."""

DEFAULT_TIMEOUT = 3600
"""Seconds one cell may run before the run is stopped."""

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

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class NotebookRun:
    """The outcome of one executed notebook.

    Attributes
    ----------
    name : str
        Notebook name without suffix, e.g. ``"01_eda_theta_power"``.
    output : Path
        The executed ``.ipynb``.
    seconds : float
        Wall time of the execution, s.
    """

    name: str
    output: Path
    seconds: float


def notebooks_dir() -> Path:
    """The project's ``notebooks/`` folder."""
    return project_root() / "notebooks"


def read_notebook(path: str | os.PathLike):
    """Read a notebook from its jupytext ``.py`` (preferred) or its ``.ipynb``.

    Parameters
    ----------
    path : path
        ``notebooks/NN_name.py``, ``.ipynb`` or the stem without suffix.

    Returns
    -------
    nbformat.NotebookNode

    Raises
    ------
    KitError
        If neither file exists or the file cannot be parsed.
    """
    import jupytext

    source = notebook_source(path)
    try:
        nb = jupytext.read(source)
    except Exception as exc:  # jupytext/nbformat raise many parser errors
        raise KitError(f"{source}: not a readable notebook ({type(exc).__name__}: {exc})") from exc
    for index, cell in enumerate(nb.cells):  # nbformat 4.5 wants cell ids; jupytext's .py carries none
        cell.setdefault("id", f"cell-{index}")
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 5))
    return nb


def notebook_source(path: str | os.PathLike) -> Path:
    """The file a notebook is read from: ``path`` itself, else ``{path}.py``, else ``{path}.ipynb``.

    Raises
    ------
    KitError
        If none exists.
    """
    path = Path(path)
    candidates = [path] if path.suffix in (".py", ".ipynb") else [path.with_suffix(".py"), path.with_suffix(".ipynb")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise KitError(f"{candidates[0]}: notebook not found")


def inject_parameters(nb, parameters: Mapping[str, Any]):
    """Insert a cell tagged ``injected-parameters`` after the ``parameters`` cell: papermill's own injection.

    :func:`papermill.parameterize.parameterize_notebook` (values written as Python literals; a second injection
    replaces the first; with no cell tagged ``parameters`` the new cell goes first).  The kit executes the
    notebook with :mod:`nbclient` itself rather than with ``papermill.execute_notebook``: it needs a per-kernel
    environment (``KIT_DATA``, threads) without changing this process's, the kernel process's own log kept out of
    the console, an atomic write of the executed copy and one-line errors naming the cell and source line.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The notebook (a Python kernel).
    parameters : mapping of str -> value
        str, numbers, None, bool, lists, dicts.

    Returns
    -------
    nbformat.NotebookNode
        The parameterised notebook (a new object).
    """
    from papermill.parameterize import parameterize_notebook

    if not parameters:
        return nb
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    nb.metadata.setdefault("papermill", {})  # papermill records the parameters there
    for cell in nb.cells:  # papermill reads every cell's tags
        cell.metadata.setdefault("tags", [])
    out = parameterize_notebook(nb, dict(parameters), kernel_name="python3", language="python")
    out.metadata.pop("papermill", None)  # its bookkeeping is for papermill's own executions
    for index, cell in enumerate(out.cells):
        cell.setdefault("id", f"cell-{index}")
        if not cell.metadata.get("tags"):
            cell.metadata.pop("tags", None)
    for cell in nb.cells:
        if not cell.metadata.get("tags"):
            cell.metadata.pop("tags", None)
    nb.metadata.pop("papermill", None)
    return out


def _error_line(nb, exc: Exception) -> str:
    """One line saying which cell failed, on which source line, with which exception."""
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = str(getattr(exc, "evalue", exc)).strip().splitlines()
    evalue = evalue[0] if evalue else ""
    for index, cell in enumerate(nb.cells):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if cell.cell_type != "code" or not errors:
            continue
        source_line = ""
        trace = _ANSI.sub("", "\n".join(errors[0].get("traceback", [])))
        marks = re.findall(r"Cell In\[\d+\], line (\d+)", trace)
        lines = cell.source.splitlines()
        if marks and 0 < int(marks[0]) <= len(lines):
            source_line = f", line {marks[0]}: `{lines[int(marks[0]) - 1].strip()}`"
        return f"cell {index}{source_line}: {ename}: {evalue}"
    return f"{ename}: {evalue}"


def _caused_by(exc: BaseException, kind: type) -> bool:
    """True if ``exc`` or an exception it was raised from or during is a ``kind``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def run_notebook(path: str | os.PathLike, *, parameters: Mapping[str, Any] | None = None,
                 output: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
                 cwd: str | os.PathLike | None = None, timeout: int = DEFAULT_TIMEOUT,
                 kernel_name: str = "python3") -> NotebookRun:
    """Execute one notebook with injected parameters and save the executed copy.

    Parameters
    ----------
    path : path
        The notebook (``.py`` jupytext pair preferred, see :func:`read_notebook`).
    parameters : mapping, optional
        Injected after the ``parameters`` cell (:func:`inject_parameters`).
    output : path, optional
        Where the executed ``.ipynb`` goes (atomically); default
        ``reports/runs/{name}.ipynb`` under the output root.  Written also
        when a cell fails, so the traceback can be read there.  The kernel
        process's own log (not the cells' output) goes beside it, to
        ``{name}.kernel.log``.
    env : mapping, optional
        Extra environment variables for the kernel (added to ``os.environ``).
    cwd : path, optional
        The kernel's working directory; default the project root.
    timeout : int
        Seconds a single cell may run.
    kernel_name : str
        Jupyter kernel to use.

    Returns
    -------
    NotebookRun

    Raises
    ------
    KitError
        Missing notebook, or a cell that raised: the message is one line,
        ``{notebook}: cell {i}, line {n}: `{source}`: {Error}: {message}``.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = notebook_source(path)
    name = path.stem
    nb = inject_parameters(read_notebook(path), parameters or {})
    nb.metadata.setdefault("kernelspec", {"name": kernel_name, "display_name": "Python 3", "language": "python"})
    output = Path(output) if output is not None else output_root() / "reports" / "runs" / f"{name}.ipynb"
    cwd = Path(cwd) if cwd is not None else project_root()
    kernel_env = {**os.environ, **(env or {})}
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, iopub_timeout=60,
                            resources={"metadata": {"path": str(cwd)}})  # iopub: late outputs on a busy machine
    kernel_log = output.with_suffix(".kernel.log")  # the kernel process's own stderr, kept out of the console
    kernel_log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    failure = None
    try:
        with open(kernel_log, "w") as log:
            client.execute(env=kernel_env, stderr=log)
    except CellExecutionError as exc:
        failure = f"{path}: {_error_line(nb, exc)}"
    except CellTimeoutError as exc:
        failure = f"{path}: a cell ran past {timeout} s ({str(exc).strip().splitlines()[0]})"
    except Exception as exc:  # nbclient may mask DeadKernelError with an error of its own cleanup
        if not _caused_by(exc, DeadKernelError):
            raise
        failure = f"{path}: the kernel died while running a cell (out of memory, or killed; see {kernel_log})"
    seconds = time.perf_counter() - start
    settle_progress_bars(nb)
    with atomic_write(output, "w") as fh:
        nbformat.write(nb, fh)
    if failure is not None:
        raise KitError(f"{failure} (executed copy: {output})")
    return NotebookRun(name=name, output=output, seconds=seconds)


def settle_progress_bars(nb) -> int:
    """Give each tqdm notebook bar of an executed notebook its final state as text.

    With ipywidgets, ``tqdm.auto`` draws a widget: the saved notebook stores one output per bar whose text
    (``text/plain``, what a viewer without widgets shows) is the bar when it *started* ("0%"), and the bar's
    final state only in the notebook's widget state.  This rewrites that text from the stored widget state
    ("experts: 37%| 299/800 [00:41<01:10]"), so every bar reads as it ended, in one line.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        Executed by nbclient (``store_widget_state``, its default); modified in place.

    Returns
    -------
    int
        Bars rewritten.
    """
    import html

    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    if not state:
        return 0

    def model(ref):
        return state.get(str(ref).replace("IPY_MODEL_", ""), {})

    def text(value):
        return html.unescape(str(value)).replace("\u2007", " ").strip()

    done = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            box = model(view.get("model_id")) if isinstance(view, dict) else {}
            children = [model(c) for c in box.get("state", {}).get("children", [])]
            if box.get("model_name") != "HBoxModel" or len(children) != 3:
                continue
            left, bar, right = (c.get("state", {}) for c in children)
            if "value" not in bar or "max" not in bar:
                continue
            out["data"]["text/plain"] = f"{text(left.get('value', ''))}| {text(right.get('value', ''))}"
            done += 1
    return done


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
    from kit.pipeline.profiles import PROFILES

    if profile not in PROFILES:
        raise KitError(f"profile {profile!r}: expected one of {sorted(PROFILES)}")
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
    runs = []
    timings: dict[str, float] = {}  # notebook or background process -> wall time, s
    background = {}  # notebook -> (process, log file, log path) training its anchors ahead of it
    try:
        for k, name in enumerate(names):
            if name in PREFETCH and k > 0:  # only worth it when earlier notebooks run meanwhile
                background[name] = _start_prefetch(PREFETCH[name], data_dir, profile,
                                                   out_dir / f"{name}.anchors.log", cwd=cwd, log=log)
        for k, name in enumerate(names, 1):
            if name in background:
                anchors_s = _wait_prefetch(*background.pop(name), log=log)
                if anchors_s is not None:
                    timings[f"anchors ({', '.join(PREFETCH[name])}, background)"] = anchors_s
            log(f"[{k}/{len(names)}] {name} (profile={profile}) ...")
            run = run_notebook(folder / name, parameters=params, output=out_dir / f"{name}.ipynb", env=env,
                               cwd=cwd, timeout=timeout)
            log(f"[{k}/{len(names)}] {name} done in {run.seconds:.1f} s -> {run.output}")
            runs.append(run)
            timings[name] = run.seconds
    finally:
        for proc, fh, _ in background.values():  # a notebook failed: end the anchors' process, close its log
            _stop_prefetch(proc, fh)
    if NOTEBOOKS[-1] in names:
        finish_run(data_dir, profile, timings, out_dir=out_dir, log=log)
    return runs


def finish_run(data, profile: str, timings: Mapping[str, float], *, out_dir: str | os.PathLike | None = None,
               log: Callable[[str], None] | None = print) -> dict | None:
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
    summary["total_s"] = round(sum(v for k, v in timings.items() if "background" not in k), 1)
    path = write_summary(out_dir / "summary.json", summary)
    log(summary_text(summary))
    log(f"summary: {path}")
    return summary


def _start_prefetch(anchors, data, profile: str, log_path: Path, *, cwd=None, log=print):
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
    fh = open(log_path, "w")  # noqa: SIM115 - closed by _wait_prefetch
    proc = subprocess.Popen([sys.executable, "-c", _PREFETCH_CODE, str(data or ""), profile, *anchors],
                            cwd=cwd or project_root(), env=env, stdout=fh, stderr=subprocess.STDOUT)
    log(f"[anchors] {', '.join(anchors)} training in the background (progress: {log_path})")
    return proc, fh, log_path


def _stop_prefetch(proc, fh, timeout: float = 10.0) -> None:
    """End a background anchor process (terminate, then kill after ``timeout`` s) and close its log file."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    fh.close()


def _wait_prefetch(proc, fh, log_path: Path, *, log=print) -> float | None:
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
