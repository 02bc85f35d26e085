"""Cost against the number of sessions N, on the SYNTHETIC source (core/data/sources/synthetic.py; not real data).

For each N (default 10^4, 10^5, 10^6 sessions over 10^5 items) a fresh child process (OMP_NUM_THREADS=1) measures:

- gen: generating the synthetic interaction log and catalogue (`synthetic.generate`);
- ingest: the log through the shared ingestion (sessionize, split, id mapping), written as Parquet, read back and
  cut into the padded train/valid/test batches (what `alkd data fetch` + the first load of a run do);
- rows: the training rows (every prefix -> next item, `core.data.dataset.prefix_instances`);
- train: FPMC d=10 (its own loss and optimiser, as core.train) for `--steps` steps of batch 256 -> samples/s;
- consistency: c_s of every session under that model (`core.selection.consistency`, the difficulty key);
- select: ALKDRec's max-min selection of tau=500 sessions over all N sessions (`core.selection.select`);
- eval: full-ranking evaluation (`core.evaluate.evaluate`, every item a candidate) of the first `--eval-sessions`
  test sessions -> sessions/s;
- peak: the child's peak resident memory (getrusage ru_maxrss).

Times are CPU seconds of the child (`time.process_time`): on a shared machine wall time also counts other processes'
turns; wall seconds are printed beside them. The last lines give the CPU cost per 10^5 sessions of each N-dependent
stage: growing linearly means that number stays flat as N grows.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_scale.py [--sizes 10000,100000,1000000] [--items 100000]
                                                                [--steps 50] [--eval-sessions 4096] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 256
TAU = 500                  # at most a tenth of the pool (a tiny pool's p* has a short support)
SCALED = ("gen", "ingest", "rows", "consistency", "select")   # stages whose cost should grow with N


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, CPU seconds, wall seconds) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def measure(n_sessions: int, n_items: int, steps: int, eval_sessions: int, seed: int) -> dict[str, Any]:
    """Every measurement for one N, in this process (run it in a fresh child so peak memory is its own)."""
    import numpy as np
    import torch

    from core.data.dataset import load_dataset_dir, prefix_instances, save_dataset
    from core.data.sources.synthetic import (
        SyntheticConfig,
        SyntheticLog,
        generate,
        ingest,
    )
    from core.evaluate import evaluate
    from core.models import create
    from core.selection import consistency, select
    from core.train import TrainConfig, batch_indices, model_scorer

    torch.set_num_threads(1)
    out: dict[str, Any] = {"n_sessions": n_sessions, "n_items": n_items}
    config = SyntheticConfig(n_sessions=n_sessions, n_items=n_items, seed=seed)
    generated, out["gen"], out["gen_wall"] = timed(lambda: generate(config))
    out["interactions_generated"] = len(generated.log)

    def ingest_all(log: SyntheticLog):
        with tempfile.TemporaryDirectory(prefix="alkd-bench-scale-") as folder:
            path = save_dataset(ingest(log, config), Path(folder) / "synthetic")
            dataset = load_dataset_dir(path)
            window = int(dataset.meta["max_len"])
            return dataset, {name: dataset.split(name, window) for name in ("train", "valid", "test")}
    (dataset, batches), out["ingest"], out["ingest_wall"] = timed(lambda: ingest_all(generated))
    generated = None                                   # the log is not needed any more: free it before training
    stats = dataset.stats()
    out.update(sessions=stats.n_sessions, interactions=stats.n_interactions, train_sessions=stats.n_train)

    train = dataset.sessions[dataset.sessions["split"] == "train"]
    window = int(dataset.meta["max_len"])
    (inputs, lengths, targets), out["rows"], out["rows_wall"] = timed(
        lambda: prefix_instances(train["items"], train["label"].to_numpy(), window, True))
    out["train_rows"] = len(targets)

    settings = TrainConfig(backbone="fpmc", dim=10, seed=seed)
    torch.manual_seed(seed)
    model = create("fpmc", dataset.n_items, 10, window)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
    index, rng = batch_indices(len(targets), BATCH), np.random.default_rng(seed)

    def fit(tensors: list[torch.Tensor]) -> None:
        model.train()
        for step in range(steps):
            rows = index(step, rng)
            loss = model.loss(*(t[rows] for t in tensors), settings.loss, None)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    _, train_cpu, train_wall = timed(lambda: fit([torch.as_tensor(a) for a in (inputs, lengths, targets)]))
    out.update(train_samples_per_s=steps * BATCH / train_cpu, train_wall_samples_per_s=steps * BATCH / train_wall)
    inputs = lengths = targets = None                 # free the training rows before scoring every session

    def all_consistency():
        ids = np.concatenate([b.session_ids for b in batches.values()])
        x = np.concatenate([b.inputs for b in batches.values()])
        n = np.concatenate([b.lengths for b in batches.values()])
        model.eval()
        with torch.no_grad():
            u = torch.cat([model.encode(torch.as_tensor(x[i:i + 65536]), torch.as_tensor(n[i:i + 65536]))
                           for i in range(0, len(x), 65536)])
            emb = model.item_embeddings()
        return ids, consistency(u.numpy(), emb.detach().numpy(), x, n)
    (ids, values), out["consistency"], out["consistency_wall"] = timed(all_consistency)
    tau = min(TAU, len(ids) // 10)
    _, out["select"], out["select_wall"] = timed(lambda: select("alkdrec", ids, values, tau, seed=seed))
    out["pool"] = len(ids)

    test = batches["test"]
    part = test.subset(np.arange(min(eval_sessions, len(test))))
    result, eval_cpu, eval_wall = timed(lambda: evaluate(model_scorer(model, torch.device("cpu")), part))
    out.update(eval_sessions=len(part), eval_sessions_per_s=len(part) / eval_cpu,
               eval_wall_sessions_per_s=len(part) / eval_wall, test_ndcg10_after_steps=result.metrics["ndcg@10"])
    out["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2   # Linux: KiB
    return out


def run_child(n: int, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    command = [sys.executable, __file__, "--child", str(n), "--items", str(args.items), "--steps", str(args.steps),
               "--eval-sessions", str(args.eval_sessions), "--seed", str(args.seed)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"N={n}: the measuring process failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def table(rows: list[dict[str, Any]], markdown: bool) -> str:
    header = ["N sessions", "kept", "interactions", "gen s", "ingest s", "rows s", "consistency s", "select s",
              "eval sessions/s", "train samples/s", "peak GB"]
    body = [[f"{r['n_sessions']:,}", f"{r['sessions']:,}", f"{r['interactions']:,}",
             f"{r['gen']:.2f} ({r['gen_wall']:.1f})", f"{r['ingest']:.2f} ({r['ingest_wall']:.1f})",
             f"{r['rows']:.2f}", f"{r['consistency']:.2f}", f"{r['select']:.3f} ({r['select_wall']:.2f})",
             f"{r['eval_sessions_per_s']:,.0f}", f"{r['train_samples_per_s']:,.0f}", f"{r['peak_gb']:.2f}"]
            for r in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
    def fmt(cells: list[str]) -> str:
        return "  ".join(cell.rjust(width) for cell, width in zip(cells, widths))
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(row) for row in body])


def linearity(rows: list[dict[str, Any]]) -> list[str]:
    """CPU seconds per 10^5 sessions of each N-dependent stage, and whether it stays within 1.5x of the N=10^5
    (or second-smallest) value at the largest N: the smallest N carries the fixed costs (the 10^5-item catalogue)."""
    lines = []
    reference = rows[1] if len(rows) > 1 else rows[0]
    for stage in SCALED:
        per = [r[stage] / r["n_sessions"] * 1e5 for r in rows]
        ratio = per[-1] / max(reference[stage] / reference["n_sessions"] * 1e5, 1e-12)
        verdict = "linear" if ratio <= 1.5 else f"super-linear ({ratio:.1f}x)"
        lines.append(f"{stage:>12}: " + ", ".join(f"{p:.3f}" for p in per)
                     + f" CPU s per 10^5 sessions -> {verdict}")
    for key, unit in (("eval_sessions_per_s", "eval sessions/s"), ("train_samples_per_s", "train samples/s")):
        values = [r[key] for r in rows]
        lines.append(f"{unit:>16}: " + ", ".join(f"{v:,.0f}" for v in values)
                     + " (constant in N = per-session cost independent of N)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=50, help="training steps of batch 256 per N")
    parser.add_argument("--eval-sessions", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print("RESULT " + json.dumps(measure(args.child, args.items, args.steps, args.eval_sessions, args.seed)))
        return
    rows = []
    for n in (int(size) for size in args.sizes.split(",")):
        rows.append(run_child(n, args))
        print(f"N={n:,} done", file=sys.stderr, flush=True)
    print(f"SYNTHETIC sessions over {args.items:,} items (not real data); {platform.machine()} {os.cpu_count()} CPUs, "
          f"{platform.python_version()}; CPU seconds (wall in parentheses), one thread; FPMC d=10, {args.steps} "
          f"steps of batch {BATCH}; eval = first {args.eval_sessions:,} test sessions, full ranking; tau={TAU}")
    print(table(rows, args.markdown))
    print("\n".join(linearity(rows)))


if __name__ == "__main__":
    main()
