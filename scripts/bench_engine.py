"""Engine benchmark on alkdrec-ml: per backbone, training throughput, epochs and wall time to early stop (teacher
d=100 and student d=10), full-ranking evaluation speed over all 2,465 test sessions, and peak RSS.

Each backbone runs in its own process so peak RSS is its own. Targets on a 2-core CPU: evaluating all ML test
sessions < 1 s; teacher + student FPMC trained to early stop < 60 s.

    python scripts/bench_engine.py [--backbones fpmc,stamp] [--from DIR]   # default: $ALKD_SHARED/data/alkdrec
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_FROM = Path(os.environ.get("ALKD_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data" / "alkdrec"


def measure(backbone: str, from_dir: Path) -> dict:
    import os
    os.environ["ALKD_HOME"] = tempfile.mkdtemp(prefix="alkd-bench-")   # nothing cached: train from scratch
    from core.data.sources import build
    from core.evaluate import evaluate
    from core.train import TrainConfig, model_scorer, resolve_device, train, training_instances

    dataset = build("alkdrec-ml", from_dir)
    test = dataset.split("test", 10)
    row = {"backbone": backbone}
    total = 0.0
    for role, dim in (("teacher", 100), ("student", 10)):
        config = TrainConfig(backbone=backbone, dim=dim)
        n_rows = len(training_instances(dataset, 10, config.augment_prefixes))
        result = train(dataset, config, device="cpu", use_cache=False)
        epochs = int(result.curve["epoch"].max())
        row[f"{role} epochs"] = epochs
        row[f"{role} s"] = round(result.seconds, 1)
        row[f"{role} samples/s"] = round(n_rows * epochs / result.seconds)
        total += result.seconds
        if role == "teacher":
            scorer = model_scorer(result.model, resolve_device("cpu"))
            evaluate(scorer, test.subset(list(range(64))))              # warm-up
            started = time.perf_counter()
            evaluate(scorer, test)
            seconds = time.perf_counter() - started
            row["eval s (2,465)"] = round(seconds, 3)
            row["eval sessions/s"] = round(len(test) / seconds)
    row["teacher+student s"] = round(total, 1)
    row["peak RSS MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", default="fpmc,stamp,attmix,gru4rec,sasrec")
    parser.add_argument("--from", dest="from_dir", type=Path, default=DEFAULT_FROM)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.from_dir)))
        return
    rows = []
    for backbone in args.backbones.split(","):
        done = subprocess.run([sys.executable, __file__, "--one", backbone, "--from", str(args.from_dir)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{backbone} failed:\n{done.stderr[-2000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"done {backbone}", file=sys.stderr, flush=True)
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(f"{row[c]:,}" if isinstance(row[c], (int, float)) else str(row[c]) for c in columns)
              + " |")


if __name__ == "__main__":
    main()
