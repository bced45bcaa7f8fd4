"""Push-ready folders: a kernel (``kaggle kernels push -p OUT``) and the kit's wheel as a dataset
(``kaggle datasets create -p OUT``).
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

from kit import COMPETITION, __version__
from kit.app.kaggle.credentials import find_credentials
from kit.app.kaggle.wheel import DIST_NAME, VENDORED, build_wheel, dependency_wheel, wheel_bytes, wheel_name
from kit.core.errors import KitError
from kit.store.artifacts import atomic_write, write_json

DEFAULT_DATASET_SLUG = "sleep-emotion-kit"
"""Default slug of the Kaggle dataset holding the kit's wheel."""
ALL = "all"
"""Kernel notebook name meaning "the whole series 01-05 in one notebook"."""


# ============================================================================ kernel folder
_BOOTSTRAP = '''\
# kit bootstrap, written by `python -m kit kaggle-kernel` (kit {version}): makes `import kit` work with
# the internet off. The kit is a wheel, {where}; it is unpacked to a temporary folder (not
# /kaggle/working, which is this kernel's output) and put first on sys.path. So are the pure-Python
# dependencies this Python cannot import (or has too old): {vendored}.
def _kit_bootstrap(wheel_b64, dataset, deps):
    import base64, glob, importlib, importlib.metadata, io, os, sys, tempfile, zipfile

    root = os.environ.get("KIT_KAGGLE_INPUT") or "/kaggle/input"

    def find(pattern):
        slug = (dataset or "").split("/")[-1]
        found = sorted(glob.glob(os.path.join(root, slug, "**", pattern), recursive=True)) if slug else []
        for depth in ("*", "*/*", "*/*/*"):
            found = found or sorted(glob.glob(os.path.join(root, depth, pattern)))
        return found[-1] if found else None

    def usable(module, dist, minimum):
        try:
            importlib.import_module(module)
            have = importlib.metadata.version(dist)
        except Exception:
            return False
        number = lambda v: tuple(int(p) for p in v.split(".")[:2] if p.isdigit())
        return not minimum or number(have) >= number(minimum)

    if wheel_b64:
        source, wheel = "this notebook", io.BytesIO(base64.b64decode(wheel_b64))
    else:
        source = wheel = find("{pattern}")
        if wheel is None:
            raise FileNotFoundError(f"{{root}}/{{dataset.split('/')[-1]}}: no kit wheel; attach the dataset "
                                    f"{{dataset}} (Add Input -> Datasets)")
    target = tempfile.mkdtemp(prefix="kit-")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    sys.path.insert(0, target)
    for module, dist, minimum, blob in deps:
        if usable(module, dist, minimum):
            continue
        dep = io.BytesIO(base64.b64decode(blob)) if blob else find(dist.replace("-", "_") + "-*.whl")
        if dep is None:
            raise FileNotFoundError(f"{{dist}} is not installed and no {{dist}} wheel is attached; attach the "
                                    f"dataset {{dataset}} made by `python -m kit kaggle-dataset`")
        with zipfile.ZipFile(dep) as zf:
            zf.extractall(target)
        for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
            del sys.modules[name]
        print(f"{{dist}} from the kit's bundle")
    for name in [m for m in sys.modules if m == "kit" or m.startswith("kit.")]:
        del sys.modules[name]  # a rerun of this cell, or another kit imported before
    import kit.app.kaggle
    print(f"kit {{kit.__version__}} from {{source}}")
    kit.app.kaggle.kaggle_setup(expect_gpu={gpu})


KIT_WHEEL = "{wheel_b64}"  # {wheel_note}
KIT_DEPS = {deps}  # (import name, distribution, lowest version, base64 wheel or "" for the dataset's file)

_kit_bootstrap(KIT_WHEEL, {dataset!r}, KIT_DEPS)
del _kit_bootstrap, KIT_WHEEL, KIT_DEPS
'''


def _bootstrap_cell(wheel_b64: str | None, dataset: str | None, gpu: bool):
    import nbformat

    where = "embedded below" if wheel_b64 else f"read from the attached Kaggle dataset {dataset}"
    pattern = DIST_NAME.replace("-", "_") + "-*.whl"
    note = f"base64 of {wheel_name()}" if wheel_b64 else "empty: the wheel comes from the dataset"
    deps = [(module, dist, minimum, base64.b64encode(dependency_wheel(dist)[1]).decode() if wheel_b64 else "")
            for dist, (module, minimum) in VENDORED.items()]
    source = _BOOTSTRAP.format(version=__version__, where=where, pattern=pattern, gpu=gpu, dataset=dataset,
                               wheel_b64=wheel_b64 or "", wheel_note=note, deps=repr(deps),
                               vendored=", ".join(VENDORED))
    return nbformat.v4.new_code_cell(source, metadata={"tags": ["kit-bootstrap"], "_kg_hide-input": True,
                                                       "jupyter": {"source_hidden": True}})


def _slugify(text: str) -> str:
    """Lower-case, runs of other characters -> ``-`` (what Kaggle does to a title to get its slug)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _resolve_user(user: str | None) -> str:
    if not user:
        try:
            user = find_credentials().username
        except KitError:
            user = None
    if not user:
        raise KitError("kaggle user name unknown: pass --user NAME (or set KAGGLE_USERNAME, or put "
                       "~/.kaggle/kaggle.json in place)")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", user):
        raise KitError(f"--user {user!r}: not a Kaggle user name (letters, digits, '-' and '_')")
    return user


def kernel_notebook(notebook: str = ALL, *, profile: str = "quick", gpu: bool = False,
                    kit_dataset: str | None = None):
    """The kernel's notebook: the kit's bootstrap cell, then one notebook (or the series) with parameters.

    Parameters
    ----------
    notebook : str
        A name of :data:`kit.app.runner.NOTEBOOKS` (e.g. ``"01_eda_theta_power"``)
        or ``"all"``: the five in order in one notebook, ending with a cell
        that copies the submission to ``/kaggle/working/submission.csv``.
    profile : str
        Injected as ``PROFILE`` after each ``parameters`` cell (``DATA = None``:
        the kernel finds the competition data itself).
    gpu : bool
        The first cell warns when the kernel has no GPU.
    kit_dataset : str, optional
        ``owner/slug`` of a Kaggle dataset holding the kit's wheel
        (:func:`build_dataset`); default: embed the wheel in the notebook.

    Returns
    -------
    nbformat.NotebookNode
        Outputs empty, cell ids unique, ``kernelspec`` python3.

    Raises
    ------
    KitError
        Unknown notebook or profile.
    """
    import nbformat

    from kit.app.notebook import inject_parameters, notebooks_dir, read_notebook
    from kit.app.runner import NOTEBOOKS
    from kit.pipeline.profiles import check_profile

    check_profile(profile)
    names = list(NOTEBOOKS) if notebook == ALL else [notebook]
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise KitError(f"unknown notebook {unknown[0]!r}; choose 'all' or one of {list(NOTEBOOKS)}")
    wheel_b64 = None if kit_dataset else base64.b64encode(wheel_bytes()).decode()
    cells = [_bootstrap_cell(wheel_b64, kit_dataset, gpu)]
    for name in names:
        part = inject_parameters(read_notebook(notebooks_dir() / name), {"DATA": None, "PROFILE": profile})
        if len(names) > 1:
            cells.append(nbformat.v4.new_markdown_cell(f"---\n*Notebook `{name}` of the series.*"))
        cells += part.cells
    if NOTEBOOKS[-1] in names:
        cells.append(nbformat.v4.new_code_cell(
            "# added by `python -m kit kaggle-kernel`: the submission at the top of the Output tab\n"
            "import kit.app.kaggle\n\nkit.app.kaggle.publish_submission(result.submission)", metadata={"tags": ["kit-publish"]}))
    for index, cell in enumerate(cells):
        cell["id"] = f"cell-{index}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    nbformat.validate(nb)
    return nb


def build_kernel(out: str | os.PathLike, notebook: str = ALL, *, user: str | None = None,
                 title: str | None = None, profile: str = "quick", gpu: bool = False,
                 kit_dataset: str | None = None, private: bool = True) -> Path:
    """Write a push-ready kernel folder: ``{slug}.ipynb`` and ``kernel-metadata.json``.

    Push it with ``kaggle kernels push -p OUT``.  The metadata has the
    competition as its data source, internet off, GPU per ``gpu``, and the
    kit's dataset as a source when ``kit_dataset`` is given.

    Parameters
    ----------
    out : path
        Folder to write; created if needed.  An existing folder must be empty
        or hold an earlier kernel folder (a ``kernel-metadata.json``), whose
        notebook is replaced.
    notebook : str
        See :func:`kernel_notebook` (default ``"all"``: the series, then the submission).
    user : str, optional
        Kaggle user name (default: from the Kaggle credentials).
    title : str, optional
        Kernel title (at least 5 characters); its slug is the kernel id.
        Default ``"Sleep emotions {notebook}"`` (``"Sleep emotions pipeline"`` for all).
    profile, gpu, kit_dataset
        See :func:`kernel_notebook`.
    private : bool
        ``is_private`` of the kernel.

    Returns
    -------
    Path
        ``out``, holding the notebook and its ``kernel-metadata.json``.

    Raises
    ------
    KitError
        Unknown user, bad title or dataset id, ``out`` a file or a foreign
        non-empty folder, unknown notebook or profile.
    """
    import nbformat

    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise KitError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "kernel-metadata.json").is_file():
        raise KitError(f"{out}: not empty and not a kernel folder (no kernel-metadata.json); choose another folder")
    if kit_dataset is not None and not re.fullmatch(r"[A-Za-z0-9_-]+/[a-z0-9-]+", kit_dataset):
        raise KitError(f"--kit-dataset {kit_dataset!r}: expected OWNER/SLUG, e.g. me/{DEFAULT_DATASET_SLUG}")
    user = _resolve_user(user)
    title = title or ("Sleep emotions pipeline" if notebook == ALL else f"Sleep emotions {notebook.replace('_', ' ')}")
    slug = _slugify(title)
    if len(title) < 5 or len(slug) < 5:
        raise KitError(f"--title {title!r}: Kaggle needs at least 5 characters")
    nb = kernel_notebook(notebook, profile=profile, gpu=gpu, kit_dataset=kit_dataset)
    code_file = f"{slug}.ipynb"
    if out.is_dir():
        old = json.loads((out / "kernel-metadata.json").read_text()) if (out / "kernel-metadata.json").is_file() else {}
        stale = out / str(old.get("code_file", ""))
        if old.get("code_file") and old["code_file"] != code_file and stale.is_file():
            stale.unlink()
    with atomic_write(out / code_file, "w") as fh:
        nbformat.write(nb, fh)
    meta = {"id": f"{user}/{slug}", "title": title, "code_file": code_file, "language": "python",
            "kernel_type": "notebook", "is_private": bool(private), "enable_gpu": bool(gpu), "enable_tpu": False,
            "enable_internet": False, "dataset_sources": [kit_dataset] if kit_dataset else [],
            "competition_sources": [COMPETITION], "kernel_sources": [], "model_sources": []}
    write_json(out / "kernel-metadata.json", meta)
    return out


def build_dataset(out: str | os.PathLike, *, user: str | None = None, slug: str = DEFAULT_DATASET_SLUG,
                  title: str | None = None, license_name: str = "other") -> Path:
    """Write a Kaggle dataset folder holding the kit: ``dataset-metadata.json``, the kit's wheel and :data:`VENDORED`'s.

    Create it with ``kaggle datasets create -p OUT`` (a new version:
    ``kaggle datasets version -p OUT -m "kit X.Y.Z"``); attach it to a
    kernel built with ``--kit-dataset USER/SLUG``, or install it in any
    notebook with ``pip install --no-deps --no-index /kaggle/input/SLUG/*.whl``.

    Parameters
    ----------
    out : path
        Folder to write (empty, or an earlier dataset folder: a ``dataset-metadata.json``).
    user : str, optional
        Kaggle user name (default: from the credentials).
    slug : str
        Dataset slug (lower-case letters, digits, ``-``; 6-50 characters).
    title : str, optional
        Default ``"Sleep emotion kit"``.
    license_name : str
        Kaggle licence name (``"other"``, ``"CC0-1.0"``, ``"MIT"`` ...).

    Returns
    -------
    Path
        ``out``, holding the wheels and ``dataset-metadata.json``.

    Raises
    ------
    KitError
        Unknown user, bad slug, ``out`` a file or a foreign non-empty folder.
    """
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise KitError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "dataset-metadata.json").is_file():
        raise KitError(f"{out}: not empty and not a dataset folder (no dataset-metadata.json); choose another folder")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{4,49}", slug):
        raise KitError(f"--slug {slug!r}: 6-50 lower-case letters, digits and '-'")
    user = _resolve_user(user)
    for dist in (DIST_NAME, *VENDORED):
        for old in out.glob(dist.replace("-", "_") + "-*.whl") if out.is_dir() else ():
            old.unlink()
    wheel = build_wheel(out)
    for dist in VENDORED:  # the dependencies a Kaggle image may lack, beside the kit's wheel
        name, data = dependency_wheel(dist)
        with atomic_write(out / name) as fh:
            fh.write(data)
    meta = {"title": title or "Sleep emotion kit", "id": f"{user}/{slug}", "licenses": [{"name": license_name}],
            "subtitle": f"The kit {__version__} as a wheel, for offline Kaggle kernels",
            "description": (f"`kit` {__version__} for the competition {COMPETITION}: `{wheel.name}`. In a "
                            "notebook with this dataset attached: `!pip install --no-deps --no-index "
                            f"/kaggle/input/{slug}/*.whl`, then `import kit` (the folder also holds "
                            f"wheels of {', '.join(VENDORED)}, which Kaggle's image may lack).")}
    write_json(out / "dataset-metadata.json", meta)
    return out


def kernel_summary(out: Path) -> list[str]:
    """Lines describing a kernel folder written by :func:`build_kernel` (for the command line)."""
    meta = json.loads((out / "kernel-metadata.json").read_text())
    size = (out / meta["code_file"]).stat().st_size
    kit_from = f"dataset {meta['dataset_sources'][0]}" if meta["dataset_sources"] else "embedded in the notebook"
    return [f"kernel folder {out}: {meta['code_file']} ({size / 1024:.0f} KiB), kernel-metadata.json",
            f"  id {meta['id']}, GPU {'on' if meta['enable_gpu'] else 'off'}, internet off, "
            f"data {', '.join(meta['competition_sources'])}, kit {kit_from}",
            f"  push: kaggle kernels push -p {out}"]
