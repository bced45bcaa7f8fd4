"""Stage 04: a fusion that sees how channels co-vary: a cross-channel Transformer over channel tokens.

The reference fusion (:mod:`kit.deep.fusion`) mixes the 16 experts' *scores*; a score per channel cannot
rebuild the zero-lag covariance of two channels, where a spatial effect lives (a left-right mu/beta
contrast, a fronto-central theta burst seen by several channels at once).  Here each channel becomes a
**token** built from

1. its frozen MAE encoder sequence (stage 02: band powers and the slow waveform, what the experts read),
   attention-pooled over time by a learned per-channel query and a time prior (an expert's embedding,
   trained end to end with the fusion, encoder frozen);
2. its row of each band and window's **re-centred tangent matrix** (the phase-carrying input): the trial's
   channel covariance of the band-passed signal (the riemann anchor's bands and windows: delta, theta 4-8 Hz and
   8-30 Hz, whole trial and 0.35-0.65 s, OAS at 200 Hz), whitened by the subject's own Riemannian mean (no
   labels) and mapped to the tangent space at the identity (:class:`kit.methods.riemann.RiemannTS`), z-scored
   per subject: entry (i, j) is how channels i and j co-vary in that trial relative to that subject's average.

The tokens, plus a learned channel embedding, go through ``n_layers`` Transformer layers with a CLS token
(the pattern of Brant, Zhang et al. NeurIPS 2023, and of the Population Transformer, Chau et al. 2024;
CBraMod's criss-cross attention, Wang et al. ICLR 2025, as a reference).  The CLS output is a *residual*
added to a linear readout of the tangent coordinates (TSMNet's tangent-space classifier, Kobler et al.,
NeurIPS 2022, whose per-domain SPD batch norm is the per-subject re-centring here): the riemann anchor's
shrinkage LDA on its inner-LOSO-chosen band and window, fitted in closed form.  The residual's output layer
starts at zero, so the untrained fusion *is* that LDA, and the network only moves away from it as far as
held-out validation subjects reward (a 1,500-trial problem cannot train a Transformer's readout from scratch:
measured 0.533 on the demo against the LDA's 0.596).  One score per trial, copied to every sample.

Training: AdamW on the trial BCE, early stopping on the mean per-subject AUC of ``val_share`` of the
model's own training subjects (never the held-out one; epoch 0, the LDA alone, is a candidate), the LDA
then refitted on all the model's training subjects.  LOSO folds, cross-fitted models for the ensemble
(:func:`kit.eval.crossfit.cross_fit_predict`) and the test prediction (mean of the LOSO fold models) use
the same fit function as the anchors: no model sees the subject it predicts.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit
from tqdm.auto import tqdm

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.core.runtime import get_device, gradient_step, keeps_global_rng, seed_everything, take_rows
from kit.deep.cross_channel import CrossChannelFusion
from kit.deep.experts import head_inputs, val_split
from kit.deep.mae import load_mae
from kit.deep.nets import pool_time
from kit.eval.crossfit import CROSSFIT_GROUPS, cross_fit_predict
from kit.eval.cv import cross_val_predict_loso
from kit.eval.metric import subject_auc
from kit.methods.riemann import RiemannTS, tangent_matrix
from kit.store.artifacts import load_checkpoint, save_checkpoint, save_npz


@dataclass
class ChannelFusionConfig:
    """The cross-channel fusion (defaults = the ``quick`` profile)."""

    d_model: int = 32  # channel token width
    n_heads: int = 4  # attention heads of the cross-channel layers
    n_layers: int = 1  # cross-channel Transformer layers (1-2, as Brant / the Population Transformer)
    d_ff: int = 64  # feed-forward width
    dropout: float = 0.1  # dropout in the cross-channel layers
    use_tokens: bool = True  # channel tokens from the frozen MAE encoder (off: the covariance input alone)
    use_covariance: bool = True  # tangent rows in the tokens and the LDA readout (off: the MAE tokens alone)
    epochs: int = 30  # most passes over the training trials; early stopping picks fewer
    batch_size: int = 128  # trials per step
    lr: float = 2e-3  # AdamW learning rate
    weight_decay: float = 0.1  # AdamW weight decay (strong: about 2,000 trials)
    val_share: float = 0.25  # share of a model's training subjects held out for early stopping
    patience: int = 6  # epochs without a better validation AUC before stopping
    min_delta: float = 0.01  # validation AUC gain over the best so far that counts as better (noise on ~3 subjects)
    seed: int = 0  # initialisation, batching and the validation split


@fill_doc
def covariance_inputs(X: np.ndarray, subject: np.ndarray, sfreq: float) -> np.ndarray:
    """The phase-carrying input: the riemann anchor's re-centred tangent coordinates of every band and window.

    Parameters
    ----------
    %(X_trials)s
    subject : ndarray, shape (n_trials,)
    %(sfreq)s

    Returns
    -------
    ndarray, shape (n_trials, n_bands, n_windows, n_chans * (n_chans + 1) / 2), float64
        :meth:`kit.methods.riemann.RiemannTS.features` (each subject's own trials only, no labels).
    """
    return RiemannTS(sfreq=sfreq).features(X, subject)


def fusion_inputs(features: np.ndarray, X: np.ndarray, subject: np.ndarray, sfreq: float, mae_path,
                  cfg: ChannelFusionConfig, *, seq: np.ndarray | None = None,
                  tangent: np.ndarray | None = None) -> dict[str, torch.Tensor | None]:
    """Everything the fusion reads, for every trial: ``seq (n, E, T', D + K)``, ``cov (n, n_blocks, E, E)`` (the
    tangent matrices of every band x window) and ``tangent (n, n_bands, n_windows, n_tangent)`` (the same
    coordinates, for the LDA readout).

    Parameters
    ----------
    features : ndarray, shape (n_trials, n_chans, n_times, n_features)
        The deep features (:func:`kit.signal.sequences.deep_features`), pooled here as the MAE was.
    X : ndarray, shape (n_trials, n_chans, n_times), µV
    subject : ndarray, shape (n_trials,)
    sfreq : float
    mae_path : path
        Stage 02's ``mae.pt``.
    cfg : ChannelFusionConfig
    seq, tangent : ndarray, optional
        The token sequences (:func:`kit.deep.experts.head_inputs` on ``mae_path``) and the tangent coordinates
        (:func:`covariance_inputs`) when the caller has them (e.g. from the run's cache); computed otherwise.
    """
    seq = None if seq is None or not cfg.use_tokens else torch.from_numpy(np.asarray(seq, np.float32))
    tangent = None if tangent is None or not cfg.use_covariance else np.asarray(tangent)
    cov = None
    if cfg.use_tokens and seq is None:
        mae, mcfg = load_mae(mae_path)
        seq = head_inputs(mae, pool_time(torch.from_numpy(np.ascontiguousarray(features, np.float32)), mcfg.pool,
                                         dim=2))
    if cfg.use_covariance:
        tangent = covariance_inputs(X, subject, sfreq) if tangent is None else tangent
        M = tangent_matrix(tangent.reshape(len(tangent), -1, tangent.shape[-1]), X.shape[1])  # (n, blocks, E, E)
        cov = torch.from_numpy(M.astype(np.float32))
    if seq is None and cov is None:
        raise KitError("ChannelFusionConfig: use_tokens and use_covariance are both off; nothing to fuse")
    return {"seq": seq, "cov": cov, "tangent": tangent}


def _take(inputs: dict, rows: np.ndarray, device) -> tuple:
    return tuple(None if v is None else take_rows(v, rows).to(device) for v in (inputs["seq"], inputs["cov"]))


@dataclass
class FittedFusion:
    """One fitted fusion: the residual network and the LDA readout of the tangent coordinates (None without them)."""

    net: CrossChannelFusion
    lda: RiemannTS | None
    info: dict

    def logits(self, inputs: dict, rows: np.ndarray, *, batch: int = 512) -> np.ndarray:
        """Logits of emotional ``(len(rows),)`` on the trials ``rows`` of ``inputs``, float64."""
        return _offset(self.lda, inputs, rows) + _residual(self.net, inputs, rows, batch=batch)


def _offset(lda: RiemannTS | None, inputs: dict, rows: np.ndarray) -> np.ndarray:
    return np.zeros(len(rows)) if lda is None else lda.decision_features(inputs["tangent"][rows])


@torch.no_grad()
def _residual(net: CrossChannelFusion, inputs: dict, rows: np.ndarray, *, batch: int = 512) -> np.ndarray:
    net.eval()
    dev = next(net.parameters()).device
    out = [net(*_take(inputs, rows[i:i + batch], dev)).double().cpu().numpy() for i in range(0, len(rows), batch)]
    return np.concatenate(out) if out else np.zeros(0)


def build_model(inputs: dict, cfg: ChannelFusionConfig) -> CrossChannelFusion:
    """A fresh :class:`CrossChannelFusion` sized for ``inputs`` (:func:`fusion_inputs`)."""
    seq, cov = inputs["seq"], inputs["cov"]
    n_chans = seq.shape[1] if seq is not None else cov.shape[2]
    return CrossChannelFusion(n_chans, 0 if seq is None else seq.shape[2], 0 if seq is None else seq.shape[3],
                              0 if cov is None else cov.shape[1], cfg)


def _lda(inputs: dict, rows: np.ndarray, y: np.ndarray, subject: np.ndarray, sfreq: float) -> RiemannTS | None:
    if inputs["tangent"] is None:
        return None
    return RiemannTS(sfreq=sfreq).fit_features(inputs["tangent"][rows], y, subject)


@keeps_global_rng
def fit_fusion_model(inputs: dict, rows: np.ndarray, y: np.ndarray, subject: np.ndarray,
                     cfg: ChannelFusionConfig, sfreq: float = 200.0) -> FittedFusion:
    """Train one fusion on the trials ``rows`` (positions in ``inputs``), early-stopped on its own subjects.

    1. the LDA readout (the riemann anchor's inner-LOSO choice and shrinkage LDA) on the fitting subjects;
    2. the residual network, AdamW on the BCE of (LDA logit + residual), evaluated on the validation subjects
       after every epoch (epoch 0: the LDA alone); the best epoch's weights are kept;
    3. the LDA refitted on all of ``rows``.

    Parameters
    ----------
    inputs : dict
        :func:`fusion_inputs`.
    rows : ndarray of int
        Training trials.
    y, subject : ndarray, shape (len(rows),)
        Their labels and subjects.
    cfg : ChannelFusionConfig
    sfreq : float
        Hz (the LDA readout's candidate windows).

    Returns
    -------
    FittedFusion
        ``info``: ``epochs`` (run), ``best_epoch`` (0 = the residual stayed at zero), ``val_auc`` (per epoch,
        from epoch 0).

    Raises
    ------
    KitError
        A non-finite loss.
    """
    rows, y, subject = np.asarray(rows), np.asarray(y), np.asarray(subject)
    dev = get_device()
    gen = seed_everything(cfg.seed)
    sids = np.unique(subject)
    held = val_split(sids, cfg.val_share, cfg.seed) if cfg.val_share > 0 and len(sids) >= 4 else np.zeros(0)
    fit_m, val_m = ~np.isin(subject, held), np.isin(subject, held)
    net = build_model(inputs, cfg).to(dev)
    lda = _lda(inputs, rows[fit_m], y[fit_m], subject[fit_m], sfreq)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            foreach=True)  # one call per step for all tensors (CPU too): the same steps
    tr_rows = rows[fit_m]
    tr_y = torch.from_numpy(y[fit_m].astype(np.float32)).to(dev)
    tr_off = torch.from_numpy(_offset(lda, inputs, tr_rows).astype(np.float32)).to(dev)

    def val_auc():
        r = rows[val_m]
        return subject_auc(_offset(lda, inputs, r) + _residual(net, inputs, r), y[val_m], subject[val_m])

    history = [val_auc()] if val_m.any() else []
    best, best_auc, best_epoch, waited = copy.deepcopy(net.state_dict()), (history or [-np.inf])[0], 0, 0
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        order = torch.randperm(len(tr_rows), generator=gen).numpy()
        for i in range(0, len(order), cfg.batch_size):
            b = order[i:i + cfg.batch_size]
            logit = tr_off[b] + net(*_take(inputs, tr_rows[b], dev))
            loss = F.binary_cross_entropy_with_logits(logit, tr_y[b])
            gradient_step(opt, loss, "channel fusion: loss", f"epoch {epoch}")
        if not val_m.any():
            best, best_epoch = copy.deepcopy(net.state_dict()), epoch
            continue
        history.append(val_auc())
        if history[-1] > best_auc + cfg.min_delta:
            best, best_auc, best_epoch, waited = copy.deepcopy(net.state_dict()), history[-1], epoch, 0
        else:
            waited += 1
            if cfg.patience and waited >= cfg.patience:
                break
    net.load_state_dict(best)
    lda = _lda(inputs, rows, y, subject, sfreq) if val_m.any() else lda
    return FittedFusion(net.eval(), lda, {"epochs": epoch, "best_epoch": best_epoch, "val_auc": history})


def train_channel_fusion(inputs: dict, y: np.ndarray, subject: np.ndarray, is_test: np.ndarray, n_times: int,
                         cfg: ChannelFusionConfig, out_dir: str | os.PathLike, *, sfreq: float = 200.0,
                         n_groups: int | None = CROSSFIT_GROUPS, progress: bool = True) -> dict[str, np.ndarray]:
    """LOSO folds, cross-fitted models and the test prediction of the cross-channel fusion; saves its fold models.

    Parameters
    ----------
    inputs : dict
        :func:`fusion_inputs` of every trial (training and test, in dataset order).
    y, subject, is_test : ndarray, shape (n_trials,)
        Dataset order; labels of test trials are ignored.
    n_times : int
        Samples per trial of the predictions (one score per trial, copied).
    cfg : ChannelFusionConfig
    out_dir : path
        Writes ``fold{k}.pt`` (each LOSO fold's model with its config, :func:`load_channel_fusion`) and
        ``predictions.npz``: ``oof (n_train, n_times)``, ``test (n_test, n_times)``, ``inner (n_groups,
        n_train, n_times)``, ``inner_group``, ``best_epoch (n_folds,)``, ``subject``, ``y``, ``test_subject``.
    sfreq : float
        Hz.
    n_groups : int or None
        Cross-fitting groups (None: LOSO folds only).

    Returns
    -------
    dict
        The arrays saved, and ``models``: the LOSO fold models (:class:`FittedFusion`), in fold order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_rows, test_rows = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    s_tr, y_tr = subject[train_rows], np.asarray(y)[train_rows].astype(np.int64)
    n_folds = np.unique(s_tr).size
    total = n_folds + (0 if n_groups is None else n_groups + n_groups * (n_groups - 1) // 2)
    bar = tqdm(total=total, disable=not progress, desc="cross-channel fusion", unit="model")
    fitted: list[FittedFusion] = []

    def fit_predict(r_tr, yy, ss, eval_sets):
        model = fit_fusion_model(inputs, r_tr, yy, ss, cfg, sfreq)
        fitted.append(model)
        bar.update()
        return [np.repeat(expit(model.logits(inputs, r))[:, None], n_times, axis=1) for r, _ in eval_sets]

    oof, test = cross_val_predict_loso(fit_predict, train_rows, y_tr, s_tr,
                                       test_rows if len(test_rows) else None,
                                       subject[test_rows] if len(test_rows) else None)
    folds = list(fitted)
    for k, model in enumerate(folds):
        save_fusion(out_dir / f"fold{k}.pt", model, cfg, inputs)
    arrays = dict(oof=oof.astype(np.float32), subject=s_tr, y=y_tr, test_subject=subject[test_rows],
                  best_epoch=np.array([m.info["best_epoch"] for m in folds]),
                  test=(np.zeros((0, n_times), np.float32) if test is None else test.astype(np.float32)))
    if n_groups is not None:
        arrays["inner"], arrays["inner_group"] = cross_fit_predict(fit_predict, train_rows, y_tr, s_tr,
                                                                   n_groups=n_groups)
    bar.close()
    save_npz(out_dir / "predictions.npz", **arrays)
    arrays["models"] = folds
    return arrays


def save_fusion(path: str | os.PathLike, model: FittedFusion, cfg: ChannelFusionConfig, inputs: dict) -> None:
    """One fold's fusion as a checkpoint: the network's weights, the LDA readout and the config (rebuildable alone)."""
    state = {k: v.cpu() for k, v in model.net.state_dict().items()}
    lda = model.lda
    if lda is not None:
        state["lda_coef"] = torch.from_numpy(np.asarray(lda.coef_, np.float64))
        state["lda_intercept"] = torch.tensor(float(lda.intercept_), dtype=torch.float64)
    save_checkpoint(path, state, cfg, n_chans=model.net.n_chans,
                    seq_shape=None if inputs["seq"] is None else list(inputs["seq"].shape[1:]),
                    n_bands=model.net.n_bands, best_epoch=int(model.info["best_epoch"]),
                    lda_choice=None if lda is None else [lda.choice_[0], list(lda.choice_[1]), int(lda.choice_[2])],
                    sfreq=None if lda is None else lda.sfreq)


def load_channel_fusion(path: str | os.PathLike) -> FittedFusion:
    """Rebuild one fold's fusion from its checkpoint alone (network in eval mode, on the CPU)."""
    state = load_checkpoint(path, ChannelFusionConfig)
    cfg, weights = state["config"], dict(state["state_dict"])
    lda = None
    if state["lda_choice"] is not None:
        lda = RiemannTS(sfreq=state["sfreq"])
        label, idx, k = state["lda_choice"]
        lda.choice_ = (label, list(idx), int(k))
        lda.coef_ = weights.pop("lda_coef").numpy()
        lda.intercept_ = float(weights.pop("lda_intercept"))
    seq = state["seq_shape"]
    net = CrossChannelFusion(state["n_chans"], 0 if seq is None else seq[1], 0 if seq is None else seq[2],
                             state["n_bands"], cfg)
    net.load_state_dict(weights)
    return FittedFusion(net.eval(), lda, {"best_epoch": state["best_epoch"]})


def predict_channel_fusion_test(stage_dir: str | os.PathLike, inputs: dict, n_times: int) -> np.ndarray:
    """A finished fusion stage on new trials: the mean over its LOSO fold models, P(emotional) ``(n, n_times)``.

    The same numbers as the stage's ``test``: each fold's probabilities summed in float64 in fold order,
    divided by the number of folds (:func:`kit.eval.cv.cross_val_predict_loso`).

    Raises
    ------
    KitError
        No fold model in ``stage_dir``.
    """
    paths = sorted(Path(stage_dir).glob("fold*.pt"), key=lambda p: int(p.stem[4:]))
    if not paths:
        raise KitError(f"{stage_dir}: no fold*.pt; run notebook 04 first")
    rows = np.arange(len(inputs["seq"] if inputs["seq"] is not None else inputs["cov"]))
    total = None
    for p in paths:
        model = load_channel_fusion(p)
        model.net.to(get_device())
        prob = np.repeat(expit(model.logits(inputs, rows))[:, None], n_times, axis=1)
        total = prob if total is None else total + prob
    return (total / len(paths)).astype(np.float32)


@torch.no_grad()
def channel_attention(model: CrossChannelFusion, inputs: dict, rows: np.ndarray) -> np.ndarray:
    """The last layer's attention of a fitted fusion on the trials ``rows``: ``(len(rows), E + 1, E + 1)``.

    Row/column 0 is the CLS token: ``[:, 0, 1:]`` is how much the trial's output reads each channel, the
    ``[:, 1:, 1:]`` block how much each channel's token reads the others.
    """
    model.eval()
    dev = next(model.parameters()).device
    return model(*_take(inputs, rows, dev), return_attention=True)[1].cpu().numpy()
