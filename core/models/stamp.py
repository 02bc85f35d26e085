"""STAMP: Short-Term Attention/Memory Priority (Liu et al., KDD 2018), as the paper defines it.

x_i = E[s_i]; x_t = E[last]; m_s = mean_i x_i; alpha_i = w0^T sigmoid(W1 x_i + W2 x_t + W3 m_s + b_a) (no softmax, as in
the paper); m_a = sum_i alpha_i x_i; h_s = tanh(MLP_A(m_a)), h_t = tanh(MLP_B(x_t)); score(v) = <h_s * h_t, E[v]>
(the trilinear product). Unlike the authors' notebook we keep the MLPs, the tanh and the trilinear product, and the
padding row stays zero (spec §4.3 lists those deviations). Init: embeddings N(0, 0.002), linear weights N(0, 0.05).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from core.models.base import SessionModel, last_items, mask_of
from core.models.registry import register


@register
class STAMP(SessionModel):
    name = "stamp"
    description = "STAMP: short-term attention/memory priority, trilinear scoring (Liu et al. 2018)"

    def __init__(self, n_items: int, dim: int, max_len: int, config: dict | None = None,
                 **settings: Any) -> None:
        super().__init__(n_items, dim, max_len, config, **settings)
        self.embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.w1 = nn.Linear(dim, dim, bias=False)
        self.w2 = nn.Linear(dim, dim, bias=False)
        self.w3 = nn.Linear(dim, dim, bias=True)   # its bias is b_a
        self.w0 = nn.Linear(dim, 1, bias=False)
        self.mlp_a = nn.Linear(dim, dim)
        self.mlp_b = nn.Linear(dim, dim)
        nn.init.normal_(self.embedding.weight, 0.0, 0.002)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        for layer in (self.w1, self.w2, self.w3, self.w0, self.mlp_a, self.mlp_b):
            nn.init.normal_(layer.weight, 0.0, 0.05)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def encode(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = mask_of(inputs)
        x = self.embedding(inputs)                                   # (B, L, d)
        x_t = self.embedding(last_items(inputs, lengths))            # (B, d)
        m_s = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        hidden = torch.sigmoid(self.w1(x) + self.w2(x_t)[:, None] + self.w3(m_s)[:, None])
        alpha = self.w0(hidden).squeeze(-1) * mask                   # (B, L)
        m_a = (alpha[..., None] * x).sum(1)
        return torch.tanh(self.mlp_a(m_a)) * torch.tanh(self.mlp_b(x_t))

    def item_embeddings(self) -> torch.Tensor:
        return self.embedding.weight
