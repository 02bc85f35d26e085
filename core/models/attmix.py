"""Atten-Mixer (Zhang et al., WSDM 2023) readout over item embeddings, as ALKDRec used it (no GNN layer).

Multi-level user intents: query q_k = Linear_k(concat of the last k item embeddings), k = 1..K (K = last_k,
default 10; missing positions are zero). Multi-head attention of these queries over the session items gives, per
head, (B, K, L) logits; an L_p pool (p = 1: sum) over the K levels mixes the intents; masked softmax over items;
the weighted values, LayerNorm, then session = Linear([out; h_last]). Session and item vectors are L2-normalised and
scored by scaled cosine (scale 12) both in training and in evaluation — the authors' code trained on cosine but
ranked by raw dot product (spec §4.4); we use one scoring throughout.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from core.models.base import BackboneConfig, SessionModel, last_items, mask_of
from core.models.registry import register


class AttenMixerConfig(BackboneConfig):
    last_k: int = Field(10, ge=1, description="intent levels K: queries from the last 1..K items (at most the window)")
    dropout: float = Field(0.1, ge=0, lt=1)


@register
class AttenMixer(SessionModel):
    name = "attmix"
    description = "Atten-Mixer's multi-level intent readout, scaled cosine scoring (Zhang et al. 2023)"
    score_scale = 12.0
    Config = AttenMixerConfig
    config: AttenMixerConfig

    def __init__(self, n_items: int, dim: int, max_len: int, config: AttenMixerConfig | dict | None = None,
                 **settings: Any) -> None:
        super().__init__(n_items, dim, max_len, config, **settings)
        dropout = self.config.dropout
        self.heads = 2 if dim % 2 == 0 else 1
        self.last_k = min(self.config.last_k, max_len)
        self.embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.levels = nn.ModuleList([nn.Linear(k * dim, dim) for k in range(1, self.last_k + 1)])
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-8)
        self.out = nn.Linear(2 * dim, dim)
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.embedding.weight, 0.0, dim ** -0.5)
        with torch.no_grad():
            self.embedding.weight[0].zero_()

    def encode(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, length = inputs.shape
        mask = mask_of(inputs)
        h = self.dropout(F.normalize(self.embedding(inputs), dim=-1) * mask[..., None])      # (B, L, d)
        # last k items, most recent first: position lengths-1-j, zero where j >= length
        offsets = torch.arange(self.last_k, device=inputs.device)
        positions = lengths[:, None] - 1 - offsets[None, :]
        recent = h.gather(1, positions.clamp(min=0)[..., None].expand(-1, -1, self.dim))
        recent = recent * (positions >= 0).float()[..., None]                               # (B, K, d)
        queries = torch.stack([layer(recent[:, :k].reshape(batch, -1))
                               for k, layer in zip(range(1, self.last_k + 1), self.levels)], 1)  # (B, K, d)
        head_dim = self.dim // self.heads
        q = self.query(queries).view(batch, self.last_k, self.heads, head_dim).transpose(1, 2)
        k = self.key(h).view(batch, length, self.heads, head_dim).transpose(1, 2)
        v = self.value(h).view(batch, length, self.heads, head_dim).transpose(1, 2)
        logits = (q @ k.transpose(-1, -2)) / head_dim ** 0.5                                # (B, H, K, L)
        mixed = logits.sum(2)                                                               # L_1 pool over levels
        mixed = mixed.masked_fill(mask[:, None, :] == 0, -torch.inf)
        weights = self.dropout(torch.softmax(mixed, -1))                                    # (B, H, L)
        out = (weights[..., None] * v).sum(2).reshape(batch, self.dim)
        out = self.norm(out)
        h_last = F.normalize(self.embedding(last_items(inputs, lengths)), dim=-1)
        return F.normalize(self.out(torch.cat([out, h_last], -1)), dim=-1)

    def item_embeddings(self) -> torch.Tensor:
        return F.normalize(self.embedding.weight, dim=-1)
