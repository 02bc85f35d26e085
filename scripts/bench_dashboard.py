"""Server-side render time of every dashboard page over a large store (target: < 2 s per page).

Seeds a fresh DuckDB file (1,000 runs, 500,000 selection rows, 200,000 per-session ranks, 50,000 picked sessions)
under a temporary ALKD_HOME, then renders each page with Streamlit's AppTest: `cold` after clearing the dashboard's
caches (every query hits DuckDB), `warm` on a rerun. Usage: python scripts/bench_dashboard.py [--runs N] [--pool N]
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

PAGES = ["home", "launch", "runs", "compare", "sessions", "costs"]
METHODS = ("random", "easiest", "hardest", "rad-bc", "alkdrec")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000, help="runs (10 per group: 5 LLM methods x 2 seeds)")
    parser.add_argument("--pool", type=int, default=500, help="pool sessions per run (selection rows)")
    parser.add_argument("--budget", type=int, default=50)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="alkd-bench-"))
    os.environ["ALKD_HOME"] = str(home)
    os.environ.pop("ALKD_DB", None)

    from streamlit.testing.v1 import AppTest

    from core import store
    from core.paths import db_path
    from dashboard import data
    from dashboard.demo_store import seed_store

    started = time.perf_counter()
    groups = [f"bench-{i:03d}" for i in range(max(1, args.runs // (len(METHODS) * 2)))]
    for start in range(0, len(groups), 20):
        seed_store(db_path(), groups=groups[start:start + 20], methods=METHODS, seeds=(0, 1), dataset="ml-100k",
                   pool=args.pool, budget=args.budget, test_sessions=200, n_items=1600, teacher="openai",
                   model="gpt-4o-mini", usd_per_call=0.0003)
    counts = {t: int(store.query(f"SELECT count(*) AS n FROM {t}")["n"][0])
              for t in ("runs", "selections", "session_results", "llm_calls", "metrics")}
    size = db_path().stat().st_size / 2**20
    print(f"seeded {db_path()} ({size:.0f} MiB) in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{t} {n:,}" for t, n in counts.items()))

    rows = []
    for page in PAGES:
        data.clear_cache()
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
        at.run()
        if page != "home":
            at.switch_page(f"views/{page}.py")
        data.clear_cache()
        t0 = time.perf_counter()
        at.run()
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        at.run()
        warm = time.perf_counter() - t0
        error = "; ".join(str(e.value)[:80] for e in at.exception)
        rows.append((page, cold, warm, error))
    print(f"\n{'page':<10} {'cold s':>8} {'warm s':>8}  {'< 2 s':<6} errors")
    for page, cold, warm, error in rows:
        print(f"{page:<10} {cold:>8.3f} {warm:>8.3f}  {'yes' if cold < 2 else 'NO':<6} {error}")
    import shutil
    shutil.rmtree(home, ignore_errors=True)
    if any(error for *_, error in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
