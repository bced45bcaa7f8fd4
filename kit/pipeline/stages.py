"""The stages end to end: what the notebooks and ``python -m kit cv`` call.

Each stage runs on a :class:`kit.pipeline.run.Run` (a data folder and a profile, their artifacts folder) and
keeps its outputs in ``{output_root}/artifacts/{data_tag}/{stage}/`` beside its ``stage.json``: a stage whose
``stage.json`` matches its config and inputs is read back, not computed again, unless ``force=True`` (the
cache itself is described in :mod:`kit.pipeline.run`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kit.core.errors import KitError
from kit.deep.channel_fusion import ChannelFusionConfig, fusion_inputs, train_channel_fusion
from kit.deep.experts import ExpertsConfig
from kit.deep.experts_loso import train_experts_loso
from kit.deep.fusion import FusionConfig, train_fusion_loso
from kit.deep.mae import MAEConfig, pretrain_mae
from kit.eval.crossfit import CROSSFIT_GROUPS
from kit.eval.cv import loso_score
from kit.eval.metric import auc_curves
from kit.eval.stats import bootstrap_difference
from kit.methods.registry import (
    ANCHOR_LEVERS,
    ANCHORS,
    ENSEMBLE_COMPONENTS,
    PIPELINE_METHODS,
    baseline_predictions,
)
from kit.pipeline.ensemble import EnsembleConfig, apply_ensemble, candidate_to_json, describe, fit_ensemble
from kit.pipeline.profiles import baseline_params, stage_config
from kit.pipeline.run import Run, data_tag, open_run
from kit.pipeline.submission import write_submission
from kit.store.artifacts import atomic_write, config_dict, load_npz, save_models, save_npz, write_json
from kit.store.paths import output_root

SHARED_INPUTS = ("riemann", "bandpower")
"""Anchors whose features other stages read again (the fusion, notebook 05's pattern figures): kept in the run's
cache (:meth:`kit.pipeline.run.Run.anchor_inputs`); the other anchors compute theirs in their stage."""


def run_baseline_stage(run: Run, name: str, *, force: bool = False, params: dict | None = None) -> dict[str, np.ndarray]:
    """LOSO out-of-fold, cross-fitted and test predictions of a baseline (``starter``, ``thetacov``, ...).

    Writes ``artifacts/{tag}/{name}/models.pkl`` (the LOSO fold models, for ``kit predict``) and
    ``artifacts/{tag}/{name}/predictions.npz`` with ``oof (n_train, n_times)``,
    ``test (n_test, n_times)``, ``inner (n_groups, n_train, n_times)`` and
    ``inner_group (n_train,)`` (the cross-fitted tables the ensemble chooses on,
    :func:`kit.eval.crossfit.crossfit_plan`), ``subject``, ``y``, ``test_subject``, ``test_trial``.

    Parameters
    ----------
    name : str
        An anchor, or an anchor lever of :data:`kit.methods.registry.ANCHOR_LEVERS` (its anchor with
        the lever's config fields, in its own stage folder).
    params : dict, optional
        Config overrides; default :func:`baseline_params` of the run's profile (and the lever's fields).
        They are part of the stage stamp.
    """

    if name not in ANCHORS and name not in ANCHOR_LEVERS:
        raise KitError(f"unknown baseline {name!r}; choose from {', '.join(ANCHORS + tuple(ANCHOR_LEVERS))}")
    base, extra = ANCHOR_LEVERS.get(name, (name, {}))
    params = {**baseline_params(base, run.profile), **extra} if params is None else params
    stamp = run.stamp(name, {"baseline": base, "crossfit_groups": CROSSFIT_GROUPS, **params}, ())
    if run.is_fresh(name, stamp, force, ("predictions.npz", "models.pkl")):
        return load_npz(run.artifacts / name / "predictions.npz")
    t0 = time.perf_counter()
    tr, te = run.train, run.test
    models: list = []
    inputs = None
    if base in SHARED_INPUTS:  # features shared through the run's cache (Run.anchor_inputs)
        F, is_test = run.anchor_inputs(base, params), run.dataset.is_test
        inputs = (F[~is_test], F[is_test])
    oof, test, inner, group = baseline_predictions(base, tr.X, tr.y, tr.subject, te.X, te.subject, tr.sfreq,
                                                   n_groups=CROSSFIT_GROUPS, keep_models=models, inputs=inputs,
                                                   **params)
    save_models(run.stage_dir(name) / "models.pkl", {"name": base, "params": params, "sfreq": tr.sfreq,
                                                     "ch_names": list(tr.ch_names), "n_times": tr.X.shape[2],
                                                     "models": models})
    arrays = dict(oof=np.asarray(oof, np.float32), test=np.asarray(test, np.float32), subject=tr.subject, y=tr.y,
                  test_subject=te.subject, test_trial=te.trial, inner=inner, inner_group=group)
    save_npz(run.stage_dir(name) / "predictions.npz", **arrays)
    run.mark_done(name, stamp)
    run.log(f"[{name}] LOSO and cross-fitted predictions in {time.perf_counter() - t0:.1f} s")
    return arrays


def run_mae_stage(run: Run, cfg: MAEConfig | None = None, *, force: bool = False) -> Path:
    """Stage 02: pretrain the MAE on every trial; returns the path of ``mae.pt``."""
    cfg = cfg or stage_config("mae", run.profile)
    stamp = run.stamp("mae", cfg, ())
    if run.is_fresh("mae", stamp, force, ("mae.pt",)):
        return run.artifacts / "mae" / "mae.pt"
    pretrain_mae(run.features, cfg, run.stage_dir("mae"), progress=run.verbose)
    run.mark_done("mae", stamp)
    return run.artifacts / "mae" / "mae.pt"


def mae_checkpoint(run: Run, *, required: bool = True) -> Path:
    """Stage 02's encoder, ``artifacts/{data_tag}/mae/mae.pt``; KitError when ``required`` and it is not there."""
    path = run.artifacts / "mae" / "mae.pt"
    if required and not path.exists():
        raise KitError(f"{path}: not found; run notebook 02 (MAE pretraining) first")
    return path


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
    mae_path = mae_checkpoint(run)
    stamp = run.stamp(stage, {"experts": config_dict(cfg), "crossfit_groups": n_groups}, ("mae",))
    if run.is_fresh(stage, stamp, force, ("predictions.npz",)):
        return load_npz(run.artifacts / stage / "predictions.npz")
    run.folds  # noqa: B018 - the fold table is written once, before any training
    ds = run.dataset
    arrays = train_experts_loso(run.features, ds.y, ds.subject, ds.is_test, cfg, mae_path,
                                run.stage_dir(stage), progress=run.verbose, n_groups=n_groups,
                                tokens=run.mae_tokens(mae_path))
    run.mark_done(stage, stamp)
    return arrays


def run_fusion_stage(run: Run, cfg: ChannelFusionConfig | None = None, *, force: bool = False,
                     stage: str = "fusion", n_groups: int | None = CROSSFIT_GROUPS) -> dict[str, np.ndarray]:
    """Stage 04: the cross-channel fusion (:mod:`kit.deep.channel_fusion`) on the frozen MAE encoder and the
    re-centred band covariances; LOSO, cross-fitted and test predictions, fold models ``fold{k}.pt``, and the
    inputs it read, ``inputs.npz`` (:func:`fusion_stage_inputs`: notebook 04's attention maps read them instead
    of encoding every trial again, two minutes at the competition's size).

    Parameters
    ----------
    cfg, stage, n_groups
        As for :func:`run_experts_stage` (``cfg`` a :class:`ChannelFusionConfig`; the bench's levers are
        ``fusion_tokens`` and ``fusion_cov``).

    Raises
    ------
    KitError
        No MAE checkpoint.
    """
    cfg = cfg or stage_config("fusion", run.profile)
    mae_path = mae_checkpoint(run, required=cfg.use_tokens)
    stamp = _fusion_stamp(run, stage, cfg, n_groups)
    if run.is_fresh(stage, stamp, force, ("predictions.npz",)):
        return load_npz(run.artifacts / stage / "predictions.npz")
    ds = run.dataset
    t0 = time.perf_counter()
    inputs = _fusion_inputs(run, cfg, mae_path)
    _save_inputs(run.stage_dir(stage) / "inputs.npz", inputs)
    arrays = train_channel_fusion(inputs, ds.y, ds.subject, ds.is_test, ds.X.shape[2], cfg, run.stage_dir(stage),
                                  sfreq=ds.sfreq, n_groups=n_groups, progress=run.verbose)
    arrays.pop("models")
    arrays["test_trial"] = run.test.trial
    save_npz(run.stage_dir(stage) / "predictions.npz", **arrays)
    run.mark_done(stage, stamp)
    run.log(f"[{stage}] LOSO and cross-fitted fusion models in {time.perf_counter() - t0:.1f} s")
    return arrays


def _fusion_stamp(run: Run, stage: str, cfg: ChannelFusionConfig, n_groups: int | None) -> dict:
    return run.stamp(stage, {"fusion": config_dict(cfg), "crossfit_groups": n_groups}, ("mae",) if cfg.use_tokens else ())


def _save_inputs(path: Path, inputs: dict) -> None:
    """:func:`kit.deep.channel_fusion.fusion_inputs` to ``path`` (one ``.npz``, written atomically, unset inputs left out)."""
    with atomic_write(path) as fh:
        np.savez(fh, **{k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in inputs.items() if v is not None})


def fusion_stage_inputs(run: Run, cfg: ChannelFusionConfig | None = None, *, stage: str = "fusion") -> dict:
    """What the finished fusion stage read, for every trial (dataset order): ``seq``, ``cov`` (tensors) and
    ``tangent`` (ndarray), or None where the config leaves one out (:func:`kit.deep.channel_fusion.fusion_inputs`).

    Read from the stage's ``inputs.npz`` when the stage is finished with ``cfg`` (the same arrays, bit for bit);
    computed again otherwise (a stage written by kit <= 0.3, or another config).
    """
    cfg = cfg or stage_config("fusion", run.profile)
    path = run.artifacts / stage / "inputs.npz"
    stamp = _fusion_stamp(run, stage, cfg, CROSSFIT_GROUPS)
    if path.is_file() and run.read_stamp(stage).get("hash") == stamp["hash"]:
        with np.load(path, allow_pickle=False) as z:
            got = {k: z[k] for k in z.files}
        return {"seq": torch.from_numpy(got["seq"]) if "seq" in got else None,
                "cov": torch.from_numpy(got["cov"]) if "cov" in got else None, "tangent": got.get("tangent")}
    return _fusion_inputs(run, cfg, mae_checkpoint(run, required=False))


def _fusion_inputs(run: Run, cfg: ChannelFusionConfig, mae_path) -> dict:
    """:func:`kit.deep.channel_fusion.fusion_inputs` of every trial, from the run's cache: the encoder's tokens
    (written by stage 03) and riemann's tangent coordinates (written by the anchor), each computed there if absent."""
    ds = run.dataset
    return fusion_inputs(run.features, ds.X, ds.subject, ds.sfreq, mae_path, cfg,
                         seq=run.mae_tokens(mae_path) if cfg.use_tokens else None,
                         tangent=run.anchor_inputs("riemann") if cfg.use_covariance else None)


def run_fusion_lda_stage(run: Run, cfg: FusionConfig | None = None, *, force: bool = False) -> dict[str, np.ndarray]:
    """The reference fusion: shrinkage LDA on the experts' cross-fitted trial logits (``experts/predictions.npz``)."""
    cfg = cfg or stage_config("fusion_lda", run.profile)
    if not (run.artifacts / "experts" / "stage.json").exists():
        raise KitError(f"{run.artifacts / 'experts'}: no finished expert stage; run notebook 03 first")
    stamp = run.stamp("fusion_lda", {"fusion": config_dict(cfg), "crossfit_groups": CROSSFIT_GROUPS},
                      ("mae", "experts"))
    if run.is_fresh("fusion_lda", stamp, force, ("predictions.npz",)):
        return load_npz(run.artifacts / "fusion_lda" / "predictions.npz")
    arrays = train_fusion_loso(run.artifacts / "experts" / "predictions.npz", cfg, run.stage_dir("fusion_lda"),
                               run.features.shape[2], progress=run.verbose)
    arrays = {**arrays, "test_trial": run.test.trial}
    save_npz(run.stage_dir("fusion_lda") / "predictions.npz", **arrays)
    run.mark_done("fusion_lda", stamp)
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
    the rules of ``cfg.compare`` are scored the same way (the submission still comes from
    ``cfg.rule``; the default rule, ``grid``, is the slow one: its weight grid takes about 8 times
    the others' time together; with ``rule="stack"`` the grid is only scored where ``compare`` names
    it, and ``python -m kit rules`` scores every rule), and the ensemble's difference
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
    t0 = time.perf_counter()
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
    tables: dict = {}  # the rules compared below reuse the standardized tables and the curves they share
    fit = fit_ensemble(oof, tr.y, tr.subject, cfg, inner=inner, group=group, tables=tables)
    scores = {k: loso_score(v, tr.y, tr.subject) for k, v in oof.items()}
    scores["ensemble"] = loso_score(fit.nested, tr.y, tr.subject)
    rules = {cfg.rule: scores["ensemble"]["loso_score"]}
    if compare:
        for rule in cfg.compare:
            if rule not in rules:
                other = fit_ensemble(oof, tr.y, tr.subject, replace(cfg, rule=rule), inner=inner, group=group,
                                     tables=tables)
                rules[rule] = loso_score(other.nested, tr.y, tr.subject)["loso_score"]
    best = max(oof, key=lambda k: scores[k]["loso_score"])
    _, A = auc_curves(fit.nested, tr.y, tr.subject)
    _, B = auc_curves(oof[best], tr.y, tr.subject)
    difference = bootstrap_difference(A, B)
    table = score_table(scores, tr.sfreq)
    folder = run.stage_dir("ensemble")
    test_pred = apply_ensemble(fit.chosen, {k: v["test"] for k, v in comps.items()}, te.subject)
    write_json(folder / "blend.json", {"rule": cfg.rule, "components": list(comps), "ch_names": list(tr.ch_names),
                                        "sfreq": tr.sfreq, "n_times": int(tr.X.shape[2]),
                                        "candidates": [candidate_to_json(c) for c in fit.chosen]})
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
    run.record_seconds("ensemble", time.perf_counter() - t0)
    return EnsembleResult(table, fit.chosen, path, scores, cfg.rule, rules, fit.per_subject, best, difference)


def score_table(scores: dict[str, dict], sfreq: float = 200.0) -> pd.DataFrame:
    """One row per method of :func:`kit.eval.cv.loso_score` dicts: ``loso_score``, ``window`` (the first and last
    sample's times, s after the cue, e.g. ``"0.350-0.605 s"``; ``"-"`` without a window), ``mean_auc``."""
    rows = []
    for method, s in scores.items():
        start, stop = s["window"]
        rows.append({"method": method, "loso_score": round(s["loso_score"], 4),
                     "window": "-" if start is None else f"{start / sfreq:.3f}-{stop / sfreq:.3f} s",
                     "mean_auc": round(s["mean_auc"], 4)})
    return pd.DataFrame(rows)


def cv_method(method: str, data=None, profile: str = "quick", *, force: bool = False) -> dict:
    """LOSO score of one method, running (or reusing) the stages it needs.

    Returns
    -------
    dict
        ``method``, ``loso_score``, ``window`` [first, last sample],
        ``per_subject_auc``, ``mean_auc``, ``data``, ``profile``.
    """
    if method not in PIPELINE_METHODS:
        raise KitError(f"unknown method {method!r}; choose from {', '.join(PIPELINE_METHODS)}")
    run = open_run(data, profile)
    if method in ANCHORS:
        preds = run_baseline_stage(run, method, force=force)["oof"]
        result = loso_score(preds, run.train.y, run.train.subject)
    else:
        run_mae_stage(run, force=force)
        if method in ("experts", "ensemble"):
            run_experts_stage(run, force=force)
        if method in ("fusion", "ensemble"):
            run_fusion_stage(run, force=force)
        if method == "ensemble":
            for b in ANCHORS:
                if b in ENSEMBLE_COMPONENTS:
                    run_baseline_stage(run, b, force=force)
            result = run_ensemble_stage(run, write=False).scores["ensemble"]
        else:
            preds = load_components(run, (method,))[method]["oof"]
            result = loso_score(preds, run.train.y, run.train.subject)
    result = {k: v for k, v in result.items() if k != "curve"}
    return {"method": method, **result, "data": str(run.data_root), "profile": profile}
