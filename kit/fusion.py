"""Stage 04: spatiotemporal fusion of the 16 channel experts, leave-one-subject-out.

For LOSO fold k the fusion model reads the logits of fold k's expert bank
(stage 03), which never saw subject k, and is trained on the other training
subjects only; it then predicts subject k (out-of-fold) and the test
subjects (averaged over folds).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .artifacts import config_hash, load_checkpoint, save_checkpoint, save_npz
from .errors import KitError
from .mae import load_mae
from .cv import CROSSFIT_GROUPS, crossfit_plan
from .maml import _reusable, bank_logits, load_bank
from .models import SpatioTemporalFusion, pool_time, upsample_time
from .runtime import get_device, seed_everything


@dataclass
class FusionConfig:
    """Fusion model and its training (defaults used by both profiles unless overridden)."""

    n_filters: int = 4  # spatial maps mixed from the 16 experts
    kernel: int = 5  # temporal kernel in model samples (x pool = samples at 200 Hz)
    dropout: float = 0.25  # dropout after the spatial mixing
    epochs: int = 30  # passes over the training subjects' trials
    batch_size: int = 128  # trials per step
    lr: float = 3e-3  # AdamW learning rate
    weight_decay: float = 1e-2  # AdamW weight decay
    seed: int = 0  # seeds initialisation and batching


def build_fusion(cfg: FusionConfig, n_chans: int) -> SpatioTemporalFusion:
    """A fresh fusion model for ``n_chans`` experts."""
    return SpatioTemporalFusion(n_chans, cfg.n_filters, cfg.kernel, cfg.dropout)


def fit_fusion(z: torch.Tensor, y: torch.Tensor, cfg: FusionConfig) -> SpatioTemporalFusion:
    """Train a fusion model on expert logits ``z (n_trials, n_chans, T)`` and labels ``y (n_trials,)``.

    Raises
    ------
    KitError
        If the loss becomes NaN/inf.
    """
    gen = seed_everything(cfg.seed)
    model = build_fusion(cfg, z.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    yt = y.float()[:, None]
    model.train()
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(z), generator=gen)
        for i in range(0, len(z), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            logits = model(z[idx])  # (b, T)
            loss = F.binary_cross_entropy_with_logits(logits, yt[idx].expand_as(logits))
            if not torch.isfinite(loss):
                raise KitError(f"fusion loss is {loss.item()} at epoch {epoch + 1}; stopping")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def predict_fusion(model: SpatioTemporalFusion, z: torch.Tensor, n_times: int) -> np.ndarray:
    """P(emotional) ``(n_trials, n_times)`` from expert logits ``(n_trials, n_chans, T)``."""
    return torch.sigmoid(upsample_time(model(z), n_times)).numpy().astype(np.float32)


def train_fusion_loso(features: np.ndarray, y: np.ndarray, subject: np.ndarray, is_test: np.ndarray,
                      cfg: FusionConfig, experts_dir: str | os.PathLike, mae_path: str | os.PathLike,
                      out_dir: str | os.PathLike, *, seed: int = 0, progress: bool = True,
                      n_groups: int | None = CROSSFIT_GROUPS) -> dict[str, np.ndarray]:
    """Train one fusion model per LOSO fold on that fold's expert logits.

    Parameters
    ----------
    features : ndarray, shape (n_trials, n_chans, n_times, n_bands)
        Same band features as stage 03 (all trials).
    y, subject, is_test : ndarray, shape (n_trials,)
    cfg : FusionConfig
    experts_dir : path
        Stage-03 folder with ``fold{k}_seed{seed}.pt``.
    mae_path : path
        Stage-02 ``mae.pt`` (its config gives the pooling).
    out_dir : path
        Writes ``fold{k}_seed{seed}.pt`` and ``predictions.npz`` with
        ``oof (n_train, n_times)`` and ``test (n_test, n_times)``; with
        ``n_groups`` also ``inner_{name}_seed{seed}.pt`` per cross-fit model and
        ``inner (n_groups, n_train, n_times)``, ``inner_group (n_train,)``.
    n_groups : int or None
        Groups of the cross-fitting plan (must match stage 03's, whose
        ``inner_*`` banks it reads); None skips those models.

    Raises
    ------
    CheckpointError
        If a fold's expert checkpoint is missing (run stage 03 first).
    """
    out_dir, experts_dir = Path(out_dir), Path(experts_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _, mcfg = load_mae(mae_path)
    n_times = features.shape[2]
    x_all = pool_time(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)), mcfg.pool, dim=2)
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    s_tr, y_tr = subject[train], torch.from_numpy(y[train].astype(np.int64))
    sids = np.unique(s_tr)
    oof = np.zeros((len(train), n_times), np.float32)
    test_pred = np.zeros((len(test), n_times), np.float32)
    dev = get_device()
    chash = config_hash(cfg)

    def fit_or_load(ckpt, bank_path, rows, seed_k):
        """The fold's expert logits and its fusion model (loaded when already trained with this config)."""
        bank = load_bank(bank_path).to(dev)
        z_tr = bank_logits(bank, x_all[train])  # (n_train, n_chans, T)
        if _reusable(ckpt, chash):  # an interrupted run resumes at the first missing fold
            return bank, z_tr, load_fusion(ckpt)
        model = fit_fusion(z_tr[rows], y_tr[rows], FusionConfig(**{**asdict(cfg), "seed": seed_k}))
        save_checkpoint(ckpt, model.state_dict(), cfg, n_chans=int(z_tr.shape[1]),
                        trained_on=[int(v) for v in np.unique(s_tr[rows])])
        return bank, z_tr, model

    for k, held in enumerate(sids):
        t0 = time.perf_counter()
        val = s_tr == held
        bank, z_tr, model = fit_or_load(out_dir / f"fold{k}_seed{seed}.pt", experts_dir / f"fold{k}_seed{seed}.pt",
                                        ~val, cfg.seed * 1000 + k)
        oof[val] = predict_fusion(model, z_tr[val], n_times)
        test_pred += predict_fusion(model, bank_logits(bank, x_all[test]), n_times) / len(sids)
        if progress:
            print(f"fold {k + 1}/{len(sids)} (held-out subject {held}): {time.perf_counter() - t0:.1f} s")
    extra = {}
    if n_groups:
        group, fits = crossfit_plan(s_tr, n_groups)
        inner = np.full((group.max() + 1, len(train), n_times), np.nan, np.float32)
        for j, fit in enumerate(fits):
            _, z_tr, model = fit_or_load(out_dir / f"inner_{fit.name}_seed{seed}.pt",
                                         experts_dir / f"inner_{fit.name}_seed{seed}.pt", fit.train,
                                         cfg.seed * 1000 + 500 + j)
            fit.place(inner, predict_fusion(model, z_tr[fit.predict], n_times))
        extra = dict(inner=inner, inner_group=group)
    arrays = dict(oof=oof, test=test_pred, subject=s_tr, y=y[train], test_subject=subject[test], **extra)
    save_npz(out_dir / "predictions.npz", **arrays)
    return arrays


def load_fusion(path: str | os.PathLike) -> SpatioTemporalFusion:
    """Rebuild a fold's fusion model from its checkpoint alone."""
    state = load_checkpoint(path, FusionConfig)
    model = build_fusion(state["config"], state["n_chans"])
    model.load_state_dict(state["state_dict"])
    return model.eval()

