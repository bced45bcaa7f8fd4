"""Cross-fitted inner predictions: what the ensemble chooses its blend on, without nested LOSO's cost.

Subjects are cut into :data:`CROSSFIT_GROUPS` groups; models trained without one group, or without two,
predict the left-out groups, so every held-out subject's inner table is filled by models that never saw
it or the subject held out by the outer fold (Chernozhukov et al., Econometrics J 2018).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kit.core.errors import KitError
from kit.eval.cv import FitPredict, check_subjects
from kit.eval.metric import subject_auc

CROSSFIT_GROUPS = 4
"""Subject groups of the cross-fitting plan: 4 + 6 = 10 extra models per component."""


@dataclass(frozen=True)
class CrossFit:
    """One model of the cross-fitting plan.

    Attributes
    ----------
    name : str
        ``"g{a}"`` (trained without group a) or ``"g{a}g{b}"`` (without groups a and b).
    train : ndarray of int
        Rows (positions in ``subject``) the model trains on.
    predict : ndarray of int
        Rows it predicts: the left-out groups' trials.
    slots : tuple of (int, ndarray of bool)
        ``(g, mask)``: the predictions ``pred[mask]`` belong to the inner table of group ``g``.
    """

    name: str
    train: np.ndarray
    predict: np.ndarray
    slots: tuple

    def place(self, inner: np.ndarray, pred: np.ndarray) -> None:
        """Write this model's predictions ``pred (len(predict), ...)`` into ``inner (n_groups, n_trials, ...)``."""
        for g, mask in self.slots:
            inner[g, self.predict[mask]] = pred[mask]


def crossfit_plan(subject: np.ndarray, n_groups: int = CROSSFIT_GROUPS) -> tuple[np.ndarray, list[CrossFit]]:
    """Models whose predictions let a blend be chosen without the held-out subject's labels.

    A stacked ensemble scored by LOSO usually chooses its blend for held-out
    subject k on the other subjects' out-of-fold predictions; but those came
    from models trained *with* subject k, so k's labels leak into its own
    blend (on null data this lifted the demo ensemble by about 0.01).  Doubly
    nested LOSO fixes it with n_subjects^2 models.  Cross-fitting needs
    ``G + G(G-1)/2`` instead: subjects go round-robin (sorted ids) into ``G``
    groups; model ``g{a}`` trains without group a and predicts it, model
    ``g{a}g{b}`` trains without groups a and b and predicts both.  The inner
    table of group a, ``inner[a]``, holds group a's trials from ``g{a}`` and
    group b's trials from ``g{a}g{b}``: no model behind ``inner[a]`` saw a
    subject of group a, so the blend of held-out subject k (in group a) is
    chosen on ``inner[a]`` without k's labels (cross-fitting: Chernozhukov et
    al., Econometrics J. 2018; nested CV for stacking: Wolpert 1992).

    Parameters
    ----------
    subject : ndarray, shape (n_trials,)
    n_groups : int
        Largest number of groups; fewer are used when a two-group model would
        keep fewer than 2 subjects to train on (at least 3 groups).

    Returns
    -------
    group : ndarray of int, shape (n_trials,)
        Group of each trial's subject.
    fits : list of CrossFit

    Raises
    ------
    KitError
        Fewer than 4 subjects (no plan of 3 or more groups leaves 2 training subjects).
    """
    subject = check_subjects(subject)
    sids = np.unique(subject)
    for G in range(min(n_groups, sids.size), 2, -1):
        sizes = np.bincount(np.arange(sids.size) % G)
        if sids.size - np.sort(sizes)[-2:].sum() >= 2:
            break
    else:
        raise KitError(f"cross-fitted ensemble: needs at least 4 training subjects, got {sids.size}")
    of_subject = {s: i % G for i, s in enumerate(sids)}
    group = np.array([of_subject[s] for s in subject], dtype=np.int64)
    fits = []
    for a in range(G):
        pred = np.flatnonzero(group == a)
        fits.append(CrossFit(f"g{a}", np.flatnonzero(group != a), pred, ((a, np.ones(pred.size, bool)),)))
    for a in range(G):
        for b in range(a + 1, G):
            out = np.isin(group, (a, b))
            pred = np.flatnonzero(out)
            # b's trials serve a's table, a's trials serve b's table
            fits.append(CrossFit(f"g{a}g{b}", np.flatnonzero(~out), pred,
                                 ((a, group[pred] == b), (b, group[pred] == a))))
    return group, fits


def cross_fit_predict(fit_predict: FitPredict, X: np.ndarray, y: np.ndarray, subject: np.ndarray, *,
                      n_groups: int = CROSSFIT_GROUPS) -> tuple[np.ndarray, np.ndarray]:
    """Inner prediction tables of a method for the cross-fitted ensemble (see :func:`crossfit_plan`).

    Parameters
    ----------
    fit_predict : callable
        As in :func:`cross_val_predict_loso` (called with one evaluation set).
    X : ndarray, shape (n_trials, ...)
    y, subject : ndarray, shape (n_trials,)
    n_groups : int

    Returns
    -------
    inner : ndarray, shape (n_groups, n_trials, n_times), float32
        ``inner[g]``: every trial predicted by a model that saw no subject of group ``g``.
    group : ndarray of int, shape (n_trials,)

    Raises
    ------
    KitError
        See :func:`crossfit_plan`; ``fit_predict`` returning the wrong shape.
    """
    X, y = np.asarray(X), np.asarray(y)
    group, fits = crossfit_plan(subject, n_groups)
    inner = None
    for fit in fits:
        (pred,) = fit_predict(X[fit.train], y[fit.train], subject[fit.train], [(X[fit.predict], subject[fit.predict])])
        pred = np.asarray(pred, np.float32)
        if pred.ndim != 2 or pred.shape[0] != fit.predict.size:
            raise KitError(f"cross-fit model {fit.name}: expected predictions ({fit.predict.size}, n_times), "
                           f"got {pred.shape}")
        if inner is None:
            inner = np.full((group.max() + 1, subject.size, pred.shape[1]), np.nan, np.float32)
        fit.place(inner, pred)
    return inner, group


def served_inner_auc(oof: np.ndarray, inner: np.ndarray, group: np.ndarray, y: np.ndarray,
                     subject: np.ndarray) -> dict[str, float]:
    """How honest a component's cross-fitted tables are: their AUC beside its LOSO AUC, subject by subject.

    An ensemble rule chooses held-out subject k's blend (k in group a) on table ``inner[a]``: on the rows of
    the *other* subjects.  Row i of table g is "served" to the blends of group g's subjects when g is not
    i's own group.  If a component's served rows score higher than its LOSO predictions, the rule is fed an
    optimistic view of it (a leak, or a choice made on those very rows); lower, a pessimistic one (models
    trained on fewer subjects than the LOSO models, which understates a learner that needs many).

    Parameters
    ----------
    oof : ndarray, shape (n_trials, n_times)
        LOSO out-of-fold P(emotional).
    inner : ndarray, shape (n_groups, n_trials, n_times)
        Cross-fitted P(emotional) (:func:`cross_fit_predict`).
    group : ndarray of int, shape (n_trials,)
    y, subject : ndarray, shape (n_trials,)

    Returns
    -------
    dict
        ``loso``, ``own`` (each subject's rows in its own group's table) and ``served`` (each subject's rows
        in the other groups' tables, averaged over those tables): mean over subjects of the AUC of the trial
        mean; ``optimism`` = served - loso.
    """
    oof, inner, group = np.asarray(oof, np.float64), np.asarray(inner, np.float64), np.asarray(group)
    mean = (lambda a: a.mean(axis=-1)) if oof.ndim == 2 else (lambda a: a)
    own = np.empty(len(group))
    for g in range(inner.shape[0]):
        own[group == g] = mean(inner[g, group == g])
    served = []
    for s in np.unique(subject):
        m = subject == s
        others = [g for g in range(inner.shape[0]) if g != group[m][0]]
        served.append(np.mean([subject_auc(mean(inner[g, m]), y[m], subject[m]) for g in others]))
    out = {"loso": subject_auc(mean(oof), y, subject), "own": subject_auc(own, y, subject),
           "served": float(np.mean(served))}
    out["optimism"] = out["served"] - out["loso"]
    return out
