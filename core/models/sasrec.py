"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the session, tied input/output item embeddings.

Two pre-LayerNorm blocks, learned positions, dropout 0.2; heads = 2 when the dimension is even, else 1; the
output at the last real position is the session vector (`SASRecConfig`: layers, heads, dropout).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import nn

from core.models.base import BackboneConfig, SessionModel
from core.models.registry import register


class SASRecConfig(BackboneConfig):
    layers: int = Field(2, ge=1, description="self-attention blocks")
    heads: int | None = Field(None, ge=1, description="attention heads; None = 2 when the dimension is even, else 1")
    dropout: float = Field(0.2, ge=0, lt=1)


@register
class SASRec(SessionModel):
    name = "sasrec"
    description = "SASRec: causal self-attention over the session, tied item embeddings (Kang & McAuley 2018)"
    Config = SASRecConfig
    config: SASRecConfig

    def __init__(self, n_items: int, dim: int, max_len: int, config: SASRecConfig | dict | None = None,
                 **settings: Any) -> None:
        super().__init__(n_items, dim, max_len, config, **settings)
        heads = self.config.heads or (2 if dim % 2 == 0 else 1)
        if dim % heads:
            raise ValueError(f"sasrec: heads={heads} does not divide the dimension {dim} (fix: set heads to a "
                             f"divisor of {dim}, e.g. heads=1)")
        dropout = self.config.dropout
        self.embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.position = nn.Embedding(max_len, dim)
        block = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=dim, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, self.config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.embedding.weight, 0.0, dim ** -0.5)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        causal = torch.triu(torch.full((max_len, max_len), float("-inf")), diagonal=1)
        self.register_buffer("causal", causal, persistent=False)

    def encode(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        length = inputs.shape[1]
        positions = torch.arange(length, device=inputs.device)
        x = self.dropout(self.embedding(inputs) * self.dim ** 0.5 + self.position(positions)[None])
        x = self.norm(self.blocks(x, mask=self.causal[:length, :length]))
        return x.gather(1, (lengths - 1)[:, None, None].expand(-1, 1, self.dim)).squeeze(1)

    def item_embeddings(self) -> torch.Tensor:
        return self.embedding.weight
