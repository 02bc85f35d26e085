"""The OpenAI provider against a loopback server, through the real SDK."""

import json
import logging
import threading
import time

import pytest
from fakeserver import FakeReply
from teacher_helpers import FAKE_OPENAI_KEY

from core import store
from core.teachers import Budget, get_provider
from core.teachers.export import export_calls, export_responses


def _first_title_has(call, text):
    return bool(call.session_titles) and text in call.session_titles[0]


def test_normal_reply_structured_and_recorded(db, fake_server, requests_for):
    server = fake_server()
    teacher = get_provider("openai", model="gpt-4o-mini", base_url=server.openai_url)
    responses = teacher.rank(requests_for(5), db=db)
    assert [r.session_id for r in responses] == [0, 1, 2, 3, 4]
    assert all(r.ok and len(r.ranking) == 25 and r.n_valid == 25 and not r.cached for r in responses)
    assert responses[1].ranking[0] == 110 and responses[0].rationale == "fake server: teacher order"
    assert all(r.input_tokens > 0 and r.output_tokens > 0 and r.usd > 0 and r.latency_s > 0 for r in responses)
    body = server.calls[0].body
    assert body["temperature"] == 0 and body["response_format"]["type"] == "json_schema"
    assert body["messages"][0]["role"] == "system" and body["max_tokens"] == 512
    rows = store.query("SELECT * FROM llm_calls ORDER BY session_id", path=db)
    assert len(rows) == 5 and set(rows["status"]) == {"ok"} and list(rows["session_id"]) == [0, 1, 2, 3, 4]
    assert rows["usd"].sum() == pytest.approx(sum(r.usd for r in responses))
    assert list(rows["ranking"][0]) == list(responses[0].ranking) and rows["prompt"][0].startswith("[system]")


def test_second_run_is_fully_cached(db, fake_server, requests_for):
    server = fake_server()
    teacher = get_provider("openai", base_url=server.openai_url)
    first = teacher.rank(requests_for(12), db=db)
    n_http = len(server.requests)
    second = teacher.rank(requests_for(12), db=db)
    assert len(server.requests) == n_http == 12  # zero HTTP calls on the second run
    assert all(r.cached for r in second)
    assert [r.ranking for r in second] == [r.ranking for r in first]
    # a new process-level provider object (a resumed run) is cached too
    resumed = get_provider("openai", base_url=server.openai_url).rank(requests_for(14), db=db)
    assert len(server.requests) == 14 and sum(not r.cached for r in resumed) == 2


def test_429_with_retry_after_is_retried(db, fake_server, requests_for):
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def behaviour(call):
        with lock:
            key = call.session_titles[0]
            seen[key] = seen.get(key, 0) + 1
            if seen[key] == 1 and "Session 1 " in key:
                return FakeReply(status=429, headers={"retry-after": "0.3"}, text="slow down")
        return None

    server = fake_server(behaviour)
    teacher = get_provider("openai", base_url=server.openai_url, max_retries=2)
    start = time.perf_counter()
    responses = teacher.rank(requests_for(3), db=db)
    assert all(r.ok for r in responses)
    assert seen["Session 1 first"] == 2 and time.perf_counter() - start >= 0.3


def test_500_fails_one_session_not_the_run(db, fake_server, requests_for):
    server = fake_server(lambda c: FakeReply(status=500, headers={"retry-after-ms": "10"})
                         if _first_title_has(c, "Session 2 ") else None)
    teacher = get_provider("openai", base_url=server.openai_url, max_retries=1)
    responses = teacher.rank(requests_for(4), db=db)
    assert [r.status for r in responses] == ["ok", "ok", "error", "ok"]
    assert "InternalServerError" in responses[2].error and responses[2].ranking == ()
    assert sum(_first_title_has(c, "Session 2 ") for c in server.calls) == 2  # first try + 1 SDK retry
    rows = store.query("SELECT status, error FROM llm_calls WHERE session_id = 2", path=db)
    assert rows["status"][0] == "error"
    # errors are not cached: a rerun retries that session only
    server.behaviour = None
    again = teacher.rank(requests_for(4), db=db)
    assert again[2].ok and not again[2].cached and all(r.cached for i, r in enumerate(again) if i != 2)


def test_timeout_is_recorded_and_retried_by_sdk(db, fake_server, requests_for):
    server = fake_server(lambda c: FakeReply(delay_s=1.5) if _first_title_has(c, "Session 0 ") else None)
    teacher = get_provider("openai", base_url=server.openai_url, timeout=0.3, max_retries=0)
    start = time.perf_counter()
    responses = teacher.rank(requests_for(3), db=db)
    assert time.perf_counter() - start < 1.4
    assert responses[0].status == "error" and "Timeout" in responses[0].error
    assert responses[1].ok and responses[2].ok


def test_malformed_http_body_is_an_error(db, fake_server, requests_for):
    server = fake_server(lambda c: FakeReply(raw=b'{"choices": [ not json') if _first_title_has(c, "Session 1 ")
                         else None)
    teacher = get_provider("openai", base_url=server.openai_url, max_retries=0)
    responses = teacher.rank(requests_for(3), db=db)
    assert responses[1].status == "error" and responses[0].ok and responses[2].ok


def test_malformed_json_reply_is_parsed_tolerantly(db, fake_server, requests_for):
    server = fake_server(lambda c: FakeReply(text='```json\n{"ranking": [<ID_105>, ID_104, 103], "rationale": "x"'))
    responses = get_provider("openai", base_url=server.openai_url).rank(requests_for(1), db=db)
    assert responses[0].ranking == (105, 104, 103) and responses[0].attempts == 1


def test_ids_outside_candidates_and_duplicates_dropped(db, fake_server, requests_for):
    server = fake_server(lambda c: FakeReply(text=json.dumps({"ranking": [999, 101, 101, 1, 102, 5000, 100],
                                                             "rationale": "r"})))
    response = get_provider("openai", base_url=server.openai_url).rank(requests_for(1), db=db)[0]
    assert response.ranking == (101, 102, 100) and response.n_valid == 3
    assert response.raw_ranking == (999, 101, 101, 1, 102, 5000, 100)


def test_empty_reply_repair_then_failed_cost_counted(db, fake_server, requests_for):
    server = fake_server(lambda c: FakeReply(text=""))
    teacher = get_provider("openai", base_url=server.openai_url)
    response = teacher.rank(requests_for(1), db=db)[0]
    assert response.status == "failed" and not response.ok and response.attempts == 2
    assert "no usable ranking" in response.error
    assert len(server.calls) == 2 and server.calls[1].is_repair
    assert "no usable ranking" in server.calls[1].body["messages"][-1]["content"]
    assert response.input_tokens > 0 and response.usd > 0
    row = store.query("SELECT status, usd, attempts FROM llm_calls", path=db)
    assert row["status"][0] == "failed" and row["usd"][0] == pytest.approx(response.usd)
    # a failed reply is cached: not paid again
    assert teacher.rank(requests_for(1), db=db)[0].cached and len(server.calls) == 2


def test_repair_retry_can_succeed(db, fake_server, requests_for):
    server = fake_server(lambda c: None if c.is_repair else FakeReply(text="Sorry, here are my thoughts."))
    response = get_provider("openai", base_url=server.openai_url).rank(requests_for(1), db=db)[0]
    assert response.ok and response.attempts == 2 and len(response.ranking) == 25


def test_bounded_concurrency(db, fake_server, requests_for):
    active, peak, lock = [0], [0], threading.Lock()

    def behaviour(call):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return None

    server = fake_server(behaviour)
    get_provider("openai", base_url=server.openai_url).rank(requests_for(20), db=db, concurrency=3)
    assert peak[0] <= 3 and len(server.calls) == 20


def test_fake_key_never_reaches_db_logs_or_exports(db, fake_server, requests_for, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    server = fake_server(lambda c: FakeReply(status=401, text=f"Incorrect API key provided: {FAKE_OPENAI_KEY}")
                         if _first_title_has(c, "Session 0 ") else
                         FakeReply(text=json.dumps({"ranking": c.candidates[:25],
                                                    "rationale": f"echo {FAKE_OPENAI_KEY}"})))
    teacher = get_provider("openai", base_url=server.openai_url, max_retries=0)
    responses = teacher.rank(requests_for(3), db=db)
    assert responses[0].status == "error" and "AuthenticationError" in responses[0].error
    assert server.calls[0].headers["authorization"] == f"Bearer {FAKE_OPENAI_KEY}"  # it was really sent
    export_calls(tmp_path / "calls.jsonl", db=db)
    export_responses(tmp_path / "responses.jsonl", responses)
    logging.getLogger("core.teachers").warning("error seen: %s", responses[0].error)
    for path in [p for p in db.parent.iterdir() if p.is_file()]:
        assert FAKE_OPENAI_KEY.encode() not in path.read_bytes(), path
    assert FAKE_OPENAI_KEY not in caplog.text
    assert all(FAKE_OPENAI_KEY not in (r.error or "") + r.rationale + repr(r) for r in responses)
    assert FAKE_OPENAI_KEY not in repr(teacher)


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    from core.teachers.providers.openai_api import MissingKeyError
    with pytest.raises(MissingKeyError, match="OPENAI_API_KEY"):
        get_provider("openai")
    # a local OpenAI-compatible server needs no key
    assert get_provider("openai", base_url="http://127.0.0.1:9/v1", model="llama3.1:8b").price.free


def test_budget_instances(db, fake_server, requests_for):
    server = fake_server()
    budget = Budget(max_sessions=3)
    responses = get_provider("openai", base_url=server.openai_url).rank(requests_for(5), db=db, budget=budget)
    assert [r.status for r in responses] == ["ok", "ok", "ok", "skipped", "skipped"]
    assert len(server.calls) == 3 and budget.sessions == 3


def test_server_without_usage_gets_estimated_tokens(db, fake_server, requests_for):
    server = fake_server(lambda c: FakeReply(usage=False))
    teacher = get_provider("openai", model="llama3.1:8b", base_url=server.openai_url)
    response = teacher.rank(requests_for(1), db=db)[0]
    assert response.ok and response.input_tokens > 500 and response.output_tokens > 10 and response.usd == 0
