"""ALKDRec distillation (spec alkdrec.md §7) and its selection ablations (§8: Random, Easiest, Hardest, RAD-BC).

The LLM's lists for the selected sessions B (option `lists` swaps in the controls: core.distill.common.
distillation_lists) are distilled into the student with option `loss`:
- `listwise` (default with the joint recipe): per session, KL(q_s || softmax(z_s / T_s) over the candidate set
  C_s), q_s = softmax(-position/tau) over the listed ids (core.distill.losses), T_s = list_temperature (1);
- `pairwise` (the paper's, default with the finetune recipe):

      sum_{s in B} sum_{j < 25} alpha_j * BPR(s, v_j),      v_j = the LLM's j-th ranked id (0-based j)

  as weighted rows (window(s) -> v_j, weight alpha_j), the row weights normalised by their sum per batch
  (equivalent in expectation to the authors' row duplication, spec §11 #7).
  - mode `paper`: alpha = 3/2/1 for 1-based ranks [1,5]/(5,15]/(15,25]; BPR against `negatives` (default 1)
    uniformly sampled items.
  - mode `authors-code`: alpha = [j<=5]+[j<=15]+[j<=25] (0-based, 6/10/9 items); BPR against in-batch negatives;
    Atten-Mixer lr 1e-4.
Recipe (core.distill.common): `joint` adds the loss with weight lambda to the student's own loss on all training
data; `finetune` (the paper's: the selected sessions only, no mixing with the original data, spec §11 #21) uses it
alone. Adam (lr 1e-3), early stopping on validation NDCG@10 checked every epoch or every 20 steps, whichever comes
first (the authors: every 20 iterations, spec §11 #19). The ablations differ only in the selection strategy.
"""

from __future__ import annotations

from core.distill import register
from core.distill.common import (
    DistillContext,
    DistillResult,
    distillation_lists,
    fit_distill,
    listwise_term,
    pairwise_term,
    position_weight,
    ranking_rows,
)
from core.distill.tr import term_objective


def distil_rankings(ctx: DistillContext) -> DistillResult:
    lists = distillation_lists(ctx)
    sids = [s for s in lists if lists[s]]
    if not sids:
        return DistillResult(ctx.student, None, {"rows": 0, "returned_start": True,
                                                 "note": "no usable LLM ranking: student unchanged"})
    loss = str(ctx.param("loss") or ("listwise" if ctx.recipe == "joint" else "pairwise"))
    facts = {"sessions": len(sids), "lists": str(ctx.param("lists")), "loss": loss}
    if loss == "listwise":
        term = listwise_term(ctx, sids, lists)
        facts |= {"tau": float(ctx.param("tau")), "list_temperature": float(ctx.param("list_temperature"))}
    elif loss == "pairwise":
        inputs, lengths, _ = ctx.session_inputs(sids)
        n_out = int(ctx.param("n_out"))
        cut = [list(lists[s])[:max(n_out, 26 if ctx.mode == "authors-code" else n_out)] for s in sids]
        rows = ranking_rows(inputs, lengths, cut, lambda j: position_weight(j, ctx.mode), ctx.dataset.n_items)
        term = pairwise_term(ctx, rows)
        facts |= {"rows": len(rows), "weight_sum": float(rows.weights.sum()), "objective": term_objective(ctx),
                  "weights": "alpha 3/2/1 " + ctx.mode}
    else:
        raise ValueError(f"LLM-list methods take loss=listwise or loss=pairwise, not {loss!r}")
    model, curve, trained = fit_distill(ctx, term)
    return DistillResult(model, curve, trained | facts)


for _name, _strategy, _text in (
        ("alkdrec", "alkdrec", "ALKDRec: max-min active selection + distillation of the LLM's lists"),
        ("random", "random", "ablation: random selection + ALKDRec distillation"),
        ("easiest", "easiest", "ablation: highest-consistency sessions + ALKDRec distillation"),
        ("hardest", "hardest", "ablation: lowest-consistency sessions + ALKDRec distillation"),
        ("rad-bc", "rad-bc", "ablation: binary robust active distillation (RAD-BC) + ALKDRec distillation")):
    register(_name, "llm", strategy=_strategy, description=_text)(distil_rankings)
