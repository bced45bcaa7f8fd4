"""Unsupervised test-time adaptation of the channel experts: entropy minimisation on a subject's trials.

A held-out (or test) subject has no labels, but its trials are there.  TENT
(Wang et al., "Tent: fully test-time adaptation by entropy minimization",
ICLR 2021) adapts a trained model to the new domain by minimising the
entropy of its own predictions on the unlabelled target data.  Here every
LOSO fold's experts (one model of a batched :class:`kit.deep.nets.AttentionPoolHead`)
take ``steps`` Adam steps on the mean binary entropy of their trial
predictions on *their own* held-out subject's trials, then predict them.
The encoder stays frozen (its tokens are the inputs); only the heads adapt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kit.core.errors import KitError
from kit.core.runtime import gradient_step
from kit.deep.nets import AttentionPoolHead


@dataclass
class TentConfig:
    """Entropy minimisation on the held-out subject's unlabelled trials."""

    steps: int = 20  # Adam steps per model
    lr: float = 1e-3  # Adam learning rate of the heads
    batch: int = 128  # trials per step (drawn from the model's target subject)
    seed: int = 0  # batching


def binary_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of Bernoulli predictions given as logits, elementwise: ``H(sigmoid(z))``."""
    p = torch.sigmoid(logits)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, p, reduction="none")


def tent_adapt(head: AttentionPoolHead, x: torch.Tensor, target: torch.Tensor, cfg: TentConfig) -> AttentionPoolHead:
    """Adapt each model of ``head`` to its own unlabelled target trials (in place); returns ``head``.

    Parameters
    ----------
    head : AttentionPoolHead
        ``n_models`` fitted models (e.g. the LOSO folds' experts).
    x : Tensor, shape (n_trials, n_chans, T, d)
        Head inputs of every trial (:func:`kit.deep.experts.head_inputs`).
    target : Tensor of bool, shape (n_models, n_trials)
        The trials each model adapts to (its held-out subject's).
    cfg : TentConfig

    Raises
    ------
    KitError
        A model without target trials, or a non-finite loss.
    """
    if target.shape != (head.n_models, len(x)) or not bool(target.any(dim=1).all()):
        raise KitError(f"tent: target must be (n_models={head.n_models}, n_trials={len(x)}) with trials for "
                       f"every model, got {tuple(target.shape)}")
    gen = np.random.default_rng(cfg.seed)
    rows = [np.flatnonzero(t.numpy()) for t in target.cpu()]
    opt = torch.optim.Adam([head.weight, head.bias], lr=cfg.lr)
    head.train()
    for step in range(cfg.steps):
        idx = np.unique(np.concatenate([gen.choice(r, size=min(cfg.batch, len(r)), replace=False) for r in rows]))
        it = torch.from_numpy(idx)
        w = target[:, it].float()  # (M, B): each model's loss on its own trials only
        ent = binary_entropy(head(x[it])).mean(dim=-1)  # (M, B), mean over experts
        loss = ((ent * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)).sum()
        gradient_step(opt, loss, "tent: entropy", f"step {step + 1}")
    return head.eval()
