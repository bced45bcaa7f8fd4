"""Every module of the kit stays short enough to read: at most 400 lines, no function over 80 (issue 24).

A function's length runs from its first statement after the docstring to its last line (the docstring is
left out: numpydoc parameter tables are long by design); nested functions and methods count on their own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kit

KIT = Path(kit.__file__).resolve().parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MODULES = sorted(KIT.rglob("*.py"))


def module_lines(source: str) -> int:
    """Lines of a module (``wc -l``, plus a last line without a newline)."""
    return len(source.splitlines())


def function_lengths(source: str) -> list[tuple[str, int, int]]:
    """``(qualified name, first line, length)`` of every function and method, docstrings excluded."""
    out = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = child.body
                first = body[0]
                has_doc = (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                           and isinstance(first.value.value, str))
                start = first.end_lineno + 1 if has_doc else first.lineno
                out.append((f"{prefix}{child.name}", child.lineno, child.end_lineno - start + 1))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return out


def too_long(path: Path, max_module: int = MAX_MODULE_LINES, max_function: int = MAX_FUNCTION_LINES) -> list[str]:
    """The size limits ``path`` breaks, as sentences naming the file, function and length."""
    source = path.read_text()
    rel = path.relative_to(KIT.parent) if path.is_relative_to(KIT.parent) else path
    found = []
    n = module_lines(source)
    if n > max_module:
        found.append(f"{rel}: {n} lines (at most {max_module}): split it into cohesive modules")
    for name, line, length in function_lengths(source):
        if length > max_function:
            found.append(f"{rel}:{line}: {name} has {length} lines without its docstring (at most {max_function})")
    return found


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(KIT)) for p in MODULES])
def test_module_and_functions_are_short(path):
    problems = too_long(path)
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_long_module_and_a_long_function(tmp_path):
    lines = ['"""Module."""', "", "", "def f():", '    """Doc.', "", "    More.", '    """']
    lines += [f"    x{i} = {i}" for i in range(6)]
    lines += ["", "", "class C:", "    def g(self):"] + [f"        y{i} = {i}" for i in range(6)]
    source = "\n".join(lines) + "\n"
    path = tmp_path / "m.py"
    path.write_text(source)
    assert {n: k for n, _, k in function_lengths(source)} == {"f": 6, "C.g": 6}  # f's docstring left out
    assert too_long(path) == []
    found = too_long(path, max_module=10, max_function=5)
    assert any("m.py: 24 lines (at most 10)" in f for f in found), found
    assert any(":4: f has 6 lines" in f for f in found) and any(":18: C.g has 6 lines" in f for f in found), found
