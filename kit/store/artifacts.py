"""Artifacts on disk: atomic writes, checkpoints that carry their config, predictions.

Layout (under :func:`kit.store.paths.output_root`; ``{tag}`` is the data
folder's tag, :func:`kit.pipeline.run.data_tag`)::

    artifacts/{tag}/folds.csv                    LOSO fold table, computed once
    artifacts/{tag}/{stage}/stage.json           config, its hash, data fingerprint, upstream hashes
    artifacts/{tag}/mae/mae.pt                   MAE weights + config
    artifacts/{tag}/experts/fold{k}_seed{s}.pt   expert heads + config (one per fold and seed)
    artifacts/{tag}/fusion/fold{k}_{lda,net}.pt  fusion models + config (one per fold)
    artifacts/{tag}/{stage}/predictions.npz      out-of-fold, cross-fitted and test predictions
    artifacts/{tag}/{anchor}/models.pkl          an anchor's LOSO fold models (for ``kit predict``)
    artifacts/{tag}/ensemble/blend.json          the blend the submission applies (for ``kit predict``)

Every file is written to a temporary name in the same folder and renamed
(:func:`os.replace` is atomic on POSIX), so an interrupted run never leaves
a half-written file in place of a good one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from kit import __version__
from kit.core.errors import CheckpointError
from kit.store.paths import existing_file


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def config_dict(config: Any) -> dict:
    """A dataclass config (or a plain dict) as a JSON-ready dict."""
    if dataclasses.is_dataclass(config):
        return dataclasses.asdict(config)
    return dict(config)


def config_hash(config: Any) -> str:
    """Short, stable hash of a config (12 hex characters of SHA-256 over sorted JSON)."""
    blob = json.dumps(config_dict(config), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def save_checkpoint(path: str | os.PathLike, state_dict: dict, config: Any, **extra: Any) -> Path:
    """Save weights with their config so the model can be rebuilt from the file alone.

    The file holds ``{"state_dict", "config", "config_hash", "kit_version", **extra}``;
    ``extra`` values must be tensors, numbers, strings, lists or dicts (loadable
    with ``torch.load(weights_only=True)``).
    """
    import torch

    payload = {
        "state_dict": state_dict,
        "config": config_dict(config),
        "config_hash": config_hash(config),
        "kit_version": __version__,
        **extra,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())
    return Path(path)


def load_checkpoint(path: str | os.PathLike, config_cls: type | None = None,
                    expected_hash: str | None = None) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Parameters
    ----------
    path : path
        The ``.pt`` file.
    config_cls : dataclass type, optional
        If given, ``payload["config"]`` is rebuilt as this class; unknown or
        missing fields raise :class:`CheckpointError`.
    expected_hash : str, optional
        If given, the stored config hash must equal it.

    Raises
    ------
    CheckpointError
        Missing or unreadable file, another kit version, another config.
    """
    import torch

    path = existing_file(path, "checkpoint not found", CheckpointError)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"{path}: not a readable kit checkpoint ({type(exc).__name__})") from exc
    if not isinstance(payload, dict) or "state_dict" not in payload or "config" not in payload:
        raise CheckpointError(f"{path}: not a kit checkpoint (no state_dict/config)")
    if payload.get("kit_version") != __version__:
        raise CheckpointError(
            f"{path}: written by kit {payload.get('kit_version')}, this is kit {__version__}; rerun the stage"
        )
    if expected_hash is not None and payload.get("config_hash") != expected_hash:
        raise CheckpointError(
            f"{path}: config hash {payload.get('config_hash')} != expected {expected_hash}; "
            "the checkpoint is from another config, rerun the stage with force=True"
        )
    if config_cls is not None:
        names = {f.name for f in dataclasses.fields(config_cls)}
        if set(payload["config"]) != names:
            raise CheckpointError(
                f"{path}: config fields {sorted(set(payload['config']) ^ names)} do not match "
                f"{config_cls.__name__}; the checkpoint is from another version"
            )
        payload["config"] = config_cls(**payload["config"])
    return payload


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Atomically write arrays to ``path`` (``.npz``, uncompressed)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())
    return Path(path)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a ``.npz`` written by :func:`save_npz`.

    Raises
    ------
    CheckpointError
        If the file is missing or unreadable.
    """
    path = existing_file(path, "not found; run the stage that writes it first", CheckpointError)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable predictions file ({exc})") from exc


def save_models(path: str | os.PathLike, payload: dict) -> Path:
    """Atomically pickle fitted models (sklearn-style objects, torch modules) with ``kit_version`` added.

    Pickle runs code when loaded: load only files this kit wrote (``kit predict`` reads the user's own
    ``artifacts/``).
    """
    import pickle

    with atomic_write(path) as fh:
        pickle.dump({**payload, "kit_version": __version__}, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return Path(path)


def load_models(path: str | os.PathLike) -> dict:
    """Read a file written by :func:`save_models`.

    Raises
    ------
    CheckpointError
        Missing or unreadable file, or one written by another kit version.
    """
    import pickle

    path = existing_file(path, "not found; run the stage that writes it first", CheckpointError)
    try:
        with open(path, "rb") as fh:
            payload = pickle.load(fh)
    except Exception as exc:  # unpickling raises many types for damaged or foreign files
        raise CheckpointError(f"{path}: unreadable models file ({type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("kit_version") != __version__:
        found = payload.get("kit_version") if isinstance(payload, dict) else None
        raise CheckpointError(f"{path}: written by kit {found}, this is kit {__version__}; rerun the stage")
    return payload


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    with atomic_write(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
    return Path(path)
