"""ALKDRec distillation (spec alkdrec.md §7) and its selection ablations (§8: Random, Easiest, Hardest, RAD-BC).

Objective: fine-tune the PRETRAINED student on the selected sessions only (no mixing with the original data,
spec §11 #21):

    min  sum_{s in B} sum_{j < 25} alpha_j * BPR(s, v_j),      v_j = the LLM's j-th ranked id (0-based j)

as weighted rows (window(s) -> v_j, weight alpha_j) through the student's loss; the row weights are normalised by
their sum per batch (equivalent in expectation to the authors' row duplication, spec §11 #7).
- mode `paper`: alpha = 3/2/1 for 1-based ranks [1,5]/(5,15]/(15,25]; BPR(s, v) = -log sigmoid(S(s,v) - S(s,v'))
  against `negatives` (default 1) uniformly sampled items v'.
- mode `authors-code`: alpha = [j<=5]+[j<=15]+[j<=25] (0-based, 6/10/9 items); BPR against in-batch negatives
  (the other rows' targets, the backbone's 'bpr-inbatch' loss); Atten-Mixer lr 1e-4.
Adam (lr 1e-3), batch 1024, early stopping on validation NDCG@10 checked every epoch or every 20 steps, whichever
comes first (the authors: every 20 iterations, on HR@50 / HR@15; spec §11 #19).
The ablations differ only in the selection strategy.
"""

from __future__ import annotations

from core.distill import register
from core.distill.common import DistillContext, DistillResult, fit_rows, position_weight, ranking_rows


def distil_rankings(ctx: DistillContext) -> DistillResult:
    sids = [s for s in ctx.rankings if ctx.rankings[s]]
    if not sids:
        return DistillResult(ctx.student, None, {"rows": 0, "note": "no usable LLM ranking: student unchanged"})
    inputs, lengths, _ = ctx.session_inputs(sids)
    n_out = int(ctx.param("n_out"))
    lists = [list(ctx.rankings[s])[:max(n_out, 26 if ctx.mode == "authors-code" else n_out)] for s in sids]
    rows = ranking_rows(inputs, lengths, lists, lambda j: position_weight(j, ctx.mode), ctx.dataset.n_items)
    student, curve, facts = fit_rows(ctx, rows)
    return DistillResult(student, curve, facts | {"sessions": len(sids), "weights": "alpha 3/2/1 " + ctx.mode})


for _name, _strategy, _text in (
        ("alkdrec", "alkdrec", "ALKDRec: max-min active selection + alpha-weighted pairwise distillation"),
        ("random", "random", "ablation: random selection + ALKDRec distillation"),
        ("easiest", "easiest", "ablation: highest-consistency sessions + ALKDRec distillation"),
        ("hardest", "hardest", "ablation: lowest-consistency sessions + ALKDRec distillation"),
        ("rad-bc", "rad-bc", "ablation: binary robust active distillation (RAD-BC) + ALKDRec distillation")):
    register(_name, "llm", strategy=_strategy, description=_text)(distil_rankings)
