"""`alkd run` end to end through the CLI on a tiny CSV dataset with the simulated teacher, and cancellation."""

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

from core import store
from core.cli import main
from core.cli_run import parse_methods, parse_ratios, parse_seeds

ROOT = Path(__file__).resolve().parents[1]


def test_parsers():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2,3") == [0, 2, 3]
    assert parse_seeds("0-1,5") == [0, 1, 5]
    assert parse_methods(("alkdrec,student", "tr")) == ["alkdrec", "student", "tr"]
    assert parse_ratios("1:5:4") == (1.0, 5.0, 4.0)
    import click
    with pytest.raises(click.BadParameter):
        parse_methods(("nope",))
    for bad in ("4-1", "-1", "a", "1-2-3", ""):
        with pytest.raises(click.BadParameter):
            parse_seeds(bad)
    assert parse_seeds("2, 0-1,2") == [2, 0, 1]


def test_run_writes_the_expected_store_rows(csv_dataset, isolated_home):
    result = CliRunner().invoke(main, [
        "run", "--dataset", csv_dataset, "--method", "alkdrec,student", "--method", "popular",
        "--teacher", "simulated", "--hit-rate", "0.6", "--budget", "12", "--usd-cap", "1", "--seeds", "0",
        "--group", "g1", "--tag", "t1", "--option", "max_epochs=5", "--pretrain", "loss=ce",
        "--pretrain", "max_epochs=3"])
    assert result.exit_code == 0, result.output
    runs = store.query("SELECT * FROM runs WHERE kind = 'distill' ORDER BY created_at")
    assert all(json.loads(c)["pretrain"] == {"loss": "ce", "max_epochs": 3} for c in runs["config"])
    trained = [p.name for p in (isolated_home / "checkpoints" / csv_dataset).iterdir()]
    assert len(trained) == 2          # teacher and student, trained once with the --pretrain settings
    assert len(runs) == 3 and set(runs["status"]) == {"done"}
    assert set(runs["groups"]) == {"g1"} and all(list(t) == ["t1"] for t in runs["tags"])
    assert (runs["pid"] == os.getpid()).all() and (runs["budget"] == 12).all()
    llm = runs[runs["method"] == "alkdrec"]
    assert (llm["n_labelled"] == 12).all() and (llm["usd_spent"] == 0).all()
    config = json.loads(llm["config"].iloc[0])
    assert config["extra"]["planned_ratio"]["effective"] == pytest.approx(0.1)
    assert sum(config["extra"]["achieved_ratio"].values()) == pytest.approx(1.0)
    for run_id in runs["run_id"]:
        splits = set(store.query("SELECT split FROM metrics WHERE run_id = ?", [run_id])["split"])
        assert splits == {"test", "valid"}
        assert len(store.query("SELECT * FROM session_results WHERE run_id = ?", [run_id])) > 0
        timings = json.loads(runs.set_index("run_id").loc[run_id, "timings"])
        assert "evaluate" in timings
    run_id = llm["run_id"].iloc[0]
    selections = store.query("SELECT * FROM selections WHERE run_id = ?", [run_id])
    picked = selections[selections["picked"]]
    assert len(picked) == 12 and picked["category"].notna().all()
    assert set(picked["category"]) <= {"effective", "similar", "incorrect"}
    assert picked["call_key"].notna().all() and picked["student_rank"].notna().all()
    assert selections[~selections["picked"]]["category"].isna().all()
    candidates = store.query("SELECT * FROM run_candidates WHERE run_id = ?", [run_id])
    assert len(candidates) == 12 and all(len(c) <= 50 for c in candidates["candidates"])
    assert len(store.query("SELECT * FROM llm_calls")) >= 12
    assert len(store.query("SELECT * FROM training_curves WHERE run_id = ?", [run_id])) >= 1
    assert "alkdrec" in result.output and "categories achieved" in result.output


def test_failure_marks_failed_and_continues(csv_dataset):
    # a distillation that diverges (lr 1e30) fails at run time: that run is 'failed' with a one-line reason, the next
    # run still runs, and the launch exits non-zero
    result = CliRunner().invoke(main, ["run", "--dataset", csv_dataset, "--method", "alkdrec,popular",
                                       "--teacher", "simulated", "--budget", "5", "--option", "lr=1e30"])
    assert result.exit_code != 0 and "1 run(s) failed" in result.output
    runs = store.query("SELECT method, status, message FROM runs WHERE kind = 'distill' ORDER BY created_at")
    by_method = runs.set_index("method")
    assert by_method.loc["alkdrec", "status"] == "failed"
    assert "diverged" in by_method.loc["alkdrec", "message"] and "fix:" in by_method.loc["alkdrec", "message"]
    assert by_method.loc["popular", "status"] == "done"
    assert store.query("SELECT count(*) AS n FROM metrics m JOIN runs r USING (run_id)"
                       " WHERE r.method = 'alkdrec'")["n"][0] == 0


def test_a_bad_parameter_of_any_run_is_refused_before_the_first_run_row(csv_dataset):
    # the replay teacher has no recordings for this dataset: the second method needs it, so nothing may start
    result = CliRunner().invoke(main, ["run", "--dataset", csv_dataset, "--method", "popular,alkdrec",
                                       "--teacher", "replay", "--budget", "5", "--seeds", "0-1"])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--teacher" in lines[0] and "fix:" in lines[0], result.output
    assert store.query("SELECT count(*) AS n FROM runs")["n"][0] == 0


def test_invalid_pretrain_setting_is_refused_before_any_run(csv_dataset):
    result = CliRunner().invoke(main, ["run", "--dataset", csv_dataset, "--method", "student", "--teacher",
                                       "simulated", "--pretrain", "learning_rate=1"])
    assert result.exit_code != 0 and "invalid --pretrain" in result.output
    assert store.query("SELECT count(*) AS n FROM runs")["n"][0] == 0


def test_unknown_option_is_refused_before_any_run(csv_dataset):
    result = CliRunner().invoke(main, ["run", "--dataset", csv_dataset, "--method", "student", "--teacher",
                                       "simulated", "--option", "patiance=3"])
    assert result.exit_code != 0 and "did you mean 'patience'" in result.output
    assert store.query("SELECT count(*) AS n FROM runs")["n"][0] == 0


def test_estimate(csv_dataset):
    result = CliRunner().invoke(main, ["estimate", "--dataset", csv_dataset, "--teacher", "openai",
                                       "--model", "gpt-4o-mini", "--budget", "500"])
    assert result.exit_code == 0, result.output
    assert "expected USD" in result.output and "input tokens" in result.output


def test_sigterm_marks_the_run_cancelled(csv_dataset, isolated_home):
    command = [sys.executable, "-c", "from core.cli import main; main()", "run", "--dataset", csv_dataset,
               "--method", "alkdrec", "--teacher", "simulated", "--budget", "10",
               "--option", "max_epochs=100000", "--option", "patience=100000"]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "ALKD_HOME": str(isolated_home)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs = store.query("SELECT status, stage FROM runs")
            if not runs.empty and runs["stage"].iloc[0] == "distill":
                break
            assert process.poll() is None, process.stdout.read().decode()
            time.sleep(0.3)
        else:
            pytest.fail("the run never reached the distill stage")
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, output
    assert "Traceback" not in output
    runs = store.query("SELECT status, message, pid FROM runs")
    assert runs["status"].tolist() == ["cancelled"] and runs["pid"].iloc[0] == process.pid
