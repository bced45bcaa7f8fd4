"""Stage 04: fusion of the 16 channel experts, fitted on out-of-fold expert outputs only.

The experts over-fit the subjects they were trained on, so a fusion learnt on
their in-sample outputs learns to trust over-fit channels.  Here every fusion
model is fitted on the experts' *cross-fitted* outputs (stage 03's
``inner_logits`` / ``inner_course``: outputs of expert models that never saw
the trial's subject, :func:`kit.eval.crossfit.crossfit_plan`) and reads nothing else:
no expert is re-run (stage 03 stored its outputs at model resolution).

Two fusion models:

- ``"lda"``: shrinkage LDA (Ledoit-Wolf, ``solver="lsqr"``) on the 16
  experts' trial logits, z-scored per subject (no labels): one score per
  trial, copied to every sample.  Its coefficients are the experts' weights.
- ``"net"``: :class:`kit.deep.nets.SpatioTemporalFusion` on the experts' logit
  time courses ``(n_chans, T)`` (the 3rd place's spatiotemporal fusion).

``kind="auto"`` picks, for each held-out subject, the one with the better
inner score (mean per-subject AUC of the trial score on the cross-fitted
tables, held-out subject excluded).

For LOSO fold k (subject k in cross-fit group a) the fusion is fitted on
``inner[a]`` rows of the other subjects, then applied to the outputs of fold
k's experts: subject k's (out-of-fold) and the test trials' (averaged over
folds).  The fusion's own cross-fitted table (for the ensemble) is built the
same way one level down: row i of table g comes from a fusion fitted on
``inner[g]`` rows outside groups g and group(i), of the kind that scores better on the rows outside
groups g and group(i) (so no row of the table is chosen with its own labels).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from tqdm.auto import tqdm

from kit.core.errors import KitError
from kit.core.runtime import get_device, gradient_step, keeps_global_rng, seed_everything
from kit.deep.nets import SpatioTemporalFusion, upsample_time
from kit.eval.metric import subject_auc
from kit.methods.lda import haufe_pattern
from kit.signal.features import zscore_per_subject
from kit.store.artifacts import load_checkpoint, load_npz, save_checkpoint, save_npz

FUSION_KINDS = ("lda", "net")
"""The fusion models ``FusionConfig.kind`` chooses among ("auto": by inner score)."""
EXPERT_ARRAYS = ("oof_logits", "oof_course", "test_logits", "test_course", "inner_logits", "inner_course",
                 "inner_group", "subject", "y", "test_subject")
"""What fusion reads from stage 03's ``predictions.npz``."""


@dataclass
class FusionConfig:
    """Fusion of the experts (defaults = the ``quick`` profile)."""

    kind: str = "auto"  # "lda", "net" or "auto" (per held-out subject, the better one by inner score)
    shrinkage: str | float = "auto"  # LDA covariance shrinkage ("auto": Ledoit-Wolf)
    n_filters: int = 4  # net: spatial maps mixed from the 16 experts
    kernel: int = 5  # net: temporal kernel in model samples (x pool = samples at 200 Hz)
    dropout: float = 0.25  # net: dropout after the spatial mixing
    epochs: int = 10  # net: passes over the training trials
    batch_size: int = 128  # net: trials per step
    lr: float = 3e-3  # net: AdamW learning rate
    weight_decay: float = 1e-2  # net: AdamW weight decay
    seed: int = 0  # net: initialisation and batching


def zscore_by_subject(a: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """z-score ``a (n_trials, n_chans[, T])`` per subject and channel (over trials and time; no labels), float32.

    :func:`kit.signal.features.zscore_per_subject` in float64, stored float32: makes the outputs of expert models
    trained on different subject sets (cross-fit models, LOSO folds) comparable.
    """
    return zscore_per_subject(np.asarray(a, np.float64), subject).astype(np.float32)


def fit_lda(z: np.ndarray, y: np.ndarray, cfg: FusionConfig) -> dict[str, np.ndarray]:
    """Shrinkage LDA on trial logits ``z (n, n_chans)``: ``{"coef": (n_chans,), "intercept": ()}``."""
    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=cfg.shrinkage).fit(z, y)
    return {"coef": lda.coef_[0].astype(np.float32), "intercept": np.float32(lda.intercept_[0])}


@keeps_global_rng
def fit_net(c: np.ndarray, y: np.ndarray, cfg: FusionConfig) -> SpatioTemporalFusion:
    """Train :class:`SpatioTemporalFusion` on logit courses ``c (n, n_chans, T)`` with labels ``y (n,)``.

    Per-sample binary cross-entropy against the trial label.

    Raises
    ------
    KitError
        If the loss becomes NaN/inf.
    """
    gen = seed_everything(cfg.seed)
    dev = get_device()
    model = SpatioTemporalFusion(c.shape[1], cfg.n_filters, cfg.kernel, cfg.dropout).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x, yt = torch.from_numpy(c).to(dev), torch.from_numpy(np.asarray(y, np.float32))[:, None].to(dev)
    model.train()
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i : i + cfg.batch_size].to(dev)
            logits = model(x[idx])  # (b, T)
            loss = F.binary_cross_entropy_with_logits(logits, yt[idx].expand_as(logits))
            gradient_step(opt, loss, "fusion net: loss", f"epoch {epoch + 1}")
    return model.eval()


def predict(model, kind: str, z: np.ndarray, c: np.ndarray, n_times: int) -> np.ndarray:
    """Logits ``(n, n_times)`` of a fitted fusion: LDA on ``z (n, n_chans)``, net on ``c (n, n_chans, T)``."""
    if kind == "lda":
        s = z @ model["coef"] + model["intercept"]
        return np.repeat(s[:, None], n_times, axis=1).astype(np.float32)
    with torch.no_grad():
        dev = next(model.parameters()).device
        return upsample_time(model(torch.from_numpy(c).to(dev)), n_times).cpu().numpy().astype(np.float32)


def fit(kind: str, z: np.ndarray, c: np.ndarray, y: np.ndarray, cfg: FusionConfig):
    """Fit one fusion model of ``kind`` on trial logits ``z`` / courses ``c``."""
    return fit_lda(z, y, cfg) if kind == "lda" else fit_net(c, y, cfg)


def zscore_folds(logits: np.ndarray, course: np.ndarray, subject: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every fold's expert outputs ``(n_folds, n, E[, T])`` z-scored per subject (:func:`zscore_by_subject`)."""
    return (np.stack([zscore_by_subject(t, subject) for t in logits]),
            np.stack([zscore_by_subject(t, subject) for t in course]))


def fusion_test_prediction(models: list[list], kinds: tuple[str, ...], chosen: np.ndarray, test_logits: np.ndarray,
                           test_course: np.ndarray, n_times: int) -> np.ndarray:
    """The fusion stage's test prediction from its fold models.

    Parameters
    ----------
    models : list over folds of list over ``kinds``
        Fitted fusion models (:func:`fit` or :func:`load_fusion`).
    kinds : tuple of str
        The kinds fitted, in order.
    chosen : ndarray of int, shape (n_folds,)
        Per fold, the index into ``kinds`` of the kind chosen by inner score.
    test_logits, test_course : ndarray, shape (n_folds, n_test, E) and (n_folds, n_test, E, T)
        Each fold's experts on the test trials, z-scored per subject (:func:`zscore_folds`).
    n_times : int

    Returns
    -------
    ndarray, shape (n_test, n_times), float32
        P(emotional): for each kind the mean over folds of its models, then the mean over folds of the kind
        each fold chose (accumulated in float32 in fold order, as the stage does).
    """
    n_folds, n_test = len(models), test_logits.shape[1]
    test_by = np.zeros((len(kinds), n_test, n_times), np.float32)
    for k in range(n_folds):
        for ki, kind in enumerate(kinds):
            test_by[ki] += predict(models[k][ki], kind, test_logits[k], test_course[k], n_times) / n_folds
    test = np.zeros((n_test, n_times), np.float32)
    for k in range(n_folds):
        test += test_by[chosen[k]] / n_folds
    return sigmoid(test)


def predict_fusion_test(stage_dir: str | os.PathLike, test_logits: np.ndarray, test_course: np.ndarray,
                        test_subject: np.ndarray, n_times: int) -> np.ndarray:
    """A finished fusion stage applied to new trials from its ``fold{k}_{kind}.pt``, without refitting.

    Parameters
    ----------
    stage_dir : path
        ``artifacts/{tag}/fusion``.
    test_logits, test_course : ndarray, shape (n_folds, n_test, E) and (n_folds, n_test, E, T)
        :func:`kit.deep.experts_loso.predict_experts_test` outputs (not yet z-scored).
    test_subject : ndarray, shape (n_test,)
    n_times : int

    Returns
    -------
    ndarray, shape (n_test, n_times), float32

    Raises
    ------
    KitError
        A fold model missing, or another number of folds or channels than the experts'.
    """
    stage_dir = Path(stage_dir)
    done = load_npz(stage_dir / "predictions.npz")
    chosen_global = done["chosen"]
    if len(chosen_global) != len(test_logits):
        raise KitError(f"{stage_dir}: {len(chosen_global)} fusion folds for {len(test_logits)} expert folds; "
                       "rerun notebooks 03-04")
    first = sorted(stage_dir.glob("fold0_*.pt"))
    if not first:
        raise KitError(f"{stage_dir}: no fusion model fold0_*.pt; run notebook 04 first")
    kind_cfg = load_checkpoint(first[0], FusionConfig)["config"].kind
    kinds = FUSION_KINDS if kind_cfg == "auto" else (kind_cfg,)
    models = []
    for k in range(len(chosen_global)):
        row = []
        for kind in kinds:
            path = stage_dir / f"fold{k}_{kind}.pt"
            state = load_checkpoint(path, FusionConfig)
            if state["n_chans"] != test_logits.shape[2]:
                raise KitError(f"{path}: fusion of {state['n_chans']} experts, the data has {test_logits.shape[2]}")
            row.append(load_fusion(path)[0])
        models.append(row)
    chosen = np.array([kinds.index(FUSION_KINDS[c]) for c in chosen_global])
    z, c = zscore_folds(test_logits, test_course, np.asarray(test_subject))
    return fusion_test_prediction(models, kinds, chosen, z, c, n_times)


def read_expert_outputs(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Stage 03's stored outputs (:data:`EXPERT_ARRAYS`), z-scored per subject.

    Raises
    ------
    KitError
        The file lacks an array (written by an older kit, or without cross-fitting).
    """
    arrays = load_npz(path)
    missing = [k for k in EXPERT_ARRAYS if k not in arrays]
    if missing:
        raise KitError(f"{path}: no {', '.join(missing)}; rerun the experts stage (notebook 03) with this kit")
    s, ts = arrays["subject"], arrays["test_subject"]
    out = dict(arrays)
    out["oof_logits"] = zscore_by_subject(arrays["oof_logits"], s)
    out["oof_course"] = zscore_by_subject(arrays["oof_course"], s)
    out["test_logits"], out["test_course"] = zscore_folds(arrays["test_logits"], arrays["test_course"], ts)
    out["inner_logits"] = np.stack([zscore_by_subject(t, s) for t in arrays["inner_logits"]])
    out["inner_course"] = np.stack([zscore_by_subject(t, s) for t in arrays["inner_course"]])
    return out


def sigmoid(a: np.ndarray) -> np.ndarray:
    """P from logits, computed in float64 (:func:`scipy.special.expit`), stored float32."""
    return expit(np.asarray(a, np.float64)).astype(np.float32)


def train_fusion_loso(experts_predictions: str | os.PathLike, cfg: FusionConfig, out_dir: str | os.PathLike,
                      n_times: int, *, progress: bool = True) -> dict[str, np.ndarray]:
    """Fit the fusion of every LOSO fold on the experts' cross-fitted outputs; save models and predictions.

    Parameters
    ----------
    experts_predictions : path
        Stage 03's ``predictions.npz`` (:func:`kit.deep.experts_loso.train_experts_loso`):
        the only input; no expert checkpoint is read.
    cfg : FusionConfig
    out_dir : path
        Writes ``fold{k}_{kind}.pt`` (each fold's fitted models, loadable with
        :func:`load_fusion`) and ``predictions.npz``: ``oof (n_train, n_times)``,
        ``test (n_test, n_times)``, ``inner (n_groups, n_train, n_times)``,
        ``inner_group`` (P(emotional) of the chosen fusion), ``oof_{kind}``
        per kind, ``chosen (n_folds,)`` (index into :data:`FUSION_KINDS`),
        ``inner_score (n_folds, n_kinds)``, ``coef (n_folds, n_chans)`` (the
        LDA's expert weights), ``subject``, ``y``, ``test_subject``.
    n_times : int
        Samples per trial of the predictions (the courses are upsampled).
    progress : bool
        A tqdm bar over the fits.

    Raises
    ------
    KitError
        Unknown ``kind``, stage 03's outputs missing, or a non-finite loss.
    """
    if cfg.kind not in FUSION_KINDS + ("auto",):
        raise KitError(f"FusionConfig.kind must be one of {FUSION_KINDS + ('auto',)}, got {cfg.kind!r}")
    kinds = FUSION_KINDS if cfg.kind == "auto" else (cfg.kind,)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    e = read_expert_outputs(experts_predictions)
    s, y, group = e["subject"], e["y"].astype(np.int64), e["inner_group"]
    sids, G = np.unique(s), int(group.max()) + 1
    n_train, n_chans = len(s), e["oof_logits"].shape[1]
    bar = tqdm(total=len(kinds) * (len(sids) + G * G), disable=not progress, desc="fusion fits", unit="fit")

    def fit_predict(kind, seed, g, train_rows, z_pred, c_pred):
        model = fit(kind, e["inner_logits"][g, train_rows], e["inner_course"][g, train_rows], y[train_rows],
                    replace(cfg, seed=seed))
        bar.update()
        return model, predict(model, kind, z_pred, c_pred, n_times)

    # cross-fitted fusion tables: row i of table g from a fusion fitted outside groups g and group(i)
    inner = np.full((len(kinds), G, n_train, n_times), np.nan, np.float32)
    for ki, kind in enumerate(kinds):
        for g in range(G):
            for h in range(G):
                rows = group == h
                train_rows = np.flatnonzero(~np.isin(group, (g, h)))
                _, inner[ki, g, rows] = fit_predict(kind, cfg.seed * 1000 + 100 * g + h, g, train_rows,
                                                    e["inner_logits"][g, rows], e["inner_course"][g, rows])
    # LOSO folds: fitted on inner[a] rows of the other subjects, applied to fold k's expert outputs
    oof_by = np.zeros((len(kinds), n_train, n_times), np.float32)
    fold_models: list[list] = []
    inner_score = np.zeros((len(sids), len(kinds)))
    coef = np.zeros((len(sids), n_chans), np.float32)
    for k, held in enumerate(sids):
        v = s == held
        a = int(group[v][0])
        train_rows = np.flatnonzero(~v)
        fold_models.append([])
        for ki, kind in enumerate(kinds):
            model, oof_by[ki, v] = fit_predict(kind, cfg.seed * 1000 + k, a, train_rows,
                                               e["oof_logits"][v], e["oof_course"][v])
            fold_models[k].append(model)
            others = ~v
            inner_score[k, ki] = subject_auc(inner[ki, a, others].mean(axis=1), y[others], s[others])
            if kind == "lda":
                coef[k] = model["coef"]
                state = {k_: torch.as_tensor(v_) for k_, v_ in model.items()}
            else:
                state = {k_: v_.cpu() for k_, v_ in model.state_dict().items()}
            save_checkpoint(out_dir / f"fold{k}_{kind}.pt", state, cfg, kind=kind, n_chans=n_chans,
                            trained_on=[int(u) for u in sids if u != held])
    bar.close()
    chosen = inner_score.argmax(axis=1)  # (n_folds,) per held-out subject, the better kind on inner tables
    oof = np.zeros((n_train, n_times), np.float32)
    for k, held in enumerate(sids):
        oof[s == held] = oof_by[chosen[k], s == held]
    test = fusion_test_prediction(fold_models, kinds, chosen, e["test_logits"], e["test_course"], n_times)
    # the inner tables' own choice of kind, made without the labels of the rows it serves: rows of group h in
    # table g take the kind that scores better on the rows of the groups other than g and h (choosing on the
    # served rows themselves made fusion look better to the ensemble than it is on new subjects)
    inner_pick = np.zeros((G, n_train, n_times), np.float32)
    for g in range(G):
        for h in range(G):
            rows, judge = group == h, ~np.isin(group, (g, h))
            sc = [subject_auc(inner[ki, g, judge].mean(axis=1), y[judge], s[judge]) for ki in range(len(kinds))]
            inner_pick[g, rows] = inner[int(np.argmax(sc)), g, rows]
    arrays = dict(oof=sigmoid(oof), test=test, inner=sigmoid(inner_pick), inner_group=group,
                  chosen=np.array([FUSION_KINDS.index(kinds[c]) for c in chosen]), inner_score=inner_score,
                  coef=coef, subject=s, y=e["y"], test_subject=e["test_subject"],
                  **{f"oof_{kind}": sigmoid(oof_by[ki]) for ki, kind in enumerate(kinds)})
    save_npz(out_dir / "predictions.npz", **arrays)
    return arrays


def load_fusion(path: str | os.PathLike):
    """Rebuild one fold's fusion from its checkpoint alone: ``(model, kind)``.

    The LDA comes back as ``{"coef", "intercept"}`` arrays, the net as a
    :class:`SpatioTemporalFusion` in eval mode (use :func:`predict`).
    """
    state = load_checkpoint(path, FusionConfig)
    if state["kind"] == "lda":
        return {k: v.numpy() for k, v in state["state_dict"].items()}, "lda"
    cfg = state["config"]
    model = SpatioTemporalFusion(state["n_chans"], cfg.n_filters, cfg.kernel, cfg.dropout)
    model.load_state_dict(state["state_dict"])
    return model.eval(), "net"



def fusion_pattern(experts_predictions: str | os.PathLike, coef: np.ndarray) -> np.ndarray:
    """Haufe pattern of the fusion LDA's mean weights on the experts' z-scored out-of-fold trial logits.

    Parameters
    ----------
    experts_predictions : path
        Stage 03's ``predictions.npz``.
    coef : ndarray, shape (n_folds, n_chans) or (n_chans,)
        The fusion LDA's weights (stage 04's ``coef``); folds are averaged.

    Returns
    -------
    ndarray, shape (n_chans,)
        Covariance of each expert's logit with the fused output, per unit output variance
        (:func:`kit.methods.lda.haufe_pattern`): where the fused evidence comes from, even when correlated
        experts share the weight.
    """
    z = read_expert_outputs(experts_predictions)["oof_logits"]  # (n_train, n_chans), z-scored per subject
    w = np.asarray(coef, np.float64)
    return haufe_pattern(z, w.mean(axis=0) if w.ndim == 2 else w)
