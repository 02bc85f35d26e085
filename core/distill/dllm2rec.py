"""DLLM2Rec (Cui et al., RecSys 2024) adapted to a small LLM-labelled subset, as ALKDRec's baseline (spec
dllm2rec.md §8).

Kept: importance-aware ranking distillation (RD) on the LLM lists of the labelled sessions B only, with
- position weight   w^p_k = exp(-k/tau_p) / sum_{j<=K} exp(-j/tau_p), k = 1..K over the valid listed ids, tau_p = 1;
- consistency weight w^o_k = 1[t_k in the student's CURRENT top-K] + 1e-8 (recomputed every step, unnormalised);
- combined            w_k = row-normalise(gamma_p * w^p_k + gamma_o * w^o_k), gamma_p = 0.3, gamma_o = 0.1;
- RD loss per instance u: sum_k w_k * (-log sigmoid(s_{t_k}) - log sigmoid(-s_n)), n one uniform negative shared by
  the K terms; averaged over the labelled rows of the step (spec §8.3 #2, so lambda keeps its meaning).
Removed: the CONFIDENCE weight w^c (gamma_c = 0): it needs the distance between the LLM's generated text and every
item, which an ID-list teacher (GPT-4, replay, simulated) cannot give. Also dropped: embedding distillation (no item
text-embedding source is configured) and the DRO term (our students are not DROS).
Joint objective: L = L_base + lambda * L_RD with lambda = 0.8 (option `lambda`), where L_base is the backbone's
own loss on all training instances (the student's recipe: CE, or in-batch BPR for FPMC), through the shared joint
trainer (core.distill.common.fit_distill: warm-started from the pretrained student or from scratch with
`init=scratch`, as DLLM2Rec itself trains; the starting model does not compete in model selection). K = 10 (the
first 10 valid ids of the LLM's 25). The RD term is core.distill.losses.ranking_distillation. Selection: a seeded
random subset of the same size as ALKDRec's (spec §8.3 #1; use the run config's `selection` override for another).
"""

from __future__ import annotations

import numpy as np
import torch

from core.distill import register
from core.distill.common import DistillContext, DistillResult, Term, distillation_lists, fit_distill
from core.distill.losses import ranking_distillation, rd_position_weights


def position_weights_dllm(k: int, tau: float = 1.0) -> np.ndarray:
    """(k,) exp(-j/tau) / sum, j = 1..k."""
    return rd_position_weights(k, tau)


def rd_weights(lists: torch.Tensor, valid: torch.Tensor, student_top: torch.Tensor, gamma_p: float = 0.3,
               gamma_o: float = 0.1, tau: float = 1.0) -> torch.Tensor:
    """(B, K) combined row-normalised weights. lists: (B, K) teacher ids; valid: (B, K) bool (left-aligned);
    student_top: (B, K') the student's current top ids."""
    ranks = torch.arange(1, lists.shape[1] + 1, device=lists.device, dtype=torch.float32)[None, :]
    raw_p = torch.exp(-ranks / tau) * valid
    w_p = raw_p / raw_p.sum(1, keepdim=True).clamp(min=1e-12)
    w_o = (lists[:, :, None] == student_top[:, None, :]).any(-1).float() + 1e-8
    combined = (gamma_p * w_p + gamma_o * w_o) * valid
    return combined / combined.sum(1, keepdim=True).clamp(min=1e-12)


@register("dllm2rec", "llm", strategy="random",
          description="DLLM2Rec adapted: position+consistency-weighted RD on the labelled subset (no confidence)")
def distil_dllm2rec(ctx: DistillContext) -> DistillResult:
    lists_by_session = distillation_lists(ctx)
    sids = [s for s in lists_by_session if lists_by_session[s]]
    if not sids:
        return DistillResult(ctx.student, None, {"sessions": 0, "returned_start": True,
                                                 "note": "no usable LLM ranking: student unchanged"})
    K = int(ctx.param("dllm_k"))
    gamma_p, gamma_o = float(ctx.param("gamma_position")), float(ctx.param("gamma_consistency"))
    n_items = ctx.dataset.n_items
    lists = np.zeros((len(sids), K), dtype=np.int64)
    for row, s in enumerate(sids):
        ids = [int(i) for i in lists_by_session[s] if 1 <= int(i) <= n_items][:K]
        lists[row, :len(ids)] = ids
    keep = (lists > 0).any(1)
    inputs, lengths, _ = ctx.session_inputs(sids)
    rx, rn, rl = (torch.as_tensor(a[keep]) for a in (inputs, lengths, lists))

    def loss(model, index: torch.Tensor) -> torch.Tensor:
        x, n, items = (t[index].to(ctx.device) for t in (rx, rn, rl))
        scores = model.score(x, n)
        masked = scores.detach().clone()
        masked[:, 0] = -torch.inf
        weights = rd_weights(items, items > 0, masked.topk(K, dim=1).indices, gamma_p, gamma_o)
        negatives = torch.randint(1, n_items + 1, (len(items),), device=ctx.device)
        return ranking_distillation(scores, items, weights, negatives).mean()

    lam = ctx.lam(0.8)
    model, curve, facts = fit_distill(ctx, Term(len(rx), loss, int(ctx.param("distill_batch")), lam=lam),
                                      recipe=ctx.param("recipe") or "joint")
    return DistillResult(model, curve, facts | {
        "sessions": len(sids), "K": K, "gamma_position": gamma_p, "gamma_consistency": gamma_o,
        "gamma_confidence": 0.0, "base_rows": len(ctx.training_rows), "lists": str(ctx.param("lists")),
        "note": "confidence weight removed (ID-list teacher gives no distances); no embedding distillation; "
                "joint base + lambda*RD loss"})
