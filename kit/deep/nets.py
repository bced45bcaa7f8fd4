"""Neural networks: the channel transformer, the masked autoencoder, the expert bank, fusion.

One architecture serves the deep stages of the 3rd-place design (its public
write-up; :mod:`kit.deep.thirdplace` runs it as published): a per-channel
Transformer over a channel's band-power sequence.  :class:`ChannelTransformer` holds ``n_experts`` independent copies
of it whose parameters carry a leading expert axis, so the 16 channel experts
run as one batched computation (one einsum per layer instead of 16 modules);
with ``n_experts=1`` the same class is the masked autoencoder's encoder.

At the published sizes (d_model 16, 4 heads, feed-forward 128, 3 layers, 200
samples, 5 band powers; the ``thirdplace`` profile) an expert has 19,489
parameters: input projection 96 + positional embedding 3,200 + three post-norm
encoder layers 3 x 5,392 + per-sample output head 17 (a test checks it).  The
kit's default experts read 7 features per sample
(:func:`kit.signal.sequences.deep_features`) on a pooled sequence, with the
encoder frozen and an attention-pooling head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _init_(t: torch.Tensor, fan_in: int) -> torch.Tensor:
    bound = 1.0 / math.sqrt(fan_in)
    return nn.init.uniform_(t, -bound, bound)


class BankLinear(nn.Module):
    """``n_experts`` independent linear maps applied along the last axis.

    Input ``(..., n_experts, n_times, d_in)`` -> output ``(..., n_experts, n_times, d_out)``.
    """

    def __init__(self, n_experts: int, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(_init_(torch.empty(n_experts, d_in, d_out), d_in))
        self.bias = nn.Parameter(_init_(torch.empty(n_experts, d_out), d_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...etd,edf->...etf", x, self.weight) + self.bias[:, None, :]


class BankLayerNorm(nn.Module):
    """Layer norm over the feature axis with a separate affine map per expert."""

    def __init__(self, n_experts: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_experts, d))
        self.bias = nn.Parameter(torch.zeros(n_experts, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (..., E, T, D)
        x = F.layer_norm(x, x.shape[-1:])
        return x * self.weight[:, None, :] + self.bias[:, None, :]


class BankEncoderLayer(nn.Module):
    """Post-norm Transformer encoder layer (as ``nn.TransformerEncoderLayer``, ReLU) per expert.

    Parameters per expert: qkv ``d(3d)+3d``, out ``d*d+d``, two norms ``4d``,
    feed-forward ``2*d*d_ff + d_ff + d`` (5,392 for d=16, d_ff=128).
    """

    def __init__(self, n_experts: int, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.qkv = BankLinear(n_experts, d_model, 3 * d_model)
        self.out = BankLinear(n_experts, d_model, d_model)
        self.norm1 = BankLayerNorm(n_experts, d_model)
        self.ff1 = BankLinear(n_experts, d_model, d_ff)
        self.ff2 = BankLinear(n_experts, d_ff, d_model)
        self.norm2 = BankLayerNorm(n_experts, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, E, T, D)
        B, E, T, D = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # 3 x (B, E, T, D)
        # (B, E, T, D) -> (B, E, H, T, D/H): heads split for attention
        q, k, v = (t.view(B, E, T, self.n_heads, D // self.n_heads).transpose(2, 3) for t in (q, k, v))
        p = self.dropout.p if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, E, H, T, D/H)
        a = a.transpose(2, 3).reshape(B, E, T, D)  # heads merged back
        x = self.norm1(x + self.dropout(self.out(a)))
        x = self.norm2(x + self.dropout(self.ff2(self.dropout(F.relu(self.ff1(x))))))
        return x


def sinusoidal_positions(n_times: int, d_model: int, period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal position code ``(n_times, d_model)`` of Vaswani et al. 2017 (sin on even, cos on odd dims)."""
    pos = torch.arange(n_times, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(period) * torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    code = torch.zeros(n_times, d_model)
    code[:, 0::2] = torch.sin(pos * freq)
    code[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
    return code


class ChannelTransformer(nn.Module):
    """``n_experts`` independent per-channel Transformer encoders over band-power sequences.

    Parameters
    ----------
    n_experts : int
        Independent encoders (16 channel experts, or 1 for the MAE).
    n_times : int
        Sequence length in samples (200 at 200 Hz, fewer after pooling).
    n_features : int
        Input features per sample (5 band powers).
    d_model, n_heads, d_ff, n_layers, dropout
        Transformer sizes (defaults of the 3rd-place design: 16, 4, 128, 3).

    Notes
    -----
    Input ``(B, n_experts, n_times, n_features)``; output ``(B, n_experts, n_times, d_model)``.
    Source: Vaswani et al. 2017; the per-channel design of the competition's 3rd place.
    """

    def __init__(self, n_experts: int, n_times: int, n_features: int = 5, d_model: int = 16,
                 n_heads: int = 4, d_ff: int = 128, n_layers: int = 3, dropout: float = 0.1):
        super().__init__()
        self.n_experts, self.n_times, self.n_features = n_experts, n_times, n_features
        self.input = BankLinear(n_experts, n_features, d_model)
        # learned, initialised with the sinusoids of Vaswani et al. 2017: neighbouring samples start out alike,
        # which the masked reconstruction needs (a random init left it behind copying the nearest sample)
        self.pos = nn.Parameter(sinusoidal_positions(n_times, d_model).expand(n_experts, -1, -1).clone())
        self.layers = nn.ModuleList(
            BankEncoderLayer(n_experts, d_model, n_heads, d_ff, dropout) for _ in range(n_layers)
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Input projection plus positional embedding: ``(B, E, T, K)`` -> ``(B, E, T, D)``."""
        return self.input(x) + self.pos

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        """Transformer layers on embedded tokens ``(B, E, T, D)`` -> ``(B, E, T, D)``."""
        for layer in self.layers:
            h = layer(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(self.embed(x))


class MaskedAutoencoder(nn.Module):
    """Masked autoencoder over one channel's band-power sequence (BERT-style masking).

    Masked samples are replaced by a learned mask token after the input
    projection, so the encoder sees context on both sides of every masked
    sample; a linear head reconstructs the ``n_features`` features of the masked
    samples.  Input ``(N, n_times, n_features)`` with N = trials x channels.

    Sources: He et al., "Masked Autoencoders Are Scalable Vision Learners",
    CVPR 2022 (facebookresearch/mae ``models_mae.py`` step names); Devlin et
    al. 2019 (mask token); the competition's 3rd place (40 % masking, 3 layers,
    d_model 16).
    """

    def __init__(self, n_times: int, n_features: int = 5, d_model: int = 16, n_heads: int = 4,
                 d_ff: int = 128, n_layers: int = 3, dropout: float = 0.1):
        super().__init__()
        self.encoder = ChannelTransformer(1, n_times, n_features, d_model, n_heads, d_ff, n_layers, dropout)
        self.mask_token = nn.Parameter(torch.zeros(d_model))
        self.head = nn.Linear(d_model, n_features)

    @staticmethod
    def random_masking(n: int, n_times: int, mask_ratio: float,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """Boolean mask ``(n, n_times)``, True = masked; exactly ``round(mask_ratio * n_times)`` per row."""
        n_mask = int(round(mask_ratio * n_times))
        noise = torch.rand(n, n_times, generator=generator)
        ranks = noise.argsort(dim=1).argsort(dim=1)  # random permutation rank of each sample
        return ranks < n_mask

    def forward_encoder(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x (N, T, K)``, ``mask (N, T)`` -> latent ``(N, T, D)``."""
        h = self.encoder.embed(x[:, None])  # (N, 1, T, D)
        h = torch.where(mask[:, None, :, None], self.mask_token + self.encoder.pos, h)
        return self.encoder.encode(h)[:, 0]  # (N, T, D)

    def forward_decoder(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent ``(N, T, D)`` -> reconstruction ``(N, T, K)``."""
        return self.head(latent)

    @staticmethod
    def forward_loss(x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the masked samples only (scalar)."""
        err = ((pred - x) ** 2).mean(dim=-1)  # (N, T)
        m = mask.to(err.dtype)
        return (err * m).sum() / m.sum().clamp_min(1.0)

    def forward(self, x: torch.Tensor, mask_ratio: float = 0.4,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``(loss, pred (N, T, K), mask (N, T))``."""
        mask = self.random_masking(x.shape[0], x.shape[1], mask_ratio, generator).to(x.device)
        pred = self.forward_decoder(self.forward_encoder(x, mask))
        return self.forward_loss(x, pred, mask), pred, mask


class AttentionPoolHead(nn.Module):
    """Attention pooling over time: one logit per channel expert and trial, for ``n_models`` models at once.

    For model ``m``, expert ``e`` and input vector ``h_t`` at model sample ``t``:
    ``a_t = q_me . h_t + c_me + tau_mt`` (``tau``: a time prior shared by the
    model's experts), ``alpha = softmax_t(a)`` (the attention curve: sums to 1
    over time), ``s_t = w_me . h_t + b_me`` (the per-sample logit), and the
    trial logit is ``sum_t alpha_t s_t``.  The loss is taken on the trial
    logit, so the head learns *where* in the trial the evidence lies instead
    of pushing every sample toward the label (attention-based pooling: Ilse,
    Tomczak & Welling, ICML 2018).

    The model axis lets every LOSO fold, cross-fit model and seed of stage 03
    train as one batched computation on shared minibatches (their parameters
    are independent; each model's loss only counts its own training trials).
    Parameters per model: ``E (2 d_in + 2) + T``.

    Input ``(B, E, T, d_in)``; :meth:`forward` gives the trial logits
    ``(n_models, B, E)``, :meth:`detail` also the per-sample logits and the
    attention, each ``(n_models, B, E, T)``.
    """

    def __init__(self, n_chans: int, d_in: int, n_times: int, n_models: int = 1):
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(2, n_models, n_chans, d_in).uniform_(-bound, bound))  # [score, logit]
        self.bias = nn.Parameter(torch.zeros(2, n_models, n_chans))
        self.time_prior = nn.Parameter(torch.zeros(n_models, n_times))

    @property
    def n_models(self) -> int:
        return self.weight.shape[1]

    def detail(self, h: torch.Tensor, models: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Trial logits ``(M, B, E)``, per-sample logits ``(M, B, E, T)`` and attention ``(M, B, E, T)``.

        ``models`` (a slice of the model axis) computes only those models, with the numbers the whole head gives
        them (a test checks it bit for bit): stage 03's early stopping scores its validation models alone.
        """
        weight, bias, prior = self.weight[:, models], self.bias[:, models], self.time_prior[models]
        z = torch.einsum("betd,kmed->kmbet", h, weight) + bias[:, :, None, :, None]  # (2, M, B, E, T)
        alpha = torch.softmax(z[0] + prior[:, None, None, :], dim=-1)  # (M, B, E, T)
        course = z[1]
        return (alpha * course).sum(dim=-1), course, alpha

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.detail(h)[0]

    def model_state(self, m: int) -> dict[str, torch.Tensor]:
        """The parameters of model ``m`` alone, as the state of a one-model head."""
        return model_slice(self.state_dict(), m)


def model_slice(state: dict[str, torch.Tensor], m: int) -> dict[str, torch.Tensor]:
    """Model ``m`` of an :class:`AttentionPoolHead` state (model axis: 1 for weight/bias, 0 for time_prior)."""
    return {k: (v[:, m : m + 1] if k in ("weight", "bias") else v[m : m + 1]).detach().clone() for k, v in state.items()}


def model_stack(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`model_slice`: one-model states stacked along the model axis."""
    return {k: torch.cat([s[k] for s in states], dim=1 if k in ("weight", "bias") else 0) for k in states[0]}


class ExpertBank(nn.Module):
    """Sixteen channel experts: per-channel encoders, each with an attention-pooling logit head.

    Input ``(B, n_chans, n_times, n_features)`` -> trial logits ``(B, n_chans)``
    of P(emotional), one per channel expert.  The head reads each sample's
    encoder token next to the features it encodes (``d_model + n_features``
    values: a skip connection, so nothing the encoder failed to keep is
    lost).  :meth:`load_mae_encoder` copies a pretrained MAE encoder into
    every expert.
    """

    def __init__(self, n_chans: int, n_times: int, n_features: int = 5, d_model: int = 16,
                 n_heads: int = 4, d_ff: int = 128, n_layers: int = 3, dropout: float = 0.1):
        super().__init__()
        self.encoder = ChannelTransformer(n_chans, n_times, n_features, d_model, n_heads, d_ff, n_layers, dropout)
        self.head = AttentionPoolHead(n_chans, d_model + n_features, n_times)

    def head_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, E, T, K)`` -> encoder tokens beside the features ``(B, E, T, D + K)``."""
        return torch.cat([self.encoder(x), x], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_input(x))[0]  # (B, E)

    def detail(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Trial logits ``(B, E)``, per-sample logits ``(B, E, T)`` and attention ``(B, E, T)``."""
        return tuple(t[0] for t in self.head.detail(self.head_input(x)))

    def load_mae_encoder(self, mae: MaskedAutoencoder) -> None:
        """Initialise every expert's encoder from the MAE encoder (expert axis broadcast)."""
        src = mae.encoder.state_dict()
        dst = self.encoder.state_dict()
        if set(src) != set(dst):
            raise ValueError("MAE encoder and expert encoder have different layers")
        with torch.no_grad():
            for name, value in src.items():
                if value.shape[1:] != dst[name].shape[1:]:
                    raise ValueError(f"{name}: MAE shape {tuple(value.shape)} vs expert {tuple(dst[name].shape)}")
                dst[name].copy_(value.expand_as(dst[name]))


class SpatioTemporalFusion(nn.Module):
    """Fuse the 16 experts' logit time courses into one logit per sample.

    Input ``(B, n_chans, n_times)`` expert logits -> ``(B, n_times)`` logits.
    A spatial 1x1 convolution mixes channels into ``n_filters`` maps, a
    depthwise temporal convolution (``kernel`` samples) smooths each, and a
    pointwise head adds a trial-level term (the map's mean over time), which
    suits the metric's reward for sustained decoding.  In the spirit of
    EEGNet's spatial-then-temporal factorisation (Lawhern et al., J Neural Eng 2018).
    """

    def __init__(self, n_chans: int = 16, n_filters: int = 4, kernel: int = 9, dropout: float = 0.25):
        super().__init__()
        self.spatial = nn.Conv1d(n_chans, n_filters, 1)
        self.temporal = nn.Conv1d(n_filters, n_filters, kernel, padding=kernel // 2,
                                  groups=n_filters, padding_mode="replicate")
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Conv1d(2 * n_filters, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: (B, C, T)
        s = self.temporal(self.dropout(self.spatial(z)))  # (B, F, T)
        g = s.mean(dim=-1, keepdim=True).expand_as(s)  # trial-level term, (B, F, T)
        return self.head(torch.cat([s, g], dim=1))[:, 0]  # (B, T)


def pool_time(x: torch.Tensor, factor: int, dim: int = -2) -> torch.Tensor:
    """Average-pool ``x`` along ``dim`` by an integer ``factor`` (n_times must be divisible)."""
    if factor == 1:
        return x
    n = x.shape[dim]
    if n % factor:
        raise ValueError(f"n_times={n} is not divisible by pool factor {factor}")
    shape = list(x.shape)
    dim = dim % x.dim()
    shape[dim : dim + 1] = [n // factor, factor]
    return x.reshape(shape).mean(dim=dim + 1)


def upsample_time(x: torch.Tensor, n_times: int) -> torch.Tensor:
    """Linear interpolation of ``(..., T')`` to ``(..., n_times)`` (identity if equal)."""
    if x.shape[-1] == n_times:
        return x
    lead = x.shape[:-1]
    y = F.interpolate(x.reshape(-1, 1, x.shape[-1]), size=n_times, mode="linear", align_corners=False)
    return y.reshape(*lead, n_times)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
