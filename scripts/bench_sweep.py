"""Runs per minute of `alkd sweep`: in-process one after another, the local process pool and Ray, with the per-run
overhead of each executor, printed as a table.

    python scripts/bench_sweep.py                       # a small seeded CSV dataset in a temporary ALKD_HOME
    python scripts/bench_sweep.py --dataset ml-100k     # a dataset already fetched under ALKD_HOME (never fetched here)

Every executor runs the same grid (student / random / ALKDRec x budgets, simulated teacher, one seed) in its own
group after one warm-up run has trained the checkpoints, so what is measured is the sweep machinery plus the
distillation, not pre-training. Per-run overhead = wall time x workers / runs - the in-process seconds per run:
process start-up and imports, shipping results back as Arrow, the driver's writes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def seeded_csv(folder: Path, n_sessions: int = 400, n_items: int = 60, seed: int = 0) -> Path:
    """session_id,item_id,timestamp rows: sessions of 3-9 items with some first-order structure."""
    import numpy as np
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["session_id,item_id,timestamp"]
    for session in range(1, n_sessions + 1):
        item = int(rng.integers(1, n_items + 1))
        for step in range(int(rng.integers(3, 10))):
            lines.append(f"{session},{item},{1_700_000_000 + session * 100 + step}")
            item = item % n_items + 1 if rng.random() < 0.6 else int(rng.integers(1, n_items + 1))
    (folder / "interactions.csv").write_text("\n".join(lines) + "\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=None, help="a fetched dataset (default: a seeded CSV one, made here)")
    parser.add_argument("--budgets", default="5,10,15,20", help="comma list: the grid's budgets")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executors", default="local,ray", help="comma list of local, ray")
    args = parser.parse_args()

    if args.dataset is None:
        home = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
        os.environ["ALKD_HOME"] = str(home)
        os.environ.pop("ALKD_DB", None)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from rich.console import Console
    from rich.table import Table

    from core.data import catalog
    from core.run_spec import LaunchSpec
    from core.sweep import make_executor, run_cell, run_sweep

    dataset = args.dataset
    if dataset is None:
        catalog.fetch("csv", seeded_csv(Path(os.environ["ALKD_HOME"]) / "raw"), name="bench", max_length=10)
        dataset = "bench"
    budgets = [int(b) for b in args.budgets.split(",")]
    fields = dict(dataset=dataset, methods=["student", "random", "alkdrec"], teacher="simulated", budgets=budgets,
                  seeds=[0], save_model=False)
    spec = LaunchSpec.parse(fields)
    n = spec.n_runs()
    console = Console()

    started = time.perf_counter()   # warm-up: trains (or loads) the seed's teacher and student once
    run_cell("warmup", spec.runs()[0].model_dump_json(), False, None, 1)
    console.print(f"warm-up (checkpoints) {time.perf_counter() - started:.1f} s; grid of {n} runs on {dataset}")

    rows = []
    started = time.perf_counter()
    for config in spec.runs():
        outcome = run_cell("inline", config.model_dump_json(), False, None, 1)
        assert outcome["status"] == "done", outcome
    inline = (time.perf_counter() - started) / n
    rows.append(("in-process, one after another", 1, n, inline * n, inline, None))

    for name in [e.strip() for e in args.executors.split(",") if e.strip()]:
        if name == "ray":
            import importlib.util
            if importlib.util.find_spec("ray") is None:
                console.print("ray is not installed: skipped (pip install -e '.[ray]')")
                continue
        started = time.perf_counter()
        executor = make_executor(name, args.workers, 1, None)
        startup = time.perf_counter() - started
        try:
            report = run_sweep(spec.model_copy(update={"group": None}), f"bench-{name}-{int(time.time())}",
                               executor)
        finally:
            executor.close()
        wall = time.perf_counter() - started
        assert len(report.done) == n and not report.failed, report
        per_run = wall * executor.workers / n
        in_worker = sum(c.seconds for c in report.done) / n      # submit to result back, as the driver saw it
        rows.append((f"{name} executor (start-up {startup:.1f} s, {in_worker:.1f} s a run in a worker)",
                     executor.workers, n, wall, per_run, per_run - inline))

    table = Table(title=f"alkd sweep: {n} runs of {dataset} (simulated teacher, checkpoints cached)")
    for column in ("executor", "workers", "runs", "wall s", "runs/min", "s per run per worker", "overhead per run s"):
        table.add_column(column, justify="right" if column != "executor" else "left")
    for label, workers, runs, wall, per_run, overhead in rows:
        table.add_row(label, str(workers), str(runs), f"{wall:.1f}", f"{runs / wall * 60:.1f}", f"{per_run:.2f}",
                      "–" if overhead is None else f"{overhead:+.2f}")
    console.print(table)
    console.print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
