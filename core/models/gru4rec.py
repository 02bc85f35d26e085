"""GRU4Rec (Hidasi et al., ICLR 2016): a GRU over the session; the hidden state after the last item is the session.

One GRU layer, embedding input (as in the 2018 follow-up's embedding variant), dropout 0.1 on the inputs, a separate
output item table (`GRU4RecConfig`: layers, dropout, dense, tied). Trained here with full softmax cross-entropy
(GRU4Rec's own sampled losses approximate it). RecBole's GRU4Rec is `dropout=0.3, dense=true, tied=true`: a linear
layer after the GRU, and the input item table scores the items (issue 14 compares the two).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import nn

from core.models.base import BackboneConfig, SessionModel
from core.models.registry import register


class GRU4RecConfig(BackboneConfig):
    layers: int = Field(1, ge=1, description="stacked GRU layers")
    dropout: float = Field(0.1, ge=0, lt=1, description="on the input embeddings")
    dense: bool = Field(False, description="a linear layer (d -> d) on the GRU's states")
    tied: bool = Field(False, description="score items with the input item table (no separate output table)")


@register
class GRU4Rec(SessionModel):
    name = "gru4rec"
    description = "GRU4Rec: a GRU over the session, its last hidden state scores the items (Hidasi et al. 2016)"
    Config = GRU4RecConfig
    config: GRU4RecConfig

    def __init__(self, n_items: int, dim: int, max_len: int, config: GRU4RecConfig | dict | None = None,
                 **settings: Any) -> None:
        super().__init__(n_items, dim, max_len, config, **settings)
        self.embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.gru = nn.GRU(dim, dim, num_layers=self.config.layers, batch_first=True)
        self.dense = nn.Linear(dim, dim) if self.config.dense else nn.Identity()
        self.output = None if self.config.tied else nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.dropout = nn.Dropout(self.config.dropout)
        for table in [self.embedding] + ([self.output] if self.output is not None else []):
            nn.init.xavier_normal_(table.weight)
            with torch.no_grad():
                table.weight[0].zero_()

    def encode(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(self.dropout(self.embedding(inputs)))        # right padding: state at lengths-1 is exact
        states = self.dense(states)
        return states.gather(1, (lengths - 1)[:, None, None].expand(-1, 1, self.dim)).squeeze(1)

    def item_embeddings(self) -> torch.Tensor:
        return (self.output or self.embedding).weight
