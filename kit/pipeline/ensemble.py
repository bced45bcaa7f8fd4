"""Stage 05: combine components on out-of-fold predictions with a rule that shrinks toward simplicity.

Every component (baselines, experts, fusion) gives out-of-fold predictions
``(n_train, n_times)`` and test predictions ``(n_test, n_times)``.  They are
put on one scale per subject (logit, then z-score over that subject's trials
and samples: monotone within a subject, so each component's per-subject AUC
is unchanged).  A **rule** then picks non-negative weights that sum to one,
and a post-processing along time from a small family:

- ``none``       the blend as it is;
- ``smooth``     moving average over ``param`` samples (:func:`scipy.ndimage.uniform_filter1d`);
- ``broadcast``  the trial's mean score copied to all samples (2nd-place trick: a
                 sustained, flat AUC curve is what the window metric rewards);
- ``peak``       the trial's mean over the ``param`` samples where the fitting
                 subjects' pooled AUC curve of the blend is highest, copied to all
                 samples (resolved into a ``window`` post-processing);
- ``window``     the trial's mean over samples ``param = (start, stop)`` (stop exclusive)
                 copied to all samples; ``blend``: ``param`` x broadcast + (1 - ``param``) x the blend.

The rules (:data:`RULES`), from the simplest:

- ``best``        the single component (and post-processing) with the best score;
- ``significant`` the equal-weight mean of the components whose per-subject AUC
                  (of the trial-mean score) is above 0.5 by a one-sided bootstrap
                  over subjects (level ``alpha``, Bonferroni over components); ``best`` when none is;
- ``stack``       logistic regression with a strong L2 penalty and non-negative
                  weights on the components' trial-mean scores (stacked
                  generalisation, Wolpert 1992; non-negative stacking, Breiman 1996);
- ``sigstack``    ``stack`` on the significant components only (``best`` when none is): a
                  component that does not beat chance over the other subjects gets no weight,
                  however the stacker's noise would spread it;
- ``grid``        the ``top_k`` best blends of the weight grid x the post-processings, averaged.

Each rule is fitted on out-of-fold predictions only.  For the ensemble's own
LOSO score the fit is *nested*: held-out subject k is predicted with the rule
fitted on the other subjects' cross-fitted predictions (models that never saw
k, :func:`kit.eval.crossfit.crossfit_plan`), so its labels never take part.  The default
rule is the one whose worst difference to the best single component over the
bench's folders was the least negative (see the README's ensemble table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from kit.core.errors import KitError
from kit.eval.metric import window_score
from kit.pipeline.blends import Candidate, Table, mix, standardize, weight_grid

RULES = ("best", "significant", "stack", "sigstack", "grid")
"""Selection rules, simplest first (see the module docstring)."""


@dataclass
class EnsembleConfig:
    """How stage 05 combines its components (used by every profile)."""

    rule: str = "grid"  # selection rule (RULES): the least negative worst case over 7 folders, 5 kinds (README)
    post: tuple = (("none", 0.0), ("broadcast", 0.0), ("smooth", 51.0))  # (kind, param) family; ("peak", 40) optional
    weight_step: float = 0.25  # grid rule: step of the blend weights on the simplex
    top_k: int = 10  # grid rule: blends averaged (steadier than the single best on ~13 subjects)
    alpha: float = 0.05  # significant rule: one-sided level of the bootstrap test, Bonferroni over components
    n_boot: int = 2000  # significant rule: bootstrap resamples of the subjects
    l2: float = 1.0  # stack rule: L2 penalty on the weights (per trial-mean z-score; strong on purpose)
    threshold: float = 0.5  # metric threshold
    min_len: int = 10  # metric's shortest run in samples (50 ms)
    components: tuple = ()  # names to combine; empty = every component given
    compare: tuple = ("best", "significant", "stack", "sigstack")  # rules stage 05 also scores (cheap: seconds)
    threads: int = 2  # subjects scored at once (notebook 05 runs when the anchors' process is done: a core is free)


@dataclass
class EnsembleFit:
    """What :func:`fit_ensemble` returns.

    Attributes
    ----------
    chosen : list of Candidate
        The rule's blends on all training subjects (averaged for the test set).
    nested : ndarray, shape (n_trials, n_times)
        P(emotional) where subject k's rows come from the rule fitted without k.
    per_subject : list of dict
        Per held-out subject: ``subject``, ``rule``, ``blend`` (label), ``inner_score``
        (the blend's metric on the subjects it was chosen on).
    rule : str
    """

    chosen: list
    nested: np.ndarray
    per_subject: list
    rule: str


def _metric(curves: np.ndarray, keep: np.ndarray, cfg: EnsembleConfig) -> np.ndarray:
    """Window metric of each blend's mean curve over subjects ``keep``: ``(n_w, n_subj, T)`` -> ``(n_w,)``."""
    means = curves[:, keep].mean(axis=1)
    return np.array([window_score(m, threshold=cfg.threshold, min_len=cfg.min_len).score for m in means])


def _weights(W: np.ndarray, names: list[str]) -> dict:
    return {k: float(w) for k, w in zip(names, W)}


def _scored(table: Table, W: np.ndarray, keep: np.ndarray, cfg: EnsembleConfig) -> list[Candidate]:
    """Every blend of ``W (n_w, C)`` with every post-processing of the family, scored on ``keep``."""
    cands = []
    for kind, param in cfg.post:
        if kind == "peak":
            wins = table.peak_windows(W, keep, int(param))
            A = table.window_curves(W, wins)
            for w, win, a, s in zip(W, wins, A, _metric(A, keep, cfg)):
                cands.append(Candidate(_weights(w, table.names), ("window", win), float(s), a[keep]))
            continue
        A = table.curves(W, (kind, param))
        for w, a, s in zip(W, A, _metric(A, keep, cfg)):
            cands.append(Candidate(_weights(w, table.names), (kind, param), float(s), a[keep]))
    return cands


def _best_post(table: Table, w: np.ndarray, keep: np.ndarray, cfg: EnsembleConfig) -> Candidate:
    """The post-processing of the family that scores best for the blend ``w (C,)`` (first on ties)."""
    cands = _scored(table, w[None], keep, cfg)
    return cands[int(np.argmax([c.score for c in cands]))]


def rule_best(table: Table, keep: np.ndarray, cfg: EnsembleConfig) -> list[Candidate]:
    """The single component and post-processing with the best metric on subjects ``keep``."""
    cands = _scored(table, np.eye(len(table.names)), keep, cfg)
    return [cands[int(np.argmax([c.score for c in cands]))]]


def significant_components(table: Table, keep: np.ndarray, cfg: EnsembleConfig, seed: int = 0) -> np.ndarray:
    """Mask ``(C,)`` of components whose mean per-subject AUC beats 0.5 by a one-sided bootstrap over subjects.

    The per-subject AUC is that of the trial-mean score (one number per subject, no window chosen, so the
    test is not biased upward by a search); the p-value is the share of ``n_boot`` subject resamples
    (``numpy.random.default_rng(seed)``) whose mean AUC is <= 0.5; a component is significant when
    p < ``alpha / n_components`` (Bonferroni: with five noise components and a plain 0.05, one of them
    would pass about one run in four and dilute the blend).
    """
    A = table.curves(np.eye(len(table.names)), ("broadcast", 0.0))[:, keep, 0]  # (C, n_keep)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, A.shape[1], size=(int(cfg.n_boot), A.shape[1]))
    boot = A[:, idx].mean(axis=2)  # (C, n_boot)
    p = (boot <= 0.5).mean(axis=1)
    return p < cfg.alpha / len(table.names)


def rule_significant(table: Table, keep: np.ndarray, cfg: EnsembleConfig) -> list[Candidate]:
    """Equal-weight mean of the significant components (:func:`significant_components`); ``best`` if none."""
    sig = significant_components(table, keep, cfg)
    if not sig.any():
        return rule_best(table, keep, cfg)
    return [_best_post(table, sig / sig.sum(), keep, cfg)]


def stack_weights(X: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Non-negative L2-penalised logistic regression weights ``(C,)`` on features ``X (n_trials, C)``.

    Minimises ``mean(log(1 + exp(-s (X w + b)))) + l2 * ||w||^2`` with ``s = 2y - 1`` and ``w >= 0``
    (:func:`scipy.optimize.minimize`, L-BFGS-B with bounds).
    """
    s = 2.0 * np.asarray(y, np.float64) - 1.0
    n, C = X.shape

    def loss(theta):
        w, b = theta[:C], theta[C]
        m = s * (X @ w + b)
        p = expit(-m)  # d/dm log(1 + exp(-m)) = -sigmoid(-m)
        f = np.logaddexp(0.0, -m).mean() + l2 * w @ w
        g = -(s * p) / n
        return f, np.concatenate([X.T @ g + 2 * l2 * w, [g.sum()]])

    bounds = [(0.0, None)] * C + [(None, None)]
    res = minimize(loss, np.zeros(C + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    return np.clip(res.x[:C], 0.0, None)


def rule_stack(table: Table, keep: np.ndarray, cfg: EnsembleConfig) -> list[Candidate]:
    """Non-negative, strongly L2-penalised logistic stacking of the trial-mean scores; ``best`` if all weights are 0."""
    rows = np.concatenate([r for r, k in zip(table.rows, keep) if k])
    y = np.concatenate([p for p, k in zip(table.pos, keep) if k]).astype(np.float64)
    X = table.Z[:, rows].mean(axis=2).T  # (n_rows, C): trial-mean standardized scores
    w = stack_weights(X, y, cfg.l2)
    if w.sum() <= 1e-8:
        return rule_best(table, keep, cfg)
    return [_best_post(table, w / w.sum(), keep, cfg)]


def rule_sigstack(table: Table, keep: np.ndarray, cfg: EnsembleConfig) -> list[Candidate]:
    """``stack`` restricted to the significant components (:func:`significant_components`); ``best`` if none is."""
    sig = significant_components(table, keep, cfg)
    if not sig.any():
        return rule_best(table, keep, cfg)
    rows = np.concatenate([r for r, k in zip(table.rows, keep) if k])
    y = np.concatenate([p for p, k in zip(table.pos, keep) if k]).astype(np.float64)
    X = table.Z[sig][:, rows].mean(axis=2).T  # (n_rows, n_significant)
    w = np.zeros(len(table.names))
    w[sig] = stack_weights(X, y, cfg.l2)
    if w.sum() <= 1e-8:
        w = sig.astype(np.float64)
    return [_best_post(table, w / w.sum(), keep, cfg)]


def rule_grid(table: Table, keep: np.ndarray, cfg: EnsembleConfig) -> list[Candidate]:
    """The ``top_k`` best (weights, post-processing) of the simplex grid, to be averaged."""
    W = np.array([[g[k] for k in table.names] for g in weight_grid(table.names, cfg.weight_step)])
    cands = _scored(table, W, keep, cfg)
    order = np.argsort([-c.score for c in cands], kind="stable")[: cfg.top_k]
    return [cands[j] for j in order]


RULE_FUNCTIONS = {"best": rule_best, "significant": rule_significant, "stack": rule_stack, "sigstack": rule_sigstack,
                  "grid": rule_grid}


def fit_ensemble(oof: dict[str, np.ndarray], y: np.ndarray, subject: np.ndarray,
                 cfg: EnsembleConfig | None = None, *, inner: dict[str, np.ndarray] | None = None,
                 group: np.ndarray | None = None, tables: dict | None = None) -> EnsembleFit:
    """Fit the rule on out-of-fold predictions; its own LOSO score without the held-out labels.

    Held-out subject k's blend is chosen on the other subjects' predictions.
    With ``inner`` (cross-fitted tables, :func:`kit.eval.crossfit.crossfit_plan`) those
    come from models that never saw k: k's labels take no part at all.
    Without it they are the plain out-of-fold predictions, whose models did
    train on k: a second-order leak that lifted the null demo's grid ensemble by
    about 0.01 (kept for quick experiments; the pipeline passes ``inner``).

    Parameters
    ----------
    oof : dict name -> ndarray, shape (n_trials, n_times)
        Out-of-fold P(emotional) of every component, same trial order.
    y, subject : ndarray, shape (n_trials,)
    cfg : EnsembleConfig, optional
        Default ``EnsembleConfig()``.
    inner : dict name -> ndarray, shape (n_groups, n_trials, n_times), optional
        Cross-fitted P(emotional) of every component (same names as ``oof``).
    group : ndarray of int, shape (n_trials,), required with ``inner``
        Cross-fitting group of each trial's subject.
    tables : dict, optional
        A cache of the standardized tables (and the AUC curves they computed), filled here: pass the same dict
        to fit several rules on the same predictions (stage 05's comparison) without standardizing and scoring
        the same blends again. Its tables hold ``cfg``'s components and threads.

    Returns
    -------
    EnsembleFit

    Raises
    ------
    KitError
        Unknown rule, no components, components of different shapes, ``inner``
        missing a component or without ``group``.
    """
    cfg = cfg or EnsembleConfig()
    if cfg.rule not in RULE_FUNCTIONS:
        raise KitError(f"ensemble: unknown rule {cfg.rule!r}; choose from {', '.join(RULES)}")
    rule = RULE_FUNCTIONS[cfg.rule]
    names = list(cfg.components) or sorted(oof)
    if not names:
        raise KitError("ensemble: no components to blend")
    shapes = {k: oof[k].shape for k in names}
    if len(set(shapes.values())) != 1:
        raise KitError(f"ensemble: components have different shapes {shapes}")
    if inner is not None:
        missing = [k for k in names if k not in inner]
        if missing or group is None:
            raise KitError(f"ensemble: cross-fitted predictions missing for {missing or 'the groups'}")
        n_groups = {inner[k].shape[0] for k in names}
        if len(n_groups) != 1 or any(inner[k].shape[1:] != shapes[k] for k in names):
            raise KitError(f"ensemble: cross-fitted predictions of different shapes "
                           f"{ {k: inner[k].shape for k in names} }")
    tables = {} if tables is None else tables  # "full" and cross-fitting group -> Table (standardized scores)
    if "full" not in tables:
        tables["full"] = Table({k: standardize(oof[k], subject) for k in names}, names, y, subject, cfg.threads)
    full = tables["full"]
    z = dict(zip(names, full.Z))
    every = np.ones(len(full.subjects), bool)
    nested = np.empty(shapes[names[0]])
    per_subject = []
    for i, s in enumerate(full.subjects):
        m = subject == s
        keep = every.copy()
        keep[i] = False  # subject s's labels take no part in its own blend
        table = full
        if inner is not None:
            g = int(group[np.flatnonzero(m)[0]])
            if g not in tables:
                tables[g] = Table({k: standardize(inner[k][g], subject) for k in names}, names, y, subject,
                                  cfg.threads)
            table = tables[g]
        chosen = rule(table, keep, cfg)
        nested[m] = mix(chosen, {k: v[m] for k, v in z.items()})
        per_subject.append({"subject": int(s), "rule": cfg.rule, "blend": describe(chosen),
                            "inner_score": round(float(chosen[0].score), 4)})
    return EnsembleFit(rule(full, every, cfg), expit(nested), per_subject, cfg.rule)


def apply_ensemble(chosen: list[Candidate] | Candidate, preds: dict[str, np.ndarray],
                   subject: np.ndarray) -> np.ndarray:
    """P(emotional) ``(n_trials, n_times)`` of the chosen blend(s) on new trials (e.g. the test set)."""
    chosen = [chosen] if isinstance(chosen, Candidate) else list(chosen)
    names = {k for c in chosen for k, w in c.weights.items() if w > 0}
    z = {k: standardize(preds[k], subject) for k in names}
    return expit(mix(chosen, z)).astype(np.float32)


def _plain(v):
    """numpy scalars and tuples as JSON values (floats keep every bit: JSON writes their repr)."""
    if isinstance(v, (tuple, list)):
        return [_plain(u) for u in v]
    return v.item() if isinstance(v, np.generic) else v


def candidate_to_json(c: Candidate) -> dict:
    """``{"weights": [[name, w], ...], "post": [kind, param]}``: what :func:`apply_ensemble` needs of a blend.

    The weights are a list, not a mapping, so that their order (the order :func:`blend` sums in) survives JSON
    writers that sort keys.
    """
    return {"weights": [[k, float(w)] for k, w in c.weights.items()], "post": _plain(list(c.post))}


def candidate_from_json(d: dict) -> Candidate:
    """The inverse of :func:`candidate_to_json` (lists back to tuples).

    Raises
    ------
    KitError
        When ``d`` lacks ``weights`` or ``post``.
    """
    try:
        kind, param = d["post"]
        weights = {str(k): float(w) for k, w in d["weights"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise KitError(f"not a stored blend: {d!r:.80}") from exc
    return Candidate(weights, (str(kind), tuple(param) if isinstance(param, list) else param))


def describe(chosen: list[Candidate]) -> str:
    """One line for the chosen blends: the best one, and how many more are averaged with it."""
    more = f" (+ {len(chosen) - 1} more candidates averaged)" if len(chosen) > 1 else ""
    return chosen[0].label() + more
