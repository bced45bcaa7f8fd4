"""EEGNet-8,2's network: the layers of Lawhern et al. (2018), block 1 commuted, a fast depthwise convolution.

A faithful torch implementation of Lawhern et al., "EEGNet: a compact
convolutional neural network for EEG-based brain-computer interfaces",
J. Neural Eng. 15 (2018) 056013, table 2 (the authors' Keras code,
``github.com/vlawhern/arl-eegmodels``, ``EEGNet``), with the kernel lengths
scaled from their 128 Hz to ``sfreq``:

=====  ===========================================================  ====================
block  layer                                                         output
=====  ===========================================================  ====================
1      Conv2d(1, F1, (1, K1)), "same" padding, no bias               (F1, C, T)
       BatchNorm                                                     (F1, C, T)
       depthwise Conv2d(F1, D*F1, (C, 1)), no bias, max-norm 1       (D*F1, 1, T)
       BatchNorm, ELU, AvgPool (1, 4), Dropout p                     (D*F1, 1, T//4)
2      separable: depthwise Conv2d (1, K2) "same" + pointwise 1x1   (F2, 1, T//4)
       BatchNorm, ELU, AvgPool (1, 8), Dropout p                     (F2, 1, T//32)
       Flatten, Dense(n_classes), max-norm 0.25, softmax             (n_classes,)
=====  ===========================================================  ====================

EEGNet-8,2: F1 = 8, D = 2, F2 = F1 * D = 16; cross-subject dropout
p = 0.25.  K1 = 64 samples at 128 Hz is half a second (a 2 Hz lowest
frequency resolved), so K1 = ``round(sfreq / 2)`` = 100 at 200 Hz; K2 = 16
samples at 128/4 = 32 Hz is 0.5 s as well, so K2 = ``round(sfreq / 8)`` = 25.
Batch norm as Keras': momentum 0.99 (torch 0.01), epsilon 1e-3.  :class:`kit.methods.eegnet.EEGNetClassifier`
trains it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kit.core.errors import KitError


class EEGNet(nn.Module):
    """EEGNet (Lawhern et al. 2018); see the module docstring for the layer table.

    Parameters
    ----------
    n_chans, n_times : int
        Electrodes C and samples T per trial.
    n_classes : int
        Softmax outputs (2: neutral, emotional).
    F1, D, F2 : int
        Filter counts (EEGNet-8,2: 8, 2, 16).
    kernel_length, sep_kernel_length : int
        Temporal kernel of block 1 and the separable kernel of block 2, in samples.
    dropout : float
    commuted : bool
        Compute block 1 as :meth:`block1` does with ``commuted=True`` (the same function, fewer operations).

    Raises
    ------
    KitError
        A trial too short for the two pooling layers (``n_times < 32``).
    """

    def __init__(self, n_chans: int, n_times: int, n_classes: int = 2, *, F1: int = 8, D: int = 2, F2: int = 16,
                 kernel_length: int = 100, sep_kernel_length: int = 25, dropout: float = 0.25,
                 commuted: bool = False):
        super().__init__()
        self.commuted = commuted
        if n_times // 32 < 1:
            raise KitError(f"EEGNet: need at least 32 samples per trial (two poolings of 4 and 8), got {n_times}")
        self.n_chans, self.n_times = n_chans, n_times
        bn = dict(momentum=0.01, eps=1e-3)  # Keras BatchNormalization defaults
        self.conv_temporal = nn.Conv2d(1, F1, (1, kernel_length), bias=False)  # "same" padding in forward
        self.bn1 = nn.BatchNorm2d(F1, **bn)
        self.conv_spatial = nn.Conv2d(F1, F1 * D, (n_chans, 1), groups=F1, bias=False)
        self.bn2 = nn.BatchNorm2d(F1 * D, **bn)
        self.pool1 = nn.AvgPool2d((1, 4))
        self.conv_sep_depth = nn.Conv2d(F1 * D, F1 * D, (1, sep_kernel_length), groups=F1 * D, bias=False)
        self.conv_sep_point = nn.Conv2d(F1 * D, F2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(F2, **bn)
        self.pool2 = nn.AvgPool2d((1, 8))
        self.drop = nn.Dropout(dropout)
        self.n_flat = F2 * (n_times // 32)
        self.dense = nn.Linear(self.n_flat, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, n_classes)`` of trials ``x (B, n_chans, n_times)``.

        The two temporal convolutions are computed as 1-D convolutions with
        Keras' "same" padding (``(K - 1) // 2`` zeros before, the rest after):
        the same numbers as ``Conv2d(..., padding="same")``, several times
        faster on a CPU than a ``(1, K)`` 2-D kernel.
        """
        h = self.drop(self.pool1(F.elu(self.bn2(self.block1(x)))))  # (B, F1*D, 1, T//4)
        w2 = self.conv_sep_depth.weight  # (F1*D, 1, 1, K2)
        h = F.conv1d(_same_pad(h[:, :, 0], w2.shape[-1]), w2.flatten(1)[:, None], groups=w2.shape[0])[:, :, None]
        h = self.drop(self.pool2(F.elu(self.bn3(self.conv_sep_point(h)))))  # (B, F2, 1, T//32)
        return self.dense(h.flatten(1))

    def block1(self, x: torch.Tensor) -> torch.Tensor:
        """Block 1 before its nonlinearity: ``conv_spatial(bn1(conv_temporal(x)))``, shape ``(B, F1*D, 1, T)``.

        In the paper's order (``commuted`` False) the temporal kernel (K1 = 100 samples at 200 Hz) runs on
        every electrode of every trial (F1 x C signals) and the depthwise spatial filters then mix the
        electrodes.  Both are linear and batch norm 1 is an affine map per temporal filter, so with
        ``commuted`` the spatial filters run first (C -> F1*D signals), the temporal kernel of each filter on
        its D mixtures only, and batch norm 1 is applied after them as the same affine map:

        ``spatial(bn1(u)) = a_f * temporal_f(spatial(x)) + (beta_f - a_f * mu_f) * sum_c w_spatial``,
        ``a_f = gamma_f / sqrt(var_f + eps)``,

        where ``mu_f`` and ``var_f`` are the batch statistics of the temporal filter's output
        ``u = temporal_f(x)`` over trials, electrodes and samples; in training they come from the mean
        and second moments of the padded input's K1-sample windows (:func:`window_moments`) as
        ``w_f . m`` and ``w_f' S w_f - mu_f^2`` (so their gradients flow to the kernel as batch norm's do),
        and the running statistics are updated as :class:`torch.nn.BatchNorm2d` does (unbiased variance).
        F1 / D = 4x fewer temporal-kernel operations than the paper's order; outputs and gradients equal
        the paper's order to float32 rounding (relative 1e-6, ``tests/test_eegnet.py``).
        """
        B, C, T = x.shape
        if not getattr(self, "commuted", False):  # a network pickled before the attribute existed
            w1 = self.conv_temporal.weight  # (F1, 1, 1, K1)
            h = F.conv1d(_same_pad(x.reshape(B * C, 1, T), w1.shape[-1]), w1.flatten(1)[:, None])  # (B*C, F1, T)
            h = self.bn1(h.view(B, C, -1, T).transpose(1, 2))  # (B, F1, C, T)
            return self.conv_spatial(h)
        wt = self.conv_temporal.weight.flatten(1)  # (F1, K1)
        n_filters, k = wt.shape
        ws = self.conv_spatial.weight.flatten(1)  # (F1*D, C); output o mixes for temporal filter o // D
        depth = ws.shape[0] // n_filters
        z = _same_pad(torch.matmul(ws, x), k)  # (B, F1*D, T + K1 - 1): the spatial mixtures, padded
        v = DepthwiseConv1d.apply(z, wt.repeat_interleave(depth, 0)[:, None])  # (B, F1*D, T)
        bn = self.bn1
        if self.training or not bn.track_running_stats:
            mean_x, second = window_moments(x, k)
            mu = wt @ mean_x  # (F1,)
            var = (((wt @ second) * wt).sum(1) - mu ** 2).clamp_min(0.0)  # biased, as batch norm normalises
            if self.training and bn.track_running_stats:
                n = B * C * T
                with torch.no_grad():
                    bn.running_mean.mul_(1.0 - bn.momentum).add_(bn.momentum * mu)
                    bn.running_var.mul_(1.0 - bn.momentum).add_(bn.momentum * var * (n / max(n - 1, 1)))
                    bn.num_batches_tracked.add_(1)
        else:
            mu, var = bn.running_mean, bn.running_var
        a = bn.weight / torch.sqrt(var + bn.eps)  # (F1,)
        shift = (bn.bias - a * mu).repeat_interleave(depth) * ws.sum(1)  # (F1*D,)
        return (a.repeat_interleave(depth)[:, None] * v + shift[:, None])[:, :, None]

    @torch.no_grad()
    def apply_max_norm(self, spatial: float = 1.0, dense: float = 0.25) -> None:
        """Clip each depthwise spatial filter to L2 norm ``spatial`` and each class's dense weights to ``dense``.

        Keras ``max_norm`` on the depthwise kernel (norm over the electrodes,
        one per spatial filter) and on the dense kernel (norm over the inputs,
        one per class), as in the authors' code.
        """
        for w, bound in ((self.conv_spatial.weight, spatial), (self.dense.weight, dense)):
            w.copy_(torch.renorm(w, p=2, dim=0, maxnorm=bound))


class DepthwiseConv1d(torch.autograd.Function):
    """Depthwise 1-D convolution, one kernel per channel, no padding; fast weight gradient on a CPU.

    ``apply(x, w)``: ``x (B, G, L)``, ``w (G, 1, K)`` -> ``(B, G, L - K + 1)``, torch's grouped
    ``conv1d``.  Backward: the input gradient by the transposed convolution, the kernel gradient from the band
    of each channel's matrix product ``x' g`` (``(G, L, T)``) that its diagonals read (:func:`_band_weight_grad`).
    The numbers are those of ``conv1d``'s own backward to float32 rounding; on a CPU its weight gradient for a
    long kernel was 10x slower than the forward (20 ms against 1.1 ms for 64 trials x 16 channels x 200
    samples, kernel 100; the whole product about 3-4 ms, its band about 2).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return F.conv1d(x, w, groups=w.shape[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, w = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = F.conv_transpose1d(grad, w, groups=w.shape[0])
        if ctx.needs_input_grad[1]:
            grad_w = _band_weight_grad(x, grad, w.shape[-1])
        return grad_x, grad_w


def _band_weight_grad(x: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
    """Kernel gradient of :class:`DepthwiseConv1d`: ``grad_w[g, 0, j] = sum_b sum_t x[b, g, t + j] grad[b, g, t]``.

    ``x (B, G, L)``, ``grad (B, G, T)`` with ``L = T + k - 1``.  The gradient is the sum of the first ``k``
    diagonals of each channel's ``(L, T)`` matrix ``x' g`` (sum over trials).  Only a band of that matrix is
    read, so it is computed in blocks of output samples (``x[t0:t0 + c + k - 1]' g[t0:t0 + c]``, batched matrix
    products over the channels), about half the products of the whole matrix at ``k = T / 2``; the blocks'
    entries are written where the whole matrix has them and summed along the same strided diagonals: the numbers
    of the whole product bit for bit at EEGNet's shape at 200 Hz on this kit's CPU build (each entry a sum over
    the same trials; ``tests/test_eegnet.py``), to float32 rounding at any shape (a BLAS may sum a smaller block's
    entries in another order).

    Returns
    -------
    Tensor, shape (G, 1, k)
    """
    n_chan, n_in, n_out = x.shape[1], x.shape[2], grad.shape[2]
    xt, gt = x.permute(1, 2, 0), grad.permute(1, 0, 2)  # (G, L, B), (G, B, T)
    full = torch.empty(n_chan, n_in, n_out, dtype=grad.dtype, device=grad.device)  # (G, L, T): the band only

    def diagonals(t0: int, c: int) -> torch.Tensor:  # (G, k, c) view: [g, j, t] = full[g, t0 + t + j, t0 + t]
        return full.as_strided((n_chan, k, c), (n_in * n_out, n_out, n_out + 1), t0 * (n_out + 1))

    chunk = max(1, (k + 1) // 2)
    for t0 in range(0, n_out, chunk):
        c = min(chunk, n_out - t0)
        block = torch.bmm(xt[:, t0:t0 + c + k - 1], gt[:, :, t0:t0 + c])  # (G, c + k - 1, c)
        diagonals(t0, c).copy_(block.as_strided((n_chan, k, c), (block.shape[1] * c, c, c + 1)))
    return diagonals(0, n_out).sum(-1)[:, None]  # grad_w[g, j] = sum_t full[g, t + j, t], the diagonals written


def window_moments(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and second moments of the ``k``-sample windows a "same" convolution reads, over trials, channels, samples.

    Parameters
    ----------
    x : Tensor, shape (B, C, T)
        Trials, zero-padded as :func:`_same_pad` pads them for a kernel of ``k`` samples.
    k : int
        Kernel length, samples.

    Returns
    -------
    mean : Tensor, shape (k,)
        ``mean[j]``: mean over trials, channels and output samples t of ``x_pad[t + j]``.
    second : Tensor, shape (k, k)
        ``second[i, j]``: mean of ``x_pad[t + i] * x_pad[t + j]``.  For a kernel ``w`` the output
        ``u[t] = sum_j w[j] x_pad[t + j]`` then has mean ``w . mean`` and mean square ``w' second w``.
        Computed without a gradient: from the signals' Gram matrix (float32, zero-padded afterwards: the padded
        signals' Gram matrix with 2.5x fewer products) summed along its diagonals (float64).
    """
    B, C, T = x.shape
    with torch.no_grad():
        x2 = x.reshape(B * C, T)
        lo, hi = (k - 1) // 2, k // 2  # _same_pad's zeros before and after
        n_in, n = T + k - 1, B * C * T
        cum = F.pad(F.pad(x2.sum(0, dtype=torch.float64), (lo, hi)).cumsum(0), (1, 0))  # (L + 1,)
        j = torch.arange(k, device=x.device)
        mean = (cum[j + T] - cum[j]) / n
        gram = F.pad((x2.T @ x2).double(), (lo, hi, lo, hi))  # (L, L): the padded signals' Gram matrix
        second = gram.as_strided((k, k, T), (n_in, 1, n_in + 1)).sum(-1) / n  # [i, j] = sum_t gram[t+i, t+j]
    return mean.to(x.dtype), second.to(x.dtype)


def _same_pad(x: torch.Tensor, k: int) -> torch.Tensor:
    """Zero-pad the last axis for a "same" convolution with a kernel of ``k`` samples (Keras/TF convention)."""
    return F.pad(x, ((k - 1) // 2, k // 2))
