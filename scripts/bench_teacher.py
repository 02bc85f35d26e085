"""Benchmark the teacher runner against a loopback OpenAI-compatible server that answers after a fixed delay.

Run 1: N requests with bounded concurrency; wall time against the ideal N / concurrency x delay (target <= 1.25x).
Run 2: the same requests again, fully served from the DuckDB cache (target < 3 s and zero HTTP calls).

    .venv/bin/python scripts/bench_teacher.py [--n 500] [--delay 1.0] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))   # the loopback server the tests use

from fakeserver import FakeLLMServer  # noqa: E402

from core.teachers import Budget, RankRequest, get_provider  # noqa: E402


def requests(n: int) -> list[RankRequest]:
    out = []
    for sid in range(n):
        candidates = list(range(1000 + sid % 97, 1050 + sid % 97))
        out.append(RankRequest(session_id=sid, session_items=[1 + sid % 13, 20 + sid % 17, 40 + sid],
                               session_titles=[f"Film {sid} part {k}" for k in range(3)], candidates=candidates,
                               candidate_titles=[f"Candidate film {c} (19{c % 100:02d})" for c in candidates],
                               label=candidates[sid % 50], dataset="bench"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--delay", type=float, default=1.0, help="server reply delay, seconds")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    db = Path(tempfile.mkdtemp(prefix="bench-teacher-")) / "runs.duckdb"
    batch = requests(args.n)
    rows = []
    with FakeLLMServer(delay_s=args.delay) as server:
        teacher = get_provider("openai", model="gpt-4o-mini", base_url=server.openai_url)
        ideal = args.n / args.concurrency * args.delay
        for label, target in (("fresh", f"<= {1.25 * ideal:.1f} s (1.25x ideal)"), ("cached", "< 3 s, 0 calls")):
            before = len(server.requests)
            budget = Budget()
            start = time.perf_counter()
            responses = teacher.rank(batch, db=db, concurrency=args.concurrency, budget=budget)
            wall = time.perf_counter() - start
            calls = len(server.requests) - before
            ok = sum(r.ok for r in responses)
            cached = sum(r.cached for r in responses)
            passed = wall <= 1.25 * ideal if label == "fresh" else (wall < 3.0 and calls == 0)
            rows.append((label, args.n, calls, ok, cached, wall, ideal if label == "fresh" else 0.0,
                         wall / ideal if label == "fresh" else float("nan"), budget.spent_usd, target,
                         "PASS" if passed else "FAIL"))
    header = ("run", "requests", "http calls", "ok", "cached", "wall s", "ideal s", "x ideal", "usd spent", "target",
              "result")
    print(f"bench_teacher: {args.n} requests, server delay {args.delay:.2f} s, concurrency {args.concurrency}, "
          f"provider openai (loopback), db {db}")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        label, n, calls, ok, cached, wall, ideal, ratio, usd, target, result = row
        ratio_text = "-" if ratio != ratio else f"{ratio:.3f}"
        ideal_text = "-" if ideal == 0 else f"{ideal:.1f}"
        print(f"| {label} | {n} | {calls} | {ok} | {cached} | {wall:.2f} | {ideal_text} | {ratio_text} | "
              f"{usd:.4f} | {target} | {result} |")
    return 0 if all(row[-1] == "PASS" for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
