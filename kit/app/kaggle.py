"""Kaggle: credentials, submissions through the ``kaggle`` package, push-ready kernels and the kit as a dataset.

Three jobs:

* :func:`submit`: upload a submission file with the ``kaggle`` package's
  Python API (``KaggleApi.competition_submit``) after checking the
  credentials here, before ``kaggle`` is imported (importing it
  authenticates, and prints or exits when it finds none).  The API key is
  never printed: every message that leaves this module is scrubbed of it.
* :func:`build_kernel`: a folder for ``kaggle kernels push -p OUT``: one
  notebook (a notebook of the series, or the whole series in one) and its
  ``kernel-metadata.json``.  A Kaggle kernel has no internet and runs the
  notebook with its working directory ``/kaggle/working`` and its own folder
  not on ``sys.path``, so the kit reaches it as a **wheel**: embedded in the
  notebook's first cell (base64, the default), or read from an attached
  Kaggle dataset made by :func:`build_dataset` (``--kit-dataset``).  That
  first cell unpacks the wheel into a temporary folder (not
  ``/kaggle/working``, which is the kernel's output), puts it first on
  ``sys.path`` and calls :func:`kaggle_setup`.
* :func:`build_dataset`: a folder for ``kaggle datasets create -p OUT``:
  ``dataset-metadata.json`` and the wheel (one flat file: the Kaggle CLI
  skips sub-folders unless told otherwise).

Paths inside a kernel: the competition data is read from
``/kaggle/input/predicting-emotions-using-brain-waves`` (found anywhere
under ``/kaggle/input`` if Kaggle mounts it elsewhere; ``$KIT_KAGGLE_INPUT``
replaces ``/kaggle/input`` for tests), outputs go to ``/kaggle/working``
(:func:`kit.store.paths.output_root`).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import stat
import sys
import zipfile
from pathlib import Path
from typing import Mapping

import kit
from kit import COMPETITION, __version__
from kit.store.artifacts import atomic_write, write_json
from kit.core.errors import DataError, KitError, SubmissionError, import_failure

DIST_NAME = "sleep-emotion-kit"
"""Distribution name of the kit (``pyproject.toml``); the import name is ``kit``."""
DEFAULT_DATASET_SLUG = "sleep-emotion-kit"
"""Default slug of the Kaggle dataset holding the kit's wheel."""
ALL = "all"
"""Kernel notebook name meaning "the whole series 01-05 in one notebook"."""
KAGGLE_INPUT_ROOT = Path("/kaggle/input")
TOKEN_HELP = ("create one at https://www.kaggle.com/settings (API -> Create New Token) and save it as "
              "~/.kaggle/kaggle.json (chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY")


# ============================================================================ credentials
@dataclasses.dataclass(frozen=True)
class Credentials:
    """Where the Kaggle credentials were found (never shown: the secret).

    Attributes
    ----------
    source : str
        ``/path/to/kaggle.json``, ``KAGGLE_USERNAME/KAGGLE_KEY``,
        ``KAGGLE_API_TOKEN``, an ``access_token`` file or an OAuth
        ``credentials.json``.
    username : str or None
        The Kaggle user name, when the source holds one.
    secret : str
        The key or token; used only to scrub messages, excluded from ``repr``.
    """

    source: str
    username: str | None
    secret: str = dataclasses.field(default="", repr=False)


def kaggle_config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder the ``kaggle`` package reads ``kaggle.json`` from.

    ``$KAGGLE_CONFIG_DIR``, else ``~/.kaggle``, else (Linux, when
    ``~/.kaggle`` does not exist) ``$XDG_CONFIG_HOME/kaggle`` or
    ``~/.config/kaggle``: the same order as ``kaggle.api.KaggleApi``.
    """
    env = os.environ if env is None else env
    if env.get("KAGGLE_CONFIG_DIR"):
        return Path(env["KAGGLE_CONFIG_DIR"]).expanduser()
    home = Path(env.get("HOME") or Path.home()).expanduser()
    legacy = home / ".kaggle"
    if sys.platform.startswith("linux") and not legacy.exists():
        return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"
    return legacy


def _token_file(path: Path) -> str:
    try:
        return path.read_text().strip() if path.is_file() else ""
    except OSError as exc:
        raise KitError(f"{path}: cannot read the Kaggle token ({exc.strerror})") from exc


def _read_kaggle_json(path: Path) -> dict[str, str]:
    """``username``/``key`` of a ``kaggle.json``; one-line errors that never quote the file's content."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise KitError(f"{path}: cannot read the Kaggle API token ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise KitError(f"{path}: not a text file; download a new token ({TOKEN_HELP})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:  # its message holds only the position, never the text
        raise KitError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}); expected "
                       '{"username": "...", "key": "..."}; download a new token') from exc
    if not isinstance(data, dict):
        raise KitError(f'{path}: expected a JSON object {{"username": "...", "key": "..."}}, '
                       f"got a JSON {type(data).__name__}")
    return {k: data[k] for k in ("username", "key") if k in data} | {"_fields": sorted(map(str, data))}


def find_credentials(env: Mapping[str, str] | None = None) -> Credentials:
    """Find and check the Kaggle credentials without importing ``kaggle``.

    Looked for in the ``kaggle`` package's order: an API token
    (``$KAGGLE_API_TOKEN``, ``~/.kaggle/access_token``); the legacy key,
    ``kaggle.json`` in :func:`kaggle_config_dir` with ``$KAGGLE_USERNAME`` /
    ``$KAGGLE_KEY`` overriding its fields; OAuth credentials from ``kaggle
    auth login`` (``~/.kaggle/credentials.json``).

    Parameters
    ----------
    env : mapping, optional
        Environment variables (default ``os.environ``).

    Returns
    -------
    Credentials

    Raises
    ------
    KitError
        No credentials; an unreadable or malformed ``kaggle.json`` (not JSON,
        not an object, no ``username`` or ``key``, empty values or values with
        spaces); only one of ``KAGGLE_USERNAME``/``KAGGLE_KEY``.  One line,
        starting with the file or variable, never containing the key.
    """
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home()).expanduser()
    token = env.get("KAGGLE_API_TOKEN", "")
    if token:
        token_path = Path(token).expanduser()
        secret = _token_file(token_path) if token_path.is_file() else token
        return Credentials("KAGGLE_API_TOKEN", env.get("KAGGLE_USERNAME") or None, secret)
    for name in ("access_token", "access_token.txt"):
        secret = _token_file(home / ".kaggle" / name)
        if secret:
            return Credentials(str(home / ".kaggle" / name), None, secret)
    path = kaggle_config_dir(env) / "kaggle.json"
    in_file = _read_kaggle_json(path) if path.is_file() else None
    fields = {k: v for k, v in (in_file or {}).items() if k in ("username", "key")}
    where = {k: str(path) for k in fields}
    for key in ("username", "key"):
        if env.get(f"KAGGLE_{key.upper()}"):
            fields[key], where[key] = env[f"KAGGLE_{key.upper()}"], f"KAGGLE_{key.upper()}"
    if in_file is not None or fields:
        for key in ("username", "key"):
            if key not in fields:
                if in_file is not None and not env.get(f"KAGGLE_{key.upper()}"):
                    raise KitError(f"{path}: no \"{key}\" field (fields: {', '.join(in_file['_fields']) or 'none'}); "
                                   "download a new token")
                other = where["key" if key == "username" else "username"]
                raise KitError(f"KAGGLE_{key.upper()}: not set, but {other} is; set both")
            value = fields[key]
            if not isinstance(value, str):
                raise KitError(f"{where[key]}: the Kaggle {key} is a JSON {type(value).__name__}, not a string; "
                               "download a new token")
            if not value.strip() or any(c.isspace() for c in value):
                what = "empty" if not value.strip() else "contains spaces"
                raise KitError(f"{where[key]}: the Kaggle {key} {'is ' if what == 'empty' else ''}{what}; "
                               "download a new token")
        if where["key"] == str(path) and os.name == "posix" and path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
            print(f"warning: {path} is readable by other users; run: chmod 600 {path}", file=sys.stderr)
        return Credentials(" + ".join(dict.fromkeys(where.values())), fields["username"], fields["key"])
    oauth = home / ".kaggle" / "credentials.json"
    if oauth.is_file():
        return Credentials(str(oauth), None, "")
    raise KitError(f"{path}: no Kaggle credentials (no such file, and KAGGLE_USERNAME/KAGGLE_KEY are not set); "
                   f"{TOKEN_HELP}")


def scrub(text: str, *secrets: str) -> str:
    """``text`` with every secret (longer than 3 characters) replaced by ``***``."""
    for s in secrets:
        if s and len(s) > 3:
            text = text.replace(s, "***")
    return text


# ============================================================================ submit
def _kaggle_api_class():
    """``kaggle.api.kaggle_api_extended.KaggleApi``; importing ``kaggle`` prints, so its stdout is dropped.

    Raises
    ------
    KitError
        If the ``kaggle`` package, or a module it imports, is missing
        (:func:`kit.core.errors.import_failure` names which).
    """
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink):
            from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError as exc:
        raise import_failure("kaggle", exc) from exc
    except SystemExit as exc:  # some versions exit on import without credentials
        raise KitError(f"kaggle: the package refused to load (exit {exc.code}); check the credentials") from exc
    return KaggleApi


def submit(path: str | os.PathLike, message: str, *, competition: str = COMPETITION,
           credentials: Credentials | None = None, log=print) -> str:
    """Upload a submission file to a Kaggle competition with the ``kaggle`` package's API.

    Validate the file first (:func:`kit.pipeline.submission.validate_submission`);
    this function only checks the credentials, authenticates and uploads.

    Parameters
    ----------
    path : path
        The submission (``.csv`` or ``.csv.gz``).
    message : str
        The submission's description on Kaggle.
    competition : str
        Competition slug (default ``predicting-emotions-using-brain-waves``).
    credentials : Credentials, optional
        From :func:`find_credentials` (found here when omitted).
    log : callable or None
        Receives progress lines (default ``print``).

    Returns
    -------
    str
        Kaggle's reply message (may be empty).

    Raises
    ------
    KitError
        No or malformed credentials (before ``kaggle`` is imported); Kaggle
        refusing them; a failed upload.  Never contains the key.
    """
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: file not found")
    if not message or not message.strip():
        raise KitError(f"{path}: the submission message is empty; pass -m MESSAGE")
    creds = credentials or find_credentials()
    log = log or (lambda _msg: None)
    KaggleApi = _kaggle_api_class()
    secrets = (creds.secret, os.environ.get("KAGGLE_KEY", ""), os.environ.get("KAGGLE_API_TOKEN", ""))
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink):
            api = KaggleApi()
            api.authenticate()
    except SystemExit as exc:  # KaggleApi.authenticate() exits when it finds no usable credentials
        raise KitError(f"{creds.source}: Kaggle did not accept these credentials; {TOKEN_HELP}") from exc
    except Exception as exc:  # the client raises HTTP, JSON and its own errors; report one scrubbed line
        detail = scrub(" ".join(f"{type(exc).__name__}: {exc}".split()), *secrets)
        raise KitError(f"{creds.source}: Kaggle authentication failed ({detail[:300]})") from exc
    who = f" as {creds.username}" if creds.username else ""
    log(f"uploading {path} to {competition}{who} ...")
    try:
        with contextlib.redirect_stdout(sink):
            reply = api.competition_submit(str(path), message, competition, quiet=True)
    except SystemExit as exc:
        raise KitError(f"{path}: the Kaggle client stopped the upload (exit {exc.code})") from exc
    except Exception as exc:  # network (requests), HTTP 4xx/5xx, kagglesdk errors: one scrubbed line
        detail = scrub(" ".join(f"{type(exc).__name__}: {exc}".split()), *secrets)
        raise KitError(f"{path}: upload to Kaggle failed ({detail[:300]})") from exc
    text = scrub(str(getattr(reply, "message", "") or ""), *secrets)
    if text == getattr(KaggleApi, "COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE", None) or \
            text.lower().startswith("could not submit"):
        raise KitError(f"{path}: upload to Kaggle failed ({text})")
    return text


# ============================================================================ the kit as a wheel
def _wheel_name() -> str:
    return f"{DIST_NAME.replace('-', '_')}-{__version__}-py3-none-any.whl"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel_bytes() -> bytes:
    """The kit's source as a pure-Python wheel (PEP 427), byte-identical for identical sources.

    Holds ``kit/**/*.py`` and the ``.dist-info`` (``METADATA`` without
    dependencies: on Kaggle they are preinstalled, so ``pip install
    --no-deps`` or the notebook's first cell needs no network).
    """
    pkg = Path(kit.__file__).resolve().parent
    dist_info = f"{DIST_NAME.replace('-', '_')}-{__version__}.dist-info"
    files = [(f"kit/{p.relative_to(pkg).as_posix()}", p.read_bytes())
             for p in sorted(pkg.rglob("*.py")) if "__pycache__" not in p.parts]
    files += [
        (f"{dist_info}/METADATA", (f"Metadata-Version: 2.1\nName: {DIST_NAME}\nVersion: {__version__}\n"
                                   "Summary: Emotion decoding from NREM-sleep EEG (Kaggle "
                                   f"{COMPETITION})\nRequires-Python: >=3.10\n").encode()),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: kit.app.kaggle\nRoot-Is-Purelib: true\n"
                               b"Tag: py3-none-any\n"),
    ]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files)
    files.append((f"{dist_info}/RECORD", (record + f"{dist_info}/RECORD,,\n").encode()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def build_wheel(out_dir: str | os.PathLike) -> Path:
    """Write :func:`wheel_bytes` to ``out_dir/sleep_emotion_kit-{version}-py3-none-any.whl`` (atomically)."""
    path = Path(out_dir) / _wheel_name()
    with atomic_write(path) as fh:
        fh.write(wheel_bytes())
    return path


# ============================================================================ inside a kernel
def find_competition_data(input_root: str | os.PathLike | None = None) -> Path | None:
    """The competition's data folder under a Kaggle input root, or None.

    ``{input_root}/predicting-emotions-using-brain-waves`` if it holds
    ``training/`` or ``testing/``; else the first folder at most three levels
    down that holds ``training/sleep_neu`` or ``testing/test_subject_*.mat``
    (Kaggle has changed its mount paths before).

    Parameters
    ----------
    input_root : path, optional
        Default ``$KIT_KAGGLE_INPUT`` or ``/kaggle/input``.
    """
    root = Path(input_root or os.environ.get("KIT_KAGGLE_INPUT") or KAGGLE_INPUT_ROOT)
    standard = root / COMPETITION
    if (standard / "training").is_dir() or (standard / "testing").is_dir():
        return standard
    if not root.is_dir():
        return None
    level = [root]
    for _ in range(3):
        level = sorted(p for folder in level for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        for p in level:
            if (p / "training" / "sleep_neu").is_dir() or any((p / "testing").glob("test_subject_*.mat")):
                return p
    return None


def kaggle_setup(*, expect_gpu: bool = False, input_root: str | os.PathLike | None = None,
                 log=print) -> dict[str, str]:
    """Called by a kernel's first cell: find the data, report where outputs go and the device.

    Sets ``$KIT_DATA`` to the competition folder found under the input root
    (:func:`find_competition_data`) unless ``$KIT_DATA`` is set already.

    Parameters
    ----------
    expect_gpu : bool
        The kernel was built with ``--gpu``: warn when torch sees no GPU.
    input_root : path, optional
        Default ``$KIT_KAGGLE_INPUT`` or ``/kaggle/input``.
    log : callable or None
        Receives the report lines (default ``print``).

    Returns
    -------
    dict
        ``kit`` (version and folder), ``data``, ``output``, ``device``.

    Raises
    ------
    DataError
        Inside a kernel (the input root exists) without the competition data attached.
    """
    from kit.store.paths import output_root
    from kit.core.runtime import get_device

    log = log or (lambda _msg: None)
    root = Path(input_root or os.environ.get("KIT_KAGGLE_INPUT") or KAGGLE_INPUT_ROOT)
    data = os.environ.get("KIT_DATA")
    if not data and root.is_dir():
        found = find_competition_data(root)
        if found is None:
            raise DataError(f"{root}: the competition data is not attached; in the notebook's side panel: "
                            f"Add Input -> Competitions -> {COMPETITION}")
        os.environ["KIT_DATA"] = data = str(found)
    device = get_device()
    name = str(device)
    if device.type == "cuda":
        import torch

        name = f"cuda ({torch.cuda.get_device_name(device)})"
    report = {"kit": f"{__version__} ({Path(kit.__file__).resolve().parent})", "data": data or "(default search)",
              "output": str(output_root()), "device": name}
    for key, value in report.items():
        log(f"{key:7} {value}")
    if expect_gpu and device.type != "cuda":
        log("warning: this kernel was built for a GPU but torch sees none; the stages run on the CPU "
            "(turn on Settings -> Accelerator -> GPU)")
    return report


def publish_submission(submission: str | os.PathLike | None, log=print) -> Path | None:
    """Copy ``submission`` (the file notebook 05 wrote) to ``{output_root}/submission.csv``.

    In a kernel that puts the file at the top of its Output tab, where
    Kaggle's "Submit" button finds it.  The kernel's last cell calls it with
    ``result.submission`` of :func:`kit.pipeline.stages.run_ensemble_stage`.
    Returns the copy, or None (and says why) when no submission was written.
    """
    from kit.store.paths import output_root

    log = log or (lambda _msg: None)
    if submission is None or not Path(submission).is_file():
        log(f"no submission to publish ({submission or 'none written: the data folder has no test trials'})")
        return None
    source = Path(submission)
    target = output_root() / "submission.csv"
    with atomic_write(target) as fh:
        fh.write(source.read_bytes())
    log(f"submission: {target} (a copy of {source.name}); submit it from this kernel's Output tab")
    return target


# ============================================================================ kernel folder
_BOOTSTRAP = '''\
# kit bootstrap, written by `python -m kit kaggle-kernel` (kit {version}): makes `import kit` work with
# the internet off. The kit is a wheel, {where}; it is unpacked to a temporary folder (not
# /kaggle/working, which is this kernel's output) and put first on sys.path.
def _kit_bootstrap(wheel_b64, dataset):
    import base64, glob, io, os, sys, tempfile, zipfile

    if wheel_b64:
        source, wheel = "this notebook", io.BytesIO(base64.b64decode(wheel_b64))
    else:
        root = os.environ.get("KIT_KAGGLE_INPUT") or "/kaggle/input"
        slug = dataset.split("/")[-1]
        found = sorted(glob.glob(os.path.join(root, slug, "**", "{pattern}"), recursive=True))
        for depth in ("*", "*/*", "*/*/*"):
            found = found or sorted(glob.glob(os.path.join(root, depth, "{pattern}")))
        if not found:
            raise FileNotFoundError(f"{{root}}/{{slug}}: no kit wheel; attach the dataset {{dataset}} "
                                    "(Add Input -> Datasets)")
        source = wheel = found[-1]
    target = tempfile.mkdtemp(prefix="kit-")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    sys.path.insert(0, target)
    for name in [m for m in sys.modules if m == "kit" or m.startswith("kit.")]:
        del sys.modules[name]  # a rerun of this cell, or another kit imported before
    import kit.app.kaggle
    print(f"kit {{kit.__version__}} from {{source}}")
    kit.app.kaggle.kaggle_setup(expect_gpu={gpu})


KIT_WHEEL = "{wheel_b64}"  # {wheel_note}

_kit_bootstrap(KIT_WHEEL, {dataset!r})
del _kit_bootstrap, KIT_WHEEL
'''


def _bootstrap_cell(wheel_b64: str | None, dataset: str | None, gpu: bool):
    import nbformat

    where = "embedded below" if wheel_b64 else f"read from the attached Kaggle dataset {dataset}"
    pattern = DIST_NAME.replace("-", "_") + "-*.whl"
    note = f"base64 of {_wheel_name()}" if wheel_b64 else "empty: the wheel comes from the dataset"
    source = _BOOTSTRAP.format(version=__version__, where=where, pattern=pattern, gpu=gpu, dataset=dataset,
                               wheel_b64=wheel_b64 or "", wheel_note=note)
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

    from kit.pipeline.profiles import PROFILES
    from kit.app.runner import NOTEBOOKS, inject_parameters, notebooks_dir, read_notebook

    if profile not in PROFILES:
        raise KitError(f"profile {profile!r}: expected one of {sorted(PROFILES)}")
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
        ``out``.

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
    """Write a Kaggle dataset folder holding the kit: ``dataset-metadata.json`` and the wheel.

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
        ``out``.

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
    for old in out.glob(DIST_NAME.replace("-", "_") + "-*.whl") if out.is_dir() else ():
        old.unlink()
    wheel = build_wheel(out)
    meta = {"title": title or "Sleep emotion kit", "id": f"{user}/{slug}", "licenses": [{"name": license_name}],
            "subtitle": f"The kit {__version__} as a wheel, for offline Kaggle kernels",
            "description": (f"`kit` {__version__} for the competition {COMPETITION}: `{wheel.name}`. In a "
                            "notebook with this dataset attached: `!pip install --no-deps --no-index "
                            f"/kaggle/input/{slug}/{wheel.name}`, then `import kit`.")}
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
