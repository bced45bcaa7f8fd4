"""First-order meta-learning across subjects: the inner loop, the task splits and the outer loss.

A *task* is built from training subjects.  The ``inner`` loop
(:func:`fast_adapt`) takes ``inner_steps`` SGD steps on a ``support`` set;
the ``outer`` loss is taken on a ``query`` set with the adapted weights, and
its gradient, taken first-order (the inner gradients are constants), updates
the shared initialisation.  Three modes, one flag (``meta``):

- ``"fomaml"``: the 3rd place's first-order MAML; support and query are
  disjoint, class-balanced trials of the *same* subject (Finn et al., ICML
  2017, section 5.2; Nichol et al., "On first-order meta-learning
  algorithms", 2018).  It meta-learns fast adaptation to a subject, which a
  held-out subject without labels never gets.
- ``"mldg"``: support = trials of several subjects, query = trials of
  *another* subject; outer loss = support loss at the initialisation + query
  loss after the inner steps.  First-order MLDG (Li et al., "Learning to
  generalize: meta-learning for domain generalization", AAAI 2018) trains
  for what the held-out subject needs: zero-shot transfer to a new subject.
- ``"none"``: plain multi-subject training on the same trials (the ablation).

Only the heads take inner steps (ANIL: Raghu et al., ICLR 2020): the inner
loop runs on the support tokens computed once, so it costs no encoder pass.
The pattern of :func:`fast_adapt` follows learn2learn's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from kit.core.errors import KitError
from kit.core.runtime import take_rows

META_MODES = ("mldg", "fomaml", "none")
"""Values of ``ExpertsConfig.meta``."""


def trial_bce(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy of trial logits against trial labels: the experts' trial-level loss.

    Parameters
    ----------
    logits : Tensor, shape (n_models, B, n_chans)
    y : Tensor, shape (B,)
    weight : Tensor, shape (n_models, B), optional
        1 where a trial belongs to the model's training subjects, else 0.

    Returns
    -------
    Tensor (scalar)
        Per model, the mean over its trials (weighted) and experts; summed
        over models, so each model's gradient is that of its own mean loss,
        as if it trained alone.
    """
    target = y.to(logits.dtype)[None, :, None].expand_as(logits)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=-1)  # (M, B)
    if weight is None:
        return loss.mean(dim=1).sum()
    return ((loss * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1.0)).sum()


def fast_adapt(model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
               *, steps: int, lr: float, first_order: bool = True,
               weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Inner loop: ``steps`` SGD steps on the loss of ``(x, y)`` from ``params``; a pure function.

    Parameters
    ----------
    model : nn.Module
        Maps ``x`` to trial logits ``(n_models, B, E)``; evaluated with
        :func:`torch.func.functional_call` on ``params``.
    params : dict
        Starting weights (the meta-initialisation, usually ``dict(model.named_parameters())``).
    x : Tensor, shape (B, ...)
        The support inputs (e.g. tokens ``(B, n_chans, T, D)``).
    y : Tensor, shape (B,)
    steps, lr : int, float
        Number of steps and step size.
    first_order : bool
        If True the inner gradients are constants, so the gradient of a later
        loss with respect to ``params`` is that loss's gradient at the adapted
        weights (the first-order approximation).  If False the graph of the
        inner steps is kept (second-order MAML).
    weight : Tensor, shape (n_models, B), optional
        Which support trials each model may learn from (:func:`trial_bce`).

    Returns
    -------
    dict
        The adapted weights (same keys as ``params``).
    """
    for _ in range(steps):
        loss = trial_bce(functional_call(model, params, (x,)), y, weight)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=not first_order)
        params = {n: p - lr * g for (n, p), g in zip(params.items(), grads)}
    return params


def subject_tasks(y: np.ndarray, subject: np.ndarray, rows: np.ndarray | None = None) -> dict:
    """Per subject, the row indices of its neutral (0) and emotional (1) trials (among ``rows``, default all)."""
    rows = np.arange(len(y)) if rows is None else np.asarray(rows)
    ys, ss = y[rows], subject[rows]
    return {int(s): (rows[(ss == s) & (ys == 0)], rows[(ss == s) & (ys == 1)]) for s in np.unique(ss)}


def draw(idx: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` of ``idx`` without replacement, or every one of them and the rest with replacement when short."""
    if len(idx) >= n:
        return rng.choice(idx, size=n, replace=False)
    return np.concatenate([idx, rng.choice(idx, size=n - len(idx), replace=True)])


def balanced(idx_neg: np.ndarray, idx_pos: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` trials of one subject, half per class (:func:`draw`: a fixed size, so models batch together)."""
    return np.concatenate([draw(idx_neg, n // 2, rng), draw(idx_pos, n - n // 2, rng)])


def sample_task(idx_neg: np.ndarray, idx_pos: np.ndarray, n_support: int, n_query: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """FOMAML split of one subject: class-balanced support and query trial indices, disjoint.

    Each class gives ``n_support // 2`` support and ``n_query // 2`` query
    trials; a class with fewer trials than both need is cycled (a few trials
    then serve twice), so the sizes stay fixed.
    """
    support, query = [], []
    for idx in (idx_neg, idx_pos):
        half_s, half_q = n_support // 2, n_query // 2
        perm = np.resize(rng.permutation(idx), half_s + half_q)
        support.append(perm[:half_s])
        query.append(perm[half_s:])
    return np.concatenate(support), np.concatenate(query)


def mldg_task(tasks: dict, batch: np.ndarray, query_subject: int, n_support: int, n_query: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """MLDG split: support from every subject of ``batch`` but ``query_subject``, query from it alone.

    Returns
    -------
    support, query : ndarray of int
        Row indices, ``n_support`` per support subject and ``n_query``; no
        support row belongs to ``query_subject``.

    Raises
    ------
    KitError
        ``query_subject`` not in ``batch``, or no other subject to support it.
    """
    others = [s for s in batch if s != query_subject]
    if len(others) == len(batch) or not others:
        raise KitError(f"MLDG task: query subject {query_subject} must be one of {list(batch)}, with others")
    support = np.concatenate([balanced(*tasks[s], n_support, rng) for s in others])
    return support, balanced(*tasks[query_subject], n_query, rng)


def draw_step(tasks: dict, rng: np.random.Generator, cfg) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The trials of one outer step, shared by every model: a list of ``(support, query)`` row indices.

    ``"none"``: one pair ``(trials, None)`` of ``meta_batch * (n_support + n_query)``
    rows; ``"fomaml"``: per subject of the batch, a disjoint support and query
    of that subject; ``"mldg"``: per subject of the batch as query, the others
    as support.  Each model then learns only from the rows of its own training
    subjects (:func:`outer_loss`).

    Raises
    ------
    KitError
        Unknown ``cfg.meta``.
    """
    if cfg.meta not in META_MODES:
        raise KitError(f"meta must be one of {META_MODES}, got {cfg.meta!r}")
    sids = np.array(sorted(tasks))
    batch = rng.choice(sids, size=min(cfg.meta_batch, len(sids)), replace=False)
    if cfg.meta == "none":
        return [(np.concatenate([balanced(*tasks[s], cfg.n_support + cfg.n_query, rng) for s in batch]), None)]
    if cfg.meta == "fomaml":
        return [sample_task(*tasks[s], cfg.n_support, cfg.n_query, rng) for s in batch]
    return [mldg_task(tasks, batch, s, cfg.n_support, cfg.n_query, rng) for s in batch]


def outer_loss(head: nn.Module, x: torch.Tensor, y: torch.Tensor, allowed: torch.Tensor, step: list,
               cfg) -> torch.Tensor:
    """The loss of one outer step; its gradient is the first-order meta-gradient of ``cfg.meta``.

    Parameters
    ----------
    head : nn.Module
        Maps inputs ``(B, E, T, d)`` to trial logits ``(n_models, B, E)``; the
        part that takes inner steps (all of it).
    x : Tensor, shape (n_trials, E, T, d)
        Head inputs of every trial (the frozen encoder's tokens and features).
    y : Tensor, shape (n_trials,)
    allowed : Tensor of float, shape (n_models, n_trials)
        1 where a trial's subject is one of the model's training subjects.
    step : list
        :func:`draw_step` for this outer step (index tensors).
    cfg : ExpertsConfig
        ``meta``, ``inner_steps``, ``inner_lr``.

    Returns
    -------
    Tensor (scalar)
        Summed over models of: ``"none"``: the loss on the drawn trials;
        ``"fomaml"``: mean over tasks of the query loss after the inner steps
        on the same subject's support; ``"mldg"``: mean over tasks of (support
        loss at the initialisation + query loss after the inner steps on that
        support, Li et al. 2018's ``F(theta) + G(theta - alpha F'(theta))``).
        A model whose training subjects do not include a task's query subject
        takes no part in that task.
    """
    init = dict(head.named_parameters())
    if cfg.meta == "none":
        (idx, _), = step
        return trial_bce(head(take_rows(x, idx)), y[idx], allowed[:, idx])
    total = 0.0
    for s_idx, q_idx in step:
        xs, ys, ws = take_rows(x, s_idx), y[s_idx], allowed[:, s_idx]
        adapted = fast_adapt(head, init, xs, ys, steps=cfg.inner_steps, lr=cfg.inner_lr, first_order=True,
                             weight=ws)
        loss = trial_bce(functional_call(head, adapted, (take_rows(x, q_idx),)), y[q_idx], allowed[:, q_idx])
        if cfg.meta == "mldg":
            loss = loss + trial_bce(head(xs), ys, ws)
        total = total + loss / len(step)
    return total
