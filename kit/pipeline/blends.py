"""The blend primitives of stage 05: per-subject standardised scores, temporal post-processings, weighted blends,
and a table that scores many blends at once.

:mod:`kit.pipeline.ensemble` builds its rules on these; see its docstring for what each post-processing is for.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.special import logit
from threadpoolctl import threadpool_limits

from kit.core.errors import KitError
from kit.eval.metric import curves_auc, rows_auc


@dataclass
class Candidate:
    """One blend: weights per component name and a post-processing."""

    weights: dict
    post: tuple
    score: float = float("nan")  # window metric on the subjects it was chosen on
    curves: np.ndarray | None = field(default=None, repr=False)  # (n_subjects, n_times) on those subjects

    def label(self) -> str:
        w = " + ".join(f"{v:.2f} {k}" for k, v in self.weights.items() if v > 0)
        kind, p = self.post
        if kind == "window":
            return f"{w}; mean over samples {p[0]}-{p[1] - 1} broadcast"
        return f"{w}; {kind}" + (f"({p:g})" if kind in ("smooth", "blend") else "")


def standardize(pred: np.ndarray, subject: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Per-subject z-scored logits of ``pred (n_trials, n_times)`` (probabilities in [0, 1])."""
    z = logit(np.clip(np.asarray(pred, np.float64), eps, 1 - eps))
    out = np.empty_like(z)
    for s in np.unique(subject):
        m = subject == s
        mu, sd = z[m].mean(), z[m].std()
        out[m] = (z[m] - mu) / (sd if sd > 0 else 1.0)
    return out


def postprocess(z: np.ndarray, kind: str, param=0.0) -> np.ndarray:
    """Apply a temporal post-processing to scores ``(n_trials, n_times)`` (see module docstring).

    ``peak`` is resolved by the rules into a ``window``; it cannot be applied directly.

    Raises
    ------
    KitError
        Unknown ``kind``, or a window outside the samples.
    """
    if kind == "none":
        return z
    if kind == "smooth":
        return uniform_filter1d(z, size=int(param), axis=-1, mode="nearest")
    if kind == "window":
        start, stop = (int(v) for v in param)
        if not 0 <= start < stop <= z.shape[-1]:
            raise KitError(f"window post-processing: samples {start}-{stop} outside 0-{z.shape[-1]}")
        return np.repeat(z[..., start:stop].mean(axis=-1, keepdims=True), z.shape[-1], axis=-1)
    broadcast = np.repeat(z.mean(axis=-1, keepdims=True), z.shape[-1], axis=-1)
    if kind == "broadcast":
        return broadcast
    if kind == "blend":
        return param * broadcast + (1 - param) * z
    raise KitError(f"unknown post-processing {kind!r} (none, smooth, broadcast, blend, window)")


def weight_grid(names: list[str], step: float) -> list[dict]:
    """Every non-negative weight vector on the simplex with the given grid ``step``."""
    n = int(round(1 / step))
    grid = []
    for combo in itertools.product(range(n + 1), repeat=len(names)):
        if sum(combo) == n:
            grid.append({k: c / n for k, c in zip(names, combo)})
    return grid


def blend(z: dict[str, np.ndarray], weights: dict) -> np.ndarray:
    """Weighted sum of standardized component scores."""
    return sum(w * z[k] for k, w in weights.items() if w > 0)


def mix(chosen: list[Candidate], z: dict[str, np.ndarray]) -> np.ndarray:
    """Mean of the post-processed blends of ``chosen`` over standardized scores ``z`` (each (n, n_times))."""
    return np.mean([postprocess(blend(z, c.weights), *c.post) for c in chosen], axis=0)


# ----------------------------------------------------------------------------- vectorised scoring
class Table:
    """Standardized scores of the components on one prediction table, scored for many weights at once.

    Parameters
    ----------
    z : dict name -> ndarray, shape (n_trials, n_times)
        Per-subject standardized scores (:func:`standardize`).
    names : list of str
        Component order of the weight matrices.
    y, subject : ndarray, shape (n_trials,)
    threads : int
        Subjects scored at once (threads: numpy releases the GIL in its sorts, which are most of the cost;
        the curves are the same for any number).
    """

    def __init__(self, z: dict, names: list[str], y: np.ndarray, subject: np.ndarray, threads: int = 1):
        self.threads = max(1, int(threads))
        self.names = list(names)
        self.Z = np.stack([z[k] for k in self.names])  # (C, n_trials, n_times)
        self.subjects = np.unique(subject)
        self.rows = [np.flatnonzero(subject == s) for s in self.subjects]
        self.pos = [np.asarray(y)[r] == 1 for r in self.rows]
        self._cache: dict = {}

    def _auc(self, W: np.ndarray | None, P: np.ndarray) -> np.ndarray:
        """Per-subject AUC of the blends ``W (n_w, C)`` of ``P (C[, n_times], n_trials)`` (trials last).

        With ``W`` None, ``P`` holds the blends already, ``(n_w[, n_times], n_trials)``. Returns
        ``(n_w, n_subjects[, n_times])`` (:func:`kit.eval.metric.rows_auc` / ``curves_auc``, one subject at a time
        to bound memory; with the trials last, a blend's rows need no transposed copy).
        """
        def one(r: np.ndarray, pos: np.ndarray) -> np.ndarray:
            if P.ndim == 3 and W is not None:  # blended one sample at a time inside curves_auc
                return curves_auc(P[..., r], pos, weights=W)
            B = P[..., r] if W is None else np.tensordot(W, P[..., r], axes=(1, 0))  # (n_w[, n_times], n_rows)
            return rows_auc(B, pos) if B.ndim == 2 else curves_auc(B, pos)

        if self.threads > 1 and len(self.rows) > 1:
            # one BLAS thread per subject's thread: OpenBLAS's own threads, called from two threads at once,
            # took the grid at the competition's size from 68 to 153 s (threadpoolctl, restored after)
            with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(min(self.threads, len(self.rows))) as pool:
                out = list(pool.map(one, self.rows, self.pos))
        else:
            out = [one(r, pos) for r, pos in zip(self.rows, self.pos)]
        return np.stack(out, axis=1)

    def curves(self, W: np.ndarray, post: tuple) -> np.ndarray:
        """Per-subject AUC curves ``(n_w, n_subjects, n_times)`` of the blends ``W (n_w, C)`` after ``post``.

        Every post-processing but ``peak`` is linear, so it is applied to the components first; curves
        are cached by (weights, post-processing), as the nested loop asks for them once per held-out subject.
        """
        kind, param = post
        key = (np.ascontiguousarray(W).tobytes(), W.shape, kind, str(param))
        if key in self._cache:
            return self._cache[key]
        T = self.Z.shape[2]
        if kind in ("broadcast", "window"):
            P = postprocess(self.Z, kind, param)[..., 0]  # (C, n_trials): one score per trial
            A = np.repeat(self._auc(W, P)[..., None], T, axis=2)
        else:
            pkey = ("post", kind, str(param))
            if pkey not in self._cache:  # (C, n_times, n_trials)
                self._cache[pkey] = np.ascontiguousarray(postprocess(self.Z, kind, param).transpose(0, 2, 1))
            A = self._auc(W, self._cache[pkey])
        if kind != "window":  # windows of the peak rule change with the fitting subjects: not kept
            self._cache[key] = A
        return A

    def peak_windows(self, W: np.ndarray, keep: np.ndarray, width: int) -> list[tuple[int, int]]:
        """Per blend, the ``width``-sample window where the pooled AUC curve over subjects ``keep`` is highest."""
        pooled = self.curves(W, ("none", 0.0))[:, keep].mean(axis=1)  # (n_w, n_times)
        width = int(min(width, pooled.shape[1]))
        c = np.concatenate([np.zeros((len(W), 1)), np.cumsum(pooled, axis=1)], axis=1)
        starts = np.argmax(c[:, width:] - c[:, :-width], axis=1)
        return [(int(s), int(s) + width) for s in starts]

    def window_curves(self, W: np.ndarray, windows: list[tuple[int, int]]) -> np.ndarray:
        """AUC curves ``(n_w, n_subjects, n_times)`` of blend ``W[i]`` averaged over its own ``windows[i]``."""
        if "cumsum" not in self._cache:
            self._cache["cumsum"] = np.concatenate([np.zeros(self.Z.shape[:2] + (1,)), np.cumsum(self.Z, axis=2)],
                                                   axis=2)  # (C, n_trials, n_times + 1)
        cz = self._cache["cumsum"]
        start, stop = np.array(windows).T
        P = (cz[:, :, stop] - cz[:, :, start]) / (stop - start)  # (C, n_trials, n_w): each window's mean
        B = np.einsum("wc,cnw->wn", W, P)  # (n_w, n_trials)
        return np.repeat(self._auc(None, B)[..., None], self.Z.shape[2], axis=2)
