"""Every distillation loss, written once. Each returns a (B,) per-row loss; the caller weights and averages.

Notation: z_s, z_t (B, N+1) student / teacher scores over the catalogue (column 0 = padding, never a target);
T the KD temperature; for a session s with an LLM (or teacher) list L_s = (l_1, ..., l_m) over a candidate set C_s:
position j(v) = 0-based position of v in L_s.

- soft-target KD (Hinton et al. 2015), full catalogue:
      KD(s) = T^2 * KL( softmax(z_t / T) || softmax(z_s / T) )            (0 when z_s = z_t; T^2 keeps gradients
                                                                             comparable across T)
  The temperature must fit the teacher's score scale: a BPR-trained teacher (FPMC) has logits with a standard
  deviation of ~0.6 over the catalogue, so at T = 2 its softmax is all but uniform (perplexity ~8,000 of 8,475 items
  on alkdrec-ml) and KD passes nothing. By default T is fitted so that the teacher's soft targets have a given
  perplexity P (10: about as many items as the top-10 that is evaluated):
      T* solves  exp(mean_s H(softmax(z_t(s) / T))) = P        (H the entropy; it grows with T)
  and the KD weight defaults to 1/T*^2, so lambda * T^2 = 1 whatever T is.
- listwise over the candidate set (LLM lists; LLMD4Rec's alignment):
      q_s(v) = exp(-j(v) / tau) / Z  for listed v, 0 for unlisted candidates
      LW(s)  = KL( q_s || softmax(z_s restricted to C_s) )                 (0 when the student's candidate
                                                                             distribution equals q_s)
- alpha-weighted pairwise (ALKDRec, spec alkdrec.md §7): per listed item v_j, weight alpha_j,
      PW(s, v_j) = -mean_n log sigmoid(z_s[v_j] - z_s[v'_n]),   v'_n uniform negatives
- ranking distillation (Tang & Wang, KDD 2018; DLLM2Rec's RD term): teacher top-K list pi_1..pi_K, weights w_r
  (row-normalised), one uniform negative n:
      RD(s) = sum_r w_r * ( -log sigmoid(z_s[pi_r]) - log sigmoid(-z_s[n]) )
  RD's position importance: w_r proportional to exp(-r / mu), r = 1..K (its Eq. 7, "weighted by position").
- LLMD4Rec's rank-based sample weight (spec llmd4rec.md, per the secondary source), r_c / r_l the 1-based ranks of
  the true item under the student / the LLM over the same set:
      w2 = clip(1 + (r_c - r_l) / max(r_l, 1), 0, 2)   if r_c > r_l  (the LLM ranks the truth better)
      w2 = clip(1 - (r_l - r_c) / max(r_c, 1), 0, 2)   otherwise     (a tie gives 1)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def soft_target_kd(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """(B,) T^2 KL(softmax(teacher/T) || softmax(student/T)) over columns 1..N (padding column 0 dropped)."""
    log_p = torch.log_softmax(student[:, 1:] / temperature, dim=1)
    log_q = torch.log_softmax(teacher[:, 1:] / temperature, dim=1)
    return temperature ** 2 * (log_q.exp() * (log_q - log_p)).sum(1)


def temperature_for_perplexity(logits: torch.Tensor, perplexity: float = 10.0, low: float = 1e-3,
                               high: float = 1e3, steps: int = 50) -> float:
    """T such that softmax(logits / T) has perplexity exp(mean entropy) = `perplexity` over the rows. logits: (B, N)
    (padding column already dropped). Bisection on log T within [low, high] (clamped there when out of reach)."""
    target = float(np.log(perplexity))

    def mean_entropy(t: float) -> float:
        log_p = torch.log_softmax(logits.double() / t, dim=1)
        return float(-(log_p.exp() * log_p).sum(1).mean())
    lo, hi = np.log(low), np.log(high)
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mean_entropy(float(np.exp(mid))) < target else (lo, mid)
    return float(np.exp((lo + hi) / 2))


def list_target(positions: torch.Tensor, listed: torch.Tensor, tau: float = 5.0) -> torch.Tensor:
    """(B, C) q: softmax of -position/tau over the listed entries (listed: (B, C) bool), 0 elsewhere."""
    logits = torch.where(listed, -positions.float() / tau, torch.full(positions.shape, -torch.inf))
    return torch.softmax(logits, dim=1).nan_to_num(0.0)


def listwise_kl(q: torch.Tensor, student: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) KL(q || softmax(student over mask)); student: (B, C) scores of the candidates; mask: (B, C) bool."""
    log_p = torch.log_softmax(student.masked_fill(~mask, -torch.inf), dim=1)
    log_q = torch.log(q.clamp(min=1e-30))
    return torch.where(q > 0, q * (log_q - log_p), torch.zeros_like(q)).sum(1)


def sampled_pairwise(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """(B,) -mean_n log sigmoid(positive - negative); positive (B, 1) or (B,), negative (B, n)."""
    return -F.logsigmoid(positive.reshape(-1, 1) - negative).mean(1)


def ranking_distillation(scores: torch.Tensor, lists: torch.Tensor, weights: torch.Tensor,
                         negatives: torch.Tensor) -> torch.Tensor:
    """(B,) RD: sum_r w_r (-log sigmoid(s[pi_r]) - log sigmoid(-s[n])). scores (B, N+1); lists (B, K) ids (0 =
    empty slot, weight must be 0 there); weights (B, K) rows summing to 1; negatives (B,) one uniform id per row."""
    positive = scores.gather(1, lists)
    negative = scores.gather(1, negatives.reshape(-1, 1))
    return (weights * (-F.logsigmoid(positive) - F.logsigmoid(-negative))).sum(1)


def rd_position_weights(k: int, mu: float = 1.0) -> np.ndarray:
    """(k,) exp(-r/mu) / sum over r = 1..k (RD's position importance; DLLM2Rec's w^p with mu = tau_p)."""
    raw = np.exp(-np.arange(1, k + 1) / mu)
    return raw / raw.sum()


def rank_weight(student_rank: np.ndarray | torch.Tensor, llm_rank: np.ndarray | torch.Tensor) -> np.ndarray:
    """(B,) LLMD4Rec's w2 from 1-based ranks of the true item (student r_c, LLM r_l); in [0, 2], 1 for a tie."""
    r_c = np.asarray(student_rank, dtype=np.float64)
    r_l = np.asarray(llm_rank, dtype=np.float64)
    llm_better = 1.0 + (r_c - r_l) / np.maximum(r_l, 1.0)
    student_better = 1.0 - (r_l - r_c) / np.maximum(r_c, 1.0)
    return np.clip(np.where(r_c > r_l, llm_better, student_better), 0.0, 2.0)


__all__ = ["temperature_for_perplexity", "list_target", "listwise_kl", "rank_weight", "ranking_distillation",
           "rd_position_weights",
           "sampled_pairwise", "soft_target_kd"]
