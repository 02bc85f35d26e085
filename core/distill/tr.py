"""TR (spec alkdrec.md §8, §11 #22) and RD: distil the teacher recommender (d=100, same backbone) instead of the LLM,
on every training session. No selection, no LLM: the "what does our own teacher transfer?" gate.

TR, option `loss`:
- `kd` (default with the joint recipe): classic soft-target KD over the full catalogue on every training instance,
  base loss + lambda * T^2 KL(softmax(z_t/T) || softmax(z_s/T)) (core.distill.losses.soft_target_kd), T fitted to
  the teacher's score scale unless set (kd_perplexity), lambda 1/T^2 unless set; z_t from the teacher recommender
  (kd_teacher=model) or from V-SKNN on the training sessions (kd_teacher=vsknn: the issue allows any registry model
  or reference baseline as the KD teacher; each instance's own session is left out of its neighbours);
- `bpr-top50` (the ablation as the paper ran it, default with the finetune recipe): rows window -> each of the
  teacher's top-50 items (window excluded, the label NOT forced in), weight 1, through the pairwise objective.
RD (Ranking Distillation, Tang & Wang, KDD 2018), the published ranking-distillation baseline ("classic KD" row):
the teacher's top-K (K = rd_k = 10, window excluded) per training instance as weighted positives,
base loss + lambda * sum_r w_r (-log sigmoid(s[pi_r]) - log sigmoid(-s[n])), w_r = exp(-r/mu) normalised.
"""

from __future__ import annotations

import torch

from core.distill import register
from core.distill.common import (
    DistillContext,
    DistillResult,
    Term,
    fit_distill,
    kd_temperature_for,
    kd_term,
    pairwise_term,
    ranking_rows,
    top_k,
)
from core.distill.losses import ranking_distillation, rd_position_weights


@register("tr", "teacher-rankings", description="TR: distil the teacher recommender on all training sessions "
                                                "(soft-target KD; loss=bpr-top50: the paper's top-50 pairwise)")
def distil_teacher(ctx: DistillContext) -> DistillResult:
    loss = str(ctx.param("loss") or ("kd" if ctx.recipe == "joint" else "bpr-top50"))
    if loss == "kd":
        temperature = kd_temperature_for(ctx)
        model, curve, facts = fit_distill(ctx, kd_term(ctx, temperature))
        return DistillResult(model, curve, facts | {"loss": "kd", "kd_teacher": str(ctx.param("kd_teacher")),
                                                    "kd_temperature": temperature,
                                                    "kd_temperature_fitted": ctx.param("kd_temperature") is None,
                                                    "rows": len(ctx.training_rows)})
    if loss != "bpr-top50":
        raise ValueError(f"TR takes loss=kd or loss=bpr-top50, not {loss!r}")
    train = ctx.dataset.sessions[ctx.dataset.sessions["split"] == "train"]
    inputs, lengths, _ = ctx.session_inputs(train["session_id"].to_numpy())
    k = int(ctx.param("tr_k"))
    lists = top_k(ctx.teacher, inputs, lengths, k, ctx.device)
    rows = ranking_rows(inputs, lengths, lists, lambda j: 1.0, ctx.dataset.n_items)
    term = pairwise_term(ctx, rows)
    model, curve, facts = fit_distill(ctx, term)
    return DistillResult(model, curve, facts | {"loss": "bpr-top50", "objective": term_objective(ctx),
                                                "rows": len(rows), "sessions": int(len(train)), "tr_k": k,
                                                "weights": "1 per teacher item"})


def term_objective(ctx: DistillContext) -> str:
    """The pairwise objective's stored name (sampled-bpr for the paper's BPR against uniform negatives)."""
    return {"bpr": "sampled-bpr"}.get(ctx.objective, ctx.objective)


@register("rd", "teacher-rankings", description="RD (Tang & Wang 2018): ranking distillation of the teacher "
                                                "recommender's top-10 on all training instances")
def distil_ranking(ctx: DistillContext) -> DistillResult:
    base = ctx.training_rows
    k = int(ctx.param("rd_k"))
    lists = torch.as_tensor(top_k(ctx.teacher, base.inputs, base.lengths, k, ctx.device))
    weights = torch.as_tensor(rd_position_weights(k, float(ctx.param("rd_mu"))), dtype=torch.float32)[None, :]
    tensors = [torch.as_tensor(a) for a in (base.inputs, base.lengths)]
    n_items = ctx.dataset.n_items

    def loss(model, index: torch.Tensor) -> torch.Tensor:
        x, n = (t[index].to(ctx.device) for t in tensors)
        negatives = torch.randint(1, n_items + 1, (len(index),), device=ctx.device)
        return ranking_distillation(model.score(x, n), lists[index].to(ctx.device), weights.to(ctx.device),
                                    negatives).mean()
    model, curve, facts = fit_distill(ctx, Term(len(base), loss, on_base=True, lam=ctx.lam()))
    return DistillResult(model, curve, facts | {"loss": "rd", "rd_k": k, "rd_mu": float(ctx.param("rd_mu")),
                                                "rows": len(base)})
