"""Stage 03: sixteen channel experts on the MAE encoder, meta-trained across subjects, leave-one-subject-out.

Each expert reads one channel: at every model sample, the stage-02 MAE
encoder's token beside the features it encodes, pooled over time by
attention (:class:`kit.deep.nets.AttentionPoolHead`) into one logit per trial;
the loss is taken on that trial logit.  The encoder is frozen, so its tokens
are computed once for every trial and only the heads train: every LOSO fold,
cross-fit model and seed is one model of a single batched computation (a
model axis beside the expert axis), which takes seconds on a CPU.

Meta-learning (:mod:`kit.deep.maml`) is one flag, ``meta``: ``"mldg"`` adapts on
support subjects and takes the outer loss on another subject, the zero-shot
transfer a held-out subject needs (it has no labels); ``"fomaml"`` is the 3rd
place's first-order MAML (support and query from one subject); ``"none"`` is
plain multi-subject training.  Each model's number of outer steps is chosen
by early stopping on an inner split of its own training subjects (never the
held-out one); with ``refit`` a twin model trained on all its training
subjects is taken at that step.  ``n_seeds`` seeds are averaged in logit space.

Sources: the competition's 3rd place (16 MAE-initialised channel experts,
subjects as tasks); Li et al., "Learning to generalize: meta-learning for
domain generalization", AAAI 2018 (MLDG); Finn et al., ICML 2017 and Nichol et
al. 2018 (first-order MAML); Ilse et al., ICML 2018 (attention pooling);
Raghu et al., ICLR 2020 (adapting the head only, ANIL).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit
from tqdm.auto import tqdm

from kit.core.errors import CheckpointError, KitError
from kit.core.runtime import keeps_global_rng, seed_everything
from kit.deep.mae import MAEConfig
from kit.deep.maml import META_MODES, draw_step, outer_loss, subject_tasks
from kit.deep.nets import AttentionPoolHead, ExpertBank, MaskedAutoencoder, model_slice
from kit.eval.metric import subject_auc
from kit.store.artifacts import config_hash, load_checkpoint, save_checkpoint


@dataclass
class ExpertsConfig:
    """Channel experts and their meta-training (defaults = the ``quick`` profile)."""

    meta: str = "none"  # "none" (plain multi-subject training), "mldg" or "fomaml" (the lever table compares them)
    inner_steps: int = 3  # inner SGD steps on the support set (3rd place: 3)
    inner_lr: float = 0.5  # inner-loop SGD step size
    meta_batch: int = 4  # subjects per outer step (per model)
    n_support: int = 32  # trials per subject in a support set
    n_query: int = 32  # trials per subject in a query set
    max_steps: int = 800  # most outer steps; early stopping picks fewer
    eval_every: int = 25  # outer steps between two validation scores
    patience: int = 6  # stop when the models' mean validation AUC has not improved for this many evaluations (0 = never)
    val_share: float = 0.25  # share of a model's training subjects held out for early stopping (0 = off)
    refit: bool = True  # predict with a twin fitted on all training subjects, taken at the early-stopped step (2x the cost)
    lr: float = 3e-3  # Adam learning rate of the heads
    prior_lr: float = 3e-2  # Adam learning rate of the attention's time prior (a smooth, shared curve)
    weight_decay: float = 1e-2  # decoupled weight decay (AdamW) of the heads, not of the time prior
    n_seeds: int = 1  # seeds averaged in logit space (head initialisation and trial sampling)
    seed: int = 0  # first seed
    batch: int = 256  # trials per forward pass when encoding or predicting


@torch.no_grad()
def head_inputs(mae: MaskedAutoencoder, x: torch.Tensor, *, batch: int = 256) -> torch.Tensor:
    """What the heads read: frozen encoder tokens beside the features, ``(n, E, T, K)`` -> ``(n, E, T, D + K)``.

    Every channel goes through the one MAE encoder, unmasked, in eval mode (no dropout).
    """
    mae = mae.eval()
    dev = next(mae.parameters()).device
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch].to(dev)
        n, E, T, K = xb.shape
        h = mae.encoder(xb.reshape(n * E, 1, T, K)).reshape(n, E, T, -1)  # (n, E, T, D)
        out.append(torch.cat([h, xb], dim=-1).cpu())
    return torch.cat(out)


def val_split(sids: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Subjects held out for early stopping: ``round(share * n)`` of ``sids`` (1 to n - 2), drawn with ``seed``."""
    n_val = min(max(1, int(round(share * len(sids)))), len(sids) - 2)
    return np.sort(np.random.default_rng(seed).choice(sids, size=n_val, replace=False))


@dataclass
class Job:
    """One model to fit: its training rows and seed (a LOSO fold, a cross-fit model)."""

    name: str  # checkpoint stem, e.g. "fold3" or "inner_g0g2"
    rows: np.ndarray  # training rows (positions in the training trials)
    seed: int


@torch.no_grad()
def predict_heads(head: AttentionPoolHead, x: torch.Tensor, *,
                  batch: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every model on every trial of ``x (n, E, T, d)``: trial logits ``(M, n, E)``, per-sample logits and
    attention ``(M, n, E, T)``, float32."""
    head.eval()
    dev = head.weight.device
    parts = [[t.cpu() for t in head.detail(x[i : i + batch].to(dev))] for i in range(0, len(x), batch)]
    return tuple(torch.cat([p[j] for p in parts], dim=1).numpy() for j in range(3))


@torch.no_grad()
def trial_logits(head: AttentionPoolHead, x: torch.Tensor, models: slice = slice(None), *,
                 batch: int = 256) -> np.ndarray:
    """The trial logits ``(n_models, n, E)`` of the head's ``models`` on ``x (n, E, T, d)``, float32: what
    :func:`predict_heads` gives them, without the per-sample outputs (early stopping reads only these)."""
    head.eval()
    dev = head.weight.device
    return torch.cat([head.detail(x[i : i + batch].to(dev), models)[0].cpu() for i in range(0, len(x), batch)],
                     dim=1).numpy()


@torch.no_grad()
def predict_model(head: AttentionPoolHead, m: int, x: torch.Tensor, *,
                  batch: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model ``m`` of ``head`` alone on ``x (n, E, T, d)``: trial logits ``(n, E)``, per-sample logits and
    attention ``(n, E, T)``, float32."""
    _, _, E, d = head.weight.shape
    one = AttentionPoolHead(E, d, head.time_prior.shape[1], 1).to(head.weight.device)
    one.load_state_dict(head.model_state(m))
    return tuple(a[0] for a in predict_heads(one, x, batch=batch))


@keeps_global_rng
def fit_heads(x: torch.Tensor, y: np.ndarray, subject: np.ndarray, jobs: list[Job], cfg: ExpertsConfig, *,
              device: torch.device, progress: bool = True) -> tuple[list[dict], dict]:
    """Fit the heads of every job at once on shared minibatches, with early stopping.

    The model axis holds, per job, an early-stopping model trained without its
    validation subjects (``val_share`` of the job's subjects) and, with
    ``refit`` (or when the job has too few subjects to split), a twin trained
    on all the job's subjects; each job takes its twin (or itself) at the
    step where its validation AUC peaked.

    Parameters
    ----------
    x : Tensor, shape (n_trials, E, T, d)
        :func:`head_inputs` of the training trials.
    y, subject : ndarray, shape (n_trials,)
    jobs : list of Job
    cfg : ExpertsConfig
    progress : bool
        A tqdm bar over the outer steps with the loss and the mean validation AUC.

    Returns
    -------
    states : list of dict
        Per job, the state of a one-model :class:`AttentionPoolHead`.
    info : dict
        ``steps (n_jobs,)`` chosen by early stopping, ``val (n_early, n_evals)``
        validation AUCs, ``eval_steps (n_evals,)``, ``loss`` per outer step.

    Raises
    ------
    KitError
        Unknown ``meta``, or a non-finite loss.
    """
    if cfg.meta not in META_MODES:
        raise KitError(f"ExpertsConfig.meta must be one of {META_MODES}, got {cfg.meta!r}")
    n_trials, E, T, d = x.shape
    order, allowed, val_rows = [], [], {}
    for m, j in enumerate(jobs):
        sids = np.unique(subject[j.rows])
        if cfg.val_share > 0 and len(sids) >= 4:
            held = val_split(sids, cfg.val_share, j.seed)
            val_rows[m] = j.rows[np.isin(subject[j.rows], held)]
            order.append(("val", m))
            allowed.append(np.isin(subject, np.setdiff1d(sids, held)))
    for m, j in enumerate(jobs):
        if cfg.refit or m not in val_rows:
            order.append(("twin", m))
            allowed.append(np.isin(subject, np.unique(subject[j.rows])))
    early = list(val_rows)
    seed_everything(cfg.seed + jobs[0].seed)
    head = AttentionPoolHead(E, d, T, len(order)).to(device)
    opt = torch.optim.AdamW([{"params": [head.weight, head.bias], "lr": cfg.lr},
                             {"params": [head.time_prior], "lr": cfg.prior_lr, "weight_decay": 0.0}],
                            weight_decay=cfg.weight_decay)
    xd, yd = x.to(device), torch.from_numpy(y.astype(np.float32)).to(device)
    allowed_t = torch.from_numpy(np.stack(allowed).astype(np.float32)).to(device)  # (M, n_trials)
    tasks = subject_tasks(y, subject)
    rng = np.random.default_rng(cfg.seed + jobs[0].seed)
    eval_steps = list(range(cfg.eval_every, cfg.max_steps + 1, cfg.eval_every))
    if not eval_steps or eval_steps[-1] != cfg.max_steps:
        eval_steps.append(cfg.max_steps)
    val = np.full((len(early), len(eval_steps)), np.nan)
    val_all = np.unique(np.concatenate(list(val_rows.values()))) if early else np.zeros(0, np.int64)
    snaps, losses = [], []
    bar = tqdm(range(1, cfg.max_steps + 1), disable=not progress, desc=f"experts: {len(jobs)} models ({cfg.meta})",
               unit="step", dynamic_ncols=True)
    head.train()
    for step in bar:
        opt.zero_grad(set_to_none=True)
        drawn = [(torch.from_numpy(s).to(device), None if q is None else torch.from_numpy(q).to(device))
                 for s, q in draw_step(tasks, rng, cfg)]
        loss = outer_loss(head, xd, yd, allowed_t, drawn, cfg)
        if not torch.isfinite(loss):
            bar.close()
            raise KitError(f"experts: outer loss is {loss.item()} at step {step} ({cfg.meta}); stopping")
        loss.backward()
        opt.step()
        losses.append(loss.item() / len(order))
        if step in eval_steps:
            e = eval_steps.index(step)
            snaps.append({k: v.detach().clone() for k, v in head.state_dict().items()})
            if early:
                # the validation models are the head's first len(early) (order), scored alone: (n_early, n_val_all)
                trial = trial_logits(head, xd[val_all], slice(0, len(early)), batch=cfg.batch).mean(axis=2)
                pos = {r: i for i, r in enumerate(val_all)}
                for i, m in enumerate(early):
                    cols = [pos[r] for r in val_rows[m]]
                    val[i, e] = subject_auc(trial[i, cols], y[val_rows[m]], subject[val_rows[m]])
            head.train()
            last_gain = int(np.nanargmax(np.nanmean(val[:, : e + 1], axis=0))) if early else e
            if cfg.patience and early and e - last_gain >= cfg.patience:
                val, eval_steps = val[:, : e + 1], eval_steps[: e + 1]
                break
        post = {"loss": f"{np.mean(losses[-25:]):.4f}"}
        if early and snaps:
            post["val_auc"] = f"{np.nanmean(val[:, len(snaps) - 1]):.3f}"
        bar.set_postfix(post, refresh=False)
    bar.close()
    best = {m: int(np.nanargmax(val[i])) for i, m in enumerate(early)}
    states, steps = [], []
    for m in range(len(jobs)):
        e = best.get(m, len(eval_steps) - 1)
        src = order.index(("twin", m)) if ("twin", m) in order else order.index(("val", m))
        states.append(model_slice(snaps[e], src))
        steps.append(eval_steps[e])
    return states, {"steps": np.array(steps), "val": val, "eval_steps": np.array(eval_steps), "loss": losses}


def bank_sizes(n_chans: int, mcfg: MAEConfig) -> dict:
    """Constructor arguments of :class:`ExpertBank` for ``n_chans`` experts on the MAE's sizes."""
    return dict(n_chans=n_chans, n_times=mcfg.seq_len, n_features=mcfg.n_features, d_model=mcfg.d_model,
                n_heads=mcfg.n_heads, d_ff=mcfg.d_ff, n_layers=mcfg.n_layers, dropout=mcfg.dropout)


def save_bank(path: str | os.PathLike, head_state: dict, mae: MaskedAutoencoder, n_chans: int,
              cfg: ExpertsConfig, mcfg: MAEConfig, **extra) -> Path:
    """Write one fitted bank (its head, the frozen MAE encoder once, configs and sizes) for :func:`load_bank`."""
    return save_checkpoint(path, {f"head.{k}": v for k, v in head_state.items()}, cfg,
                           bank_sizes=bank_sizes(n_chans, mcfg), mae_config=asdict(mcfg),
                           shared_encoder={k: v.detach().clone() for k, v in mae.encoder.state_dict().items()},
                           **extra)


def load_bank(path: str | os.PathLike) -> tuple[ExpertBank, ExpertsConfig]:
    """Rebuild one fitted expert bank, and its config, from its checkpoint alone.

    Raises
    ------
    CheckpointError
        Missing, unreadable or foreign file (:func:`kit.store.artifacts.load_checkpoint`).
    """
    state = load_checkpoint(path, ExpertsConfig)
    bank = ExpertBank(**state["bank_sizes"])
    weights = dict(state["state_dict"])
    for k, v in state["shared_encoder"].items():  # the one frozen encoder, copied into every expert
        weights[f"encoder.{k}"] = v.expand_as(bank.encoder.state_dict()[k]).clone()
    bank.load_state_dict(weights)
    return bank.eval(), state["config"]


def reusable(ckpt: Path, run_hash: str) -> bool:
    """True when a checkpoint exists, loads, and was written for this config and MAE (``run_hash``)."""
    if not ckpt.exists():
        return False
    try:
        return load_checkpoint(ckpt).get("run_hash") == run_hash
    except CheckpointError:  # another kit version or a damaged file: train again
        return False


def expert_test_outputs(x: torch.Tensor, fold_states: list[list[dict]], *, batch: int = 256,
                        device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every LOSO fold's experts on the test trials, averaged over seeds.

    Parameters
    ----------
    x : Tensor, shape (n_test, E, T, d)
        :func:`head_inputs` of the test trials (their own encoder pass).
    fold_states : list over folds of list over seeds of dict
        One-model head states (as saved in ``fold{k}_seed{s}.pt`` without the ``head.`` prefix).
    batch : int
    device : torch.device, optional

    Returns
    -------
    test_logits : ndarray, shape (n_folds, n_test, E), float32
    test_course : ndarray, shape (n_folds, n_test, E, T), float32
    """
    n, E, T, d = x.shape
    logits = np.zeros((len(fold_states), n, E), np.float32)
    course = np.zeros((len(fold_states), n, E, T), np.float32)
    for k, seed_states in enumerate(fold_states):
        outs = []
        for state in seed_states:
            one = AttentionPoolHead(E, d, T, 1)
            one.load_state_dict(state)
            outs.append(predict_model(one.to(device or "cpu"), 0, x, batch=batch))
        logits[k] = np.mean([o[0] for o in outs], axis=0)
        course[k] = np.mean([o[1] for o in outs], axis=0)
    return logits, course


def head_state(state_dict: dict) -> dict:
    """A ``fold{k}_seed{s}.pt`` checkpoint's ``state_dict`` as a one-model head state (the ``head.`` prefix off)."""
    return {k[len("head."):]: v for k, v in state_dict.items()}


def run_hash(cfg: ExpertsConfig, mcfg: MAEConfig, mae: MaskedAutoencoder) -> str:
    """What an expert checkpoint was trained for: its config, the MAE's config and the MAE's weights."""
    return config_hash({"experts": asdict(cfg), "mae": asdict(mcfg), "mae_weights": weights_hash(mae.state_dict())})


def weights_hash(state_dict: dict) -> str:
    """Content hash of a state dict's tensors (16 hex characters).

    Checkpoints fitted on other MAE weights are not reused, nor encoder tokens cached for them
    (:meth:`kit.pipeline.run.Run.mae_tokens`). The weights, not the ``mae.pt`` file, are hashed: the file also
    carries the MAE's training history with wall times, which differ between two otherwise identical runs and
    would make the expert checkpoints and the cache's file names differ.
    """
    import hashlib

    h = hashlib.blake2b(digest_size=8)
    for name in sorted(state_dict):
        h.update(name.encode())
        h.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def experts_probabilities(arrays: dict, n_times: int) -> dict[str, np.ndarray]:
    """The experts as one ensemble component: P(emotional) of their mean trial logit on every sample.

    ``oof (n_train, n_times)``, ``test (n_test, n_times)`` (mean over folds of
    the trial logit) and, where present, ``inner (n_groups, n_train, n_times)``.
    """
    def flat(logits):  # (..., n_chans) -> (..., n_times)
        p = expit(logits.mean(axis=-1, dtype=np.float64))
        return np.repeat(p[..., None], n_times, axis=-1).astype(np.float32)

    out = {"oof": flat(arrays["oof_logits"]), "test": flat(arrays["test_logits"].mean(axis=0))}
    if "inner_logits" in arrays:
        out["inner"] = flat(arrays["inner_logits"])
    return out
