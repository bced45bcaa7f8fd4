"""A Run: one data folder and profile, their artifacts folder, the data and features loaded once, and the stage cache.

A :class:`Run` ties a data folder and a profile to an artifacts folder,
``{output_root}/artifacts/{data_tag}/{stage}/``, so runs on different data
folders never share files.  Each stage writes ``stage.json`` (its config
hash, the data fingerprint and the upstream stages' hashes) beside its
weights and ``predictions.npz``; a stage whose ``stage.json`` matches is
skipped unless ``force=True``.  When the config changed, the old folder is
moved aside to ``{stage}@{old_hash}`` (never overwritten).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kit import __version__
from kit.core.runtime import set_threads
from kit.data.dataset import Dataset, load_dataset
from kit.data.demo import ensure_data
from kit.deep.experts import head_inputs, weights_hash
from kit.deep.mae import load_mae
from kit.deep.nets import pool_time
from kit.eval.cv import load_or_create_folds
from kit.methods.registry import ANCHOR_CLASSES, anchor_config, model_inputs
from kit.pipeline.profiles import FeatureConfig, check_profile, stage_config
from kit.signal import covariance, filters, sequences
from kit.signal import features as features_module
from kit.signal.features import euclidean_alignment
from kit.signal.sequences import deep_features
from kit.store.artifacts import atomic_write, config_dict, config_hash, write_json
from kit.store.paths import output_root

logger = logging.getLogger(__name__)


def data_tag(root: Path) -> str:
    """Folder-name tag of a data folder (``demo``, ``raw``, ``eegmmidb-lr`` ...)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", root.resolve().name) or "data"


@dataclass
class Run:
    """A data folder, a profile and their artifacts folder; loads data and features once.

    Attributes
    ----------
    data_root : Path
    profile : str
    artifacts : Path
        ``{output_root}/artifacts/{data_tag}``.
    """

    data_root: Path
    profile: str = "quick"
    artifacts: Path = field(default=None)
    verbose: bool = True
    _started: dict = field(default_factory=dict, init=False, repr=False)  # stage -> perf_counter at its start

    def __post_init__(self):
        set_threads()
        check_profile(self.profile)
        if self.artifacts is None:
            self.artifacts = output_root() / "artifacts" / data_tag(self.data_root)

    @cached_property
    def dataset(self) -> Dataset:
        """All trials, training subjects first (see :func:`kit.data.dataset.load_dataset`)."""
        return load_dataset(self.data_root)

    @cached_property
    def train(self) -> Dataset:
        return self.dataset.train

    @cached_property
    def test(self) -> Dataset:
        return self.dataset.test

    @cached_property
    def features(self) -> np.ndarray:
        """:func:`kit.signal.sequences.deep_features` of every trial, ``(n_trials, n_chans, n_times, 7)`` float32.

        Computed once per data folder and kept on disk (:attr:`feature_cache`): the notebooks run in
        separate processes, and 02, 03 and 04 each need them (at the competition's size about 1 GiB, a
        minute to compute and seconds to read).  The file's name holds the data fingerprint, the feature
        config and a hash of the code that computes them, so changed data or code never reads a stale file.
        """
        def compute():
            ds = self.dataset
            X = euclidean_alignment(ds.X, ds.subject) if self.feature_config.align else ds.X
            return deep_features(X, ds.subject, ds.sfreq)

        shape = self.dataset.X.shape
        return self._cached(self.feature_cache, compute, lambda F: F.dtype == np.float32 and F.shape[:3] == shape)

    def _cached(self, path: Path | None, compute, valid=lambda a: True) -> np.ndarray:
        """The array at ``path`` (``.npy``) if it reads back and passes ``valid``; else ``compute()``, written there
        atomically (the other files of the same name prefix in that folder removed: one per data folder)."""
        if path is not None and path.is_file():
            try:
                A = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError):  # a truncated or foreign file: recompute and replace it
                A = None
            if A is not None and valid(A):
                return A
        A = compute()
        if path is not None:
            prefix = path.name.rsplit("-", 1)[0]
            for old in path.parent.glob(f"{prefix}-*.npy"):
                if old != path and old.name.rsplit("-", 1)[0] == prefix:
                    old.unlink(missing_ok=True)
            with atomic_write(path, "wb") as fh:
                np.save(fh, A, allow_pickle=False)
        return A

    def _cache_path(self, prefix: str, config: dict, modules=()) -> Path | None:
        """``artifacts/{tag}/cache/{prefix}-{key}.npy``, or None when ``$KIT_FEATURE_CACHE`` is ``0``; ``key``
        hashes the data :attr:`fingerprint`, ``config``, the kit's version and the source of ``modules``."""
        if os.environ.get("KIT_FEATURE_CACHE", "1").strip() == "0":
            return None
        code = hashlib.blake2b(digest_size=8)
        for module in modules:
            code.update(Path(module.__file__).read_bytes())
        key = config_hash({"data": self.fingerprint, **config, "kit": __version__, "code": code.hexdigest()})
        return self.artifacts / "cache" / f"{prefix}-{key}.npy"

    @cached_property
    def feature_cache(self) -> Path | None:
        """``artifacts/{tag}/cache/features-{key}.npy``, or None when ``$KIT_FEATURE_CACHE`` is ``0``.

        ``key`` hashes :attr:`fingerprint` (the trials, labels and subjects), the feature config, the
        sampling rate, the kit's version and the source of :mod:`kit.signal.sequences`,
        :mod:`kit.signal.features` and :mod:`kit.signal.filters` (the code of the features).
        """
        return self._cache_path("features", {"features": config_dict(self.feature_config),
                                             "sfreq": float(self.dataset.sfreq)}, (sequences, features_module, filters))

    def anchor_inputs(self, name: str, params: dict | None = None) -> np.ndarray:
        """:func:`kit.methods.registry.model_inputs` of anchor ``name`` for every trial (dataset order), cached.

        Kept at ``cache/{name}_inputs-{key}.npy`` (``key``: the data, the anchor's resolved config, the code of
        the anchor's module and of :mod:`kit.signal`'s covariance, feature and filter modules): ``kit run``'s two
        processes share them, the riemann anchor (background) and the cross-channel fusion (notebook 04) read the
        same re-centred tangent coordinates (half a minute at the competition's size).  An anchor's features never
        mix subjects, so one pass over all trials gives the numbers of passes over the training and test trials.
        """
        params = dict(params or {})
        module = importlib.import_module(ANCHOR_CLASSES[name].__module__)
        path = self._cache_path(f"{name}_inputs", {"anchor": name, "config": config_dict(anchor_config(name, params)),
                                                   "sfreq": float(self.dataset.sfreq)},
                                (module, covariance, features_module, filters))
        ds = self.dataset
        return self._cached(path, lambda: model_inputs(name, ds.X, ds.subject, ds.sfreq, **params),
                            lambda A: len(A) == len(ds.X))

    def mae_tokens(self, mae_path: Path) -> np.ndarray:
        """What the heads of stages 03 and 04 read for every trial (dataset order), ``(n_trials, n_chans, T', D + K)``
        float32: the frozen encoder's tokens beside the pooled features (:func:`kit.deep.experts.head_inputs`).

        Kept at ``cache/tokens-{key}.npy`` (``key``: the features' cache file and the encoder's weights): the
        expert stage writes them, the fusion reads them (a minute of encoding at the competition's size).
        Encoding every trial in one pass gives the numbers of separate passes over the training and test trials.
        """
        mae, mcfg = load_mae(mae_path)
        base = self.feature_cache
        path = None if base is None else self._cache_path("tokens", {"features": base.name,
                                                                     "mae": weights_hash(mae.state_dict())})

        def compute():
            x = pool_time(torch.from_numpy(np.ascontiguousarray(self.features, np.float32)), mcfg.pool, dim=2)
            return head_inputs(mae, x).numpy()

        n = len(self.dataset.X)
        return self._cached(path, compute, lambda A: A.dtype == np.float32 and A.ndim == 4 and len(A) == n)

    @cached_property
    def feature_config(self) -> FeatureConfig:
        return stage_config("features", self.profile)

    @cached_property
    def fingerprint(self) -> str:
        """Hash of the trials, labels and subjects (16 hex characters)."""
        ds = self.dataset
        h = hashlib.blake2b(digest_size=8)
        for a in (ds.X, ds.y, ds.subject, ds.trial):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    @cached_property
    def folds(self) -> pd.DataFrame:
        """The LOSO fold table, computed once and stored at ``artifacts/{tag}/folds.csv``."""
        return load_or_create_folds(self.artifacts / "folds.csv", self.train.subject)

    def stage_dir(self, stage: str) -> Path:
        """``artifacts/{tag}/{stage}/``, created."""
        path = self.artifacts / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, msg: str) -> None:
        """Log ``msg`` at INFO on the ``kit.pipeline.run`` logger when the run is verbose (:mod:`kit.core.log`)."""
        if self.verbose:
            logger.info(msg)

    # --- the stage cache: every stage (kit.pipeline.stages) goes stamp -> is_fresh -> compute -> mark_done ---
    def stamp(self, stage: str, config, upstream: tuple[str, ...]) -> dict:
        """What identifies a stage's artifacts: its config, the data fingerprint, the upstream stages' hashes, the kit.

        Returns ``{"config", "data", "upstream", "kit"[, "features"], "hash"}``; ``hash`` is 16 hex characters.
        """
        ups = {u: self.read_stamp(u).get("hash") for u in upstream}
        body = {"config": config_dict(config), "data": self.fingerprint, "upstream": ups, "kit": __version__}
        if stage == "mae" or stage.startswith(("experts", "fusion")):
            body["features"] = config_dict(self.feature_config)
        return {**body, "hash": config_hash(body)}

    def read_stamp(self, stage: str) -> dict:
        """The ``stage.json`` a finished stage wrote, or ``{}``."""
        path = self.artifacts / stage / "stage.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def is_fresh(self, stage: str, stamp: dict, force: bool, needs: tuple[str, ...]) -> bool:
        """True when the stage's artifacts match ``stamp``; moves a stale stage folder aside."""
        folder = self.artifacts / stage
        old = self.read_stamp(stage)
        if not force and old.get("hash") == stamp["hash"] and all((folder / n).exists() for n in needs):
            self.log(f"[{stage}] artifacts match config {stamp['hash']}: skipped (force=True reruns)")
            return True
        if old and (force or old.get("hash") != stamp["hash"]):
            aside = folder.with_name(f"{stage}@{old.get('hash', 'old')}")
            if aside.exists():
                shutil.rmtree(aside)
            folder.rename(aside)
            why = "forced rerun" if old.get("hash") == stamp["hash"] else "config changed"
            self.log(f"[{stage}] {why}: previous artifacts moved to {aside}")
        self._started[stage] = time.perf_counter()  # mark_done records the stage's compute time
        return False

    def mark_done(self, stage: str, stamp: dict) -> None:
        """Write ``stage.json`` last, once the stage's files are complete (a crash before it leaves the stage unfinished).

        Then its wall time since :meth:`is_fresh` found it to compute (:meth:`record_seconds`).
        """
        write_json(self.stage_dir(stage) / "stage.json", stamp)
        started = self._started.pop(stage, None)
        if started is not None:
            self.record_seconds(stage, time.perf_counter() - started)

    def record_seconds(self, stage: str, seconds: float) -> None:
        """``seconds.json`` in the stage's folder, written once the stage is complete (so its presence says the
        stage finished): the run summary's per-stage times (:func:`kit.pipeline.summary.stage_times`), kept out
        of ``stage.json`` so that two runs with the same seed write the same bytes there."""
        write_json(self.stage_dir(stage) / "seconds.json", {"seconds": round(float(seconds), 1)})


def open_run(data=None, profile: str = "quick", **kw) -> Run:
    """A :class:`Run` on ``data`` (resolved by :func:`kit.data.demo.ensure_data`)."""
    return Run(ensure_data(data), profile, **kw)
