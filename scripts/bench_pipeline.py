"""Benchmark one ALKDRec run (alkdrec-ml, FPMC, replay teacher, budget 500, seed 0, the default joint recipe) through
run_pipeline: `cached` reuses the teacher/student checkpoints (target < 20 s); `scratch` is the same with
`init=scratch` (the d=10 student trained from random weights with the joint loss; reported, no target); `cold` starts
from nothing in a fresh ALKD_HOME (fetch the dataset, train teacher d=100 and student d=10, then the run; target
< 90 s).

    .venv/bin/python scripts/bench_pipeline.py [--only cached|scratch|cold] [--device cpu]   # data: $ALKD_SHARED
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("ALKD_SHARED", ROOT.parent / "shared")) / "data" / "alkdrec"
TARGETS = {"cached": 20.0, "scratch": None, "cold": 90.0}
KINDS = list(TARGETS)


def one(kind: str, device: str) -> dict:
    """Run in this process (cached) after making sure the dataset and checkpoints exist."""
    from core.data import catalog
    from core.data.errors import DataError
    from core.pipeline import RunConfig, run_pipeline

    started = time.perf_counter()
    try:
        catalog.load("alkdrec-ml")
        fetch = 0.0
    except DataError:
        catalog.fetch("alkdrec-ml", SHARED)
        fetch = time.perf_counter() - started
    options = {"init": "scratch"} if kind == "scratch" else {}
    result = run_pipeline(RunConfig(dataset="alkdrec-ml", backbone="fpmc", method="alkdrec", teacher="replay",
                                    budget=500, seed=0, device=device, options=options))
    total = time.perf_counter() - started
    return {"kind": kind, "total": total, "fetch": fetch, **result.timings,
            "ndcg@10": result.test.metrics["ndcg@10"], "cached": result.extra.get("teacher_cached")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=KINDS, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", choices=KINDS, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import json
        print("RESULT " + json.dumps(one(args.child, args.device)))
        return
    rows = []
    for kind in ([args.only] if args.only else KINDS):
        env = dict(os.environ)
        home = None
        if kind == "cold":
            home = tempfile.mkdtemp(prefix="alkd-bench-")
            env["ALKD_HOME"] = home
        else:  # make sure the checkpoints exist first (not timed)
            subprocess.run([sys.executable, __file__, "--child", "cached", "--device", args.device], env=env,
                           cwd=ROOT, capture_output=True, check=False)
        wall = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--child", kind, "--device", args.device], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=False)
        wall = time.perf_counter() - wall
        line = [text for text in out.stdout.splitlines() if text.startswith("RESULT ")]
        if not line:
            print(out.stdout[-2000:], out.stderr[-2000:])
            continue
        import json
        row = json.loads(line[0][7:])
        row["process wall (incl. imports)"] = wall
        rows.append(row)
    from rich.console import Console
    from rich.table import Table
    table = Table(title="alkdrec-ml / FPMC / replay / budget 500 / seed 0")
    stages = ["process wall (incl. imports)", "total", "fetch", "load", "teacher", "student", "difficulty", "select",
              "candidates", "query", "categories", "distill", "evaluate"]
    table.add_column("seconds")
    for row in rows:
        target = TARGETS[row["kind"]]
        table.add_column(f"{row['kind']}" + (f" (target < {target:.0f} s)" if target else ""), justify="right")
    for stage in stages:
        table.add_row(stage, *(f"{row.get(stage, 0.0):.2f}" for row in rows))
    table.add_row("test ndcg@10", *(f"{row['ndcg@10']:.5f}" for row in rows))
    Console().print(table)


if __name__ == "__main__":
    main()
