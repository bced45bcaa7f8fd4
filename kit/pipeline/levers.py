"""The bench's variants of the pipeline's stages (levers), each in its own stage folder: expert levers, TENT,
the fusion's levers and the 3rd place as published.  :mod:`kit.pipeline.benchmark` scores them beside the
stages of :mod:`kit.pipeline.stages`; none of them feeds the ensemble.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from scipy.special import expit

from kit.core.errors import KitError
from kit.deep.experts import head_inputs, head_state, predict_heads
from kit.deep.mae import load_mae
from kit.deep.nets import AttentionPoolHead, model_stack, pool_time
from kit.deep.thirdplace import ThirdPlaceConfig, train_thirdplace
from kit.deep.tta import TentConfig, tent_adapt
from kit.methods.registry import EXPERT_LEVERS
from kit.pipeline.profiles import stage_config
from kit.pipeline.run import Run
from kit.pipeline.stages import run_experts_stage, run_fusion_stage
from kit.store.artifacts import config_dict, load_checkpoint, load_npz, save_npz


def run_thirdplace_stage(run: Run, cfg: ThirdPlaceConfig | None = None, *, force: bool = False,
                         n_groups: int | None = None) -> dict[str, np.ndarray]:
    """The 3rd place's design as published (:mod:`kit.deep.thirdplace`) into ``artifacts/{tag}/thirdplace/``.

    Its own 5-feature MAE, then per LOSO fold 16 FOMAML experts with per-sample heads; LOSO folds only by default
    (a bench row), ``n_groups`` adds the cross-fitted tables.
    """
    cfg = cfg or stage_config("thirdplace", run.profile)
    stamp = run.stamp("thirdplace", {"thirdplace": config_dict(cfg), "crossfit_groups": n_groups}, ())
    if run.is_fresh("thirdplace", stamp, force, ("predictions.npz",)):
        return load_npz(run.artifacts / "thirdplace" / "predictions.npz")
    ds = run.dataset
    t0 = time.perf_counter()
    arrays = train_thirdplace(ds.X, ds.y, ds.subject, ds.is_test, ds.sfreq, cfg, run.stage_dir("thirdplace"),
                              n_groups=n_groups, progress=run.verbose)
    arrays["test_trial"] = run.test.trial
    save_npz(run.stage_dir("thirdplace") / "predictions.npz", **arrays)
    run.mark_done("thirdplace", stamp)
    run.log(f"[thirdplace] MAE and LOSO FOMAML experts in {time.perf_counter() - t0:.1f} s")
    return arrays


FUSION_LEVERS = {"fusion_tokens": {"use_covariance": False}, "fusion_cov": {"use_tokens": False}}
"""Fusion variants of the bench: the MAE tokens alone (no phase input), the covariance input alone."""


def run_fusion_lever_stage(run: Run, name: str, *, force: bool = False) -> dict[str, np.ndarray]:
    """A fusion lever of :data:`FUSION_LEVERS` into ``artifacts/{tag}/{name}/`` (LOSO folds, no cross-fit models)."""
    if name not in FUSION_LEVERS:
        raise KitError(f"unknown fusion lever {name!r}; choose from {', '.join(FUSION_LEVERS)}")
    cfg = replace(stage_config("fusion", run.profile), **FUSION_LEVERS[name])
    return run_fusion_stage(run, cfg, force=force, stage=name, n_groups=None)


TENT = "experts_tent"
"""Stage folder of the experts adapted to each held-out subject's unlabelled trials (entropy minimisation)."""


def run_lever_stage(run, name: str, *, force: bool = False) -> dict:
    """An expert lever of :data:`EXPERT_LEVERS` into ``artifacts/{tag}/{name}/`` (LOSO folds, no cross-fit models).

    The profile's :class:`kit.deep.experts.ExpertsConfig` with the lever's fields
    changed, so its row differs from ``experts`` by that change alone (and by
    the heads' initialisation: fewer models share the batched computation).

    Raises
    ------
    KitError
        Unknown lever, or no MAE checkpoint.
    """

    if name not in EXPERT_LEVERS:
        raise KitError(f"bench: unknown lever {name!r}; choose from {', '.join(EXPERT_LEVERS)}")
    cfg = replace(stage_config("experts", run.profile), **EXPERT_LEVERS[name])
    return run_experts_stage(run, cfg, force=force, stage=name, n_groups=None)


def run_tent_stage(run, cfg=None, *, force: bool = False) -> dict:
    """The experts stage's fold models, each adapted to its held-out subject's unlabelled trials, then predicting.

    :func:`kit.deep.tta.tent_adapt` on fold k's heads with subject k's trials
    (no labels); nothing else is retrained.  Writes
    ``artifacts/{tag}/experts_tent/predictions.npz`` with ``oof (n_train, n_times)``
    (P of the experts' mean trial logit), ``subject``, ``y``.

    Raises
    ------
    KitError
        No finished experts stage.
    """
    import torch

    cfg = cfg or TentConfig()
    experts = run.artifacts / "experts"
    if not (experts / "stage.json").exists():
        raise KitError(f"{experts}: no finished expert stage; run it first")
    stamp = run.stamp(TENT, cfg, ("mae", "experts"))
    if run.is_fresh(TENT, stamp, force, ("predictions.npz",)):
        return load_npz(run.artifacts / TENT / "predictions.npz")
    mae, mcfg = load_mae(run.artifacts / "mae" / "mae.pt")
    train = ~run.dataset.is_test
    feats = torch.from_numpy(np.ascontiguousarray(run.features[train], dtype=np.float32))
    x = head_inputs(mae, pool_time(feats, mcfg.pool, dim=2))  # (n_train, E, T, D + K)
    s_tr, n_times = run.dataset.subject[train], run.features.shape[2]
    sids = np.unique(s_tr)
    seed = stage_config("experts", run.profile).seed
    states = [head_state(load_checkpoint(experts / f"fold{k}_seed{seed}.pt")["state_dict"]) for k in range(len(sids))]
    head = AttentionPoolHead(x.shape[1], x.shape[3], x.shape[2], len(sids))
    head.load_state_dict(model_stack(states))
    target = torch.from_numpy(np.stack([s_tr == s for s in sids]))  # (n_folds, n_train)
    head = tent_adapt(head, x, target, cfg)
    trial = predict_heads(head, x)[0].mean(axis=2)  # (n_folds, n_train): experts' mean trial logit
    oof = np.zeros((len(s_tr), n_times), np.float32)
    for k, s in enumerate(sids):
        m = s_tr == s
        oof[m] = expit(trial[k, m])[:, None]
    arrays = dict(oof=oof, subject=s_tr, y=run.dataset.y[train])
    save_npz(run.stage_dir(TENT) / "predictions.npz", **arrays)
    run.mark_done(TENT, stamp)
    return arrays
