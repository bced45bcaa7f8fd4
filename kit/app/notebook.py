"""A notebook of the series as a document: found, read from its jupytext pair, parameterised, its bars settled.

Each notebook is a jupytext pair, ``notebooks/NN_name.py`` (percent format, the source of truth) and
``notebooks/NN_name.ipynb``.  :func:`read_notebook` reads the ``.py``; :func:`inject_parameters` adds papermill's
``injected-parameters`` cell; :func:`settle_progress_bars` gives an executed notebook's progress bars their
final text.  :mod:`kit.app.runner` executes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from kit.core.errors import KitError
from kit.store.paths import project_root


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
