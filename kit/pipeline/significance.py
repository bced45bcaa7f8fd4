"""Is a LOSO score above chance? A label-permutation test of the organisers' starter, fast enough for notebook 01.

The starter's features (theta Hilbert log power z-scored per subject, :func:`kit.signal.features.theta_power`)
use no label, so they are computed once; each permutation shuffles the labels within every subject and refits
the starter's per-sample LDAs in every leave-one-subject-out fold from per-subject sums
(:func:`starter_loso_decision`, the model of :class:`kit.methods.starter.StarterLDA`;
:func:`kit.eval.effects.label_permutation_test`).
"""

from __future__ import annotations

import numpy as np

from kit.core.errors import KitError
from kit.eval.cv import loso_score
from kit.eval.effects import label_permutation_test
from kit.methods.starter import StarterLDA


def starter_loso_decision(F: np.ndarray, y: np.ndarray, subject: np.ndarray, *,
                          samples_first: bool = False) -> np.ndarray:
    """Out-of-fold LDA decision values of the starter's per-sample LDAs on features ``F``, all folds at once.

    The same model as :class:`kit.methods.starter.StarterLDA` (no shrinkage: class means, prior-weighted
    biased class covariances, the same tiny ridge), fitted for each held-out subject from per-subject sums
    (each fold's sums are the totals minus the held-out subject's), so that one pass over the data serves
    every fold.

    Parameters
    ----------
    F : ndarray, shape (n_trials, n_chans, n_times)
        Features (theta power z-scored per subject); or, with ``samples_first``, the same laid out
        ``(n_times, n_trials, n_chans)`` float64 and contiguous (the permutation test lays them out once).
    y, subject : ndarray, shape (n_trials,)
    samples_first : bool
        See ``F``.

    Returns
    -------
    ndarray, shape (n_trials, n_times)
        Each trial's decision value from the LDAs fitted without its subject (the intercept left out: it is
        the same for every trial of a sample, so it changes no AUC).
    """
    Ft = F if samples_first else np.ascontiguousarray(np.asarray(F, np.float64).transpose(2, 0, 1))  # (T, n, C)
    subjects = np.unique(subject)
    C = Ft.shape[2]
    n = np.zeros((len(subjects), 2))
    s1 = np.zeros((len(subjects), 2, Ft.shape[0], C))
    s2 = np.zeros((len(subjects), 2, Ft.shape[0], C, C))
    rows = [np.flatnonzero(subject == s) for s in subjects]
    for i, r in enumerate(rows):
        for k in (0, 1):
            Xk = Ft[:, r[y[r] == k]]
            n[i, k] = Xk.shape[1]
            s1[i, k] = Xk.sum(axis=1)
            s2[i, k] = np.matmul(Xk.transpose(0, 2, 1), Xk)  # (T, C, C): batched BLAS (einsum was 20x slower)
    out = np.empty((len(y), Ft.shape[0]))
    N, S1, S2 = n.sum(0), s1.sum(0), s2.sum(0)
    for i, r in enumerate(rows):
        nk, m1, m2 = N - n[i], S1 - s1[i], S2 - s2[i]
        if (nk == 0).any():
            raise KitError("a LOSO fold has no trial of one class")
        mu = m1 / nk[:, None, None]  # (2, T, C)
        cov = sum(nk[k] / nk.sum() * (m2[k] / nk[k] - np.einsum("tc,td->tcd", mu[k], mu[k])) for k in (0, 1))
        ridge = 1e-10 * np.trace(cov, axis1=1, axis2=2) / C + 1e-12
        W = np.linalg.solve(cov + ridge[:, None, None] * np.eye(C), np.stack(mu, axis=2))  # (T, C, 2)
        out[r] = np.einsum("tnc,tc->nt", Ft[:, r], W[:, :, 1] - W[:, :, 0])
    return out


def starter_permutation_test(X: np.ndarray, y: np.ndarray, subject: np.ndarray, sfreq: float, *,
                             n_permutations: int = 100, seed: int = 0) -> dict:
    """LOSO window score of the starter with the true labels against ``n_permutations`` within-subject shuffles.

    Parameters
    ----------
    X : ndarray, shape (n_trials, n_chans, n_times)
        EEG of the labelled trials, µV.
    y, subject : ndarray, shape (n_trials,)
        Labels (1 emotional, 0 neutral) and subject ids.
    sfreq : float
        Sampling rate, Hz.
    n_permutations, seed
        See :func:`kit.eval.effects.label_permutation_test`.

    Returns
    -------
    dict
        :func:`kit.eval.effects.label_permutation_test`'s keys, and ``method`` ("starter"),
        ``subject_auc`` {subject: AUC with the true labels, mean over samples}, ``null_subject_auc``
        (n_permutations, n_subjects) the same under every permutation, ``chance_band`` (2.5th, 97.5th
        percentile of those: where 95 % of a subject's AUCs fall by chance).

    Raises
    ------
    KitError
        Bad shapes, labels other than 0/1, fewer than 2 subjects.
    """
    y, subject = np.asarray(y).ravel(), np.asarray(subject).ravel()
    if not np.isin(y, (0, 1)).all():
        raise KitError("the permutation test needs labelled trials only (y in {0, 1})")
    if len(np.unique(subject)) < 2:
        raise KitError("the permutation test needs at least 2 subjects (leave-one-subject-out)")
    F = StarterLDA(sfreq=sfreq).features(X, subject)  # label-free: computed once
    Ft = np.ascontiguousarray(F.transpose(2, 0, 1))  # (T, n, C), laid out once for every permutation

    per_subject = []  # each call's per-subject AUCs: the observed labels first, then every permutation

    def score(labels):
        s = loso_score(starter_loso_decision(Ft, labels, subject, samples_first=True), labels, subject)
        per_subject.append(list(s["per_subject_auc"].values()))
        return s["loso_score"]

    result = label_permutation_test(score, y, subject, n_permutations=n_permutations, seed=seed)
    null_auc = np.asarray(per_subject[1:])
    return {"method": "starter", **result, "subject_auc": dict(zip(np.unique(subject).tolist(), per_subject[0])),
            "null_subject_auc": null_auc,
            "chance_band": (float(np.percentile(null_auc, 2.5)), float(np.percentile(null_auc, 97.5)))}
