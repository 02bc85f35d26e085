"""`alkd sweep` on a tiny CSV dataset with the simulated teacher: the local process pool and Ray (skipped without it),
reruns that skip finished cells, a driver killed half-way (a real subprocess, SIGKILL) and a worker killed mid-run."""

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
from core.run_spec import LaunchSpec
from core.sweep import make_executor, plan, run_sweep, stored_key

ROOT = Path(__file__).resolve().parents[1]

#: fast settings: 2-epoch pre-training, short distillation
FAST = '[pretrain]\nmax_epochs = 2\n[options]\nmax_epochs = 2\n'


def grid(path: Path, methods=("student", "random", "alkdrec"), budgets=(5, 10), seeds=(0,), group: str | None = None,
         extra: str = "") -> Path:
    lines = ['dataset = "csv"', f"methods = {json.dumps(list(methods))}", 'teacher = "simulated"',
             f"budgets = {list(budgets)}", f"seeds = {list(seeds)}", "save_model = false"]
    if group:
        lines.append(f'group = "{group}"')
    path.write_text("\n".join(lines) + "\n" + extra + FAST)
    return path


def runs(group: str):
    return store.query("SELECT run_id, status, method, seed, budget, config, message FROM runs WHERE groups = ?"
                       " ORDER BY run_id", [group])


def assert_complete(group: str, n: int) -> None:
    """n done runs in the group, one per distinct config, each with its metrics and per-session ranks."""
    frame = runs(group)
    assert (frame["status"] == "done").sum() == n, frame[["run_id", "status", "message"]]
    keys = [stored_key(c) for c in frame.loc[frame["status"] == "done", "config"]]
    assert len(set(keys)) == n                                   # no duplicate cell
    assert len(frame) == n                                       # redone cells kept their run id: no extra rows
    counts = store.query("SELECT r.run_id, (SELECT count(*) FROM metrics m WHERE m.run_id = r.run_id) AS metrics,"
                         " (SELECT count(*) FROM session_results s WHERE s.run_id = r.run_id) AS ranks"
                         " FROM runs r WHERE groups = ?", [group])
    assert (counts["metrics"] > 0).all() and (counts["ranks"] > 0).all()
    dup = store.query("SELECT run_id, split, metric, k, count(*) AS n FROM metrics GROUP BY ALL HAVING n > 1")
    assert dup.empty


def test_local_sweep_runs_the_product_in_one_group_and_a_rerun_skips_it(csv_dataset, tmp_path):
    path = grid(tmp_path / "g1.toml")
    result = CliRunner().invoke(main, ["sweep", str(path), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert_complete("g1", 6)
    frame = runs("g1")
    assert sorted(zip(frame["method"], frame["budget"])) == sorted(
        (m, b) for m in ("student", "random", "alkdrec") for b in (5, 10))
    assert "6 run(s) done now" in result.output
    selections = store.query("SELECT count(DISTINCT run_id) AS n FROM selections s JOIN runs r USING (run_id)"
                             " WHERE r.groups = 'g1'")["n"][0]
    assert selections == 4                                       # the LLM methods' selections came back as Arrow
    progress = store.query("SELECT stage FROM runs WHERE groups = 'g1'")["stage"]
    assert set(progress) == {"done"}
    again = CliRunner().invoke(main, ["sweep", str(path)])
    assert again.exit_code == 0 and "nothing to run" in again.output, again.output
    assert len(runs("g1")) == 6
    # a grown grid runs only its new cells, in the same group
    grid(path, budgets=(5, 10, 15))
    more = CliRunner().invoke(main, ["sweep", str(path), "--workers", "2"])
    assert more.exit_code == 0, more.output
    assert "3 run(s) done now, 6 done before" in more.output
    assert_complete("g1", 9)


def test_plan_marks_done_failed_and_new_cells(csv_dataset, tmp_path):
    result = CliRunner().invoke(main, ["sweep", str(grid(tmp_path / "p.toml", methods=("popular", "sknn"),
                                                          budgets=(5,)))])
    assert result.exit_code == 0, result.output
    with store.write() as con:
        con.execute("UPDATE runs SET status = 'failed' WHERE method = 'sknn'")
    spec = LaunchSpec.parse({"dataset": "csv", "methods": ["popular", "sknn", "vsknn"], "teacher": "simulated",
                             "budget": 5, "save_model": False, "options": {"max_epochs": 2},
                             "pretrain": {"max_epochs": 2}})
    states = {c.config.method: c.state for c in plan(spec, "p")}
    assert states == {"popular": "done", "sknn": "redo", "vsknn": "todo"}


def test_a_bad_grid_is_one_line_and_writes_nothing(csv_dataset, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('dataset = "csv"\nmethods = ["student"]\nbudgets = [5, 0]\n')
    result = CliRunner().invoke(main, ["sweep", str(path)])
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1, result.output
    assert f"{path}, field 'budget'" in lines[0] and "at least 1" in lines[0]
    assert store.query("SELECT count(*) AS n FROM runs")["n"][0] == 0
    result = CliRunner().invoke(main, ["sweep", str(path), "--address", "auto"])
    assert result.exit_code != 0 and "--executor ray" in result.output


def _sweep_process(path: Path, home: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from core.cli import main; main()", "sweep", str(path),
                             "--workers", "2", *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "ALKD_HOME": str(home), "OMP_NUM_THREADS": "1", **(env or {})})


def test_a_sweep_killed_half_way_finishes_on_rerun_with_each_cell_done_once(csv_dataset, tmp_path, isolated_home):
    path = grid(tmp_path / "kill.toml", methods=("student", "alkdrec"), budgets=(5, 10), seeds=(0, 1))   # 8 runs
    process = _sweep_process(path, isolated_home)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            frame = runs("kill")
            if (frame["status"] == "done").sum() >= 3 and (frame["status"] == "running").any():
                break
            assert process.poll() is None, process.stdout.read().decode()
            time.sleep(0.2)
        else:
            pytest.fail("the sweep never got half-way")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
    frame = runs("kill")
    assert 3 <= (frame["status"] == "done").sum() < 8
    interrupted = set(frame.loc[frame["status"] == "running", "run_id"])
    assert interrupted                                                        # killed with runs in flight
    time.sleep(1.0)                                                           # the workers died with the driver
    rerun = CliRunner().invoke(main, ["sweep", str(path), "--workers", "2"])
    assert rerun.exit_code == 0, rerun.output
    assert "redone" in rerun.output
    assert_complete("kill", 8)
    assert interrupted <= set(runs("kill")["run_id"])                         # redone under the same run ids


def test_a_worker_killed_mid_run_fails_its_run_and_a_rerun_redoes_it(csv_dataset, tmp_path, isolated_home):
    path = grid(tmp_path / "worker.toml", methods=("popular", "alkdrec"), budgets=(5,))   # popular never distils
    marker = tmp_path / "paused-worker"
    process = _sweep_process(path, isolated_home, env={"ALKD_TEST_PAUSE": f"worker:distill={marker}"})
    try:
        deadline = time.monotonic() + 240
        while not marker.exists() or not marker.read_text():
            assert time.monotonic() < deadline and process.poll() is None, "no worker reached the distill stage"
            time.sleep(0.2)
        os.kill(int(marker.read_text()), signal.SIGKILL)            # the worker, not the driver
        output = process.communicate(timeout=240)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, output
    frame = runs("worker")
    assert "running" not in set(frame["status"])                    # never running forever
    failed = frame[frame["status"] == "failed"]
    assert failed["method"].tolist() == ["alkdrec"], frame
    assert failed["message"].str.contains("worker process died").all(), frame
    assert frame.loc[frame["method"] == "popular", "status"].tolist() == ["done"]
    rerun = CliRunner().invoke(main, ["sweep", str(path)])
    assert rerun.exit_code == 0, rerun.output
    assert_complete("worker", 2)


def _listeners() -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket on this machine (IPv4 and IPv6)."""
    found = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":                                 # LISTEN
                continue
            address, port = fields[1].split(":")
            found.add((address, int(port, 16)))
    return found


#: 127.0.0.1, ::1 and ::ffff:127.0.0.1 as /proc/net/tcp* write them
LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def test_ray_sweep_on_a_local_ray_bound_to_loopback(csv_dataset, tmp_path):
    ray = pytest.importorskip("ray")
    before = _listeners()
    spec = LaunchSpec.from_toml(grid(tmp_path / "ray.toml", methods=("student", "alkdrec"), budgets=(5,),
                                     seeds=(0, 1)))
    executor = make_executor("ray", 2, 1, None)
    try:
        nodes = ray.nodes()
        assert nodes and all(n["NodeManagerAddress"] == "127.0.0.1" for n in nodes)
        opened = _listeners() - before
        assert opened and all(address in LOOPBACK for address, _ in opened), opened
        report = run_sweep(spec, "ray", executor)
    finally:
        executor.close()
    assert len(report.done) == 4 and not report.failed
    assert_complete("ray", 4)
    assert not ray.is_initialized()


def test_a_redone_cell_takes_over_its_failed_run_with_what_it_paid(csv_dataset, tmp_path):
    from core.sweep import start_row
    path = grid(tmp_path / "redo.toml", methods=("popular",), budgets=(5,))
    assert CliRunner().invoke(main, ["sweep", str(path)]).exit_code == 0
    (run_id,) = runs("redo")["run_id"]
    with store.write() as con:          # as if a paid attempt had failed after spending $0.25
        con.execute("UPDATE runs SET status = 'failed', usd_spent = 0.25 WHERE run_id = ?", [run_id])
    spec = LaunchSpec.from_toml(path)
    (cell,) = plan(spec, "redo")
    assert cell.state == "redo" and cell.run_id == run_id
    assert start_row(cell, spec, "redo") == run_id and cell.prior_usd == 0.25
    row = store.query("SELECT status, attempts, prior_usd, pid FROM runs WHERE run_id = ?", [run_id]).iloc[0]
    assert row["status"] == "running" and row["attempts"] == 2 and row["prior_usd"] == 0.25
    assert row["pid"] == os.getpid()
    assert start_row(cell, spec, "redo") is None                 # claimed once: a second claimer gets nothing
