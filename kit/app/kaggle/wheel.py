"""The kit as a pure-Python wheel (PEP 427), byte-identical for identical sources, for offline Kaggle kernels.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from pathlib import Path

import kit
from kit import COMPETITION, __version__
from kit.store.artifacts import atomic_write



DIST_NAME = "sleep-emotion-kit"
"""Distribution name of the kit (``pyproject.toml``); the import name is ``kit``."""


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
    path = Path(out_dir) / wheel_name()
    with atomic_write(path) as fh:
        fh.write(wheel_bytes())
    return path

