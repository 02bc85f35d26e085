"""Every distillation loss against values worked out independently (numpy, by hand): zero where the student equals
its target, finite gradients, weights as specified (core.distill.losses)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.distill.losses import (
    list_target,
    listwise_kl,
    rank_weight,
    ranking_distillation,
    rd_position_weights,
    sampled_pairwise,
    soft_target_kd,
    temperature_for_perplexity,
)


def np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_kd_is_t_squared_kl_over_the_catalogue_without_padding():
    student = np.array([[9.0, 0.1, 0.5, -1.0, 2.0]])      # column 0 = padding: ignored
    teacher = np.array([[-9.0, 1.0, 0.0, 0.3, 1.5]])
    T = 2.0
    q, p = np_softmax(teacher[:, 1:] / T), np_softmax(student[:, 1:] / T)
    expected = T * T * (q * np.log(q / p)).sum()
    got = soft_target_kd(torch.tensor(student), torch.tensor(teacher), T)
    assert got.shape == (1,) and float(got[0]) == pytest.approx(expected, rel=1e-6)


def test_kd_is_zero_when_the_student_equals_the_teacher_and_gradients_are_finite():
    teacher = torch.randn(4, 12)
    student = teacher.clone().requires_grad_(True)
    loss = soft_target_kd(student, teacher, 3.0)
    assert torch.allclose(loss, torch.zeros(4), atol=1e-6)
    (soft_target_kd(student + torch.randn(4, 12), teacher, 3.0).sum()).backward()
    assert torch.isfinite(student.grad).all() and student.grad[:, 0].abs().sum() == 0


def test_list_target_is_softmax_of_minus_position_over_tau():
    positions = torch.tensor([[0, 1, 2, 0]])
    listed = torch.tensor([[True, True, True, False]])
    q = list_target(positions, listed, tau=5.0)
    expected = np.exp(-np.arange(3) / 5.0) / np.exp(-np.arange(3) / 5.0).sum()
    assert q[0, :3].numpy() == pytest.approx(expected, rel=1e-6) and q[0, 3] == 0


def test_listwise_kl_by_hand_zero_at_the_target_and_finite_gradients_beside_masked_entries():
    q = list_target(torch.tensor([[0, 1, 0, 0]]), torch.tensor([[True, True, False, False]]), tau=1.0)
    mask = torch.tensor([[True, True, True, False]])
    scores = torch.tensor([[1.0, 0.0, 0.5, 7.0]], requires_grad=True)
    p = np_softmax(np.array([1.0, 0.0, 0.5]))
    qn = q[0, :3].numpy()
    expected = sum(qn[i] * np.log(qn[i] / p[i]) for i in range(2))
    loss = listwise_kl(q, scores, mask)
    assert float(loss[0].detach()) == pytest.approx(expected, rel=1e-5)
    loss.sum().backward()
    assert torch.isfinite(scores.grad).all() and scores.grad[0, 3] == 0     # the masked entry gets no gradient
    at_target = torch.log(torch.tensor([[qn[0], qn[1], 1e-12, 1.0]]))        # p over the mask ~= q
    assert float(listwise_kl(q, at_target, mask)[0]) == pytest.approx(0.0, abs=1e-6)


def test_sampled_pairwise_is_minus_log_sigmoid_of_the_margin():
    positive = torch.tensor([2.0, -1.0], requires_grad=True)
    negative = torch.tensor([[0.0, 1.0], [3.0, -1.0]])
    loss = sampled_pairwise(positive, negative)
    by_hand = [np.mean([np.log1p(np.exp(-(2 - 0))), np.log1p(np.exp(-(2 - 1)))]),
               np.mean([np.log1p(np.exp(-(-1 - 3))), np.log1p(np.exp(-(-1 + 1)))])]
    assert loss.detach().numpy() == pytest.approx(by_hand, rel=1e-6)
    loss.sum().backward()
    assert torch.isfinite(positive.grad).all() and (positive.grad < 0).all()   # raising a positive lowers the loss


def test_ranking_distillation_by_hand_and_empty_slots_weigh_nothing():
    scores = torch.tensor([[0.0, 2.0, -1.0, 0.5]], requires_grad=True)
    lists = torch.tensor([[1, 3, 0]])
    weights = torch.tensor([[0.75, 0.25, 0.0]])
    negatives = torch.tensor([2])
    sig = lambda v: 1 / (1 + np.exp(-v))                                      # noqa: E731
    expected = 0.75 * (-np.log(sig(2.0)) - np.log(sig(1.0))) + 0.25 * (-np.log(sig(0.5)) - np.log(sig(1.0)))
    loss = ranking_distillation(scores, lists, weights, negatives)
    assert float(loss[0].detach()) == pytest.approx(expected, rel=1e-6)
    loss.sum().backward()
    assert torch.isfinite(scores.grad).all() and scores.grad[0, 1] < 0 and scores.grad[0, 2] > 0
    higher = scores.detach().clone()
    higher[0, 1] += 5                                                          # a listed item ranked higher
    assert float(ranking_distillation(higher, lists, weights, negatives)[0]) < expected


def test_rd_position_weights_decay_exponentially_and_sum_to_one():
    w = rd_position_weights(10, mu=2.0)
    assert w.sum() == pytest.approx(1.0) and w[1] / w[0] == pytest.approx(np.exp(-0.5))


@pytest.mark.parametrize("r_c, r_l, expected", [(3, 1, 2.0), (60, 50, 1.2), (3, 9, 0.0), (50, 60, 0.8), (7, 7, 1.0),
                                                (1, 1, 1.0), (26, 26, 1.0)])
def test_llmd4rec_rank_weight_worked_values(r_c, r_l, expected):
    assert float(rank_weight(np.array([r_c]), np.array([r_l]))[0]) == pytest.approx(expected)


def test_llmd4rec_rank_weight_stays_in_0_2():
    rng = np.random.default_rng(0)
    r_c, r_l = rng.integers(1, 100, 1000), rng.integers(1, 100, 1000)
    w = rank_weight(r_c, r_l)
    assert (w >= 0).all() and (w <= 2).all() and ((w > 1) == (r_c > r_l)).all()


def test_fitted_temperature_gives_the_asked_perplexity_and_follows_the_score_scale():
    logits = torch.randn(64, 500) * 0.6
    t = temperature_for_perplexity(logits, perplexity=10.0)
    p = np_softmax(logits.numpy().astype(np.float64) / t)
    entropy = -(p * np.log(np.clip(p, 1e-300, None))).sum(1).mean()
    assert np.exp(entropy) == pytest.approx(10.0, rel=1e-3)
    assert temperature_for_perplexity(logits * 4, 10.0) == pytest.approx(4 * t, rel=1e-3)    # scale-equivariant
    assert temperature_for_perplexity(logits, 50.0) > t                                      # flatter = hotter
