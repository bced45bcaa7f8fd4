"""Kaggle credentials (``~/.kaggle/kaggle.json`` or ``$KAGGLE_USERNAME``/``$KAGGLE_KEY``) and :func:`submit`.

The credentials are checked here, before ``kaggle`` is imported (importing it authenticates, and prints
or exits when it finds none); every message that leaves this module is scrubbed of the API key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import stat
import sys
from pathlib import Path
from typing import Mapping

from kit import COMPETITION
from kit.core.errors import KitError, SubmissionError, import_failure
from kit.store.paths import existing_file

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
    path = existing_file(path, "file not found", SubmissionError)
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

