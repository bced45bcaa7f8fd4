"""The anchors' shared base and linear tools: input checks, Welch's t, stability selection, shrinkage LDA, inner
selection.

Shrinkage LDA: Ledoit & Wolf, "A well-conditioned estimator for large-dimensional covariance matrices",
J. Multivar. Anal. 2004, as in :class:`sklearn.discriminant_analysis.LinearDiscriminantAnalysis`.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import ttest_ind

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.eval.cv import inner_loso_folds
from kit.eval.metric import per_sample_auc
from kit.signal.features import check_trials


@fill_doc
class Anchor:
    """What every anchor of :mod:`kit.methods.registry` holds: its config dataclass and the sampling rate.

    A subclass names its config's class as :attr:`config_class` and implements ``fit(X, y, subject)`` and
    ``predict(X, subject)``.

    %(anchor_params)s
    """

    config_class: type
    """The anchor's config dataclass (each subclass sets it)."""

    def __init__(self, config=None, *, sfreq: float = 200.0):
        self.config = config or self.config_class()
        self.sfreq = float(sfreq)


def check_xy(X, y=None, subject=None, *, fit: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Validated ``(X, y, subject)``: X (n_trials, n_chans, n_times) µV, y 0/1 int64 (``fit`` only), subject (n_trials,).

    Raises
    ------
    KitError
        A wrong shape, or (``fit``) labels that are not 0/1 with both classes.
    """
    X = check_trials(X)
    subject = np.asarray(subject)
    if subject.shape != (X.shape[0],):
        raise KitError(f"subject: shape {subject.shape} does not match X's {X.shape[0]} trials")
    if not fit:
        return X, None, subject
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise KitError(f"y: shape {y.shape} does not match X's {X.shape[0]} trials")
    if not np.all(np.isin(y, (0, 1))) or np.unique(y).size != 2:
        raise KitError(f"y: training labels must be 0/1 with both classes, got {np.unique(y).tolist()}")
    return X, y.astype(np.int64), subject


def welch_t(F: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Welch t statistic (class 1 minus class 0) per feature: :func:`scipy.stats.ttest_ind` with ``equal_var=False``.

    Parameters
    ----------
    F : ndarray, shape (n_trials, n_features)
    y : ndarray, shape (n_trials,), 0/1 (at least two trials per class)

    Returns
    -------
    ndarray, shape (n_features,)
        ``(mean1 - mean0) / sqrt(var1/n1 + var0/n0)``; 0 where both variances are 0.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ttest_ind(F[y == 1], F[y == 0], axis=0, equal_var=False).statistic
    return np.nan_to_num(np.asarray(t, np.float64))


def stability_select(F: np.ndarray, y: np.ndarray, subject: np.ndarray, n_features: int) -> np.ndarray:
    """Pick features that rank high on every inner leave-one-subject-out fold.

    On each inner fold (all training subjects but one,
    :func:`kit.eval.cv.inner_loso_folds`) the features are ranked by ``|t|``
    (:func:`welch_t`); a feature's stability is the fraction of inner folds
    in which it is among the top ``n_features``, ties broken by its mean
    ``|t|`` over folds.  Only the arrays passed in are used: called from
    :meth:`ThetaCov.fit`, those are the outer fold's training subjects, so
    the held-out subject's labels are never seen.  With a single training
    subject the ranking is by ``|t|`` on all of it.

    Parameters
    ----------
    F : ndarray, shape (n_trials, n_features_total)
    y : ndarray, shape (n_trials,), 0/1
    subject : ndarray, shape (n_trials,)
    n_features : int

    Returns
    -------
    ndarray of int, shape (min(n_features, n_features_total),)
        Selected column indices, most stable first.
    """
    n_total = F.shape[1]
    k = min(int(n_features), n_total)
    if np.unique(subject).size < 2:
        return np.argsort(-np.abs(welch_t(F, y)), kind="stable")[:k]
    counts = np.zeros(n_total)
    abs_t = np.zeros(n_total)
    folds = inner_loso_folds(subject)
    for tr, _ in folds:
        t = np.abs(welch_t(F[tr], y[tr]))
        counts[np.argsort(-t, kind="stable")[:k]] += 1
        abs_t += t
    order = np.lexsort((-abs_t / len(folds), -counts / len(folds)))  # primary key last
    return order[:k]


def _shrunk_lda(classes: list[tuple], n_all: int) -> tuple[np.ndarray, np.ndarray]:
    """``(coef (B, p), intercept (B,))`` of the two-class shrinkage LDA from each class's moments.

    ``classes``: for class 0 then 1, ``(n, mu (B, p), S (B, p, p), R (B,))``: its trial count, mean, biased
    covariance (``np.std``'s ``ddof=0``) and ``R = sum_i (sum_j z_ij^2)^2`` of its standardised trials ``z``
    (the fourth-moment term of the Ledoit-Wolf shrinkage). A feature with no variance in a class is left at 0
    after standardising (its row and column of ``S`` must be 0), as sklearn's ``StandardScaler`` does.
    """
    cov, means, priors = 0.0, [], []
    for n, mu, S, R in classes:
        B, p = mu.shape
        var = np.diagonal(S, axis1=1, axis2=2)
        sd = np.where(var > 0, np.sqrt(np.maximum(var, 0.0)), 1.0)  # (B, p)
        emp = S / (sd[:, :, None] * sd[:, None, :])  # (B, p, p): correlations of the standardised features
        if p > 1:
            tr = np.diagonal(emp, axis1=1, axis2=2)  # (B, p): 1, or 0 for a feature with no variance
            m = tr.sum(axis=1) / p
            delta_ = (emp ** 2).sum(axis=(1, 2))
            beta = (R / n - delta_) / (p * n)
            delta = (delta_ - 2.0 * m * tr.sum(axis=1) + p * m ** 2) / p
            beta = np.minimum(beta, delta)
            with np.errstate(divide="ignore", invalid="ignore"):
                shrink = np.where(beta == 0, 0.0, beta / delta)
            emp = (1.0 - shrink)[:, None, None] * emp
            diag = np.arange(p)
            emp[:, diag, diag] += (shrink * m)[:, None]
        prior = n / n_all
        cov = cov + prior * (sd[:, :, None] * emp * sd[:, None, :])
        means.append(mu)
        priors.append(prior)
    M = np.stack(means, axis=2)  # (B, p, 2)
    try:
        W = np.linalg.solve(cov, M)
    except np.linalg.LinAlgError:  # singular (no shrinkage, fewer trials than features): least squares
        W = np.linalg.pinv(cov) @ M
    icpt = -0.5 * np.einsum("bpk,bpk->bk", M, W) + np.log(priors)
    return W[:, :, 1] - W[:, :, 0], icpt[:, 1] - icpt[:, 0]


def ledoit_wolf_lda(F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | float]:
    """Two-class shrinkage LDA: sklearn's ``LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")``.

    Per class: standardise the features (mean 0, sd 1), Ledoit-Wolf shrunk
    covariance (Ledoit & Wolf, J. Multivar. Anal. 2004; the formula of
    :func:`sklearn.covariance.ledoit_wolf_shrinkage`), scaled back; the
    within-class covariance is their prior-weighted sum; ``w = Σ⁻¹ μ_k``.
    Written out, and batched over feature sets, because :class:`BandPowerLDA`
    fits it thousands of times in its inner loop, where sklearn's input
    checks cost more than the algebra (a test checks it against sklearn).

    Parameters
    ----------
    F : ndarray, shape (n_trials, n_features) or (n_sets, n_trials, n_features)
        One feature matrix, or a batch of them on the same trials.
    y : ndarray, shape (n_trials,), 0/1 with both classes

    Returns
    -------
    coef : ndarray, shape (n_features,) or (n_sets, n_features)
    intercept : float or ndarray, shape (n_sets,)
        ``F @ coef + intercept`` is the log-odds of class 1 (sklearn's ``decision_function``).
    """
    F = np.asarray(F, dtype=np.float64)
    single = F.ndim == 2
    if single:
        F = F[None]
    classes = []
    for k in (0, 1):
        Xk = F[:, y == k]  # (B, n, p), a copy
        n = Xk.shape[1]
        mu = Xk.mean(axis=1)
        Xk -= mu[:, None]
        S = np.matmul(Xk.transpose(0, 2, 1), Xk) / n  # (B, p, p), batched BLAS
        var = np.diagonal(S, axis1=1, axis2=2)
        inv = np.where(var > 0, 1.0 / np.where(var > 0, var, 1.0), 0.0)  # 1 / sd^2; 0 for no variance
        np.square(Xk, out=Xk)
        rows = np.matmul(Xk, inv[:, :, None])[:, :, 0]  # (B, n): sum_j z_ij^2 per trial
        classes.append((n, mu, S, (rows ** 2).sum(axis=1)))
    coef, icpt = _shrunk_lda(classes, F.shape[1])
    return (coef[0], float(icpt[0])) if single else (coef, icpt)


def _subject_moments(F: np.ndarray, y: np.ndarray, subject: np.ndarray) -> tuple[np.ndarray, dict]:
    """Per subject and class, the sums the Ledoit-Wolf LDA of any set of whole subjects is computed from.

    ``F (B, n_trials, p)``; returns the subjects and ``{name: (n_subjects, 2, ...)}``: ``n`` (trials),
    ``s1 = sum x (B, p)``, ``s2 = sum x^2``, ``G = sum x x^T (B, p, p)``, ``G2 = sum x^2 (x^2)^T``,
    ``Gc = sum x^2 x^T``; and ``total``: the same sums over all subjects, ``{name: (2, ...)}``.
    """
    sids = np.unique(subject)
    B, _, p = F.shape
    out = {"n": np.zeros((len(sids), 2)), "s1": np.zeros((len(sids), 2, B, p)), "s2": np.zeros((len(sids), 2, B, p)),
           **{g: np.zeros((len(sids), 2, B, p, p)) for g in ("G", "G2", "Gc")}}
    for i, s in enumerate(sids):
        for k in (0, 1):
            X = F[:, (subject == s) & (y == k)]  # (B, n_sk, p)
            X2 = X ** 2
            Xt, X2t = X.transpose(0, 2, 1), X2.transpose(0, 2, 1)
            out["n"][i, k] = X.shape[1]
            out["s1"][i, k], out["s2"][i, k] = X.sum(axis=1), X2.sum(axis=1)
            out["G"][i, k], out["G2"][i, k], out["Gc"][i, k] = Xt @ X, X2t @ X2, X2t @ X
    out["total"] = {g: v.sum(axis=0) for g, v in out.items()}
    return sids, out


def _fold_lda(mom: dict, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ledoit_wolf_lda` of the trials of the subjects ``keep`` from their :func:`_subject_moments`.

    The class moments are sums over subjects, and ``R`` expands into them: with ``a = 1 / var`` (0 for no
    variance), ``c = a mu`` and ``K = a . mu^2``, ``sum_i (a . x_i^2 - 2 c . x_i + K)^2 = a G2 a - 4 a Gc c
    + 4 c G c + 2 K a . s2 - 4 K c . s1 + n K^2``.  Exact in exact arithmetic; in floating point it agrees
    with the direct computation to about 1e-9 on centred features (a test checks it).
    """
    classes = []
    for k in (0, 1):
        # the whole table's sums less the subjects left out (usually one): O(p^2) per fold, not per subject
        n, s1, s2, G, G2, Gc = (mom["total"][g][k] - mom[g][~keep, k].sum(axis=0)
                                for g in ("n", "s1", "s2", "G", "G2", "Gc"))
        mu = s1 / n
        S = G / n - mu[:, :, None] * mu[:, None, :]
        var = np.diagonal(S, axis1=1, axis2=2)
        none = var <= 1e-12 * np.maximum(np.diagonal(G, axis1=1, axis2=2) / n, np.finfo(float).tiny)
        S[np.broadcast_to(none[:, :, None], S.shape) | np.broadcast_to(none[:, None, :], S.shape)] = 0.0
        a = np.where(none, 0.0, 1.0 / np.where(none, 1.0, var))  # (B, p)
        c, K = a * mu, (a * mu ** 2).sum(axis=1)
        quad = lambda u, M, v: np.einsum("bp,bpq,bq->b", u, M, v)  # noqa: E731
        R = (quad(a, G2, a) - 4.0 * quad(a, Gc, c) + 4.0 * quad(c, G, c) + 2.0 * K * (a * s2).sum(axis=1)
             - 4.0 * K * (c * s1).sum(axis=1) + n * K ** 2)
        classes.append((n, mu, S, R))
    return _shrunk_lda(classes, int(round(classes[0][0] + classes[1][0])))


def haufe_pattern(F: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The activation pattern of a linear decoder: what its weights say about the data (Haufe et al. 2014).

    A linear decoder's weights ``w`` are a filter: they also cancel noise, so a large weight need not mean
    that a feature carries the signal.  The pattern ``a = cov(F) w / var(F w)`` is the forward model, the
    covariance of each feature with the decoder's output per unit output variance: it is where the decoded
    signal lives (Haufe, Meinecke, Görgen et al., "On the interpretation of weight vectors of linear models
    in multivariate neuroimaging", NeuroImage 87, 2014, eq. 6 for one component).

    Parameters
    ----------
    F : ndarray, shape (n_trials, n_features)
        The features the decoder was fitted on.
    w : ndarray, shape (n_features,)
        Its weights.

    Returns
    -------
    ndarray, shape (n_features,)
        In the features' units per unit of decoder output.

    Raises
    ------
    KitError
        Shapes that do not match, or a decoder output with no variance.
    """
    F, w = np.asarray(F, np.float64), np.asarray(w, np.float64).ravel()
    if F.ndim != 2 or F.shape[1] != w.size:
        raise KitError(f"haufe_pattern: features {F.shape} and weights {w.shape} do not match")
    Fc = F - F.mean(axis=0)
    s = Fc @ w  # (n_trials,) the decoder's output, centred
    var = float(s @ s) / max(len(s) - 1, 1)
    if var <= 0:
        raise KitError("haufe_pattern: the decoder's output has no variance on these features")
    return (Fc.T @ s) / max(len(s) - 1, 1) / var


def inner_candidate_auc(candidates, y: np.ndarray, subject: np.ndarray, fit=None) -> np.ndarray:
    """Mean per-subject AUC of each candidate feature set's inner-LOSO out-of-fold linear scores.

    The selection step of the anchors that choose a band and window (:class:`kit.methods.bandpower.BandPowerLDA`,
    :class:`kit.methods.riemann.RiemannTS`): for every inner fold (one of the subjects passed held out,
    :func:`kit.eval.cv.inner_loso_folds`) a linear classifier is fitted on the other subjects' trials and
    scores the held-out subject's; each candidate's AUCs are averaged over the folds.  Only the arrays passed in
    are used: called inside an outer fold, the outer held-out subject's labels never take part.  Candidates with
    the same number of features are fitted as one batch.

    Parameters
    ----------
    candidates : sequence of ndarray, each shape (n_trials, n_features_i)
        The candidate feature matrices, on the same trials.
    y : ndarray, shape (n_trials,), 0/1
    subject : ndarray, shape (n_trials,)
    fit : callable, optional
        ``fit(F (n_sets, n_train, p), y_train) -> (coef (n_sets, p), intercept (n_sets,))``; default the
        Ledoit-Wolf shrinkage LDA (:func:`ledoit_wolf_lda`), computed from per-subject sums
        (:func:`_fold_lda`: every inner fold's class moments are the sums of its subjects', so the trials are
        read once rather than once per fold; 4x faster at 13 folds, equal to ``fit=ledoit_wolf_lda`` to about
        1e-9).

    Returns
    -------
    ndarray, shape (n_candidates,)
        0.5 for every candidate when no inner fold has both classes on both sides.
    """
    groups: dict[int, list[int]] = {}
    for i, F in enumerate(candidates):
        groups.setdefault(F.shape[1], []).append(i)
    stacks = {p: np.stack([candidates[i] for i in idx]).astype(np.float64, copy=False) for p, idx in groups.items()}
    moments = {}
    if fit is None:  # the default LDA from per-subject sums: one pass over the trials instead of one per fold
        for p, Fb in stacks.items():
            Fb -= Fb.mean(axis=1, keepdims=True)  # centred (LDA scores do not move; the sums stay well conditioned)
            moments[p] = _subject_moments(Fb, y, subject)
    total, count = np.zeros(len(candidates)), 0
    for tr, va in inner_loso_folds(subject):
        if np.unique(y[va]).size < 2 or np.unique(y[tr]).size < 2:
            continue
        for p, idx in groups.items():
            Fb = stacks[p]
            if fit is None:
                sids, mom = moments[p]
                coef, icpt = _fold_lda(mom, ~np.isin(sids, subject[va]))
            else:
                coef, icpt = fit(Fb[:, tr], y[tr])
            score = np.matmul(Fb[:, va], coef[:, :, None])[:, :, 0].T + icpt  # (n_va, n_group)
            total[idx] += per_sample_auc(score, y[va])
        count += 1
    return total / count if count else np.full(len(candidates), 0.5)
