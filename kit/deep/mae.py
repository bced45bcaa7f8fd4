"""Stage 02: masked-autoencoder pretraining on every trial's feature sequences (no labels).

Each channel of each trial (training and test subjects alike) is one
sequence of ``n_times`` samples x ``n_features`` z-scored features
(:func:`kit.signal.sequences.deep_features`: 6 log band powers and the low-passed
waveform); one shared
:class:`kit.deep.nets.MaskedAutoencoder` learns to reconstruct 40 % of the
samples hidden at random.  No label is read, so using the test subjects'
trials is legitimate (transductive pretraining, as in the 3rd place).

Whether it learned anything is shown against a reference that needs no
training, :func:`nearest_visible_error`: each masked sample copied from the
nearest visible sample of its sequence.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from kit.core.errors import KitError
from kit.core.runtime import get_device, keeps_global_rng, seed_everything
from kit.deep.nets import MaskedAutoencoder, pool_time
from kit.store.artifacts import config_hash, load_checkpoint, save_checkpoint

logger = logging.getLogger(__name__)


@dataclass
class MAEConfig:
    """Masked-autoencoder pretraining (defaults = the 3rd-place design, ``full`` profile)."""

    n_times: int = 200  # samples per trial at 200 Hz, before pooling
    n_features: int = 7  # per sample: 6 log band powers + the low-passed waveform (kit.signal.sequences.deep_features)
    pool: int = 1  # average-pool the sequence by this factor (1 = the full 200 samples)
    d_model: int = 16  # token width, as in the 3rd place
    n_heads: int = 4  # attention heads
    d_ff: int = 128  # feed-forward width
    n_layers: int = 3  # encoder layers
    dropout: float = 0.1  # dropout inside the encoder
    mask_ratio: float = 0.4  # share of samples hidden per sequence
    epochs: int = 20  # passes over the (sub-sampled) sequences
    sequences_per_epoch: int = 0  # 0 = every channel of every trial; else a random subset each epoch
    batch_size: int = 512  # sequences per step
    lr: float = 1e-3  # AdamW learning rate (cosine decay to 5 %)
    weight_decay: float = 0.05  # AdamW weight decay
    seed: int = 0  # seeds masking, batching and initialisation

    @property
    def seq_len(self) -> int:
        """Sequence length seen by the model (``n_times // pool``)."""
        return self.n_times // self.pool


def build_mae(cfg: MAEConfig) -> MaskedAutoencoder:
    """A fresh :class:`MaskedAutoencoder` with the sizes of ``cfg``."""
    return MaskedAutoencoder(cfg.seq_len, cfg.n_features, cfg.d_model, cfg.n_heads, cfg.d_ff,
                             cfg.n_layers, cfg.dropout)


def as_sequences(features: np.ndarray, pool: int) -> torch.Tensor:
    """Features ``(n_trials, n_chans, n_times, n_features)`` -> ``(n_trials * n_chans, n_times // pool, n_features)``."""
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    x = pool_time(x, pool, dim=2)  # (n_trials, n_chans, T', K)
    return x.reshape(-1, x.shape[2], x.shape[3])  # one sequence per trial and channel


@keeps_global_rng
def pretrain_mae(features: np.ndarray, cfg: MAEConfig, out_dir: str | os.PathLike,
                 *, device: str | None = None, progress: bool = True) -> tuple[MaskedAutoencoder, list[dict]]:
    """Pretrain the MAE and write ``out_dir/mae.pt`` (weights + config + loss history).

    Parameters
    ----------
    features : ndarray, shape (n_trials, n_chans, n_times, n_features)
        :func:`kit.signal.sequences.deep_features` of every trial (training and test subjects).
    cfg : MAEConfig
    out_dir : path
        Stage folder.  ``last.pt`` is written after every epoch; an interrupted
        run with the same config resumes from it.  ``mae.pt`` is written at the end.

    Returns
    -------
    model, history
        The trained model (eval mode, on CPU) and one dict per epoch:
        ``epoch``, ``loss`` (masked MSE), ``reference`` (masked MSE of
        :func:`nearest_visible_fill` on the same masks), ``seconds``.

    Raises
    ------
    KitError
        If ``features`` has the wrong shape, or the loss becomes NaN/inf
        (training stops at once, as in facebookresearch/mae).
    """
    if features.ndim != 4 or features.shape[2] != cfg.n_times or features.shape[3] != cfg.n_features:
        raise KitError(f"MAE input must be (n_trials, n_chans, {cfg.n_times}, {cfg.n_features}), "
                       f"got {features.shape}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = get_device(device)
    gen = seed_everything(cfg.seed)
    seqs = as_sequences(features, cfg.pool)  # (N, T', K)
    model = build_mae(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_per_epoch = min(cfg.sequences_per_epoch or len(seqs), len(seqs))
    steps_per_epoch = max(1, -(-n_per_epoch // cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch, eta_min=cfg.lr * 0.05)
    history: list[dict] = []
    start_epoch = 0
    last, chash = out_dir / "last.pt", config_hash(cfg)
    if last.exists():
        state = load_checkpoint(last, expected_hash=chash)
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])  # dropout draws from the global generator
        history, start_epoch = list(state["history"]), int(state["epoch"])
        logger.info("resuming MAE pretraining from %s after epoch %d", last, start_epoch)

    bar = tqdm(total=cfg.epochs * steps_per_epoch, initial=start_epoch * steps_per_epoch, disable=not progress,
               desc="MAE pretraining", unit="step", dynamic_ncols=True)
    for epoch in range(start_epoch, cfg.epochs):
        t0, total, ref, count = time.perf_counter(), 0.0, 0.0, 0
        model.train()
        order = torch.randperm(len(seqs), generator=gen)[:n_per_epoch]
        for i in range(0, n_per_epoch, cfg.batch_size):
            x = seqs[order[i : i + cfg.batch_size]].to(dev)  # (b, T', K)
            loss, _, mask = model(x, cfg.mask_ratio, generator=gen)
            if not torch.isfinite(loss):
                bar.close()
                raise KitError(f"MAE loss is {loss.item()} at epoch {epoch + 1}, step {i // cfg.batch_size}; "
                               "stopping (lower lr or check the features for NaN)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            with torch.no_grad():  # the no-training reference on the same masks
                ref_loss = model.forward_loss(x, nearest_visible_fill(x, mask), mask).item()
            total, ref, count = total + loss.item() * len(x), ref + ref_loss * len(x), count + len(x)
            bar.update()
            bar.set_postfix(epoch=f"{epoch + 1}/{cfg.epochs}", mse=f"{total / count:.4f}",
                            nearest=f"{ref / count:.4f}")
        history.append({"epoch": epoch + 1, "loss": total / count, "reference": ref / count,
                        "seconds": time.perf_counter() - t0})
        save_checkpoint(last, model.state_dict(), cfg, optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                        generator=gen.get_state(), torch_rng=torch.get_rng_state(), history=history,
                        epoch=epoch + 1)
    bar.close()
    model = model.cpu().eval()
    save_checkpoint(out_dir / "mae.pt", model.state_dict(), cfg, history=history)
    if last.exists():
        last.unlink()
    return model, history


def load_mae(path: str | os.PathLike) -> tuple[MaskedAutoencoder, MAEConfig]:
    """Rebuild the MAE from ``mae.pt`` alone (config stored inside)."""
    state = load_checkpoint(path, MAEConfig)
    cfg = state["config"]
    model = build_mae(cfg)
    model.load_state_dict(state["state_dict"])
    return model.eval(), cfg


@torch.no_grad()
def reconstruction_error(model: MaskedAutoencoder, features: np.ndarray, cfg: MAEConfig,
                         *, n_repeats: int = 1, seed: int = 123) -> float:
    """Masked-sample MSE of ``model`` on ``features`` (mean over repeats of random masks)."""
    seqs = as_sequences(features, cfg.pool)
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    losses = [model(seqs, cfg.mask_ratio, generator=gen)[0].item() for _ in range(n_repeats)]
    return float(np.mean(losses))



def nearest_visible_fill(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each masked sample replaced by the nearest visible sample of its sequence (the earlier one on ties).

    The reference an MAE must beat to have learned anything beyond
    "the signal is smooth": it needs no training.

    Parameters
    ----------
    x : Tensor, shape (N, T, K)
    mask : Tensor of bool, shape (N, T)
        True = masked.  A row with no visible sample is filled with zeros.

    Returns
    -------
    Tensor, shape (N, T, K)
        ``x`` where visible, the nearest visible sample's features where masked.
    """
    N, T = mask.shape
    t = torch.arange(T, device=x.device).expand(N, T)
    big = T * 4
    left = torch.where(~mask, t, torch.full_like(t, -big)).cummax(dim=1).values  # last visible at or before t
    right = torch.where(~mask, t, torch.full_like(t, big)).flip(1).cummin(dim=1).values.flip(1)  # first at/after
    src = torch.where((t - left) <= (right - t), left, right)  # (N, T)
    ok = (src >= 0) & (src < T)
    out = torch.gather(x, 1, src.clamp(0, T - 1)[..., None].expand_as(x))
    return torch.where(ok[..., None], out, torch.zeros_like(x))


@torch.no_grad()
def nearest_visible_error(features: np.ndarray, cfg: MAEConfig, *, n_repeats: int = 1, seed: int = 123) -> float:
    """Masked-sample MSE of :func:`nearest_visible_fill` on the very masks that
    :func:`reconstruction_error` draws with the same ``seed`` and ``n_repeats``."""
    seqs = as_sequences(features, cfg.pool)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(n_repeats):
        mask = MaskedAutoencoder.random_masking(len(seqs), seqs.shape[1], cfg.mask_ratio, gen)
        losses.append(MaskedAutoencoder.forward_loss(seqs, nearest_visible_fill(seqs, mask), mask).item())
    return float(np.mean(losses))
