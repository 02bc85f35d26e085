"""`alkd run --resume`: real `alkd run` processes SIGKILLed at every stage (pre-training, querying a loopback
OpenAI-compatible server, distilling, persisting) or SIGTERMed, and resumed, end with exactly one done run, no
duplicate rows, no LLM reply paid twice and usd_spent covering every attempt; refusals are one line.

Kill points: `ALKD_TEST_PAUSE=POINT=MARKER` (core.store.pause_point) makes the process write MARKER and sleep at
POINT; mid-query the test waits for the server to have answered some calls while others are in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakeserver import FakeLLMServer

from core import store
from core.cli import main
from core.persist import RESULT_TABLES

ROOT = Path(__file__).resolve().parents[1]
FAKE_KEY = "sk-test-FAKEKEY-0123456789abcdef"
# natural keys: a row repeated under one of these is a duplicate
KEYS = {"metrics": "split, metric, k", "session_results": "split, session_id", "training_curves": "step, epoch",
        "selections": "session_id", "run_candidates": "session_id", "run_calls": "call_key"}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from core.cli import main; main()", *args]


def _start(home: Path, args: list[str], pause: str | None = None, marker: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "ALKD_HOME": str(home), "OPENAI_API_KEY": FAKE_KEY, "OMP_NUM_THREADS": "1"}
    env.pop(store.PAUSE_ENV, None)
    if pause:
        env[store.PAUSE_ENV] = f"{pause}={marker}"
    return subprocess.Popen(_command(*args), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for(condition, process: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"exited {process.returncode} before the kill point:\n{process.stdout.read().decode()}")
        assert time.monotonic() < deadline, "timed out waiting for the kill point"
        time.sleep(0.05)


def _kill(process: subprocess.Popen) -> None:
    process.kill()                         # SIGKILL: nothing gets to clean up
    process.wait(30)


def _kill_at(home: Path, args: list[str], point: str, tmp: Path) -> None:
    """Start `alkd ARGS`, SIGKILL it once it reaches `point` (core.store.pause_point)."""
    marker = tmp / f"{point.replace(':', '-')}.marker"
    marker.unlink(missing_ok=True)
    process = _start(home, args, point, marker)
    try:
        _wait_for(marker.exists, process)
    finally:
        _kill(process)


def _run_args(dataset: str, url: str, *extra: str) -> list[str]:
    return ["run", "--dataset", dataset, "--method", "alkdrec", "--teacher", "openai", "--model", "gpt-4o-mini",
            "--base-url", url, "--budget", "20", "--option", "max_epochs=1", *extra]


def _result_rows() -> dict[str, int]:
    return {t: int(store.query(f"SELECT count(*) AS n FROM {t}")["n"][0]) for t in RESULT_TABLES}


def _ledger():
    return store.query("SELECT call_key, status, prompt, usd, interrupted_usd, reserved_usd FROM llm_calls")


def _duplicates() -> dict[str, int]:
    """Rows per result table beyond one per natural key (0 everywhere when nothing is duplicated)."""
    return {t: int(store.query(f"SELECT count(*) - count(DISTINCT (run_id, {k})) AS n FROM {t}")["n"][0])
            for t, k in KEYS.items()}


def _dead_run_is_failed(run_id: str) -> None:
    """A killed run reads as failed once anything looks (alkd runs list/show, the dashboard): never running."""
    listed = CliRunner().invoke(main, ["runs", "list"])
    assert listed.exit_code == 0, listed.output
    run = store.query("SELECT status, message FROM runs WHERE run_id = ?", [run_id]).iloc[0]
    assert run["status"] == "failed" and run["message"].startswith("process died"), run.to_dict()


def test_a_run_killed_at_every_stage_resumes_to_one_done_run(csv_dataset, isolated_home, tmp_path):
    server = FakeLLMServer().start()
    try:
        # 1. killed while pre-training the teacher: no checkpoint, no call, no row
        _kill_at(isolated_home, _run_args(csv_dataset, server.openai_url), "progress:teacher", tmp_path)
        [run_id] = store.query("SELECT run_id FROM runs")["run_id"].tolist()
        _dead_run_is_failed(run_id)
        assert not server.calls and sum(_result_rows().values()) == 0
        assert not list((isolated_home / "checkpoints").glob("**/*.pt"))

        # 2. resumed, killed mid-query: some replies came back (ok rows), some were in flight (pending rows)
        server.delay_s = 1.0
        process = _start(isolated_home, ["run", "--resume", run_id])
        try:
            # a worker thread records its reply before it sends its next request: a 10th request means >= 2 replies
            # are stored, while the requests just sent wait 1 s for their answer
            _wait_for(lambda: len(server.calls) >= 10, process)
        finally:
            _kill(process)
        _dead_run_is_failed(run_id)
        killed = _ledger()
        paid = killed[killed["status"] == "ok"]
        pending = killed[killed["status"] == "pending"]
        assert len(paid) >= 1 and len(pending) >= 1, killed["status"].tolist()
        assert sum(_result_rows().values()) == 0

        # 3. resumed, killed at the start of distillation: only what had not come back is asked, once each
        server.delay_s = 0.0
        before = len(server.calls)
        _kill_at(isolated_home, ["run", "--resume", run_id], "progress:distill", tmp_path)
        asked = [call.user for call in server.calls[before:]]
        assert len(asked) == len(set(asked))
        assert not any(prompt.endswith(user) for prompt in paid["prompt"] for user in asked)   # never paid twice
        ledger = _ledger().set_index("call_key")
        assert set(ledger["status"]) == {"ok"} and len(asked) == len(ledger) - len(paid)
        assert (ledger.loc[list(pending["call_key"]), "interrupted_usd"] > 0).all()  # counted as possibly billed
        assert sum(_result_rows().values()) == 0

        # 4. resumed, stopped with SIGTERM at distillation: stored cancelled (resumable too), no traceback
        n_calls = len(server.calls)
        marker = tmp_path / "sigterm.marker"
        process = _start(isolated_home, ["run", "--resume", run_id], "progress:distill", marker)
        try:
            _wait_for(marker.exists, process)
            process.send_signal(signal.SIGTERM)
            output = process.communicate(timeout=60)[0].decode()
        finally:
            if process.poll() is None:
                _kill(process)
        assert process.returncode == 143 and "Traceback" not in output, output
        assert store.query("SELECT status FROM runs")["status"].tolist() == ["cancelled"]
        assert sum(_result_rows().values()) == 0

        # 5. resumed, killed inside the transaction that writes its rows: nothing of it lands
        _kill_at(isolated_home, ["run", "--resume", run_id], "write_run", tmp_path)
        _dead_run_is_failed(run_id)
        assert sum(_result_rows().values()) == 0

        # 6. resumed to the end: every answer from the cache
        process = _start(isolated_home, ["run", "--resume", run_id])
        output = process.communicate(timeout=300)[0].decode()
        assert process.returncode == 0, output
        assert len(server.calls) == n_calls                             # attempts 4 to 6 asked nothing
    finally:
        server.stop()
    assert f"{run_id} done" in output and "Traceback" not in output
    runs = store.query("SELECT run_id, status, attempts, usd_spent, prior_usd, n_labelled, config FROM runs")
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["status"] == "done" and run["attempts"] == 6
    rows = _result_rows()
    assert all(rows[t] > 0 for t in RESULT_TABLES), rows
    assert _duplicates() == {t: 0 for t in KEYS}
    assert store.query("SELECT count(DISTINCT run_id) AS n FROM metrics")["n"][0] == 1
    picked = store.query("SELECT call_key FROM selections WHERE picked")
    ledger = _ledger().set_index("call_key")
    assert set(picked["call_key"]) <= set(ledger.index) and run["n_labelled"] == len(picked)
    # usd_spent: every reply paid in any attempt, plus the worst case of the requests the kill left in flight
    billed = ledger["usd"].sum() + ledger["interrupted_usd"].fillna(0).sum()
    assert ledger["interrupted_usd"].fillna(0).sum() > 0
    assert run["usd_spent"] == pytest.approx(billed)
    assert run["prior_usd"] == pytest.approx(billed)                    # the attempts before the last paid it all
    resumed = json.loads(run["config"])["extra"]["resumed"]
    assert resumed["attempt"] == 6 and resumed["prior_usd"] == pytest.approx(run["prior_usd"])
    assert (isolated_home / "models" / f"{run_id}.pt").exists()

    # resuming a done run says so in one line and changes nothing
    again = CliRunner().invoke(main, ["run", "--resume", run_id])
    assert again.exit_code == 0 and again.output.strip() == f"run {run_id} is already done; nothing to resume"
    assert _result_rows() == rows and store.query("SELECT attempts FROM runs")["attempts"][0] == 6


# ---- in-process: refusals in one line, money of earlier attempts -------------------------------------------------

def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _stored_run(run_id: str, config: dict, *, pid: int | None, kind: str = "distill", status: str | None = None):
    store.create_run(run_id, kind=kind, dataset=config.get("dataset", "csv"), config=config, versions={},
                     method=config.get("method"), seed=config.get("seed", 0), pid=pid)
    if status:
        store.finish_run(run_id, status, message="boom")


def test_resume_refusals_are_one_line_and_change_nothing(csv_dataset, monkeypatch):
    from core.pipeline import RunConfig

    config = RunConfig(dataset=csv_dataset, method="alkdrec", teacher="simulated").model_dump()
    _stored_run("alive", config, pid=os.getpid())                      # this very process runs it
    _stored_run("trained", {"dataset": csv_dataset}, pid=None, kind="train", status="failed")
    _stored_run("broken", {**config, "budget": 0}, pid=None, status="failed")
    _stored_run("done", config, pid=None, status="done")
    before = store.query("SELECT * FROM runs ORDER BY run_id")
    cases = {("nope",): "Error: no run 'nope' in the store (see `alkd runs list`)",
             ("alive",): f"Error: run alive is running (pid {os.getpid()} on ",
             ("trained",): "Error: run trained is a 'train' run; only `alkd run` runs resume",
             ("broken",): "Error: run 'broken': its stored config is no longer valid (--budget 0",
             ("done", "--method", "tr"): "--resume continues a run with its stored config; drop --method"}
    for args, line in cases.items():
        result = CliRunner().invoke(main, ["run", "--resume", *args])
        assert result.exit_code != 0 and line in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert len([text for text in result.output.splitlines() if text.startswith("Error")]) == 1
    done = CliRunner().invoke(main, ["run", "--resume", "done"])
    assert done.exit_code == 0 and done.output == "run done is already done; nothing to resume\n"
    assert store.query("SELECT * FROM runs ORDER BY run_id").equals(before)
    assert sum(_result_rows().values()) == 0


def test_earlier_attempts_spend_counts_against_the_cap(csv_dataset, monkeypatch):
    """The run's USD cap covers all its attempts: what a killed attempt paid (its ledger rows) is prior_usd, and the
    resumed attempt may only spend the rest; with nothing left it asks nothing."""
    from core.pipeline import RunConfig
    from core.resume import plan_resume, resume_run
    from core.teachers import cache

    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    server = FakeLLMServer().start()
    try:
        config = RunConfig(dataset=csv_dataset, method="alkdrec", teacher="openai", model="gpt-4o-mini",
                           base_url=server.openai_url, budget=10, usd_cap=0.01, options={"max_epochs": 1})
        dead = _dead_pid()
        _stored_run("capped", config.model_dump(), pid=dead)
        base = dict(provider="openai", model="gpt-4o-mini", prompt_hash="", prompt="", raw_reply="", ranking=(),
                    rationale="", n_valid=0, input_tokens=0, output_tokens=0, latency_s=0.0, error=None,
                    simulated=False, pid=dead)
        # what the killed attempt was billed: an answer for another prompt, and a call resolved after a kill before
        cache.record_many([cache.CallRecord(call_key="paid", usd=0.006, status="ok", **base),
                           cache.CallRecord(call_key="resolved", usd=0.001, interrupted_usd=0.00299, status="ok",
                                            **base),
                           cache.CallRecord(call_key="someone-else", usd=5.0, status="ok",
                                            **{**base, "pid": os.getpid()})])
        store.mark_dead(["capped"])
        plan = plan_resume("capped")
        assert plan.prior_usd == pytest.approx(0.00999) and plan.attempt == 2
        run = store.query("SELECT status, pid, usd_spent, prior_usd FROM runs").iloc[0]
        assert run["status"] == "running" and run["pid"] == os.getpid() and run["usd_spent"] == pytest.approx(0.00999)
        with pytest.raises(RuntimeError, match="no usable ranking"):
            resume_run(plan)
        assert not server.calls                               # $0.00001 left under the cap: no call fits
        # the same run with nothing spent before asks the teacher (so the refusal above was the prior spend's)
        _stored_run("fresh", config.model_dump(), pid=dead, status="failed")
        fresh = plan_resume("fresh")
        assert fresh.prior_usd == 0
        _, tables = resume_run(fresh, save_model=False)
        assert server.calls and 0 < tables.usd_spent <= 0.01
        assert store.query("SELECT status FROM runs WHERE run_id = 'fresh'")["status"][0] == "done"
    finally:
        server.stop()
