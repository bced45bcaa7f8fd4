"""Stage 03: sixteen channel experts meta-trained with first-order MAML, leave-one-subject-out.

A *task* is one training subject: its trials are split into a ``support``
set and a disjoint ``query`` set (balanced classes).  The ``inner`` loop
(:func:`fast_adapt`) takes ``inner_steps`` SGD steps on the support loss;
the ``outer`` loop updates the shared initialisation with the query loss of
the adapted weights, averaged over ``meta_batch`` subjects.  With
``first_order=True`` (FOMAML) the inner gradients are not differentiated
through; ``inner_steps=0`` turns the procedure into plain multi-subject
training of the MAE-initialised experts (the "no meta-learning" ablation).

The held-out subject has no labels at prediction time (as the test
subjects), so it is scored by the meta-learned initialisation itself.

Sources: Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning", ICML 2017
(first-order approximation, section 5.2); learn2learn's ``fast_adapt``
pattern; Raghu et al., "Rapid Learning or Feature Reuse?", ICLR 2020
(``inner_params="head"``, ANIL); the competition's 3rd place (16 experts,
3 inner steps, subjects as tasks).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from .artifacts import config_hash, load_checkpoint, save_checkpoint, save_npz
from .cv import CROSSFIT_GROUPS, crossfit_plan
from .errors import CheckpointError, KitError
from .mae import load_mae
from .models import ExpertBank, pool_time, upsample_time
from .runtime import get_device, seed_everything


@dataclass
class MAMLConfig:
    """First-order MAML for the channel experts (defaults = ``full`` profile)."""

    inner_steps: int = 3  # SGD steps on the support set (0 = no meta-learning)
    inner_lr: float = 0.05  # inner-loop SGD step size
    inner_params: str = "all"  # "all" (MAML) or "head" (ANIL: only the output heads take inner steps)
    first_order: bool = True  # FOMAML: do not differentiate through the inner steps
    outer_steps: int = 300  # outer (meta) updates per fold
    outer_lr: float = 1e-3  # AdamW learning rate of the outer loop
    weight_decay: float = 0.01  # AdamW weight decay
    meta_batch: int = 4  # subjects (tasks) per outer update
    n_support: int = 32  # support trials per task (half per class)
    n_query: int = 32  # query trials per task (half per class)
    init: str = "mae"  # "mae" (encoder from stage 02) or "random"
    aug_shift: int = 0  # max random time shift of a training trial, in model samples (0 = off)
    aug_mask: float = 0.0  # share of samples set to 0 (the z-scored mean) in a random span (0 = off)
    aug_offset: float = 0.0  # sd of a random per-trial, channel and band offset of the z-scored power (0 = off)
    predict_batch: int = 256  # trials per forward pass at prediction time
    seed: int = 0  # seeds task sampling, dropout and the heads' initialisation


def bce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of per-sample logits ``(B, n_chans, T)`` against trial labels ``(B,)``."""
    target = y.to(logits.dtype)[:, None, None].expand_as(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def fast_adapt(model: torch.nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
               *, steps: int, lr: float, first_order: bool = True,
               adapt: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
    """Inner loop: ``steps`` SGD steps on ``(x, y)`` from ``params``; a pure function.

    Parameters
    ----------
    model : nn.Module
        Evaluated with :func:`torch.func.functional_call` on ``params``.
    params : dict
        Starting weights (the meta-initialisation, usually ``dict(model.named_parameters())``).
    x : Tensor, shape (B, n_chans, T, n_bands)
    y : Tensor, shape (B,)
    steps, lr : int, float
        Number of steps and step size.
    first_order : bool
        If True the gradients are treated as constants, so the gradient of a
        later loss with respect to ``params`` is the FOMAML gradient
        (that loss's gradient at the adapted weights).  If False the graph
        of the inner steps is kept (second-order MAML).
    adapt : tuple of str, optional
        Names of the parameters to adapt (default: all).

    Returns
    -------
    dict
        The adapted weights (same keys as ``params``).
    """
    names = tuple(params) if adapt is None else adapt
    for _ in range(steps):
        loss = bce_loss(functional_call(model, params, (x,)), y)
        grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=not first_order)
        params = {**params, **{n: params[n] - lr * g for n, g in zip(names, grads)}}
    return params


def sample_task(idx_neg: np.ndarray, idx_pos: np.ndarray, n_support: int, n_query: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint, class-balanced support and query trial indices of one subject.

    Sizes shrink proportionally when the subject has too few trials of a class.
    """
    half_s, half_q = n_support // 2, n_query // 2
    support, query = [], []
    for idx in (idx_neg, idx_pos):
        perm = rng.permutation(idx)
        k = len(perm) * half_s // max(half_s + half_q, 1) if len(perm) < half_s + half_q else half_s
        support.append(perm[:k])
        query.append(perm[k : k + half_q])
    return np.concatenate(support), np.concatenate(query)


def augment(x: torch.Tensor, cfg: MAMLConfig, gen: torch.Generator) -> torch.Tensor:
    """Random augmentations of band-feature trials ``(B, n_chans, T, n_bands)`` for training.

    Time shift (edge-padded roll by up to ``aug_shift`` samples), one masked
    span of ``aug_mask`` x T samples per trial (set to 0, the z-scored mean),
    and a per-trial, channel and band offset with sd ``aug_offset``.  Masking
    and cropping-like shifts are among the most useful EEG augmentations in
    Rommel et al., J Neural Eng 2022 and the SimpleSleepNet study.
    """
    B, _, T, _ = x.shape
    if cfg.aug_shift > 0:
        shifts = torch.randint(-cfg.aug_shift, cfg.aug_shift + 1, (B,), generator=gen)
        t = (torch.arange(T)[None, :] - shifts[:, None]).clamp(0, T - 1)  # (B, T) source sample
        x = torch.gather(x, 2, t[:, None, :, None].expand_as(x))
    if cfg.aug_mask > 0:
        width = max(1, int(round(cfg.aug_mask * T)))
        start = torch.randint(0, T - width + 1, (B,), generator=gen)
        t = torch.arange(T)[None, :]
        keep = ~((t >= start[:, None]) & (t < start[:, None] + width))  # (B, T)
        x = x * keep[:, None, :, None].to(x.dtype)
    if cfg.aug_offset > 0:
        x = x + cfg.aug_offset * torch.randn(B, x.shape[1], 1, x.shape[3], generator=gen)
    return x


def task_loss(model: ExpertBank, xs: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor, yq: torch.Tensor,
              cfg: MAMLConfig, *, shortcut: bool = True) -> torch.Tensor:
    """Query loss of one task after the inner loop; its gradient is the task's outer gradient.

    ``xs (n_support, n_chans, T, n_bands)``, ``ys (n_support,)``, ``xq``/``yq`` likewise.
    With ``inner_params="head"`` and ``first_order`` the encoder is fixed in
    the inner loop, so (``shortcut=True``) its support features are computed
    once and only the heads take the inner steps; this equals the generic
    path (``shortcut=False``) and costs one encoder pass instead of
    ``inner_steps``.

    Raises
    ------
    KitError
        Unknown ``cfg.inner_params``.
    """
    if cfg.inner_params not in ("all", "head"):
        raise KitError(f"MAMLConfig.inner_params must be 'all' or 'head', got {cfg.inner_params!r}")
    if shortcut and cfg.inner_params == "head" and cfg.first_order:
        with torch.no_grad():
            hs = model.encoder(xs)  # (B, E, T, D), a constant for the inner loop
        head = fast_adapt(model.head, dict(model.head.named_parameters()), hs, ys,
                          steps=cfg.inner_steps, lr=cfg.inner_lr, first_order=True)
        return bce_loss(functional_call(model.head, head, (model.encoder(xq),)), yq)
    adapt = tuple(n for n, _ in model.named_parameters() if n.startswith("head.")) if cfg.inner_params == "head" else None
    params = fast_adapt(model, dict(model.named_parameters()), xs, ys, steps=cfg.inner_steps,
                        lr=cfg.inner_lr, first_order=cfg.first_order, adapt=adapt)
    return bce_loss(functional_call(model, params, (xq,)), yq)


def meta_train(model: ExpertBank, x: torch.Tensor, y: torch.Tensor, subject: np.ndarray,
               cfg: MAMLConfig, *, device: torch.device, progress: bool = False) -> list[float]:
    """Outer loop of (FO)MAML over the subjects in ``subject``.

    Parameters
    ----------
    model : ExpertBank
        Trained in place (its parameters are the meta-initialisation).
    x : Tensor, shape (n_trials, n_chans, T, n_bands)
        Pooled band features of the training subjects only.
    y : Tensor, shape (n_trials,)
    subject : ndarray, shape (n_trials,)

    Returns
    -------
    list of float
        Mean query loss of every outer step.

    Raises
    ------
    KitError
        If a query loss becomes NaN/inf.
    """
    rng = np.random.default_rng(cfg.seed)
    y_np = y.numpy()
    tasks = {s: (np.flatnonzero((subject == s) & (y_np == 0)), np.flatnonzero((subject == s) & (y_np == 1)))
             for s in np.unique(subject)}
    sids = np.array(sorted(tasks))
    if cfg.inner_params not in ("all", "head"):
        raise KitError(f"MAMLConfig.inner_params must be 'all' or 'head', got {cfg.inner_params!r}")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.outer_lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    augmenting = cfg.aug_shift > 0 or cfg.aug_mask > 0 or cfg.aug_offset > 0
    history = []
    model.train()
    for step in range(cfg.outer_steps):
        opt.zero_grad(set_to_none=True)
        batch = rng.choice(sids, size=min(cfg.meta_batch, len(sids)), replace=False)
        total = 0.0
        for s in batch:
            s_idx, q_idx = sample_task(*tasks[s], cfg.n_support, cfg.n_query, rng)
            xs, xq = x[s_idx], x[q_idx]
            if augmenting:
                xs, xq = augment(xs, cfg, gen), augment(xq, cfg, gen)
            q_loss = task_loss(model, xs.to(device), y[s_idx].to(device), xq.to(device), y[q_idx].to(device), cfg)
            if not torch.isfinite(q_loss):
                raise KitError(f"FOMAML query loss is {q_loss.item()} at outer step {step + 1}; stopping")
            (q_loss / len(batch)).backward()  # accumulates the outer gradient over tasks
            total += q_loss.item() / len(batch)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        history.append(total)
        if progress and (step + 1) % max(1, cfg.outer_steps // 5) == 0:
            print(f"  outer step {step + 1}/{cfg.outer_steps}: query loss {np.mean(history[-10:]):.4f}")
    return history


@torch.no_grad()
def predict_bank(model: ExpertBank, x: torch.Tensor, n_times: int, *, batch: int = 256,
                 device: torch.device | None = None) -> np.ndarray:
    """P(emotional) of every expert: ``(n_trials, n_chans, T, n_bands)`` -> ``(n_trials, n_chans, n_times)`` float32."""
    device = device or next(model.parameters()).device
    model.eval()
    out = [torch.sigmoid(upsample_time(model(x[i : i + batch].to(device)), n_times)).cpu()
           for i in range(0, len(x), batch)]
    return torch.cat(out).numpy().astype(np.float32)


@torch.no_grad()
def bank_logits(model: ExpertBank, x: torch.Tensor, *, batch: int = 256) -> torch.Tensor:
    """Expert logits at the model's resolution: ``(n_trials, n_chans, T)`` (used by fusion)."""
    device = next(model.parameters()).device
    model.eval()
    return torch.cat([model(x[i : i + batch].to(device)).cpu() for i in range(0, len(x), batch)])


def build_bank(n_chans: int, mae_path: str | os.PathLike | None, cfg: MAMLConfig, mae_cfg=None) -> ExpertBank:
    """An :class:`ExpertBank` with the MAE's sizes, encoders copied from ``mae_path`` if ``cfg.init == "mae"``."""
    mae, mcfg = load_mae(mae_path) if mae_path is not None else (None, mae_cfg)
    bank = ExpertBank(n_chans, mcfg.seq_len, mcfg.n_bands, mcfg.d_model, mcfg.n_heads, mcfg.d_ff,
                      mcfg.n_layers, mcfg.dropout)
    if cfg.init == "mae":
        if mae is None:
            raise KitError("init='mae' needs the MAE checkpoint of stage 02 (artifacts/<data>/mae/mae.pt)")
        bank.load_mae_encoder(mae)
    elif cfg.init != "random":
        raise KitError(f"MAMLConfig.init must be 'mae' or 'random', got {cfg.init!r}")
    return bank


def load_bank(path: str | os.PathLike) -> ExpertBank:
    """Rebuild a fold's expert bank from its checkpoint alone."""
    state = load_checkpoint(path)
    sizes = state["bank_sizes"]
    bank = ExpertBank(**sizes)
    bank.load_state_dict(state["state_dict"])
    return bank.eval()


def _reusable(ckpt: Path, chash: str) -> bool:
    """True when a fold checkpoint exists, loads, and was written for the config hash ``chash``."""
    if not ckpt.exists():
        return False
    try:
        return load_checkpoint(ckpt).get("config_hash") == chash
    except CheckpointError:  # another kit version or a damaged file: train the fold again
        return False


@dataclass
class TTAConfig:
    """Unsupervised test-time adaptation of the experts (a bench lever; off in the pipeline)."""

    steps: int = 20  # Adam steps of the MAE reconstruction loss on the held-out subject's trials
    lr: float = 3e-4  # Adam learning rate
    mask_ratio: float = 0.4  # share of samples masked per sequence, as in pretraining
    batch_size: int = 64  # trials per step (all 16 channels of each)
    seed: int = 0  # masking and minibatch order


def test_time_adapt(bank: ExpertBank, mae, x: torch.Tensor, cfg: TTAConfig = TTAConfig()) -> ExpertBank:
    """A copy of ``bank`` whose encoders took a few masked-reconstruction steps on unlabelled trials.

    Each expert's encoder is trained with its MAE's objective (stage 02:
    mask 40 % of the samples, reconstruct them with the MAE's mask token and
    linear head, mean squared error on the masked samples) on one subject's
    trials, so it adapts to that subject's statistics; the labels are never
    read and the logit heads stay as they are (test-time training: Sun et
    al., ICML 2020; with an MAE: Gandelsman et al., NeurIPS 2022).

    Parameters
    ----------
    bank : ExpertBank
        A trained fold's experts (left unchanged).
    mae : MaskedAutoencoder
        The stage-02 model (its ``mask_token`` and ``head`` are used, frozen).
    x : Tensor, shape (n_trials, n_chans, T, n_bands)
        One subject's pooled band features.
    cfg : TTAConfig

    Returns
    -------
    ExpertBank
        The adapted copy, in eval mode.

    Raises
    ------
    KitError
        A non-finite reconstruction loss.
    """
    import copy

    from .models import MaskedAutoencoder

    bank = copy.deepcopy(bank).train()
    opt = torch.optim.Adam(bank.encoder.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    dev = next(bank.parameters()).device
    token, head = mae.mask_token.detach().to(dev), mae.head.to(dev).requires_grad_(False)
    for step in range(cfg.steps):
        idx = torch.randperm(len(x), generator=gen)[: cfg.batch_size]
        xb = x[idx].to(dev)  # (b, E, T, K)
        b, E, T, _ = xb.shape
        mask = MaskedAutoencoder.random_masking(b * E, T, cfg.mask_ratio, gen).view(b, E, T).to(dev)
        h = bank.encoder.embed(xb)  # (b, E, T, D)
        h = torch.where(mask[..., None], token + bank.encoder.pos, h)
        loss = MaskedAutoencoder.forward_loss(xb, head(bank.encoder.encode(h)), mask)
        if not torch.isfinite(loss):
            raise KitError(f"test-time adaptation: loss is {loss.item()} at step {step + 1}; stopping")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return bank.eval()


def experts_mean(pred: np.ndarray) -> np.ndarray:
    """Average the experts in logit space: ``(n, n_chans, n_times)`` -> ``(n, n_times)`` probabilities."""
    return torch.sigmoid(torch.logit(torch.from_numpy(np.asarray(pred, np.float32)), eps=1e-6).mean(dim=1)).numpy()


def _fold_bank(ckpt: Path, chash: str, seed: int, x, y, s, cfg: MAMLConfig, mae_path, ckpt_meta: dict,
               dev) -> tuple[ExpertBank, str]:
    """Load the bank at ``ckpt`` if it was trained with config hash ``chash``; else meta-train and save it."""
    if _reusable(ckpt, chash):
        return load_bank(ckpt).to(dev), "loaded"
    seed_everything(seed)
    bank = build_bank(x.shape[1], mae_path, cfg).to(dev)
    hist = meta_train(bank, x, y, s, cfg, device=dev, progress=False)
    save_checkpoint(ckpt, bank.state_dict(), ckpt_meta["config"], bank_sizes=ckpt_meta["sizes"], history=hist,
                    trained_on=[int(v) for v in np.unique(s)])
    return bank, f"query loss {np.mean(hist[-10:]):.4f}"


def train_experts_loso(features: np.ndarray, y: np.ndarray, subject: np.ndarray, is_test: np.ndarray,
                       cfg: MAMLConfig, mae_path: str | os.PathLike, out_dir: str | os.PathLike,
                       *, device: str | None = None, progress: bool = True,
                       n_groups: int | None = CROSSFIT_GROUPS) -> dict[str, np.ndarray]:
    """Meta-train one expert bank per LOSO fold (and per cross-fit model); save weights and predictions.

    Parameters
    ----------
    features : ndarray, shape (n_trials, n_chans, n_times, n_bands)
        z-scored log band power of all trials (training and test subjects).
    y : ndarray, shape (n_trials,)
        1 emotional, 0 neutral, -1 for test trials (never read for them).
    subject : ndarray, shape (n_trials,)
    is_test : ndarray of bool, shape (n_trials,)
    cfg : MAMLConfig
    mae_path : path
        ``mae.pt`` of stage 02 (its config fixes the encoder sizes and pooling).
    out_dir : path
        Writes ``fold{k}_seed{s}.pt`` per fold, ``inner_{name}_seed{s}.pt`` per
        cross-fit model (a checkpoint that exists with the same config is not
        retrained: an interrupted run resumes) and ``predictions.npz`` with
        ``oof (n_train, n_chans, n_times)``, ``test (n_test, n_chans, n_times)``
        (mean over folds), and with ``n_groups``: ``inner (n_groups, n_train,
        n_times)`` (experts averaged in logit space) and ``inner_group (n_train,)``.
    n_groups : int or None
        Groups of the cross-fitting plan (:func:`kit.cv.crossfit_plan`) for the
        leak-free ensemble; None skips those models.

    Returns
    -------
    dict
        The arrays written to ``predictions.npz``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = get_device(device)
    _, mcfg = load_mae(mae_path)
    n_times = features.shape[2]
    x_all = pool_time(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)), mcfg.pool, dim=2)
    train = np.flatnonzero(~is_test)
    test = np.flatnonzero(is_test)
    x_tr, y_tr, s_tr = x_all[train], torch.from_numpy(y[train].astype(np.int64)), subject[train]
    sids = np.unique(s_tr)
    oof = np.zeros((len(train), features.shape[1], n_times), np.float32)
    test_pred = np.zeros((len(test), features.shape[1], n_times), np.float32)
    chash = config_hash({"maml": cfg.__dict__, "mae": mcfg.__dict__})
    meta = {"config": {"maml": cfg.__dict__, "mae": mcfg.__dict__},
            "sizes": dict(n_chans=features.shape[1], n_times=mcfg.seq_len, n_bands=mcfg.n_bands,
                          d_model=mcfg.d_model, n_heads=mcfg.n_heads, d_ff=mcfg.d_ff, n_layers=mcfg.n_layers,
                          dropout=mcfg.dropout)}
    for k, held in enumerate(sids):
        t0 = time.perf_counter()
        val = s_tr == held
        bank, note = _fold_bank(out_dir / f"fold{k}_seed{cfg.seed}.pt", chash, cfg.seed * 1000 + k,
                                x_tr[~val], y_tr[~val], s_tr[~val], cfg, mae_path, meta, dev)
        oof[val] = predict_bank(bank, x_tr[val], n_times, batch=cfg.predict_batch)
        test_pred += predict_bank(bank, x_all[test], n_times, batch=cfg.predict_batch) / len(sids)
        if progress:
            print(f"fold {k + 1}/{len(sids)} (held-out subject {held}): {note}, "
                  f"{time.perf_counter() - t0:.1f} s")
    arrays = dict(oof=oof, test=test_pred, subject=s_tr, y=y[train], test_subject=subject[test])
    if n_groups:
        group, fits = crossfit_plan(s_tr, n_groups)
        inner = np.full((group.max() + 1, len(train), n_times), np.nan, np.float32)
        for j, fit in enumerate(fits):
            t0 = time.perf_counter()
            bank, note = _fold_bank(out_dir / f"inner_{fit.name}_seed{cfg.seed}.pt", chash,
                                    cfg.seed * 1000 + 500 + j, x_tr[fit.train], y_tr[fit.train], s_tr[fit.train],
                                    cfg, mae_path, meta, dev)
            fit.place(inner, experts_mean(predict_bank(bank, x_tr[fit.predict], n_times, batch=cfg.predict_batch)))
            if progress:
                print(f"cross-fit model {j + 1}/{len(fits)} ({fit.name}): {note}, {time.perf_counter() - t0:.1f} s")
        arrays.update(inner=inner, inner_group=group)
    save_npz(out_dir / "predictions.npz", **arrays)
    return arrays
