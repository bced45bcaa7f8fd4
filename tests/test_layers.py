"""The package's layers: each imports only itself and the layers below it, with no cycle and no private name.

The order (bottom to top) is the pipeline's: ``core`` < ``store`` < ``data`` < ``signal`` < ``eval`` <
``methods`` < ``deep`` < ``pipeline`` < ``report`` < ``app``.  Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kit

LAYERS = ("core", "store", "data", "signal", "eval", "methods", "deep", "pipeline", "report", "app")
KIT = Path(kit.__file__).resolve().parent


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def kit_imports(path: Path, root: Path) -> list[tuple[str, str, int]]:
    """``(module, name or "", line)`` for every import of the package in ``path``, relative ones resolved."""
    pkg = root.name
    me = module_name(path, root)
    here = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, "", node.lineno) for a in node.names if a.name.split(".")[0] == pkg]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != pkg:
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                is_module = (root.parent / sub.replace(".", "/")).with_suffix(".py").is_file() or \
                    (root.parent / sub.replace(".", "/") / "__init__.py").is_file()
                out.append((sub, "", node.lineno) if is_module else (base, a.name, node.lineno))
    return out


def layer_of(module: str) -> int | None:
    """Index of the module's layer; None for the package root (``kit``, ``kit.__main__``)."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def violations(root: Path) -> list[str]:
    """Upward imports, imports of private names from another module, and import cycles, as sentences."""
    found, graph = [], {}
    for path in sorted(root.rglob("*.py")):
        me = module_name(path, root)
        mine = layer_of(me)
        rel = path.relative_to(root.parent)
        if me != root.name and len(me.split(".")) > 1 and me.split(".")[1] not in LAYERS + ("__main__",):
            found.append(f"{rel}: outside the layers {LAYERS}")
        for target, name, line in kit_imports(path, root):
            if target == root.name and name in ("COMPETITION", "__version__"):
                continue  # the package's two constants: every layer may read them
            theirs = layer_of(target)
            if me == root.name:
                found.append(f"{rel}:{line}: the package root imports {target}")
            elif theirs is None and target != root.name:
                found.append(f"{rel}:{line}: imports {target}, which is in no layer")
            elif mine is not None and theirs is not None and theirs > mine:
                found.append(f"{rel}:{line}: {LAYERS[mine]} imports {target} from the higher layer {LAYERS[theirs]}")
            if name.startswith("_") and target != me:
                found.append(f"{rel}:{line}: imports the private {target}.{name}")
            if target != me and not target.endswith("__init__"):
                graph.setdefault(me, set()).add(target)
    # cycles (within a layer: across layers the order above already forbids them)
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_kit_layers_hold():
    assert violations(KIT) == []


def test_every_layer_is_a_package_with_a_docstring():
    for layer in LAYERS:
        init = KIT / layer / "__init__.py"
        assert init.is_file(), f"kit/{layer}/ is not a package"
        assert ast.get_docstring(ast.parse(init.read_text())), f"kit/{layer}/__init__.py says nothing of what it owns"


def test_every_module_says_what_it_owns():
    silent = [str(p.relative_to(KIT)) for p in sorted(KIT.rglob("*.py")) if not ast.get_docstring(ast.parse(p.read_text()))]
    assert silent == []


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / "kit" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for d in [root / "kit", *[(root / "kit" / rel).parent for rel in files]]:
        (d / "__init__.py").touch()
    return root / "kit"


@pytest.mark.parametrize("files, expected", [
    ({"core/a.py": "from kit.app import cli\n", "app/cli.py": ""}, "core imports kit.app.cli from the higher layer app"),
    ({"data/a.py": "def f():\n    from ..deep.nets import Net\n", "deep/nets.py": "class Net: pass\n"},
     "data imports kit.deep.nets from the higher layer deep"),
    ({"eval/a.py": "from kit.eval.b import x\n", "eval/b.py": "from .a import y\n"},
     "import cycle: kit.eval.a -> kit.eval.b -> kit.eval.a"),
    ({"deep/a.py": "from kit.deep.b import _helper\n", "deep/b.py": "def _helper(): pass\n"},
     "imports the private kit.deep.b._helper"),
    ({"misc.py": ""}, "outside the layers"),
])
def test_the_check_catches_each_kind_of_violation(tmp_path, files, expected):
    found = violations(_write(tmp_path, files))
    assert any(expected in f for f in found), found


def test_the_check_passes_a_clean_tree(tmp_path):
    root = _write(tmp_path, {"core/errors.py": "class E(Exception): pass\n",
                             "app/cli.py": "from kit.core.errors import E\nfrom kit import __version__\n"})
    assert violations(root) == []


def readme_map(readme: Path) -> dict[str, set[str]]:
    """``{layer: {"name.py", ...}}`` from the code block of README's "## Layout" section."""
    import re

    block = readme.read_text().split("## Layout", 1)[1].split("```")[1]
    groups, layer = {}, None
    for line in block.splitlines():
        m = re.match(r"kit/(\w+)/", line)
        if m:
            layer = m.group(1)
        elif not line.startswith(" "):
            layer = None
        if layer:
            groups.setdefault(layer, set()).update(re.findall(r"\b(\w+\.py)\b", line))
    return groups


def test_readme_map_lists_every_module():
    """README's map of the code names every layer and every module in it, and nothing that is not there."""
    listed = readme_map(KIT.parent / "README.md")
    on_disk = {layer: {p.name for p in (KIT / layer).rglob("*.py") if p.name != "__init__.py"} for layer in LAYERS}
    assert listed == on_disk
