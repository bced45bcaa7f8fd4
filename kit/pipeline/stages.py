"""The stages end to end: what the notebooks and ``python -m kit cv`` call.

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
import json
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from kit import __version__
from kit.store.artifacts import config_dict, config_hash, load_npz, save_npz, write_json
from kit.eval.cv import CROSSFIT_GROUPS, load_or_create_folds, loso_score
from kit.pipeline.ensemble import RULES, EnsembleConfig, apply_ensemble, describe, fit_ensemble
from kit.core.errors import KitError
from kit.deep.experts import ExpertsConfig, train_experts_loso
from kit.signal.features import deep_features, euclidean_alignment
from kit.deep.fusion import FusionConfig, train_fusion_loso
from kit.data.dataset import Dataset, load_dataset
from kit.deep.mae import MAEConfig, pretrain_mae
from kit.eval.metric import auc_curves, bootstrap_difference
from kit.data.demo import ensure_data
from kit.store.paths import output_root
from kit.core.runtime import set_threads
from kit.pipeline.submission import write_submission

PROFILES: dict[str, dict[str, dict]] = {
    # quick: minutes on 2 CPU cores at the demo size; sequences pooled 8x (25 model samples)
    "quick": {
        "features": dict(),
        "mae": dict(pool=8, dropout=0.0, epochs=10, sequences_per_epoch=8192, batch_size=256, lr=3e-3),
        "experts": dict(),
        "fusion": dict(),
        "ensemble": dict(),
    },
    # smoke: seconds; for tests and CI only (every stage runs, nothing is learned)
    "smoke": {
        "features": dict(),
        "mae": dict(pool=8, epochs=1, sequences_per_epoch=1024, batch_size=256),
        "experts": dict(max_steps=4, eval_every=2, n_support=8, n_query=8, meta_batch=2),
        "fusion": dict(epochs=1),
        "ensemble": dict(weight_step=0.5, post=(("none", 0.0), ("broadcast", 0.0))),
    },
    # full: the 3rd-place sizes on the full 200 samples, 3 seeds; meant for a GPU (Kaggle kernel)
    "full": {"features": dict(), "mae": dict(), "experts": dict(n_seeds=3), "fusion": dict(epochs=30),
             "ensemble": dict()},
}
BASELINES = ("starter", "thetacov", "bandpower", "eegnet")  # anchors of kit.methods.registry (bandpower, eegnet: issue 3)
METHODS = BASELINES + ("experts", "fusion", "ensemble")
ENSEMBLE_COMPONENTS = ("starter", "thetacov", "bandpower", "eegnet", "experts", "fusion")
"""What notebook 05 blends by default (every anchor and the deep stages)."""


def stage_config(stage: str, profile: str):
    """The config dataclass of ``stage`` ("features", "mae", "experts", "fusion", "ensemble") for ``profile``.

    Raises
    ------
    KitError
        Unknown stage or profile.
    """
    if profile not in PROFILES:
        raise KitError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
    classes = {"features": FeatureConfig, "mae": MAEConfig, "experts": ExpertsConfig, "fusion": FusionConfig, "ensemble": EnsembleConfig}
    if stage not in classes:
        raise KitError(f"unknown stage {stage!r}; choose from {sorted(classes)}")
    return classes[stage](**PROFILES[profile][stage])


@dataclass
class FeatureConfig:
    """Inputs of the deep stages (02-04)."""

    align: bool = False  # Euclidean alignment per subject before the band powers (He & Wu 2020)


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

    def __post_init__(self):
        set_threads()
        if self.profile not in PROFILES:
            raise KitError(f"unknown profile {self.profile!r}; choose from {sorted(PROFILES)}")
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
        """:func:`kit.signal.features.deep_features` of every trial, ``(n_trials, n_chans, n_times, 7)`` float32."""
        ds = self.dataset
        X = euclidean_alignment(ds.X, ds.subject) if self.feature_config.align else ds.X
        return deep_features(X, ds.subject, ds.sfreq)

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
        path = self.artifacts / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, msg: str) -> None:
        if self.verbose:
            print(msg, flush=True)

    # --- stage bookkeeping -------------------------------------------------
    def _stamp(self, stage: str, config, upstream: tuple[str, ...]) -> dict:
        ups = {u: self._read_stamp(u).get("hash") for u in upstream}
        body = {"config": config_dict(config), "data": self.fingerprint, "upstream": ups, "kit": __version__}
        if stage == "mae" or stage.startswith(("experts", "fusion")):
            body["features"] = config_dict(self.feature_config)
        return {**body, "hash": config_hash(body)}

    def _read_stamp(self, stage: str) -> dict:
        path = self.artifacts / stage / "stage.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def _fresh(self, stage: str, stamp: dict, force: bool, needs: tuple[str, ...]) -> bool:
        """True when the stage's artifacts match ``stamp``; moves a stale stage folder aside."""
        folder = self.artifacts / stage
        old = self._read_stamp(stage)
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
        return False

    def _done(self, stage: str, stamp: dict) -> None:
        write_json(self.stage_dir(stage) / "stage.json", stamp)


def open_run(data=None, profile: str = "quick", **kw) -> Run:
    """A :class:`Run` on ``data`` (resolved by :func:`kit.data.demo.ensure_data`)."""
    return Run(ensure_data(data), profile, **kw)


def baseline_params(name: str, profile: str) -> dict:
    """Config overrides of a baseline for a profile (only EEGNet's epochs depend on it)."""
    if name != "eegnet":
        return {}
    from kit.methods.eegnet import EEGNET_SCHEDULES, EEGNetConfig

    default = EEGNetConfig()
    return {k: v for k, v in EEGNET_SCHEDULES.get(profile, {}).items() if getattr(default, k) != v}


def run_baseline_stage(run: Run, name: str, *, force: bool = False, params: dict | None = None) -> dict[str, np.ndarray]:
    """LOSO out-of-fold, cross-fitted and test predictions of a baseline (``starter``, ``thetacov``, ...).

    Writes ``artifacts/{tag}/{name}/predictions.npz`` with ``oof (n_train, n_times)``,
    ``test (n_test, n_times)``, ``inner (n_groups, n_train, n_times)`` and
    ``inner_group (n_train,)`` (the cross-fitted tables the ensemble chooses on,
    :func:`kit.eval.cv.crossfit_plan`), ``subject``, ``y``, ``test_subject``, ``test_trial``.

    Parameters
    ----------
    params : dict, optional
        Config overrides; default :func:`baseline_params` of the run's profile.
        They are part of the stage stamp.
    """
    from kit.methods.registry import baseline_predictions

    if name not in BASELINES:
        raise KitError(f"unknown baseline {name!r}; choose from {BASELINES}")
    params = baseline_params(name, run.profile) if params is None else params
    stamp = run._stamp(name, {"baseline": name, "crossfit_groups": CROSSFIT_GROUPS, **params}, ())
    if run._fresh(name, stamp, force, ("predictions.npz",)):
        return load_npz(run.artifacts / name / "predictions.npz")
    t0 = time.perf_counter()
    tr, te = run.train, run.test
    oof, test, inner, group = baseline_predictions(name, tr.X, tr.y, tr.subject, te.X, te.subject, tr.sfreq,
                                                   n_groups=CROSSFIT_GROUPS, **params)
    arrays = dict(oof=np.asarray(oof, np.float32), test=np.asarray(test, np.float32), subject=tr.subject, y=tr.y,
                  test_subject=te.subject, test_trial=te.trial, inner=inner, inner_group=group)
    save_npz(run.stage_dir(name) / "predictions.npz", **arrays)
    run._done(name, stamp)
    run.log(f"[{name}] LOSO and cross-fitted predictions in {time.perf_counter() - t0:.1f} s")
    return arrays


def run_mae_stage(run: Run, cfg: MAEConfig | None = None, *, force: bool = False) -> Path:
    """Stage 02: pretrain the MAE on every trial; returns the path of ``mae.pt``."""
    cfg = cfg or stage_config("mae", run.profile)
    stamp = run._stamp("mae", cfg, ())
    if run._fresh("mae", stamp, force, ("mae.pt",)):
        return run.artifacts / "mae" / "mae.pt"
    pretrain_mae(run.features, cfg, run.stage_dir("mae"), progress=run.verbose)
    run._done("mae", stamp)
    return run.artifacts / "mae" / "mae.pt"


def run_experts_stage(run: Run, cfg: ExpertsConfig | None = None, *, force: bool = False,
                      stage: str = "experts", n_groups: int | None = CROSSFIT_GROUPS) -> dict[str, np.ndarray]:
    """Stage 03: the channel experts under LOSO; reads ``mae.pt``, writes fold weights and predictions.

    Parameters
    ----------
    cfg : ExpertsConfig, optional
        Default: the profile's.
    stage : str
        Stage folder (the bench writes its levers, e.g. ``experts_mldg``, beside ``experts``).
    n_groups : int or None
        Cross-fitting groups (None: LOSO folds only; such a stage cannot feed fusion or the ensemble).

    Raises
    ------
    KitError
        No MAE checkpoint.
    """
    cfg = cfg or stage_config("experts", run.profile)
    mae_path = run.artifacts / "mae" / "mae.pt"
    if not mae_path.exists():
        raise KitError(f"{mae_path}: not found; run notebook 02 (MAE pretraining) first")
    stamp = run._stamp(stage, {"experts": config_dict(cfg), "crossfit_groups": n_groups}, ("mae",))
    if run._fresh(stage, stamp, force, ("predictions.npz",)):
        return load_npz(run.artifacts / stage / "predictions.npz")
    run.folds  # noqa: B018 - the fold table is written once, before any training
    ds = run.dataset
    arrays = train_experts_loso(run.features, ds.y, ds.subject, ds.is_test, cfg, mae_path,
                                run.stage_dir(stage), progress=run.verbose, n_groups=n_groups)
    run._done(stage, stamp)
    return arrays


def run_fusion_stage(run: Run, cfg: FusionConfig | None = None, *, force: bool = False) -> dict[str, np.ndarray]:
    """Stage 04: fusion of the experts, fitted on their stored cross-fitted outputs (``experts/predictions.npz``)."""
    cfg = cfg or stage_config("fusion", run.profile)
    if not (run.artifacts / "experts" / "stage.json").exists():
        raise KitError(f"{run.artifacts / 'experts'}: no finished expert stage; run notebook 03 first")
    stamp = run._stamp("fusion", {"fusion": config_dict(cfg), "crossfit_groups": CROSSFIT_GROUPS},
                       ("mae", "experts"))
    if run._fresh("fusion", stamp, force, ("predictions.npz",)):
        return load_npz(run.artifacts / "fusion" / "predictions.npz")
    arrays = train_fusion_loso(run.artifacts / "experts" / "predictions.npz", cfg, run.stage_dir("fusion"),
                               run.features.shape[2], progress=run.verbose)
    arrays = {**arrays, "test_trial": run.test.trial}
    save_npz(run.stage_dir("fusion") / "predictions.npz", **arrays)
    run._done("fusion", stamp)
    return arrays


def load_components(run: Run, names=ENSEMBLE_COMPONENTS) -> dict[str, dict[str, np.ndarray]]:
    """Out-of-fold, test and cross-fitted predictions of the finished stages.

    Returns ``{name: {"oof": (n_train, n_times), "test": (n_test, n_times)}}``,
    plus ``"inner" (n_groups, n_train, n_times)`` and ``"inner_group" (n_train,)``
    where the stage wrote them.

    Every component's trial order is checked against the data's.

    Raises
    ------
    KitError
        A stage's predictions are missing or belong to other trials.
    """
    out = {}
    for name in names:
        arrays = load_npz(run.artifacts / name / "predictions.npz")
        if not np.array_equal(arrays["subject"], run.train.subject):
            raise KitError(f"{run.artifacts / name / 'predictions.npz'}: trial order differs from the data; "
                           "rerun that stage")
        out[name] = {"oof": arrays["oof"], "test": arrays["test"]}
        if "inner" in arrays:
            out[name].update(inner=arrays["inner"], inner_group=arrays["inner_group"])
    return out


@dataclass
class EnsembleResult:
    """Outcome of stage 05: the LOSO table, the chosen blend, the rules compared and the submission written."""

    table: pd.DataFrame
    chosen: list  # the Candidates of kit.pipeline.ensemble the submission averages, best first
    submission: Path | None
    scores: dict = field(default_factory=dict)  # method -> loso_score dict (with curves)
    rule: str = ""  # the rule that made the submission (EnsembleConfig.rule)
    rules: dict = field(default_factory=dict)  # rule -> nested LOSO score of the ensemble under that rule
    per_subject: list = field(default_factory=list)  # held-out subject -> blend chosen and its inner score
    best_component: str = ""  # the component with the best LOSO score (chosen with hindsight, for reference)
    difference: tuple = ()  # (ensemble - best component, 2.5 %, 97.5 %): paired bootstrap over subjects

    @property
    def best(self):
        """The best of the averaged candidates."""
        return self.chosen[0]


def run_ensemble_stage(run: Run, cfg: EnsembleConfig | None = None, *, components=ENSEMBLE_COMPONENTS,
                       write: bool = True, name: str | None = None, compare: bool = True) -> EnsembleResult:
    """Stage 05: combine the components by the configured rule, score everything, write the submission.

    The ensemble's own LOSO score fits the rule for held-out subject k on the
    components' cross-fitted predictions (models that never saw k), so it is
    an honest estimate (:func:`kit.pipeline.ensemble.fit_ensemble`).  With ``compare``
    every rule of :data:`kit.pipeline.ensemble.RULES` is scored the same way (the
    submission still comes from ``cfg.rule``), and the ensemble's difference
    to the best component gets a paired bootstrap interval over subjects.

    Raises
    ------
    KitError
        A component's predictions are missing, stale (no cross-fitted tables) or for other trials.

    Returns
    -------
    EnsembleResult
        ``table``: one row per component and the ensemble (LOSO score, window,
        mean per-subject AUC); ``submission``: ``submissions/{tag}_{profile}_ensemble.csv``.
    """
    cfg = cfg or stage_config("ensemble", run.profile)
    comps = load_components(run, components)
    tr, te = run.train, run.test
    stale = [k for k, v in comps.items() if "inner" not in v]
    if stale:
        raise KitError(f"{', '.join(str(run.artifacts / k) for k in stale)}: no cross-fitted predictions "
                       "(written by an older kit); rerun that stage with force=True")
    group = comps[next(iter(comps))]["inner_group"]
    if any(not np.array_equal(v["inner_group"], group) for v in comps.values()):
        raise KitError(f"{run.artifacts}: the components' cross-fitting groups differ; rerun them with force=True")
    oof, inner = {k: v["oof"] for k, v in comps.items()}, {k: v["inner"] for k, v in comps.items()}
    fit = fit_ensemble(oof, tr.y, tr.subject, cfg, inner=inner, group=group)
    scores = {k: loso_score(v, tr.y, tr.subject) for k, v in oof.items()}
    scores["ensemble"] = loso_score(fit.nested, tr.y, tr.subject)
    rules = {cfg.rule: scores["ensemble"]["loso_score"]}
    if compare:
        for rule in RULES:
            if rule not in rules:
                other = fit_ensemble(oof, tr.y, tr.subject, replace(cfg, rule=rule), inner=inner, group=group)
                rules[rule] = loso_score(other.nested, tr.y, tr.subject)["loso_score"]
    best = max(oof, key=lambda k: scores[k]["loso_score"])
    _, A = auc_curves(fit.nested, tr.y, tr.subject)
    _, B = auc_curves(oof[best], tr.y, tr.subject)
    difference = bootstrap_difference(A, B)
    table = score_table(scores)
    folder = run.stage_dir("ensemble")
    test_pred = apply_ensemble(fit.chosen, {k: v["test"] for k, v in comps.items()}, te.subject)
    save_npz(folder / "predictions.npz", oof=fit.nested.astype(np.float32), subject=tr.subject, y=tr.y,
             test=test_pred, test_subject=te.subject, test_trial=te.trial)
    path = None
    if write and len(te):
        name = name or f"{data_tag(run.data_root)}_{run.profile}_ensemble.csv"
        path = write_submission(output_root() / "submissions" / name, test_pred, te.subject, te.trial)
    write_json(folder / "result.json", {"rule": cfg.rule, "blend": describe(fit.chosen),
                                         "candidates": [c.label() for c in fit.chosen], "rules": rules,
                                         "per_subject": fit.per_subject, "best_component": best,
                                         "difference": list(difference),
                                         "table": table.to_dict(orient="records"),
                                         "submission": str(path) if path else None})
    return EnsembleResult(table, fit.chosen, path, scores, cfg.rule, rules, fit.per_subject, best, difference)


def score_table(scores: dict[str, dict]) -> pd.DataFrame:
    """One row per method: ``loso_score``, window ``start``/``stop`` (samples), ``mean_subject_auc``."""
    rows = []
    for method, s in scores.items():
        rows.append({"method": method, "loso_score": round(s["loso_score"], 4),
                     "window": "-" if s["window"][0] is None else f"{s['window'][0]}-{s['window'][1]}",
                     "mean_subject_auc": round(float(np.mean(list(s["per_subject_auc"].values()))), 4)})
    return pd.DataFrame(rows)


def cv_method(method: str, data=None, profile: str = "quick", *, force: bool = False) -> dict:
    """LOSO score of one method, running (or reusing) the stages it needs.

    Returns
    -------
    dict
        ``method``, ``loso_score``, ``window`` [first, last sample],
        ``per_subject_auc``, ``mean_auc``, ``data``, ``profile``.
    """
    if method not in METHODS:
        raise KitError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    run = open_run(data, profile)
    if method in BASELINES:
        preds = run_baseline_stage(run, method, force=force)["oof"]
        result = loso_score(preds, run.train.y, run.train.subject)
    else:
        run_mae_stage(run, force=force)
        run_experts_stage(run, force=force)
        if method in ("fusion", "ensemble"):
            run_fusion_stage(run, force=force)
        if method == "ensemble":
            for b in BASELINES:
                if b in ENSEMBLE_COMPONENTS:
                    run_baseline_stage(run, b, force=force)
            result = run_ensemble_stage(run, write=False).scores["ensemble"]
        else:
            preds = load_components(run, (method,))[method]["oof"]
            result = loso_score(preds, run.train.y, run.train.subject)
    result = {k: v for k, v in result.items() if k != "curve"}
    return {"method": method, **result, "data": str(run.data_root), "profile": profile}

