"""Stage 03 end to end: the experts of every LOSO fold and cross-fit model, and a finished stage on new trials.

The heads, their training and their checkpoints are :mod:`kit.deep.experts`; this module runs them over the
folds of :func:`kit.eval.cv.loso_folds` and the cross-fitting plan (:func:`kit.eval.crossfit.crossfit_plan`),
writes ``predictions.npz`` and applies saved fold checkpoints to new test files (``kit predict``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from kit.core.errors import KitError
from kit.core.runtime import get_device
from kit.deep.experts import (
    ExpertsConfig,
    Job,
    expert_test_outputs,
    experts_probabilities,
    fit_heads,
    head_inputs,
    head_state,
    predict_model,
    reusable,
    run_hash,
    save_bank,
)
from kit.deep.mae import load_mae
from kit.deep.nets import AttentionPoolHead, model_stack, pool_time
from kit.eval.crossfit import CROSSFIT_GROUPS, crossfit_plan
from kit.store.artifacts import load_checkpoint, load_npz, save_npz


def predict_experts_test(features: np.ndarray, stage_dir: str | os.PathLike, mae_path: str | os.PathLike, *,
                         device: str | None = None) -> dict[str, np.ndarray]:
    """A finished expert stage applied to new trials from its saved fold checkpoints, without training.

    Parameters
    ----------
    features : ndarray, shape (n_test, n_chans, n_times, K)
        :func:`kit.signal.sequences.deep_features` of the new trials (per-subject statistics are their own).
    stage_dir : path
        ``artifacts/{tag}/experts`` (``fold{k}_seed{s}.pt`` and ``predictions.npz``).
    mae_path : path
        The ``mae.pt`` the stage was trained on.

    Returns
    -------
    dict
        ``test_logits (n_folds, n_test, n_chans)``, ``test_course (n_folds, n_test, n_chans, T)`` and
        ``test (n_test, n_times)`` (P(emotional) of the experts' mean trial logit), the same numbers the stage
        wrote for its test trials.

    Raises
    ------
    KitError
        A checkpoint missing, from another config or MAE, or for another number of channels.
    """
    stage_dir = Path(stage_dir)
    dev = get_device(device)
    mae, mcfg = load_mae(mae_path)
    mae = mae.to(dev)
    done = load_npz(stage_dir / "predictions.npz")
    n_folds, n_seeds = done["steps"].shape
    found = sorted(stage_dir.glob("fold0_seed*.pt"))
    if not found:
        raise KitError(f"{stage_dir}: no expert checkpoint fold0_seed*.pt; run notebook 03 first")
    cfg = load_checkpoint(found[0], ExpertsConfig)["config"]
    stamp = run_hash(cfg, mcfg, mae)
    fold_states = []
    for k in range(n_folds):
        seed_states = []
        for si in range(n_seeds):
            path = stage_dir / f"fold{k}_seed{cfg.seed + si}.pt"
            state = load_checkpoint(path)
            if state.get("run_hash") != stamp:
                raise KitError(f"{path}: trained on another MAE or config than {mae_path}; rerun notebook 03")
            if state["bank_sizes"]["n_chans"] != features.shape[1]:
                raise KitError(f"{path}: experts for {state['bank_sizes']['n_chans']} channels, the data has "
                               f"{features.shape[1]}")
            seed_states.append(head_state(state["state_dict"]))
        fold_states.append(seed_states)
    x = pool_time(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)), mcfg.pool, dim=2)
    x = head_inputs(mae, x, batch=cfg.batch)
    logits, course = expert_test_outputs(x, fold_states, batch=cfg.batch, device=dev)
    out = {"test_logits": logits, "test_course": course}
    out["test"] = experts_probabilities({"oof_logits": logits[0], "test_logits": logits}, features.shape[2])["test"]
    return out


def train_experts_loso(features: np.ndarray, y: np.ndarray, subject: np.ndarray, is_test: np.ndarray,
                       cfg: ExpertsConfig, mae_path: str | os.PathLike, out_dir: str | os.PathLike,
                       *, device: str | None = None, progress: bool = True,
                       n_groups: int | None = CROSSFIT_GROUPS, tokens: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Fit the experts of every LOSO fold (and every cross-fit model); save weights and predictions.

    Parameters
    ----------
    features : ndarray, shape (n_trials, n_chans, n_times, n_features)
        :func:`kit.signal.sequences.deep_features` of all trials (training and test subjects).
    y : ndarray, shape (n_trials,)
        1 emotional, 0 neutral, -1 for test trials (never read for them).
    subject : ndarray, shape (n_trials,)
    is_test : ndarray of bool, shape (n_trials,)
    cfg : ExpertsConfig
    mae_path : path
        ``mae.pt`` of stage 02 (its config fixes the encoder sizes and pooling).
    out_dir : path
        Writes ``fold{k}_seed{s}.pt`` per fold and seed, ``inner_{name}_seed{s}.pt``
        per cross-fit model (:func:`kit.eval.crossfit.crossfit_plan`) and seed, each
        loadable alone with :func:`load_bank` (when every checkpoint exists
        with this config and MAE, nothing is refitted), and ``predictions.npz``:

        - ``oof (n_train, n_times)``, ``test (n_test, n_times)``,
          ``inner (n_groups, n_train, n_times)``: P(emotional) of the experts'
          mean trial logit, copied to every sample (what the ensemble blends);
        - ``oof_logits (n_train, n_chans)``, ``oof_course (n_train, n_chans, T)``,
          ``oof_attention (n_train, n_chans, T)``: each expert's trial logit,
          per-sample logit and attention at model resolution ``T``;
        - ``test_logits (n_folds, n_test, n_chans)``, ``test_course (n_folds, n_test, n_chans, T)``:
          every fold's test outputs (fusion applies fold k's model to fold k's);
        - ``inner_logits (n_groups, n_train, n_chans)``, ``inner_course``, ``inner_group (n_train,)``:
          the cross-fitted outputs (fusion is fitted on these, never on in-sample outputs);
        - ``steps (n_folds, n_seeds)`` chosen by early stopping, ``subject``, ``y``, ``test_subject``.
    n_groups : int or None
        Groups of the cross-fitting plan; None skips those models.
    tokens : ndarray, shape (n_trials, n_chans, T, D + K), optional
        :func:`head_inputs` of every trial (dataset order) on this ``mae_path``, computed by the caller
        (:meth:`kit.pipeline.run.Run.mae_tokens`); default: encoded here.

    Returns
    -------
    dict
        The arrays written to ``predictions.npz``.

    Raises
    ------
    KitError
        Unknown ``meta``, or a non-finite loss.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = get_device(device)
    mae, mcfg = load_mae(mae_path)
    mae = mae.to(dev)
    n_times, n_chans = features.shape[2], features.shape[1]
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if tokens is not None:  # (n, E, T, D + K): the encoder's rows do not depend on the other trials of a pass
        x_tr, x_te = torch.from_numpy(tokens[train]), torch.from_numpy(tokens[test])
    else:  # the test trials in their own encoder pass, as predict_experts_test makes it
        x = pool_time(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)), mcfg.pool, dim=2)
        x_tr, x_te = head_inputs(mae, x[train], batch=cfg.batch), head_inputs(mae, x[test], batch=cfg.batch)
    y_tr, s_tr = y[train].astype(np.int64), subject[train]
    sids = np.unique(s_tr)
    T = x_tr.shape[2]
    group, fits = crossfit_plan(s_tr, n_groups) if n_groups else (None, [])
    seeds = [cfg.seed + i for i in range(cfg.n_seeds)]
    names = [(f"fold{k}", np.flatnonzero(s_tr != held)) for k, held in enumerate(sids)]
    names += [(f"inner_{fit.name}", fit.train) for fit in fits]
    jobs = [Job(f"{n}_seed{s}", rows, 1000 * s + i) for s in seeds for i, (n, rows) in enumerate(names)]
    stamp = run_hash(cfg, mcfg, mae)
    ckpts = [out_dir / f"{j.name}.pt" for j in jobs]
    if all(reusable(c, stamp) for c in ckpts):
        states = [load_checkpoint(c)["state_dict"] for c in ckpts]
        states = [head_state(st) for st in states]
        steps = np.array([load_checkpoint(c)["steps"] for c in ckpts])
    else:
        states, info = fit_heads(x_tr, y_tr, s_tr, jobs, cfg, device=dev, progress=progress)
        steps = info["steps"]
        for j, c, st, n in zip(jobs, ckpts, states, steps):
            save_bank(c, st, mae, n_chans, cfg, mcfg, run_hash=stamp, steps=int(n),
                      trained_on=[int(v) for v in np.unique(s_tr[j.rows])])
    head = AttentionPoolHead(n_chans, x_tr.shape[3], T, len(jobs))
    head.load_state_dict(model_stack(states))
    head = head.to(dev)
    n_names = len(names)
    # the rows each model predicts: a fold its held-out subject, a cross-fit model its groups
    rows = [np.flatnonzero(s_tr == sids[i]) if i < len(sids) else fits[i - len(sids)].predict
            for i in range(n_names)]
    outs = [predict_model(head, m, x_tr[rows[m % n_names]], batch=cfg.batch) for m in range(len(jobs))]
    fold_states = [[states[si * n_names + k] for si in range(len(seeds))] for k in range(len(sids))]
    test_logits, test_course = expert_test_outputs(x_te, fold_states, batch=cfg.batch, device=dev)

    def mean(i, part):  # model i's outputs on its rows, averaged over seeds
        return np.mean([outs[i + s * n_names][part] for s in range(len(seeds))], axis=0)

    oof_logits = np.zeros((len(train), n_chans), np.float32)
    oof_course = np.zeros((len(train), n_chans, T), np.float32)
    oof_att = np.zeros((len(train), n_chans, T), np.float32)
    for k, held in enumerate(sids):
        v = s_tr == held
        oof_logits[v], oof_course[v], oof_att[v] = (mean(k, part) for part in range(3))
    arrays = dict(oof_logits=oof_logits, oof_course=oof_course, oof_attention=oof_att, test_logits=test_logits,
                  test_course=test_course, steps=steps.reshape(len(seeds), n_names)[:, : len(sids)].T,
                  subject=s_tr, y=y[train], test_subject=subject[test])
    if fits:
        inner_logits = np.full((group.max() + 1, len(train), n_chans), np.nan, np.float32)
        inner_course = np.full((group.max() + 1, len(train), n_chans, T), np.nan, np.float32)
        for j, fit in enumerate(fits):
            fit.place(inner_logits, mean(len(sids) + j, 0))
            fit.place(inner_course, mean(len(sids) + j, 1))
        arrays.update(inner_logits=inner_logits, inner_course=inner_course, inner_group=group)
    arrays.update(experts_probabilities(arrays, n_times))
    save_npz(out_dir / "predictions.npz", **arrays)
    return arrays
