"""Money under faults: a loopback server that over-reports tokens, hangs, answers 429/500, drops connections or is
gone; the cap holds (to the cent, and says by how much a lying server pushed past it), nothing is paid twice, a
cancel starts no new call, a kill leaves a pending trace the next run counts.

The end-to-end cases run a real `alkd run` subprocess against the loopback server (SIGKILL mid-query then a rerun;
SIGTERM mid-query)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fakeserver import FakeLLMServer, FakeReply

from core import store
from core.teachers import Budget, cache, get_provider
from core.teachers.runner import CIRCUIT_BREAKER, _key_for, reply_char_limit

ROOT = Path(__file__).resolve().parents[2]
CENT = 0.005


def _ledger(db) -> "object":
    return store.query("SELECT * FROM llm_calls", path=db)


# ---- a server reporting far more tokens than max_tokens --------------------------------------------------------

def test_over_reporting_server_stops_the_queue_and_says_by_how_much(db, fake_server, requests_for):
    # 10^6 completion tokens per reply at $10 per million output tokens: $10 a call, while max_tokens=512 lets the
    # budget reserve only ~$0.005. Before the fix all 40 calls were made ($400 under a $50 cap) and nothing was said.
    server = fake_server(lambda call: FakeReply(tokens={"output": 1_000_000}, delay_s=0.05))
    teacher = get_provider("openai", model="pricey", base_url=server.openai_url, price=(0.0, 10.0))
    budget = Budget(max_usd=50.0)
    responses = teacher.rank(requests_for(40), db=db, budget=budget, concurrency=8)
    made = [r for r in responses if r.status != "skipped"]
    assert len(server.calls) == len(made) <= 8            # only calls already in flight at the first such reply
    assert all(r.status == "error" and "1000000 completion tokens" in r.error for r in made)
    assert all(r.status == "skipped" and "ignored" not in r.error and "not asked" in r.error
               for r in responses if r not in made)
    spent = sum(r.usd for r in made)
    assert spent == pytest.approx(10.0 * len(made), abs=CENT)                  # the reported cost, honestly
    assert budget.spent_usd == pytest.approx(spent, abs=1e-9)
    assert _ledger(db)["usd"].sum() == pytest.approx(spent, abs=1e-9)
    report = budget.report()
    assert report.stopped and "max_tokens" in report.stopped
    assert report.exceeded_by_usd == pytest.approx(max(0.0, spent - 50.0), abs=CENT)
    if spent > 50.0:
        assert f"EXCEEDED by ${spent - 50.0:.4f}" in report.message


def test_one_call_at_a_time_a_lying_server_gets_exactly_one_call(db, fake_server, requests_for):
    server = fake_server(lambda call: FakeReply(tokens={"output": 1_000_000}))
    teacher = get_provider("openai", model="pricey", base_url=server.openai_url, price=(0.0, 10.0))
    budget = Budget(max_usd=5.0)
    responses = teacher.rank(requests_for(10), db=db, budget=budget, concurrency=1)
    assert len(server.calls) == 1 and [r.status for r in responses].count("skipped") == 9
    report = budget.report()
    assert report.exceeded_by_usd == pytest.approx(responses[0].usd - 5.0, abs=CENT) and report.cap_reached
    assert "EXCEEDED by $5.00" in report.message
    # the parent (a launch) is stopped too: the next run under it starts nothing
    run2 = Budget(parent=budget)
    later = teacher.rank(requests_for(3), db=db, budget=run2)
    assert len(server.calls) == 1 and {r.status for r in later} == {"skipped"}


def test_a_huge_reply_is_refused_and_stored_bounded(db, fake_server, requests_for):
    server = fake_server(lambda call: FakeReply(text="9" * 3_000_000, tokens={"output": 100}))
    teacher = get_provider("openai", model="gpt-4o-mini", base_url=server.openai_url)
    responses = teacher.rank(requests_for(3), db=db, concurrency=1)
    assert responses[0].status == "error" and "longer than max_tokens" in responses[0].error
    assert len(server.calls) == 1
    stored = _ledger(db)["raw_reply"].iloc[0]
    assert len(stored) < reply_char_limit(teacher.max_output_tokens) + 100 and "truncated" in stored


def test_spend_stops_at_the_cap_with_honest_servers(db, fake_server, requests_for):
    server = fake_server(delay_s=0.02)
    teacher = get_provider("openai", model="pricey", base_url=server.openai_url, price=(1000.0, 1000.0))
    budget = Budget(max_usd=6.0)
    responses = teacher.rank(requests_for(30), db=db, budget=budget, concurrency=8)
    spent = sum(r.usd for r in responses)
    assert spent <= 6.0 and budget.report().cap_reached and not budget.report().exceeded_by_usd
    assert "USD cap $6.0000 reached" in budget.report().message
    assert _ledger(db)["usd"].sum() == pytest.approx(spent, abs=1e-9)


def test_a_launch_cap_binds_every_run_under_it(db, fake_server, requests_for):
    server = fake_server()
    # one call costs ~$0.25 and reserves its worst case ~$4.2: under $5 calls go one at a time until ~$0.8 is spent
    teacher = get_provider("openai", model="pricey", base_url=server.openai_url, price=(1000.0, 1000.0))
    launch = Budget(max_usd=5.0)
    runs = [Budget(max_usd=100.0, parent=launch) for _ in range(2)]
    first = teacher.rank(requests_for(8), db=db, budget=runs[0])
    second = teacher.rank(requests_for(16)[8:], db=db, budget=runs[1])
    paid = sum(r.usd for r in first + second)
    assert 0 < paid <= 5.0 and launch.spent_usd == pytest.approx(paid, abs=1e-9)
    assert any(r.status == "ok" for r in first) and {r.status for r in second} == {"skipped"}
    assert len(server.calls) == sum(r.status == "ok" for r in first)
    assert launch.report().cap_reached and "USD cap $5.0000 reached" in launch.report().message
    assert not any(run.report().cap_reached for run in runs)      # it was the launch's cap, not the runs'


# ---- failures: every call fails -> the breaker stops the queue; billed failures count ----------------------------

def _dead_url() -> str:
    server = FakeLLMServer().start()
    url = server.openai_url
    server.stop()
    return url


@pytest.mark.parametrize("fault", ["429", "500", "drop", "hang", "refused", "not-json"])
def test_circuit_breaker_stops_after_consecutive_failures(fault, db, fake_server, requests_for):
    replies = {"429": FakeReply(status=429, headers={"retry-after-ms": "1"}),
               "500": FakeReply(status=500, headers={"retry-after-ms": "1"}),
               "drop": FakeReply(drop=True), "hang": FakeReply(delay_s=3.0),
               "not-json": FakeReply(raw=b"<html>bad gateway</html>", headers={"content-type": "application/json"})}
    if fault == "refused":
        url = _dead_url()
    else:
        url = fake_server(lambda call: replies[fault]).openai_url
    teacher = get_provider("openai", model="gpt-4o-mini", base_url=url, max_retries=0, timeout=0.3)
    start = time.monotonic()
    responses = teacher.rank(requests_for(20), db=db, concurrency=1)
    statuses = [r.status for r in responses]
    assert statuses[:CIRCUIT_BREAKER] == ["error"] * CIRCUIT_BREAKER, responses[0].error
    assert statuses[CIRCUIT_BREAKER:] == ["skipped"] * (20 - CIRCUIT_BREAKER)
    assert "circuit breaker" in responses[-1].error
    assert time.monotonic() - start < 10
    rows = _ledger(db)
    assert len(rows) == CIRCUIT_BREAKER and set(rows["status"]) == {"error"}  # no pending row left behind


def test_a_billed_reply_without_a_ranking_counts_its_cost(db, fake_server, requests_for):
    calls = {"n": 0}

    def behaviour(call):
        calls["n"] += 1
        return FakeReply(text="I cannot rank these.") if not call.is_repair else FakeReply(status=500)

    server = fake_server(behaviour)
    teacher = get_provider("openai", model="gpt-4o-mini", base_url=server.openai_url, max_retries=0)
    budget = Budget(max_usd=1.0)
    [response] = teacher.rank(requests_for(1), db=db, budget=budget)
    assert response.status == "error" and response.usd > 0 and response.attempts == 2
    assert budget.spent_usd == pytest.approx(response.usd)
    assert _ledger(db)["usd"].iloc[0] == pytest.approx(response.usd)


# ---- cancel: no new call after the signal, finished ones recorded ------------------------------------------------

def test_stop_starts_no_new_call_and_records_the_finished(db, fake_server, requests_for):
    launch = Budget()
    started = threading.Event()

    def behaviour(call):
        if len(server.calls) >= 10:
            started.set()
        return FakeReply(delay_s=0.2)

    server = fake_server(behaviour)
    teacher = get_provider("openai", model="gpt-4o-mini", base_url=server.openai_url)
    out: list = []
    worker = threading.Thread(target=lambda: out.extend(teacher.rank(requests_for(40), db=db, concurrency=4,
                                                                      budget=Budget(parent=launch))))
    worker.start()
    assert started.wait(10)
    launch.stop("cancelled by SIGTERM")
    stopped_at = time.monotonic()
    worker.join(10)
    assert not worker.is_alive()
    late = [c for c in server.calls if c.at > stopped_at + 0.05]
    assert not late and len(server.calls) < 16
    rows = _ledger(db)
    assert (rows["status"] == "ok").sum() == server.answered == len(server.calls)
    assert not (rows["status"] == "pending").any()
    assert sum(r.status == "skipped" and "cancelled by SIGTERM" in r.error for r in out) == 40 - len(server.calls)


# ---- paid twice: pending rows, and the port is not part of the cache key ------------------------------------------

def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_killed_process_pending_call_is_counted_and_a_live_one_not_repeated(db, fake_server, requests_for):
    server = fake_server()
    teacher = get_provider("openai", model="gpt-4o-mini", base_url=server.openai_url)
    requests = requests_for(3)
    keys = [_key_for(teacher, r, teacher.build_prompt(r)) for r in requests]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        base = dict(provider="openai", model="gpt-4o-mini", prompt_hash="", prompt="", raw_reply="", ranking=(),
                    rationale="", n_valid=0, input_tokens=0, output_tokens=0, usd=0.0, latency_s=0.0, error=None,
                    simulated=False, status="pending")
        cache.record_many([cache.CallRecord(call_key=keys[0], pid=_dead_pid(), reserved_usd=0.25, **base),
                           cache.CallRecord(call_key=keys[1], pid=sleeper.pid, reserved_usd=0.5, **base)], db)
        budget = Budget(max_usd=2.0)
        responses = teacher.rank(requests, db=db, budget=budget)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [r.status for r in responses] == ["ok", "skipped", "ok"]
    assert f"process {sleeper.pid} is making this call now" in responses[1].error
    assert len(server.calls) == 2                         # the live process's call is not made a second time
    assert budget.possible_usd == pytest.approx(0.25)     # the dead one's worst case counts against the cap
    assert budget.spent_usd == pytest.approx(0.25 + responses[0].usd + responses[2].usd)
    assert "may have been billed" in budget.report().message
    rows = _ledger(db).set_index("call_key")
    assert rows.loc[keys[0], "status"] == "ok" and rows.loc[keys[0], "interrupted_usd"] == pytest.approx(0.25)
    # counted once: a later run reuses the answer and charges nothing again
    again = Budget(max_usd=2.0)
    teacher.rank(requests[:1], db=db, budget=again)
    assert again.spent_usd == 0 and len(server.calls) == 2


def test_the_same_server_on_another_port_is_the_same_cache(db, fake_server, requests_for):
    first, second = fake_server(), fake_server()
    assert first.port != second.port
    get_provider("openai", model="gpt-4o-mini", base_url=first.openai_url).rank(requests_for(4), db=db)
    other = second.openai_url.replace("127.0.0.1", "localhost") + "/"
    again = get_provider("openai", model="gpt-4o-mini", base_url=other).rank(requests_for(4), db=db)
    assert len(first.calls) == 4 and not second.calls and all(r.cached for r in again)
    assert cache.endpoint_key("https://api.openai.com/v1", "openai") == "openai"
    assert cache.endpoint_key("https://llm.example.com:8443/v1/", "openai") == "llm.example.com/v1"


# ---- a real `alkd run` killed mid-query ---------------------------------------------------------------------------

def _alkd_run(dataset: str, home: Path, url: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-c", "from core.cli import main; main()", "run", "--dataset", dataset,
               "--method", "alkdrec", "--teacher", "openai", "--model", "gpt-4o-mini", "--base-url", url,
               "--budget", "40", "--option", "max_epochs=1", "--no-save-model", *extra]
    env = {**os.environ, "ALKD_HOME": str(home), "OPENAI_API_KEY": "sk-test-FAKEKEY-0123456789abcdef"}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for(condition, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            pytest.fail(process.stdout.read().decode())
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _llm_rows(home: Path):
    return store.query("SELECT call_key, status, prompt, usd, interrupted_usd FROM llm_calls")


def test_sigkill_mid_query_then_rerun_pays_nothing_twice(csv_dataset, isolated_home):
    slow = FakeLLMServer(lambda call: FakeReply(delay_s=1.0)).start()
    try:
        process = _alkd_run(csv_dataset, isolated_home, slow.openai_url)
        try:
            _wait_for(lambda: slow.answered >= 8 and len(slow.calls) >= 12, process)
            process.kill()                                     # SIGKILL: nothing gets to clean up
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
        killed = _llm_rows(isolated_home)
    finally:
        slow.stop()
    done = killed[killed["status"] == "ok"]
    pending = killed[killed["status"] == "pending"]
    assert len(done) >= 1 and len(pending) >= 1               # the kill left a trace of what was in flight
    traced = list(done["prompt"]) + list(pending["prompt"])
    # every request the server saw is traced (a pending row may also be written just before the kill, unsent)
    assert all(any(prompt.endswith(call.user) for prompt in traced) for call in slow.calls)
    # the rerun: the same server on another port
    fast = FakeLLMServer().start()
    try:
        rerun = _alkd_run(csv_dataset, isolated_home, fast.openai_url)
        output = rerun.communicate(timeout=240)[0].decode()
    finally:
        fast.stop()
    assert rerun.returncode == 0, output
    asked_again = {call.user for call in fast.calls}
    assert not any(prompt.endswith(user) for prompt in done["prompt"] for user in asked_again)  # never paid twice
    rows = _llm_rows(isolated_home).set_index("call_key")
    assert set(rows["status"]) == {"ok"}
    assert len(fast.calls) == len(rows) - len(done)         # only what had not completed is asked (once per prompt)
    assert (rows.loc[list(pending["call_key"]), "interrupted_usd"] > 0).all()
    assert "may have been billed" in output


def test_sigterm_mid_query_starts_no_new_call_and_records_the_finished(csv_dataset, isolated_home):
    server = FakeLLMServer(lambda call: FakeReply(delay_s=0.5)).start()
    try:
        process = _alkd_run(csv_dataset, isolated_home, server.openai_url)
        try:
            _wait_for(lambda: len(server.calls) >= 10, process)
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            output = process.communicate(timeout=60)[0].decode()
        finally:
            if process.poll() is None:
                process.kill()
        n_calls, answered = len(server.calls), server.answered
        late = [c for c in server.calls if c.at > signalled + 0.2]
    finally:
        server.stop()
    assert process.returncode == 143, output
    assert "Traceback" not in output
    assert not late and n_calls < 40                          # before the fix: all 40 were made
    rows = _llm_rows(isolated_home)
    assert (rows["status"] == "ok").sum() == answered == n_calls   # every finished call recorded, none pending
    runs = store.query("SELECT status FROM runs")
    assert runs["status"].tolist() == ["cancelled"]


# ---- results that say what happened ---------------------------------------------------------------------------

def _cli(dataset: str, url: str, *extra: str):
    from click.testing import CliRunner

    from core.cli import main
    return CliRunner().invoke(main, ["run", "--dataset", dataset, "--method", "alkdrec", "--teacher", "openai",
                                     "--model", "gpt-4o-mini", "--base-url", url, "--budget", "20",
                                     "--option", "max_epochs=1", "--no-save-model", *extra])


def test_a_run_whose_every_call_failed_is_failed_not_done(csv_dataset):
    # before: status done, exit 0, n_labelled 20 and the student's metrics
    result = _cli(csv_dataset, _dead_url())
    assert result.exit_code != 0
    run = store.query("SELECT status, message, n_labelled FROM runs").iloc[0]
    assert run["status"] == "failed" and "no usable ranking" in run["message"]
    assert "circuit breaker" in run["message"] and "\n" not in run["message"]
    assert store.query("SELECT count(*) AS n FROM metrics")["n"][0] == 0


def test_failed_answers_are_not_labels_nor_incorrect(csv_dataset, fake_server):
    def behaviour(call):  # two sessions in three answer without any ranking (repair included)
        return FakeReply(text="I cannot rank these.") if hash(call.user) % 3 else None

    server = fake_server(behaviour)
    result = _cli(csv_dataset, server.openai_url)
    assert result.exit_code == 0, result.output
    calls = store.query("SELECT status, call_key FROM llm_calls")
    run = store.query("SELECT run_id, n_labelled, status FROM runs").iloc[0]
    picked = store.query("SELECT session_id, category, call_key FROM selections WHERE picked")
    usable = picked["call_key"].isin(calls.loc[calls["status"] == "ok", "call_key"])
    assert run["status"] == "done" and run["n_labelled"] == usable.sum() < len(picked)
    assert picked.loc[usable, "category"].notna().all() and picked.loc[~usable, "category"].isna().all()
    if usable.sum() * 2 < len(picked):
        assert "warning:" in result.output and "usable ranking" in result.output


def test_the_console_and_the_run_say_the_cap_was_reached(csv_dataset, fake_server, tmp_path, monkeypatch):
    prices = tmp_path / "prices.toml"
    prices.write_text('models."pricey" = { input = 1000.0, output = 1000.0 }\n')
    monkeypatch.setenv("ALKD_PRICES", str(prices))
    server = fake_server()
    result = _cli(csv_dataset, server.openai_url, "--model", "pricey", "--usd-cap", "8", "--launch-usd-cap", "9")
    assert result.exit_code == 0, result.output
    assert "USD cap $8.0000 reached" in result.output and "launch cap" in result.output
    run = store.query("SELECT usd_spent, config FROM runs").iloc[0]
    import json
    note = json.loads(run["config"])["extra"]["usd"]
    assert note["cap_reached"] and "reached" in note["message"] and 0 < run["usd_spent"] <= 8.0
    assert run["usd_spent"] == pytest.approx(store.query("SELECT sum(usd) AS s FROM llm_calls")["s"][0])


def test_a_failed_run_keeps_what_its_billed_calls_cost(csv_dataset, fake_server):
    server = fake_server(lambda call: FakeReply(text="I cannot rank these."))   # billed, never usable
    result = _cli(csv_dataset, server.openai_url)
    assert result.exit_code != 0 and "no usable ranking" in result.output
    run = store.query("SELECT status, usd_spent FROM runs").iloc[0]
    paid = store.query("SELECT sum(usd) AS s FROM llm_calls")["s"][0]
    assert run["status"] == "failed" and paid > 0 and run["usd_spent"] == pytest.approx(paid)
