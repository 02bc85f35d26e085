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
Joint objective: L = L_base + lambda * L_RD with lambda = 0.8, where L_base is the backbone's own loss on all
training instances (the student's recipe: CE in `paper` mode, in-batch BPR in `authors-code`), warm-started from the
pretrained student like every other method here (labelled as such in results). K = 10 (the first 10 valid ids of
the LLM's 25). Selection: a seeded random subset of the same size as ALKDRec's (spec §8.3 #1; `--option
dllm2rec_selection=alkdrec` is not offered: use the `selection` override of the run config).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.distill import register
from core.distill.common import DistillContext, DistillResult
from core.train import batch_indices, fit_steps, training_instances


def position_weights_dllm(k: int, tau: float = 1.0) -> np.ndarray:
    """(k,) exp(-j/tau) / sum, j = 1..k."""
    raw = np.exp(-np.arange(1, k + 1) / tau)
    return raw / raw.sum()


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
    sids = [s for s in ctx.rankings if ctx.rankings[s]]
    K = int(ctx.param("dllm_k"))
    lam = float(ctx.param("lambda"))
    gamma_p, gamma_o = float(ctx.param("gamma_position")), float(ctx.param("gamma_consistency"))
    config = ctx.train_config()
    model = ctx.student
    base = training_instances(ctx.dataset, ctx.max_len, augment_prefixes=True)
    base_t = [torch.as_tensor(a) for a in (base.inputs, base.lengths, base.targets)]
    n_items = ctx.dataset.n_items
    if sids:
        inputs, lengths, _ = ctx.session_inputs(sids)
        lists = np.zeros((len(sids), K), dtype=np.int64)
        for row, s in enumerate(sids):
            ids = [int(i) for i in ctx.rankings[s] if 1 <= int(i) <= n_items][:K]
            lists[row, :len(ids)] = ids
        keep = (lists > 0).any(1)
        rd_t = [torch.as_tensor(a[keep]) for a in (inputs, lengths, lists)]
    else:
        rd_t = None
    rd_batch = int(ctx.param("rd_batch"))
    batch = batch_indices(len(base), config.batch_size)

    def step(inner: int, rng: np.random.Generator) -> torch.Tensor:
        index = batch(inner, rng)
        x, n, y = (t[index].to(ctx.device) for t in base_t)
        loss = model.loss(x, n, y, config.loss)
        if rd_t is not None and len(rd_t[0]):
            pick = torch.as_tensor(rng.integers(0, len(rd_t[0]), min(rd_batch, len(rd_t[0]))))
            rx, rn, rl = (t[pick].to(ctx.device) for t in rd_t)
            scores = model.score(rx, rn)
            masked = scores.detach().clone()
            masked[:, 0] = -torch.inf
            student_top = masked.topk(K, dim=1).indices
            valid = rl > 0
            weights = rd_weights(rl, valid, student_top, gamma_p, gamma_o)
            positive = scores.gather(1, rl.clamp(min=0))
            negative_ids = torch.randint(1, n_items + 1, (len(rl), 1), device=rl.device)
            negative = scores.gather(1, negative_ids)
            per_item = -F.logsigmoid(positive) - F.logsigmoid(-negative)
            rd = (weights * per_item * valid).sum(1).mean()
            loss = loss + lam * rd
        return loss

    steps = -(-len(base) // config.batch_size)
    curve, best_epoch, _ = fit_steps(model, step, steps, ctx.valid, config, ctx.device, ctx.progress, "distill")
    return DistillResult(model, curve, {
        "sessions": len(sids), "K": K, "lambda": lam, "gamma_position": gamma_p, "gamma_consistency": gamma_o,
        "gamma_confidence": 0.0, "best_epoch": best_epoch, "base_rows": len(base),
        "note": "confidence weight removed (ID-list teacher gives no distances); no embedding distillation; "
                "warm-started from the pretrained student; joint base + lambda*RD loss",
        "train_config": config.model_dump()})
