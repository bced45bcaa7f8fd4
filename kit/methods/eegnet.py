"""EEGNet-8,2: the field's standard compact CNN, as a cross-subject baseline.

The network (:class:`kit.methods.eegnet_net.EEGNet`, the layer table there) is Lawhern et al.,
"EEGNet: a compact convolutional neural network for EEG-based brain-computer interfaces", J. Neural Eng. 15
(2018) 056013, EEGNet-8,2 with its kernel lengths scaled from 128 Hz to ``sfreq``.  Training as
in the paper: Adam (lr 1e-3), cross-entropy, minibatches of 64; the max-norm
constraints are applied after every step (as Keras does, and braindecode's
``EEGNetv4``).  The paper stops on a validation set; here the epoch count is
fixed (``EEGNetConfig.epochs``), so the held-out subject never decides when
to stop.

Input: each trial's raw EEG, z-scored per subject and channel over that
subject's trials and samples (:func:`kit.signal.features.zscore_per_subject`: no
labels, so the unlabelled test subjects are normalised the same way).
Output: one P(emotional) per trial, copied to all ``n_times`` samples (the
window metric then scores the trial-level AUC over the whole second).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from kit.core.docs import fill_doc
from kit.core.errors import KitError
from kit.core.runtime import get_device, gradient_step, seed_everything, thread_limit
from kit.methods.eegnet_net import EEGNet
from kit.signal.features import check_trials, euclidean_alignment, zscore_per_subject

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EEGNetConfig:
    """EEGNet-8,2 sizes and its training schedule (defaults: the ``quick`` schedule).

    ``kernel_length``/``sep_kernel_length`` of 0 mean "scaled from the paper's
    128 Hz": ``round(sfreq / 2)`` and ``round(sfreq / 8)`` samples.
    """

    F1: int = 8                   # temporal filters
    D: int = 2                    # spatial (depthwise) filters per temporal filter
    F2: int = 16                  # pointwise filters of the separable convolution (F1 * D)
    kernel_length: int = 0        # samples; 0 = round(sfreq / 2) (64 at 128 Hz, 100 at 200 Hz)
    sep_kernel_length: int = 0    # samples at sfreq / 4; 0 = round(sfreq / 8) (16 at 128 Hz, 25 at 200 Hz)
    dropout: float = 0.25         # cross-subject setting of the paper
    epochs: int = 8               # fixed: no early stopping on the held-out subject
    batch_size: int = 64
    lr: float = 1e-3              # Adam
    max_norm_spatial: float = 1.0  # L2 bound of each depthwise spatial filter
    max_norm_dense: float = 0.25   # L2 bound of each class's dense weights
    seed: int = 0                 # weights, dropout and minibatch order
    threads: int = 1              # torch CPU threads while fitting/predicting; 0 = leave torch's setting
    align: bool = False           # Euclidean alignment of each subject's trials before the z-score (He & Wu 2020)
    commuted: bool = True         # block 1 as spatial filters, then the temporal kernel (:meth:`EEGNet.block1`): the
                                  # same function, ~5x faster on a CPU; False: the paper's order (kit <= 0.3's numbers)


def _kernels(config: EEGNetConfig, sfreq: float) -> tuple[int, int]:
    k1 = config.kernel_length or max(2, int(round(sfreq / 2)))
    k2 = config.sep_kernel_length or max(2, int(round(sfreq / 8)))
    return k1, k2


class EEGNetClassifier:
    """EEGNet-8,2 fitted on training subjects; predicts P(emotional) broadcast over samples.

    Same interface as the baselines of :mod:`kit.methods.registry` (``fit(X, y,
    subject)``, ``predict(X, subject)``) so :func:`kit.methods.registry.run_baseline`
    runs it under LOSO.

    Parameters
    ----------
    config : EEGNetConfig, optional
    sfreq : float
        Sampling rate in Hz (sets the kernel lengths).
    device : str, optional
        torch device (default :func:`kit.core.runtime.get_device`: ``$KIT_DEVICE``,
        else CUDA when available, else the CPU).
    """

    def __init__(self, config: EEGNetConfig | None = None, *, sfreq: float = 200.0, device: str | None = None):
        self.config = config or EEGNetConfig()
        self.sfreq = float(sfreq)
        self.device = torch.device(device) if device else get_device()

    def _inputs(self, X: np.ndarray, subject: np.ndarray) -> torch.Tensor:
        X = check_trials(X)
        if np.shape(subject) != (X.shape[0],):
            raise KitError(f"subject: shape {np.shape(subject)} does not match X's {X.shape[0]} trials")
        if self.config.align:
            X = euclidean_alignment(X, np.asarray(subject))
        Z = zscore_per_subject(np.asarray(X, np.float32), np.asarray(subject))
        return torch.from_numpy(np.ascontiguousarray(Z, dtype=np.float32))

    @fill_doc
    def fit(self, X: np.ndarray, y: np.ndarray, subject: np.ndarray, *, verbose: bool = False) -> "EEGNetClassifier":
        """Train for ``config.epochs`` epochs (Adam, cross-entropy, max-norm after each step).

        %(fit_params)s

        Raises
        ------
        KitError
            Bad shapes, labels not 0/1 with both classes, a loss that is not finite.
        """
        c = self.config
        y = np.asarray(y)
        if y.shape != (np.shape(X)[0],) or not np.all(np.isin(y, (0, 1))) or np.unique(y).size != 2:
            raise KitError(f"y: expected 0/1 labels with both classes for {np.shape(X)[0]} trials, "
                           f"got shape {y.shape}, values {np.unique(y)[:5].tolist()}")
        x = self._inputs(X, subject)
        with thread_limit(c.threads):
            self._train(x, torch.from_numpy(y.astype(np.int64)), verbose)
        return self

    def _train(self, x: torch.Tensor, t: torch.Tensor, verbose: bool) -> None:
        c = self.config
        gen = seed_everything(c.seed)
        k1, k2 = _kernels(c, self.sfreq)
        self.model_ = EEGNet(x.shape[1], x.shape[2], 2, F1=c.F1, D=c.D, F2=c.F2, kernel_length=k1,
                             sep_kernel_length=k2, dropout=c.dropout, commuted=c.commuted).to(self.device)
        self.model_.apply_max_norm(c.max_norm_spatial, c.max_norm_dense)
        opt = torch.optim.Adam(self.model_.parameters(), lr=c.lr, foreach=True)  # the same steps, fewer calls
        self.history_ = []
        self.model_.train()
        n = len(x)
        for epoch in range(c.epochs):
            t0, total = time.perf_counter(), 0.0
            order = torch.randperm(n, generator=gen)
            for i in range(0, n, c.batch_size):
                idx = order[i:i + c.batch_size]
                if len(idx) < 2:  # batch norm needs two trials
                    continue
                loss = F.cross_entropy(self.model_(x[idx].to(self.device)), t[idx].to(self.device))
                gradient_step(opt, loss, "EEGNet: loss", f"epoch {epoch + 1}")
                self.model_.apply_max_norm(c.max_norm_spatial, c.max_norm_dense)
                total += loss.item() * len(idx)
            self.history_.append(total / n)
            if verbose:
                logger.info("EEGNet epoch %d/%d: loss %.4f, %.1f s", epoch + 1, c.epochs, self.history_[-1],
                            time.perf_counter() - t0)

    def __getstate__(self) -> dict:
        """Pickled with the network on the CPU (``kit predict`` may load it on a machine without the GPU)."""
        state = self.__dict__.copy()
        state["device"] = None
        if getattr(self, "model_", None) is not None:
            state["model_"] = copy.deepcopy(self.model_).cpu()
        return state

    def __setstate__(self, state: dict) -> None:
        """Unpickled onto this machine's device (:func:`kit.core.runtime.get_device`)."""
        self.__dict__.update(state)
        self.device = get_device()
        if getattr(self, "model_", None) is not None:
            self.model_ = self.model_.to(self.device)

    @torch.no_grad()
    def predict_trials(self, X: np.ndarray, subject: np.ndarray, *, batch: int = 512) -> np.ndarray:
        """P(emotional) per trial, shape (n_trials,), inputs z-scored per subject of ``X`` itself.

        Raises
        ------
        KitError
            Not fitted, bad shapes, another channel or sample count than in ``fit``.
        """
        if not hasattr(self, "model_"):
            raise KitError("EEGNetClassifier: call fit before predict")
        x = self._inputs(X, subject)
        if x.shape[1:] != (self.model_.n_chans, self.model_.n_times):
            raise KitError(f"X: trials of shape {tuple(x.shape[1:])}, the model was fit on "
                           f"{(self.model_.n_chans, self.model_.n_times)}")
        self.model_.eval()
        with thread_limit(self.config.threads):
            out = [torch.softmax(self.model_(x[i:i + batch].to(self.device)), dim=1)[:, 1].cpu()
                   for i in range(0, len(x), batch)]
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)

    def predict(self, X: np.ndarray, subject: np.ndarray) -> np.ndarray:
        """P(emotional) per trial copied to every sample: shape (n_trials, n_times).

        Raises
        ------
        KitError
            See :meth:`predict_trials`.
        """
        p = self.predict_trials(X, subject)
        return np.repeat(p[:, None], np.shape(X)[2], axis=1)


