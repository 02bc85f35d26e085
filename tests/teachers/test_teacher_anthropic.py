"""The Anthropic provider against a loopback server, through the real SDK."""

import json

import pytest
from fakeserver import FakeReply
from teacher_helpers import FAKE_ANTHROPIC_KEY

from core import store
from core.teachers import get_provider


def test_tool_mode_with_cached_system_block(db, fake_server, requests_for):
    server = fake_server()
    teacher = get_provider("anthropic", model="claude-haiku-4-5", base_url=server.anthropic_url)
    responses = teacher.rank(requests_for(4), db=db)
    assert all(r.ok and len(r.ranking) == 25 for r in responses)
    assert responses[0].rationale == "fake server: teacher order" and responses[0].usd > 0
    body = server.calls[0].body
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "There are some hints" in body["system"][0]["text"]
    assert body["tool_choice"] == {"type": "tool", "name": "submit_ranking"}
    assert body["messages"][0]["role"] == "user" and "CANDIDATES = " in body["messages"][0]["content"]
    assert "temperature" not in body  # this SDK version dropped it; opt in with temperature=0.0
    headers = server.calls[0].headers
    assert FAKE_ANTHROPIC_KEY in headers.get("authorization", "") + headers.get("x-api-key", "")
    assert len(store.query("SELECT * FROM llm_calls WHERE provider = 'anthropic'", path=db)) == 4


def test_text_mode_tolerant_parsing_and_temperature(db, fake_server, requests_for):
    server = fake_server(lambda c: FakeReply(text="Here you go:\n```json\n[<ID_104>, <ID_102>, <ID_102>, <ID_7>]\n```"))
    teacher = get_provider("anthropic", base_url=server.anthropic_url, structured="text", temperature=0.0)
    response = teacher.rank(requests_for(1), db=db)[0]
    assert response.ranking == (104, 102) and response.n_valid == 2
    assert "tools" not in server.calls[0].body and server.calls[0].body["temperature"] == 0.0


def test_cache_token_accounting(db, fake_server, requests_for):
    def behaviour(call):
        return None
    server = fake_server(behaviour)
    teacher = get_provider("anthropic", base_url=server.anthropic_url)
    response = teacher.rank(requests_for(1), db=db)[0]
    # fake usage: input = chars/4, output = chars/4; haiku-4-5 = $1 / $5 per MTok
    assert response.usd == pytest.approx(response.input_tokens * 1e-6 + response.output_tokens * 5e-6)


def test_429_then_ok_and_empty_reply_repair(db, fake_server, requests_for):
    seen = {"n": 0}

    def behaviour(call):
        if "Session 0 " in call.session_titles[0]:
            seen["n"] += 1
            if seen["n"] == 1:
                return FakeReply(status=429, headers={"retry-after-ms": "50"})
            return None
        return FakeReply(text="")  # the other session: empty replies -> repair -> failed

    server = fake_server(behaviour)
    teacher = get_provider("anthropic", base_url=server.anthropic_url, max_retries=2)
    responses = teacher.rank(requests_for(2), db=db, concurrency=1)
    assert responses[0].ok and seen["n"] == 2
    assert responses[1].status == "failed" and responses[1].attempts == 2
    repair = [c for c in server.calls if c.is_repair][0]
    assert repair.body["messages"][1] == {"role": "assistant", "content": "(empty reply)"}


def test_tool_reply_outside_candidates(db, fake_server, requests_for):
    server = fake_server(lambda c: FakeReply(text=json.dumps({"ranking": [1, 2, 3], "rationale": "bad"})))
    response = get_provider("anthropic", base_url=server.anthropic_url).rank(requests_for(1), db=db)[0]
    assert response.status == "failed" and response.raw_ranking == (1, 2, 3) and len(server.calls) == 2
