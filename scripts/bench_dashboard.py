"""Dashboard speed in a real browser: navigation -> the page's last chart drawn and its script finished.

Fetches ml-100k and seeds a fresh store under a temporary ALKD_HOME: `--groups` groups of 10 runs (5 LLM methods x
2 seeds, openai teacher at list price) plus one newest group of `--big` runs (10 methods x big/10 seeds) that Compare
opens by default; every LLM run has `--pool` selection rows. Serves the dashboard (scripts/screenshots.serve) and opens
every page in headless system Chromium (Playwright): `cold` is the first visit (fresh server caches), `warm` the
second. Compare is also measured with the per-session paired t-test on the 300-run group, and on a budget sweep
(student, random, alkdrec x 4 budgets x 5 seeds) for its budget chart. Target: Compare on the 300-run group < 3 s,
per-session t-test included.

    python scripts/bench_dashboard.py [--groups 100] [--big 300] [--pool 500]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LLM_METHODS = ("random", "easiest", "hardest", "rad-bc", "alkdrec")
ALL_METHODS = ("student", "teacher", "tr", "random", "easiest", "hardest", "rad-bc", "dllm2rec", "llmd4rec", "alkdrec")
#: page -> (selector that must be drawn, plotly charts the page draws when it is complete)
CHART = '[data-testid="stPlotlyChart"] .main-svg'
#: the budget sweep Compare's budget chart is measured on: (student, random, alkdrec) x these budgets x SWEEP_SEEDS
SWEEP_BUDGETS = (25, 50, 100, 200)
SWEEP_SEEDS = range(5)
#: name -> (path, selector that must be drawn, plotly charts the page draws when it is complete). Compare opens the
#: 300-run group; "compare t/session" with the per-session paired t-test over all its (seed, session) pairs; "budget
#: chart" on the sweep (bars, the two budget charts, the category mix).
PAGES = {"home": ("home", CHART, 1), "launch": ("launch", CHART, 1), "runs": ("runs", '[data-testid="stDataFrame"]', 0),
         "compare": ("compare", CHART, 4), "compare t/session": ("compare?test=session", CHART, 4),
         "budget chart": ("compare?group=" + ",".join(f"sweep-{b}" for b in SWEEP_BUDGETS), CHART, 4),
         "sessions": ("sessions", '[data-testid="stTable"]', 0), "costs": ("costs", CHART, 2)}


def screenshots_module():
    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed(groups: int, big: int, pool: int) -> dict[str, int]:
    import pandas as pd

    from core import store
    from core.paths import db_path
    from dashboard.demo_store import seed_store
    # a real dataset on disk, as in use: Launch draws p* over its pool, Sessions shows titles (offline, ~6 s)
    subprocess.run([sys.executable, "-m", "core.cli", "data", "fetch", "ml-100k"], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    common = dict(dataset="ml-100k", pool=pool, budget=50, test_sessions=200, n_items=1600, teacher="openai",
                  model="gpt-4o-mini", usd_per_call=0.0003)
    names = [f"bench-{i:03d}" for i in range(groups)]
    for start in range(0, len(names), 20):
        seed_store(db_path(), groups=names[start:start + 20], methods=LLM_METHODS, seeds=(0, 1), **common)
    for budget in SWEEP_BUDGETS:   # a budget sweep, one group per budget (as `alkd sweep` names none yet)
        seed_store(db_path(), groups=(f"sweep-{budget}",), methods=("student", "random", "alkdrec"),
                   seeds=SWEEP_SEEDS, base_time=pd.Timestamp("2026-05-01", tz="UTC") + pd.Timedelta(hours=budget),
                   **{**common, "budget": budget})
    seed_store(db_path(), groups=("big",), methods=ALL_METHODS, seeds=range(max(1, big // len(ALL_METHODS))),
               base_time=pd.Timestamp("2026-06-01", tz="UTC"), **common)
    return {t: int(store.query(f"SELECT count(*) AS n FROM {t}")["n"][0])
            for t in ("runs", "selections", "session_results", "llm_calls", "metrics")}


def measure(page, url: str, selector: str, charts: int, timeout_ms: int = 120_000) -> float:
    """Seconds from navigation until `selector` is drawn, `charts` plotly charts are drawn (each draws two
    .main-svg layers: charts are counted, not layers) and the script ended."""
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(selector, timeout=timeout_ms)
    page.wait_for_function(
        "n => [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
        ".filter(e => e.querySelector('.main-svg')).length >= n"
        " && !document.querySelector('[data-testid=\"stStatusWidget\"]')", arg=charts, timeout=timeout_ms)
    elapsed = time.perf_counter() - started
    if page.locator('[data-testid="stException"]').count():
        raise RuntimeError(f"{url}: {page.locator('[data-testid=stException]').first.inner_text()[:300]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=100, help="groups of 10 runs (5 LLM methods x 2 seeds)")
    parser.add_argument("--big", type=int, default=300, help="runs of the newest group, the one Compare opens")
    parser.add_argument("--pool", type=int, default=500, help="pool sessions per LLM run (selection rows)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="alkd-bench-"))
    os.environ["ALKD_HOME"] = str(home)
    os.environ.pop("ALKD_DB", None)
    shots = screenshots_module()
    try:
        started = time.perf_counter()
        counts = seed(args.groups, args.big, args.pool)
        print(f"seeded in {time.perf_counter() - started:.1f} s: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
        rows = []
        with shots.serve({"ALKD_HOME": str(home)}) as url, shots.browser() as page:
            for name, (path, selector, charts) in PAGES.items():
                cold = measure(page, f"{url}/{path}", selector, charts)
                warm = measure(page, f"{url}/{path}", selector, charts)
                rows.append((name, cold, warm))
        print(f"\n{'page':<18} {'cold s':>8} {'warm s':>8}  < 3 s")
        for name, cold, warm in rows:
            print(f"{name:<18} {cold:>8.2f} {warm:>8.2f}  {'yes' if max(cold, warm) < 3 else 'NO'}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
