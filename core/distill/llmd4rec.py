"""LLMD4Rec (Wu et al., 2025, bidirectional LLM <-> CRM distillation), ADAPTED to an API/replay teacher (spec
llmd4rec.md). This is an adaptation, not the original method: the LLM side cannot be fine-tuned here.

Rounds r = 1..R (default R = 2, `--option rounds=N`) over the same labelled sessions B:
1. LLM -> CRM. For each session s in B with the LLM list L_s (top 25) and candidate set C_s (the candidates the LLM
   saw, plus any listed id outside them):
   - target distribution q_s(v) = exp(-(j_v)/tau_q) / Z over the listed items (j_v the 0-based LLM position),
     0 for unlisted candidates; tau_q = 5;
   - student distribution p_s = softmax over C_s of the student's scores;
   - sample-wise adaptive weight w_s = 2 * sigmoid((S(s, l_1) - S(s, m_1)) / tau_w) in (0, 1], l_1 the LLM's top
     item, m_1 the current student's top item (window excluded), scores of the student at the START of the round,
     tau_w = 1: 1 when they agree, towards 0 when the student strongly disagrees;
   - loss = mean_s w_s * KL(q_s || p_s); fine-tune with Adam to early stopping on validation NDCG@10.
2. CRM -> LLM (only with a teacher that can be asked again: openai, anthropic, simulated, embedding). The next
   round's candidates for s = the current student's top-25 merged (interleaved, deduplicated) with the teacher
   recommender's top-50, cut to 50, and the prompt hints gain a line listing the student's top-5 predictions; the
   LLM re-ranks and the cache keeps every round's answers (each round's calls count against the USD cap).
3. Stop after R rounds or when a round does not improve validation NDCG@10 (its model is then discarded).
With the REPLAY teacher there is one recorded answer per session, so the method degenerates to ONE round of
adaptive-weighted, distribution-aligned distillation (reported in the run's extra as rounds_run = 1).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.distill import register
from core.distill.common import DistillContext, DistillResult, top_k
from core.evaluate import evaluate
from core.train import batch_indices, fit_steps, model_scorer


def target_distribution(ranking_positions: torch.Tensor, listed: torch.Tensor, tau_q: float = 5.0) -> torch.Tensor:
    """(B, C) q: softmax of -position/tau_q over listed entries (listed: (B, C) bool), 0 elsewhere."""
    logits = torch.where(listed, -ranking_positions.float() / tau_q, torch.full_like(ranking_positions, -torch.inf,
                                                                                      dtype=torch.float32))
    return torch.softmax(logits, dim=1).nan_to_num(0.0)


def alignment_kl(q: torch.Tensor, student_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) KL(q || softmax(student_logits over mask)); >= 0, 0 when the student's distribution equals q."""
    logits = student_logits.masked_fill(~mask, -torch.inf)
    log_p = torch.log_softmax(logits, dim=1)
    log_q = torch.log(q.clamp(min=1e-30))
    terms = torch.where(q > 0, q * (log_q - log_p), torch.zeros_like(q))
    return terms.sum(1)


def adaptive_weight(score_llm_top: torch.Tensor, score_student_top: torch.Tensor, tau_w: float = 1.0) -> torch.Tensor:
    """(B,) w_s = 2 * sigmoid((S(s, llm_top1) - S(s, student_top1)) / tau_w), in [0, 1] when S(student_top) is max."""
    return (2.0 * torch.sigmoid((score_llm_top - score_student_top) / tau_w)).clamp(0.0, 1.0)


def _round_tensors(ctx: DistillContext, sids: list[int], rankings: dict[int, tuple[int, ...]],
                   candidates: dict[int, tuple[int, ...]]):
    inputs, lengths, _ = ctx.session_inputs(sids)
    n_items = ctx.dataset.n_items
    sets = []
    for s in sids:
        listed = [int(i) for i in rankings[s] if 1 <= int(i) <= n_items]
        extra = [int(c) for c in candidates.get(s, ()) if 1 <= int(c) <= n_items and int(c) not in listed]
        sets.append((listed, listed + extra))
    width = max(len(full) for _, full in sets)
    cand = np.zeros((len(sids), width), dtype=np.int64)
    pos = np.zeros((len(sids), width), dtype=np.int64)
    listed_mask = np.zeros((len(sids), width), dtype=bool)
    mask = np.zeros((len(sids), width), dtype=bool)
    for row, (listed, full) in enumerate(sets):
        cand[row, :len(full)] = full
        mask[row, :len(full)] = True
        listed_mask[row, :len(listed)] = True
        pos[row, :len(listed)] = np.arange(len(listed))
    return [torch.as_tensor(a) for a in (inputs, lengths, cand, pos, listed_mask, mask)]


@register("llmd4rec", "llm", strategy="random",
          description="LLMD4Rec adapted: adaptive-weighted KL alignment to LLM rankings, student-informed re-ask rounds")
def distil_llmd4rec(ctx: DistillContext) -> DistillResult:
    rounds = int(ctx.param("rounds")) if ctx.ask is not None else 1
    tau_q, tau_w = float(ctx.param("tau_q")), float(ctx.param("tau_w"))
    batch = int(ctx.param("llmd_batch"))
    model = ctx.student
    rankings = {s: r for s, r in ctx.rankings.items() if r}
    candidates = dict(ctx.candidates)
    scorer = model_scorer(model, ctx.device)
    best_value = evaluate(scorer, ctx.valid).metrics["ndcg@10"]
    curves, history, rounds_run = [], [], 0
    for round_index in range(1, rounds + 1):
        sids = [s for s in rankings if rankings[s]]
        if not sids:
            break
        x, n, cand, pos, listed, mask = _round_tensors(ctx, sids, rankings, candidates)
        with torch.no_grad():
            model.eval()
            scores = model.score(x.to(ctx.device), n.to(ctx.device)).float()
            scores[:, 0] = -torch.inf
            scores.scatter_(1, x.to(ctx.device), -torch.inf)
            llm_top = cand[:, 0:1].to(ctx.device)
            w = adaptive_weight(scores.gather(1, llm_top).squeeze(1), scores.max(1).values, tau_w).cpu()
        q = target_distribution(pos, listed, tau_q)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        config = ctx.train_config(max_epochs=int(ctx.param("max_epochs")))
        rows = batch_indices(len(sids), batch)

        def step(inner: int, rng: np.random.Generator) -> torch.Tensor:
            index = rows(inner, rng)
            logits = model.score(x[index].to(ctx.device), n[index].to(ctx.device)).gather(1, cand[index].to(ctx.device))
            kl = alignment_kl(q[index].to(ctx.device), logits, mask[index].to(ctx.device))
            return (w[index].to(ctx.device) * kl).mean()

        curve, best_epoch, best = fit_steps(model, step, -(-len(sids) // batch), ctx.valid, config, ctx.device,
                                            ctx.progress, f"distill round {round_index}")
        curves.append(curve.assign(round=round_index))
        value = best.metrics["ndcg@10"]
        history.append({"round": round_index, "sessions": len(sids), "best_epoch": best_epoch, "valid_ndcg@10": value,
                        "mean_weight": float(w.mean())})
        rounds_run = round_index
        if round_index > 1 and value <= best_value:
            model.load_state_dict(state)
            history[-1]["kept"] = False
            break
        best_value = max(best_value, value)
        if round_index == rounds or ctx.ask is None:
            break
        # CRM -> LLM: re-ask with the student's candidates and predictions in the prompt.
        train_inputs, train_lengths, _ = ctx.session_inputs(sids)
        student_top = top_k(model, train_inputs, train_lengths, 25, ctx.device)
        teacher_top = top_k(ctx.teacher, train_inputs, train_lengths, 50, ctx.device)
        merged = {}
        for row, s in enumerate(sids):
            seen: list[int] = []
            for a, b in zip(list(student_top[row]) + [None] * 25, teacher_top[row]):
                for item in (a, b):
                    if item is not None and int(item) not in seen:
                        seen.append(int(item))
            merged[s] = tuple(seen[:50])
        answers = ctx.ask(sids, merged, {s: tuple(int(i) for i in student_top[row][:5]) for row, s in enumerate(sids)})
        rankings = {s: r for s, r in answers.items() if r}
        candidates = merged
    import pandas as pd
    curve = pd.concat(curves, ignore_index=True) if curves else None
    return DistillResult(model, curve, {
        "rounds_planned": rounds, "rounds_run": rounds_run, "history": history, "tau_q": tau_q, "tau_w": tau_w,
        "note": ("replay teacher: one recorded answer per session, so LLMD4Rec degenerates to one round"
                 if ctx.ask is None else "bidirectional rounds via the prompt (CRM -> LLM) and KL alignment")})


__all__ = ["adaptive_weight", "alignment_kl", "distil_llmd4rec", "target_distribution", "F"]
