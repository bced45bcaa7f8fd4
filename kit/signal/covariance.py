"""Channel covariances of EEG trials, batched: what the covariance-based anchors and the deep fusion share.

:func:`oas_covariances` gives the same matrices as ``pyriemann.geometry.covariance.covariances(X,
estimator="oas")`` (a test checks it to 1e-10), which calls scikit-learn's ``oas`` once per trial: one
batched computation instead of a Python loop over 10,000+ trials x bands x windows (on eegmmidb-lr's
1,800 trials x 6 bands x 2 windows: 19 s -> 0.3 s on one core).
"""

from __future__ import annotations

import numpy as np

from kit.core.errors import KitError


def oas_covariances(X: np.ndarray) -> np.ndarray:
    """Oracle Approximating Shrinkage covariance of each trial's channels over its samples.

    The empirical covariance ``S`` (mean removed per channel over time, divided by ``n_times``) shrunk
    towards ``trace(S) / n_chans * I`` by ``rho = min((a + m^2) / ((n_times + 1) (a - m^2 / n_chans)), 1)``,
    ``a`` the mean of ``S``'s squared entries and ``m = trace(S) / n_chans``: scikit-learn's
    :func:`sklearn.covariance.oas` formula (Chen, Wiesel, Eldar & Hero, "Shrinkage algorithms for MMSE
    covariance estimation", IEEE TSP 58(10), 2010, eq. 23), trial by trial.

    Parameters
    ----------
    X : ndarray, shape (n_trials, n_chans, n_times)
        Signals (µV, or band-passed µV).

    Returns
    -------
    ndarray, shape (n_trials, n_chans, n_chans), float64
        Symmetric positive definite for any trial that is not constant (µV²).

    Raises
    ------
    KitError
        ``X`` is not 3-D or has fewer than 2 samples.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3 or X.shape[2] < 2:
        raise KitError(f"oas_covariances: expected (n_trials, n_chans, n_times >= 2), got shape {X.shape}")
    n_chans, n_times = X.shape[1], X.shape[2]
    Xc = X - X.mean(axis=2, keepdims=True)
    S = np.matmul(Xc, Xc.transpose(0, 2, 1)) / n_times  # (n_trials, n_chans, n_chans)
    if n_chans == 1:
        return S
    alpha = (S ** 2).mean(axis=(1, 2))
    mu = np.trace(S, axis1=1, axis2=2) / n_chans
    num = alpha + mu ** 2
    den = (n_times + 1) * (alpha - mu ** 2 / n_chans)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(den == 0, 1.0, np.minimum(num / den, 1.0))
    out = (1.0 - rho)[:, None, None] * S
    out[:, np.arange(n_chans), np.arange(n_chans)] += (rho * mu)[:, None]
    return out
