"""The interface every backbone shares: encode sessions to vectors, score all items, and a training loss.

Shapes: inputs (B, L) int64 item ids in time order, right-padded with 0; lengths (B,) int64 >= 1;
encode -> (B, d) float32; item_embeddings -> (n_items + 1, d) float32 (row 0 = padding, never recommended);
score -> (B, n_items + 1) float32 = encode @ item_embeddings.T (times `score_scale`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import nn

LOSSES = ("ce", "bpr-inbatch")


class BackboneConfig(BaseModel):
    """A backbone's own hyper-parameters beyond (n_items, dim, max_len). Each backbone subclasses it beside its model
    (fields with today's values as defaults); `alkd train --set KEY=VALUE` / the run spec's `pretrain` set them, and
    the values that differ from the defaults are part of the checkpoint key (core.train.TrainConfig.backbone_config).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def changed(self) -> dict[str, Any]:
        """The fields whose values differ from their defaults (what the checkpoint key includes)."""
        return self.model_dump(exclude_defaults=True)


class SessionModel(nn.Module):
    name: ClassVar[str] = ""
    #: one line for the README table, `alkd registry` and the dashboard
    description: ClassVar[str] = ""
    #: this backbone's hyper-parameters and their defaults
    Config: ClassVar[type[BackboneConfig]] = BackboneConfig
    #: the settings (fields of Config) of the ALKDRec authors' code where it differs; `alkd run --mode authors-code`
    #: trains with them unless the run sets them itself
    authors_code: ClassVar[dict[str, object]] = {}
    #: pre-training settings this backbone trains better with than the general defaults (core.train.GENERAL_DEFAULTS);
    #: used where the config leaves them unset. Measured per backbone, see README "Training".
    train_defaults: ClassVar[dict[str, object]] = {}
    #: Bump when a change to the model's code makes old checkpoints wrong: it is part of the checkpoint cache key.
    version: ClassVar[int] = 1
    score_scale: float = 1.0

    def __init__(self, n_items: int, dim: int, max_len: int,
                 config: BackboneConfig | Mapping[str, Any] | None = None, **settings: Any) -> None:
        """config and/or keyword settings: this backbone's `Config` fields (a pydantic ValidationError, a
        ValueError, names a bad one); the rest keep their defaults."""
        super().__init__()
        self.n_items, self.dim, self.max_len = n_items, dim, max_len
        values = config.model_dump() if isinstance(config, BackboneConfig) else dict(config or {})
        self.config = self.Config(**(values | settings))

    def encode(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def item_embeddings(self) -> torch.Tensor:
        raise NotImplementedError

    def score(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.score_scale * self.encode(inputs, lengths) @ self.item_embeddings().T

    def loss(self, inputs: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, kind: str = "ce",
             weights: torch.Tensor | None = None) -> torch.Tensor:
        """Training loss for (B,) target ids, optionally weighted per row (B,) float.

        'ce': full softmax cross-entropy over all items (our default: the paper names no loss).
        'bpr-inbatch': the authors' code — BPR of each row's target against every other row's target in the batch.
        """
        session = self.encode(inputs, lengths)
        items = self.item_embeddings()
        if kind == "ce":
            logits = self.score_scale * session @ items.T
            logits[:, 0] = -torch.inf
            per_row = F.cross_entropy(logits, targets, reduction="none")
        elif kind == "bpr-inbatch":
            target_emb = items[targets]
            scores = self.score_scale * session @ target_emb.T          # (B, B): row i against every row's target
            positive = scores.diagonal()[:, None]
            per_row = -F.logsigmoid(positive - scores).mean(1)
        else:
            raise ValueError(f"unknown loss {kind!r}; expected one of {LOSSES}")
        if weights is None:
            return per_row.mean()
        return (per_row * weights).sum() / weights.sum()


def mask_of(inputs: torch.Tensor) -> torch.Tensor:
    """(B, L) float mask: 1 for real items, 0 for padding."""
    return (inputs > 0).float()


def last_items(inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B,) id of each session's most recent item."""
    return inputs.gather(1, (lengths - 1).clamp(min=0)[:, None]).squeeze(1)
