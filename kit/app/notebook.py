"""A notebook of the series: found, read from its jupytext pair, parameterised, executed, its bars settled.

Each notebook is a jupytext pair, ``notebooks/NN_name.py`` (percent format, the source of truth) and
``notebooks/NN_name.ipynb``.  :func:`read_notebook` reads the ``.py``; :func:`inject_parameters` adds papermill's
``injected-parameters`` cell; :func:`run_notebook` executes one (nbclient) and keeps the executed copy;
:func:`settle_progress_bars` gives an executed notebook's progress bars their final text.  :mod:`kit.app.runner`
runs the series (and :mod:`kit.app.prefetch` a notebook the plan defers).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from kit.core.errors import KitError
from kit.store.artifacts import atomic_write
from kit.store.paths import output_root, project_root


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


DEFAULT_TIMEOUT = 3600
"""Seconds one cell may run before the run is stopped."""

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
