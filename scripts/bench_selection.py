"""Time the max-min policy p* and a tau=500 ALKDRec selection for pools of 10^3 .. 10^6 sessions.

Usage: .venv/bin/python scripts/bench_selection.py [--repeat 3] [--tau 500] [--no-authors-code]
Prints a table: N, seconds for p* (paper mode), seconds for `select('alkdrec', ..., tau)` in paper mode and,
unless disabled, in authors-code mode (sequential sampler, p recomputed at every draw). Best of --repeat runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.selection import max_min_policy, select  # noqa: E402


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Smallest wall time of `repeat` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tau", type=int, default=500)
    ap.add_argument("--no-authors-code", action="store_true", help="skip the sequential authors-code sampler")
    args = ap.parse_args()
    header = f"{'N':>9} | {'p* (s)':>8} | {'k*/N':>7} | {f'select tau={args.tau} paper (s)':>26}"
    if not args.no_authors_code:
        header += f" | {'authors-code (s)':>16}"
    print(header)
    print("-" * len(header))
    for n in (10**3, 10**4, 10**5, 10**6):
        rng = np.random.default_rng(0)
        ids, cons = np.arange(n, dtype=np.int64), rng.random(n)
        t_policy = best_of(lambda n=n: max_min_policy(n), args.repeat)
        k_ratio = max_min_policy(n).k_star / n
        t_select = best_of(lambda ids=ids, cons=cons: select("alkdrec", ids, cons, args.tau), args.repeat)
        row = f"{n:>9,} | {t_policy:>8.4f} | {k_ratio:>7.4f} | {t_select:>26.4f}"
        if not args.no_authors_code:
            t_ac = best_of(lambda ids=ids, cons=cons: select("alkdrec", ids, cons, args.tau, mode="authors-code"), 1)
            row += f" | {t_ac:>16.4f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
