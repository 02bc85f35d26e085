"""scripts/bench_scale.py: one tiny measurement in-process (every stage runs and reports), the table, and the
linearity verdict from per-session costs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_scale.py"


@pytest.fixture
def script():
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_scale", None)


def test_a_tiny_measurement_runs_every_stage(script):
    row = script.measure(400, 120, steps=3, eval_sessions=40, seed=0)
    assert 0.9 * 400 <= row["sessions"] <= 400 and row["pool"] == row["sessions"]
    assert row["eval_sessions"] == 40 and row["train_rows"] > row["train_sessions"]
    for key in ("gen", "ingest", "rows", "consistency", "select", "eval_sessions_per_s", "train_samples_per_s",
                "peak_gb"):
        assert row[key] >= 0, key
    assert row["eval_sessions_per_s"] > 0 and row["train_samples_per_s"] > 0 and row["peak_gb"] > 0.05
    text = script.table([row], markdown=True)
    assert text.splitlines()[0].startswith("| N sessions |") and "400" in text.splitlines()[2]


def test_linearity_flags_a_stage_whose_cost_per_session_grows(script):
    def row(n: int, select_seconds: float) -> dict:
        return {"n_sessions": n, "gen": n * 1e-5, "ingest": n * 2e-5, "rows": n * 1e-6, "consistency": n * 1e-6,
                "select": select_seconds, "eval_sessions_per_s": 1000.0, "train_samples_per_s": 20000.0}
    lines = script.linearity([row(10_000, 0.01), row(100_000, 0.03), row(1_000_000, 0.3)])
    assert all("-> linear" in line for line in lines if "CPU s per" in line)
    lines = script.linearity([row(10_000, 0.01), row(100_000, 0.03), row(1_000_000, 3.0)])
    assert any(line.strip().startswith("select") and "super-linear (10.0x)" in line for line in lines)
