"""kit.core.docs: shared docstring entries are filled with the docstring's indentation, and none is left unfilled."""

import importlib
import pkgutil

import pytest

import kit
from kit.core.docs import docdict, fill_doc


def test_fill_doc_indents_an_entry_as_the_docstring():
    def f(save_dir=None, name="x"):
        """Draw.

        Parameters
        ----------
        %(save_dir)s
        """

    doc = fill_doc(f).__doc__
    first, *rest = docdict["save_dir"].split("\n")
    assert f"        {first}\n" in doc
    assert all(f"\n        {line}" in doc for line in rest if line)


def test_an_unknown_entry_fails_at_decoration():
    def g():
        """Uses %(no_such_entry)s."""

    with pytest.raises(KeyError, match="no_such_entry"):
        fill_doc(g)


def test_every_kit_docstring_is_filled():
    """Every module imports (its decorators run) and no function or class keeps a ``%(name)s``."""
    left = []
    for info in pkgutil.walk_packages(kit.__path__, "kit."):
        if info.name == "kit.core.docs":  # it describes the placeholders
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            members = [obj, *vars(obj).values()] if isinstance(obj, type) else [obj]
            for member in members:
                doc = getattr(member, "__doc__", None)
                if getattr(member, "__module__", None) == info.name and isinstance(doc, str) and "%(" in doc:
                    left.append(f"{info.name}.{name}")
    assert left == []
