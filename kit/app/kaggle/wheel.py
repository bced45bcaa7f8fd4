"""The kit as a pure-Python wheel (PEP 427), byte-identical for identical sources, for offline Kaggle kernels;
and wheels of the pure-Python dependencies a Kaggle image may lack (:data:`VENDORED`), built from the installed
distributions, which an offline kernel unpacks only where its own Python cannot import them.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import os
import zipfile
from pathlib import Path

import kit
from kit import COMPETITION, __version__
from kit.core.errors import KitError
from kit.store.artifacts import atomic_write

DIST_NAME = "sleep-emotion-kit"
"""Distribution name of the kit (``pyproject.toml``); the import name is ``kit``."""

VENDORED: dict[str, tuple[str, str]] = {"array-api-compat": ("array_api_compat", ""),
                                        "array-api-extra": ("array_api_extra", ""),
                                        "pyriemann": ("pyriemann", "0.12")}
"""Pure-Python dependencies that travel with an offline kernel: distribution -> (import name, lowest version
the kit works with, "" for any).  pyriemann (the ``riemann`` anchor) and the two array-API packages it
imports are not certain to be in Kaggle's image; numpy, scipy, scikit-learn, mne and torch are."""


# ============================================================================ the kit as a wheel
def wheel_name() -> str:
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
    return _zip_wheel(files, dist_info)


def _zip_wheel(files: list[tuple[str, bytes]], dist_info: str) -> bytes:
    """``files`` plus a RECORD as a deterministic zip (fixed dates and modes, sorted as given)."""
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files)
    files = files + [(f"{dist_info}/RECORD", (record + f"{dist_info}/RECORD,,\n").encode())]
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
    path = Path(out_dir) / wheel_name()
    with atomic_write(path) as fh:
        fh.write(wheel_bytes())
    return path



def dependency_wheel(dist_name: str) -> tuple[str, bytes]:
    """A wheel of an installed pure-Python distribution of :data:`VENDORED`, from its installed files.

    Holds the package's ``.py`` files (no caches) and its ``METADATA``; byte-identical for the same installed
    version.

    Returns
    -------
    (str, bytes)
        The wheel's file name (``{name}-{version}-py3-none-any.whl``) and its bytes.

    Raises
    ------
    KitError
        Not a vendored distribution, or not installed here.
    """
    if dist_name not in VENDORED:
        raise KitError(f"dependency_wheel: {dist_name!r} is not vendored; choose from {sorted(VENDORED)}")
    module = VENDORED[dist_name][0]
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise KitError(f"{dist_name} is not installed here; `pip install {dist_name}` to bundle it") from exc
    version = dist.version
    stem = f"{dist_name.replace('-', '_')}-{version}"
    files = sorted((f.as_posix(), f.locate().read_bytes()) for f in dist.files or ()
                   if f.parts and f.parts[0] == module and f.suffix == ".py")
    if not files:
        raise KitError(f"{dist_name} {version}: no Python files of package {module!r} found in its install record")
    dist_info = f"{stem}.dist-info"
    files += [(f"{dist_info}/METADATA", (dist.read_text("METADATA") or "").encode()),
              (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: kit.app.kaggle\nRoot-Is-Purelib: true\n"
                                     b"Tag: py3-none-any\n")]
    return f"{stem}-py3-none-any.whl", _zip_wheel(files, dist_info)
