"""The cross-channel fusion network of stage 04 (:mod:`kit.deep.channel_fusion` trains it).

Channel tokens (an attention-pooled encoder sequence, rows of the re-centred tangent matrices, a learned channel
embedding) and a CLS token through pre-norm Transformer layers; the CLS output is a residual logit whose output
layer starts at zero.  Sources: Brant (Zhang et al., NeurIPS 2023) and the Population Transformer (Chau et al.,
2024) for channel tokens with a CLS token; Vaswani et al. 2017.
"""

from __future__ import annotations

import torch
from torch import nn


class CrossChannelLayer(nn.Module):
    """A pre-norm Transformer encoder layer over channel tokens that can return its attention map.

    Input ``(B, L, d)`` -> ``(B, L, d)`` and the attention averaged over heads ``(B, L, L)`` (rows: queries).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.norm1(h)
        a, w = self.attn(q, q, q, need_weights=True, average_attn_weights=True)  # (B, L, d), (B, L, L)
        h = h + self.drop(a)
        return h + self.drop(self.ff(self.norm2(h))), w


class CrossChannelFusion(nn.Module):
    """Channel tokens (pooled encoder sequence, tangent rows, channel embedding) -> CLS Transformer -> logit.

    Parameters
    ----------
    n_chans, n_times : int
        Channels; model samples of the encoder sequence.
    d_in : int
        Width of the encoder sequence per sample (encoder tokens beside the features: ``D + K``); 0 = unused.
    n_bands : int
        Covariance blocks (bands x windows; 0 = unused).
    cfg : kit.deep.channel_fusion.ChannelFusionConfig
        ``d_model``, ``n_heads``, ``d_ff``, ``n_layers``, ``dropout``.

    Notes
    -----
    Inputs ``seq (B, E, T, d_in)`` and ``cov (B, n_bands, E, E)``; output residual logits ``(B,)`` (zero
    before training: the output layer starts at zero).
    """

    def __init__(self, n_chans: int, n_times: int, d_in: int, n_bands: int, cfg):
        super().__init__()
        d = cfg.d_model
        self.n_chans, self.d_in, self.n_bands = n_chans, d_in, n_bands
        if d_in:
            self.query = nn.Parameter(torch.randn(n_chans, d_in) / d_in ** 0.5)  # per-channel attention over time
            self.time_prior = nn.Parameter(torch.zeros(n_times))
            self.seq_proj = nn.Linear(d_in, d)
        if n_bands:
            self.cov_proj = nn.Linear(n_bands * n_chans, d)
        self.chan = nn.Parameter(torch.randn(n_chans, d) * 0.02)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.layers = nn.ModuleList(CrossChannelLayer(d, cfg.n_heads, cfg.d_ff, cfg.dropout)
                                    for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def pool_sequence(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``seq (B, E, T, d_in)`` -> pooled ``(B, E, d_in)`` and the attention over time ``(B, E, T)``."""
        score = torch.einsum("betd,ed->bet", seq, self.query) + self.time_prior  # (B, E, T)
        alpha = torch.softmax(score, dim=-1)
        return torch.einsum("bet,betd->bed", alpha, seq), alpha

    def tokens(self, seq: torch.Tensor | None, cov: torch.Tensor | None) -> torch.Tensor:
        """Channel tokens ``(B, E, d)``: projections of the pooled sequence and the tangent rows, plus the channel embedding."""
        h = self.chan
        if self.d_in:
            h = h + self.seq_proj(self.pool_sequence(seq)[0])
        if self.n_bands:
            rows = cov.permute(0, 2, 1, 3).reshape(cov.shape[0], self.n_chans, -1)  # (B, E, n_bands * E)
            h = h + self.cov_proj(rows)
        return h

    def forward(self, seq: torch.Tensor | None, cov: torch.Tensor | None,
                return_attention: bool = False):
        """Residual logits ``(B,)``; with ``return_attention`` also the last layer's attention ``(B, E + 1, E + 1)``
        (index 0 is the CLS token)."""
        h = self.tokens(seq, cov)
        h = torch.cat([self.cls.expand(len(h), -1, -1), h], dim=1)  # (B, 1 + E, d)
        att = None
        for layer in self.layers:
            h, att = layer(h)
        logit = self.out(self.norm(h[:, 0]))[:, 0]
        return (logit, att) if return_attention else logit
