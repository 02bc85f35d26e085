"""Batch mode (half price) against loopback servers implementing the batch endpoints minimally."""

import pytest
from fakeserver import FakeReply

from core import store
from core.teachers import Budget, get_provider


def test_openai_batch_half_price_and_shared_cache(db, fake_server, requests_for):
    server = fake_server(lambda c: FakeReply(text="") if "Session 2 " in c.session_titles[0] and not c.is_repair
                         else None)
    teacher = get_provider("openai", model="gpt-4o-mini", base_url=server.openai_url)
    sync_price = teacher.rank(requests_for(1), db=db, use_cache=False)[0].usd
    responses = teacher.rank(requests_for(4), db=db, batch=True, poll_interval_s=0.01, use_cache=False)
    assert all(r.ok for r in responses) and responses[2].attempts == 2  # repaired in a second batch round
    assert responses[0].usd == pytest.approx(sync_price / 2)
    paths = [p for _, p in server.requests]
    assert paths.count("/v1/files") == 2 and paths.count("/v1/batches") == 2
    assert any(p.endswith("/content") for p in paths)
    rows = store.query("SELECT mode, status FROM llm_calls WHERE mode = 'batch'", path=db)
    assert len(rows) == 4 and set(rows["status"]) == {"ok"}
    n = len(server.requests)
    again = teacher.rank(requests_for(4), db=db)  # sync rerun: everything from the cache
    assert len(server.requests) == n and all(r.cached for r in again)


def test_anthropic_message_batches(db, fake_server, requests_for):
    server = fake_server(lambda c: FakeReply(status=500) if "Session 1 " in c.session_titles[0] else None)
    teacher = get_provider("anthropic", model="claude-haiku-4-5", base_url=server.anthropic_url)
    responses = teacher.rank(requests_for(3), db=db, batch=True, poll_interval_s=0.01)
    assert responses[0].ok and responses[2].ok
    assert responses[1].status == "error" and "errored" in responses[1].error
    expected = (responses[0].input_tokens * 1.0 + responses[0].output_tokens * 5.0) / 1e6 * 0.5
    assert responses[0].usd == pytest.approx(expected)
    paths = [p for _, p in server.requests]
    assert "/v1/messages/batches" in paths and any(p.endswith("/results") for p in paths)
    assert server.calls[0].body["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_batch_respects_usd_cap(db, fake_server, requests_for):
    server = fake_server()
    teacher = get_provider("openai", model="pricey", base_url=server.openai_url, price=(1000.0, 1000.0))
    budget = Budget(max_usd=5.0)
    responses = teacher.rank(requests_for(5), db=db, batch=True, poll_interval_s=0.01, budget=budget)
    statuses = [r.status for r in responses]
    assert "skipped" in statuses and "ok" in statuses and budget.spent_usd <= 5.0
