"""The 3rd place's design as published: 5 band powers, MAE-initialised channel experts, FOMAML over subjects.

What the 3rd place's public write-up describes, reproduced so that a user can run it and see what the kit's
changes gained over it:

* input per channel: 200 samples x 5 log band powers (delta, theta, alpha, sigma, beta; z-scored per subject:
  :func:`kit.signal.sequences.deep_features` without the merged band and the slow waveform);
* a masked autoencoder on every trial's channels (:mod:`kit.deep.mae` with ``n_features=5``, ``pool=1``);
* 16 channel experts, each the MAE encoder's architecture initialised from its weights (Linear 5 -> 16 + learned
  positional embedding over 200 samples, 3 Transformer layers, d_model 16, 4 heads, feed-forward 128) with a
  **per-sample** linear head (17 parameters): 19,489 parameters per expert, the whole expert trained;
* first-order MAML (Finn et al., ICML 2017; Nichol et al. 2018) with a task = one subject: ``inner_steps`` SGD
  steps on a class-balanced support set of the subject, the outer (query) loss of the same subject at the adapted
  weights, its gradient taken first-order (:func:`kit.deep.maml.fast_adapt`) and applied to the initialisation;
* the prediction: the mean over the 16 experts of the per-sample logits, time-resolved (no adaptation on a
  held-out subject, which has no labels).

Differences from the kit's default experts (:mod:`kit.deep.experts`): 5 features instead of 7, no pooling (200
samples, so about 64x the attention cost), the encoder trained instead of frozen, a per-sample head and loss
instead of attention pooling and a trial loss, no early stopping.  ``kit bench --methods thirdplace`` scores it
beside them (quick profile: fewer outer steps on the CPU; ``--profile thirdplace``: the published sizes, meant
for a GPU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from kit.core.errors import KitError
from kit.core.runtime import get_device, keeps_global_rng, seed_everything
from kit.deep.mae import MAEConfig, load_mae, pretrain_mae
from kit.deep.maml import fast_adapt, sample_task, subject_tasks
from kit.deep.nets import BankLinear, ChannelTransformer
from kit.eval.crossfit import cross_fit_predict
from kit.eval.cv import cross_val_predict_loso
from kit.signal.features import BANDS
from kit.signal.sequences import deep_features
from kit.store.artifacts import save_checkpoint, save_npz


@dataclass
class ThirdPlaceConfig:
    """The 3rd-place experts and their FOMAML (defaults: the published sizes, the ``thirdplace`` profile)."""

    d_model: int = 16  # token width
    n_heads: int = 4  # attention heads
    d_ff: int = 128  # feed-forward width
    n_layers: int = 3  # encoder layers
    dropout: float = 0.1  # dropout inside the encoder
    mae_epochs: int = 20  # MAE pretraining epochs on the 5-feature sequences (0: experts from scratch)
    mae_sequences: int = 0  # sequences per MAE epoch (0 = every channel of every trial)
    outer_steps: int = 1000  # FOMAML outer steps (meta-updates)
    meta_batch: int = 4  # subjects (tasks) per outer step
    n_support: int = 32  # support trials per task (class-balanced)
    n_query: int = 32  # query trials per task (class-balanced, disjoint from the support)
    inner_steps: int = 3  # inner SGD steps on the support set (3rd place: 3)
    inner_lr: float = 0.01  # inner-loop SGD step size
    outer_lr: float = 1e-3  # Adam learning rate of the meta-initialisation
    seed: int = 0  # initialisation and task sampling


class SampleExperts(nn.Module):
    """Sixteen channel experts with a per-sample linear head: ``(B, E, T, 5)`` -> per-sample logits ``(B, E, T)``."""

    def __init__(self, n_chans: int, n_times: int, n_features: int, cfg: ThirdPlaceConfig):
        super().__init__()
        self.encoder = ChannelTransformer(n_chans, n_times, n_features, cfg.d_model, cfg.n_heads, cfg.d_ff,
                                          cfg.n_layers, cfg.dropout)
        self.head = BankLinear(n_chans, cfg.d_model, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))[..., 0]  # (B, E, T)


class _AsTrialBCE(nn.Module):
    """Wraps :class:`SampleExperts` for :func:`kit.deep.maml.fast_adapt`: logits as ``(1, B, E * T)``, so its
    trial loss is the mean per-sample BCE over experts and samples."""

    def __init__(self, experts: SampleExperts):
        super().__init__()
        self.experts = experts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.experts(x).reshape(1, len(x), -1)


def expert_parameters(n_times: int = 200, n_features: int = 5, cfg: ThirdPlaceConfig | None = None) -> int:
    """Trainable parameters of one expert (19,489 at the published sizes)."""
    model = SampleExperts(1, n_times, n_features, cfg or ThirdPlaceConfig())
    return sum(p.numel() for p in model.parameters())


def thirdplace_features(X: np.ndarray, subject: np.ndarray, sfreq: float) -> np.ndarray:
    """The 3rd place's input: log Hilbert power in the five bands, z-scored per subject, ``(n, E, T, 5)`` float32."""
    return deep_features(X, subject, sfreq, bands=BANDS, broad={}, slow_cutoff=None)


@keeps_global_rng
def fomaml_train(x: torch.Tensor, y: np.ndarray, subject: np.ndarray, init: dict | None, cfg: ThirdPlaceConfig,
                 *, progress: bool = False) -> SampleExperts:
    """Meta-train the experts with first-order MAML, one task per subject; returns the meta-initialisation.

    Parameters
    ----------
    x : Tensor, shape (n_trials, E, T, 5)
        The training trials' features.
    y, subject : ndarray, shape (n_trials,)
    init : dict or None
        The MAE encoder's state, copied into every expert (None: random initialisation).
    cfg : ThirdPlaceConfig
    progress : bool

    Raises
    ------
    KitError
        A non-finite loss.
    """
    dev = get_device()
    seed_everything(cfg.seed)  # weight initialisation and dropout; the tasks are drawn by rng
    rng = np.random.default_rng(cfg.seed)
    n, E, T, K = x.shape
    model = SampleExperts(E, T, K, cfg).to(dev)
    if init is not None:
        dst = model.encoder.state_dict()
        with torch.no_grad():
            for k, v in init.items():
                dst[k].copy_(v.expand_as(dst[k]))
    wrapped = _AsTrialBCE(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.outer_lr)
    tasks = subject_tasks(y, subject)
    sids = np.array(sorted(tasks))
    yt = torch.from_numpy(y.astype(np.float32))
    for step in tqdm(range(cfg.outer_steps), disable=not progress, desc="FOMAML (3rd place)", unit="step"):
        opt.zero_grad(set_to_none=True)
        params = dict(wrapped.named_parameters())
        for s in rng.choice(sids, size=min(cfg.meta_batch, len(sids)), replace=False):
            sup, qry = sample_task(*tasks[int(s)], cfg.n_support, cfg.n_query, rng)  # disjoint, class-balanced
            xs, ys = x[sup].to(dev), yt[sup].to(dev)
            adapted = fast_adapt(wrapped, params, xs, ys, steps=cfg.inner_steps, lr=cfg.inner_lr, first_order=True)
            adapted = {k: v.detach().requires_grad_() for k, v in adapted.items()}
            logits = functional_call(wrapped, adapted, (x[qry].to(dev),))
            target = yt[qry].to(dev)[None, :, None].expand_as(logits)
            loss = F.binary_cross_entropy_with_logits(logits, target)
            if not torch.isfinite(loss):
                raise KitError(f"3rd-place FOMAML: query loss is {loss.item()} at outer step {step + 1}; stopping")
            grads = torch.autograd.grad(loss, list(adapted.values()))
            for p, g in zip(params.values(), grads):  # first order: the query gradient at the adapted weights
                p.grad = g / cfg.meta_batch if p.grad is None else p.grad + g / cfg.meta_batch
        opt.step()
    return model.eval()


@torch.no_grad()
def predict_samples(model: SampleExperts, x: torch.Tensor, *, batch: int = 64) -> np.ndarray:
    """P(emotional) per trial and sample: the sigmoid of the experts' mean per-sample logit, ``(n, T)`` float64."""
    dev = next(model.parameters()).device
    out = [model(x[i:i + batch].to(dev)).mean(dim=1).double().cpu().numpy() for i in range(0, len(x), batch)]
    return expit(np.concatenate(out)) if out else np.zeros((0, x.shape[2]))


def train_thirdplace(X: np.ndarray, y: np.ndarray, subject: np.ndarray, is_test: np.ndarray, sfreq: float,
                     cfg: ThirdPlaceConfig, out_dir: str | os.PathLike, *, n_groups: int | None = None,
                     progress: bool = True) -> dict[str, np.ndarray]:
    """The 3rd-place pipeline under LOSO: its MAE on every trial, then per fold the FOMAML experts.

    Parameters
    ----------
    X : ndarray, shape (n_trials, n_chans, n_times), µV
        Every trial (training and test, dataset order).
    y, subject, is_test : ndarray, shape (n_trials,)
    sfreq : float
        Hz.
    cfg : ThirdPlaceConfig
    out_dir : path
        Writes ``mae/mae.pt`` (the 5-feature MAE), ``fold{k}.pt`` (each fold's experts with the config) and
        ``predictions.npz``: ``oof (n_train, n_times)``, ``test (n_test, n_times)`` (mean of the fold models),
        with ``n_groups`` also ``inner``/``inner_group`` (cross-fitted tables for the ensemble), ``subject``,
        ``y``, ``test_subject``.
    n_groups : int or None
        Cross-fitting groups (None: LOSO folds only, the bench row).

    Returns
    -------
    dict of the arrays saved.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    feats = thirdplace_features(X, subject, sfreq)
    init = None
    if cfg.mae_epochs:
        mcfg = MAEConfig(n_times=feats.shape[2], n_features=5, pool=1, d_model=cfg.d_model, n_heads=cfg.n_heads,
                         d_ff=cfg.d_ff, n_layers=cfg.n_layers, dropout=cfg.dropout, epochs=cfg.mae_epochs,
                         sequences_per_epoch=cfg.mae_sequences, seed=cfg.seed)
        pretrain_mae(feats, mcfg, out_dir / "mae", progress=progress)
        init = load_mae(out_dir / "mae" / "mae.pt")[0].encoder.state_dict()
    x = torch.from_numpy(feats)
    train_rows, test_rows = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    s_tr, y_tr = subject[train_rows], np.asarray(y)[train_rows].astype(np.int64)
    fitted: list[SampleExperts] = []
    bar = tqdm(total=np.unique(s_tr).size, disable=not progress, desc="3rd-place experts (LOSO)", unit="fold")

    def fit_predict(r_tr, yy, ss, eval_sets):
        model = fomaml_train(x[r_tr], yy, ss, init, replace(cfg, seed=cfg.seed + len(fitted)))
        fitted.append(model)
        bar.update()
        return [predict_samples(model, x[r]) for r, _ in eval_sets]

    oof, test = cross_val_predict_loso(fit_predict, train_rows, y_tr, s_tr,
                                       test_rows if len(test_rows) else None,
                                       subject[test_rows] if len(test_rows) else None)
    bar.close()
    for k, model in enumerate(list(fitted)):
        save_checkpoint(out_dir / f"fold{k}.pt", {kk: v.cpu() for kk, v in model.state_dict().items()}, cfg,
                        n_chans=int(X.shape[1]), n_times=int(feats.shape[2]))
    arrays = dict(oof=oof.astype(np.float32), subject=s_tr, y=y_tr, test_subject=subject[test_rows],
                  test=(np.zeros((0, X.shape[2]), np.float32) if test is None else test.astype(np.float32)))
    if n_groups is not None:
        arrays["inner"], arrays["inner_group"] = cross_fit_predict(fit_predict, train_rows, y_tr, s_tr,
                                                                   n_groups=n_groups)
    save_npz(out_dir / "predictions.npz", **arrays)
    return arrays
