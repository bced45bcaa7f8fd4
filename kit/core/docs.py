"""Shared docstring pieces: the parameters many functions take, written once (as MNE's ``docdict``).

A docstring names an entry as ``%(name)s`` on a line of its own, indented like the text around it, and the
function is decorated with :func:`fill_doc`, which puts the entry there with that indentation.  A decorated
docstring writes a literal percent sign as ``%%``.
"""

from __future__ import annotations

docdict: dict[str, str] = {}
"""Entry name -> numpydoc text, unindented (its first line goes where ``%(name)s`` stands)."""

# ----------------------------------------------------------------------------- trials
docdict["X_trials"] = """X : ndarray, shape (n_trials, n_chans, n_times)
    EEG in µV."""
docdict["sfreq"] = """sfreq : float
    Sampling rate in Hz."""
docdict["anchor_params"] = """Parameters
----------
config : dataclass, optional
    The anchor's settings, an instance of its ``config_class``; default ``config_class()``.
sfreq : float
    Sampling rate in Hz (200)."""
docdict["fit_params"] = """Parameters
----------
X : ndarray, shape (n_trials, n_chans, n_times), µV
y : ndarray, shape (n_trials,), 1 emotional / 0 neutral
subject : ndarray, shape (n_trials,)"""

# ----------------------------------------------------------------------------- figures
docdict["save_dir"] = """save_dir : path, optional
    Folder of ``{name}.png`` and of the vector ``{name}.pdf`` (:func:`kit.report.common.save_figure`); None:
    not saved.
name : str
    File stem."""


def _indent(text: str, spaces: int) -> str:
    """``text`` with every line but the first indented by ``spaces``."""
    first, *rest = text.split("\n")
    return "\n".join([first] + [(" " * spaces + line) if line else line for line in rest])


def fill_doc(obj):
    """Decorator: replace each ``%(name)s`` of ``obj``'s docstring by :data:`docdict`'s entry, indented as the
    docstring is.

    Parameters
    ----------
    obj : function or class
        Its ``__doc__`` is filled in place.

    Returns
    -------
    obj
        The same object.

    Raises
    ------
    KeyError
        A ``%(name)s`` that :data:`docdict` does not hold (at import, so a typo cannot pass unseen).
    """
    doc = obj.__doc__
    if not doc:
        return obj
    lines = doc.split("\n")
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()]
    spaces = min(indents) if indents else 0
    filled = {name: _indent(text, spaces) for name, text in docdict.items()}
    try:
        obj.__doc__ = doc % filled
    except (KeyError, TypeError, ValueError) as exc:
        where = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', obj)}"
        raise KeyError(f"{where}: docstring entry {exc} not filled") from exc
    return obj
