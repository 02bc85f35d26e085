"""TR ablation (spec alkdrec.md §8, §11 #22): distil the teacher recommender instead of the LLM.

Rows: every training session's window -> each of the same-backbone teacher's (d=100) top-50 items (window items
excluded, the label NOT forced in), weight 1; fine-tune the pretrained student with the same pairwise loss as ALKDRec
(paper: BPR vs sampled negatives; authors-code: in-batch BPR). No selection, no LLM.
"""

from __future__ import annotations

from core.distill import register
from core.distill.common import DistillContext, DistillResult, fit_rows, ranking_rows, top_k


@register("tr", "teacher-rankings", description="ablation TR: teacher recommender top-50 on all training sessions")
def distil_teacher(ctx: DistillContext) -> DistillResult:
    train = ctx.dataset.sessions[ctx.dataset.sessions["split"] == "train"]
    inputs, lengths, _ = ctx.session_inputs(train["session_id"].to_numpy())
    k = int(ctx.param("tr_k"))
    lists = top_k(ctx.teacher, inputs, lengths, k, ctx.device)
    rows = ranking_rows(inputs, lengths, lists, lambda j: 1.0, ctx.dataset.n_items)
    student, curve, facts = fit_rows(ctx, rows)
    return DistillResult(student, curve, facts | {"sessions": int(len(train)), "tr_k": k,
                                                  "weights": "1 per teacher item"})

