"""alkd against RecBole 1.2.1 on the same instances (issue 14): train FPMC, STAMP, GRU4Rec and SASRec at d=100 and
d=10 in both toolkits and compare under both evaluation protocols.

    python scripts/bench_peers.py setup [--venv DIR]          # RecBole's scratch venv, never a product dependency
    python scripts/bench_peers.py run --datasets alkdrec-ml,alkdrec-games --backbones fpmc,stamp,gru4rec,sasrec \
        --dims 100,10 --seeds 0 --lrs ours,recbole [--max-epochs 30] [--venv DIR] [--from DIR] \
        [--ours-set dropout=0.3,dense=true,tied=true]   # a variant of our backbone beside the same RecBole rows
    python scripts/bench_peers.py report                       # docs/peers.md from docs/peers/results.jsonl only

Same instances: RecBole reads benchmark atomic files written from our split (`convert`): one training row per
instance our trainer sees (core.train.training_instances: every prefix, last max_len items), one validation / test row
per session with our evaluation window; each row is its own user. Same optimiser (Adam, no weight decay), batch,
epoch limit and patience (our backbone's), early stopping on validation NDCG@10 every epoch, one thread, the runs
back to back; each lr at our backbone's default and at RecBole's (1e-3). RecBole's full score matrix of the test rows,
mapped back to our item ids, is ranked by core.evaluate (window items excluded except the label, ties by id, true
NDCG) beside RecBole's own full-sort NDCG@10. Each finished (dataset, backbone, d, toolkit, lr, seed, epoch limit) is
one line appended to docs/peers/results.jsonl at once; a rerun skips the lines already there (resumable).
`--ours-set` trains our side with backbone settings (core/models: e.g. GRU4Rec in RecBole's shape) as rows of their
own, each compared with the same RecBole rows (RecBole is not rerun for it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "scripts" / "peers_recbole_worker.py"
ARCHIVE = ROOT / "docs" / "peers"
REPORT = ROOT / "docs" / "peers.md"
RESULTS = "results.jsonl"

DATASETS = ("alkdrec-ml", "alkdrec-games")
BACKBONES = ("fpmc", "stamp", "gru4rec", "sasrec")
RECBOLE_MODEL = {"fpmc": "FPMC", "stamp": "STAMP", "gru4rec": "GRU4Rec", "sasrec": "SASRec"}
DIMS = (100, 10)
LR_CHOICES = ("ours", "recbole")
TOOLKITS = ("alkd", "recbole")
#: RecBole 1.2.1's overall.yaml learning_rate
RECBOLE_LR = 1e-3
#: the full runs' epoch limit: our trainer's default (core.train.TrainConfig.max_epochs)
FULL_EPOCHS = 30
RECBOLE_VERSION = "1.2.1"
#: RecBole itself is installed without its declared requirements (they pull ray 2.6, thop, plotly, ...): 1.2.1 imports
#: these at module level (config yaml, logging, tensorboard writer, metrics, tables); its other
#: requirements (ray, thop, plotly, psutil, tabulate) are only used by paths the worker never takes. numpy/scipy/pandas
#: pinned below what 1.2.1 still runs with (np.float, scipy's sparse API, pandas' agg on object columns).
RECBOLE_PACKAGES = ("numpy<2", "scipy<1.13", "pandas<2.2", "tqdm", "colorlog==4.7.2",
                    "colorama==0.4.4", "scikit-learn", "pyyaml", "tensorboard", "texttable")
TORCH_PIN = "torch==2.13.0"      # the local CPU wheel; a bare torch in a fresh venv pulls a multi-GB CUDA build


class PeersError(Exception):
    """Bad input or a missing prerequisite: printed as one `Error:` line naming what and the fix."""


# ---------------------------------------------------------------------------------------------------------- setup

def default_venv() -> Path:
    """$ALKD_HOME/peers/recbole-venv (ALKD_HOME default ./data): outside the product's environment."""
    from core.paths import data_home
    return data_home() / "peers" / "recbole-venv"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def venv_ready(venv: Path) -> bool:
    """Whether `venv` imports RecBole 1.2.1 and the modules the worker uses."""
    python = venv_python(venv)
    if not python.exists():
        return False
    probe = ("import recbole, recbole.config, recbole.data, recbole.trainer, recbole.utils; "
             f"assert recbole.__version__ == {RECBOLE_VERSION!r}")
    return subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0


def setup(venv: Path, log: Callable[[str], None] = print) -> Path:
    """Create RecBole's scratch venv at `venv` (torch 2.13.0 CPU first, then RecBole and what it imports); a ready
    venv is left as it is. PeersError naming the failing step and its log file otherwise."""
    if venv_ready(venv):
        log(f"RecBole {RECBOLE_VERSION} venv ready: {venv}")
        return venv
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PeersError(f"--venv {venv}: cannot create its folder ({error.strerror or error}) (fix: pass a --venv "
                         "in a writable folder)") from None
    logfile = venv.parent / "setup.log"
    steps = [([sys.executable, "-m", "venv", str(venv)], "create the venv"),
             ([str(venv_python(venv)), "-m", "pip", "install", "-q", TORCH_PIN], f"pip install {TORCH_PIN}"),
             ([str(venv_python(venv)), "-m", "pip", "install", "-q", "--no-deps", f"recbole=={RECBOLE_VERSION}"],
              f"pip install --no-deps recbole=={RECBOLE_VERSION}"),
             ([str(venv_python(venv)), "-m", "pip", "install", "-q", *RECBOLE_PACKAGES],
              "pip install " + " ".join(RECBOLE_PACKAGES))]
    with logfile.open("a") as out:
        for command, what in steps:
            log(f"setup: {what}")
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                raise PeersError(f"setup could not {what} (exit {done.returncode}; its output is in {logfile}) "
                                 "(fix: read the log, then rerun `bench_peers.py setup`)")
    if not venv_ready(venv):
        raise PeersError(f"{venv} was installed but does not import RecBole {RECBOLE_VERSION} (see {logfile}) "
                         f"(fix: delete {venv} and rerun `bench_peers.py setup`)")
    log(f"RecBole {RECBOLE_VERSION} venv ready: {venv}")
    return venv


def check_venv(venv: Path) -> Path:
    if not venv_python(venv).exists():
        raise PeersError(f"no RecBole venv at {venv} (fix: run `bench_peers.py setup` first, or pass --venv)")
    return venv


# ----------------------------------------------------------------------------------------------------- conversion

@dataclass(frozen=True)
class Benchmark:
    """RecBole benchmark files of one dataset: `folder / name / name.{train,valid,test}.inter` plus `name.item`.

    n_train: rows of the training file (= our training instances); n_items: our catalogue size (every id 1..n_items
    is listed in the .item file, so RecBole ranks the same catalogue)."""

    folder: Path
    name: str
    n_train: int
    n_valid: int
    n_test: int
    n_items: int
    max_len: int


INTER_HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"


def _rows(prefix: str, keys: Iterable[int], inputs: Any, lengths: Any, targets: Any) -> Iterable[str]:
    """One atomic-file line per row: user `<prefix><key>`, its window (our item ids, oldest first), its target."""
    for key, window, length, target in zip(keys, inputs, lengths, targets):
        yield f"{prefix}{key}\t{' '.join(map(str, window[:length].tolist()))}\t{int(target)}\n"


def convert(dataset: Any, folder: Path) -> Benchmark:
    """Write `dataset`'s split as RecBole sequential benchmark files under `folder / dataset.name`.

    train: exactly core.train.training_instances(dataset, max_len, augment_prefixes=True), user `t<row>`;
    valid / test: one row per session with our evaluation window (dataset.split(name, max_len)), user `v<session>` /
    `e<session>`. Every row its own user, so RecBole masks no history across rows. Item ids are written as our ids
    (tokens); RecBole's remapping is inverted through its field2id_token."""
    from core.train import training_instances
    max_len = int(dataset.meta.get("max_len", 50))
    target = folder / dataset.name
    target.mkdir(parents=True, exist_ok=True)
    train = training_instances(dataset, max_len, augment_prefixes=True)
    counts = {}
    parts = {"train": ("t", range(len(train)), train.inputs, train.lengths, train.targets)}
    for split, prefix in (("valid", "v"), ("test", "e")):
        batch = dataset.split(split, max_len)
        parts[split] = (prefix, batch.session_ids, batch.inputs, batch.lengths, batch.labels)
    for split, (prefix, keys, inputs, lengths, targets) in parts.items():
        path = target / f"{dataset.name}.{split}.inter"
        staging = path.with_suffix(".inter.tmp")
        with staging.open("w") as out:
            out.write(INTER_HEADER)
            out.writelines(_rows(prefix, keys, inputs, lengths, targets))
        os.replace(staging, path)
        counts[split] = len(targets)
    (target / f"{dataset.name}.item").write_text(
        "item_id:token\n" + "".join(f"{item}\n" for item in range(1, dataset.n_items + 1)))
    return Benchmark(folder, dataset.name, counts["train"], counts["valid"], counts["test"], dataset.n_items, max_len)


def read_inter(path: Path) -> list[tuple[str, list[int], int]]:
    """(user, window, target) rows of a benchmark .inter file (for checks and tests)."""
    lines = path.read_text().splitlines()
    if lines[0] + "\n" != INTER_HEADER:
        raise PeersError(f"{path}, line 1: header {lines[0]!r} is not {INTER_HEADER.strip()!r}")
    rows = []
    for line in lines[1:]:
        user, window, target = line.split("\t")
        rows.append((user, [int(i) for i in window.split()], int(target)))
    return rows


# ------------------------------------------------------------------------------------------------------- protocol

def protocol_metrics(scores: Any, sessions: Any, batch: Any) -> Any:
    """RecBole's test score matrix under our protocol: core.evaluate.evaluate (window items excluded except the
    label, ties by lower item id, true NDCG). scores: (n, n_items + 1) float, row i for session sessions[i] (any
    order); batch: our test SessionBatch. Returns core.evaluate.EvalResult, ranks in the batch's order."""
    import numpy as np
    import torch

    from core.evaluate import evaluate
    scores = np.asarray(scores, dtype=np.float32)
    index = {int(session): row for row, session in enumerate(np.asarray(sessions).tolist())}
    missing = [int(s) for s in batch.session_ids if int(s) not in index]
    if missing or len(index) != len(batch):
        raise PeersError(f"RecBole scored {len(index)} test sessions, ours are {len(batch)} (first missing: "
                         f"{missing[:1]}) (fix: rerun; the benchmark files are rewritten before every RecBole run)")

    def score(part: Any) -> torch.Tensor:
        return torch.from_numpy(scores[[index[int(s)] for s in part.session_ids]])
    return evaluate(score, batch)


# ----------------------------------------------------------------------------------------------------------- runs

@dataclass(frozen=True)
class Job:
    """One result row's identity."""

    dataset: str
    backbone: str
    dim: int
    toolkit: str
    lr: float
    lr_choice: str        # "ours", "recbole", or "ours = recbole" when the two are the same value
    seed: int
    max_epochs: int
    settings: str = ""    # our backbone's settings, "key=value,..." sorted ("" = its defaults; alkd rows only)

    def key(self) -> tuple:
        return (self.dataset, self.backbone, self.dim, self.toolkit, round(self.lr, 12), self.seed, self.max_epochs,
                self.settings)


def row_key(row: dict) -> tuple:
    return (row["dataset"], row["backbone"], int(row["dim"]), row["toolkit"], round(float(row["lr"]), 12),
            int(row["seed"]), int(row["max_epochs"]), row.get("settings", ""))


def parse_settings(text: str, backbones: Sequence[str]) -> str:
    """`--ours-set` "k=v,k=v" (core.cli_format.parse_pairs) checked against each backbone's Config (core/models) ->
    the settings sorted, as "k=v,..." with JSON values ("" = the defaults)."""
    from pydantic import ValidationError

    from core.cli_format import parse_pairs
    from core.models.registry import BACKBONES as REGISTRY
    from core.models.registry import backbone_config
    try:
        settings = parse_pairs(p for p in text.split(",") if p.strip())
    except ValueError:
        raise PeersError(f"--ours-set {text!r}: expected KEY=VALUE pairs separated by commas (fix: e.g. --ours-set "
                         "dropout=0.3,tied=true)") from None
    for backbone in backbones:
        try:
            backbone_config(backbone, settings)
        except ValidationError as error:
            first = error.errors()[0]
            known = ", ".join(REGISTRY.get(backbone).Config.model_fields) or "none"
            raise PeersError(f"--ours-set {text!r}: {backbone}'s {'.'.join(map(str, first['loc']))}: "
                             f"{first['msg']} (fix: its settings are {known})") from None
    return ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(settings.items()))


def settings_dict(settings: str) -> dict[str, Any]:
    """parse_settings' text -> {key: value}."""
    from core.cli_format import parse_pairs
    return parse_pairs(p for p in settings.split(",") if p)


def our_train_settings(backbone: str, dim: int, seed: int) -> Any:
    """Our TrainConfig for the backbone (its own lr / patience / loss), the reference for both toolkits."""
    from core.train import TrainConfig
    return TrainConfig(backbone=backbone, dim=dim, seed=seed)


def lr_values(backbone: str, choices: Sequence[str]) -> list[tuple[float, str]]:
    """[(lr, label)] for the lr choices: ours = the backbone's default, recbole = RecBole's 1e-3; one entry, labelled
    "ours = recbole", when they coincide (FPMC)."""
    ours = float(our_train_settings(backbone, 10, 0).lr)
    values = {"ours": ours, "recbole": RECBOLE_LR}
    out: list[tuple[float, str]] = []
    for choice in choices:
        lr = values[choice]
        same = [i for i, (value, _) in enumerate(out) if math.isclose(value, lr)]
        if same:
            out[same[0]] = (lr, "ours = recbole")
        else:
            out.append((lr, "ours = recbole" if math.isclose(ours, RECBOLE_LR) else choice))
    return out


def plan(datasets: Sequence[str], backbones: Sequence[str], dims: Sequence[int], seeds: Sequence[int],
         lrs: Sequence[str], max_epochs: int, toolkits: Sequence[str] = TOOLKITS, settings: str = "") -> list[Job]:
    """Every job, dataset → backbone → d → lr → seed → toolkit (the two toolkits of a setting back to back);
    settings: our side's backbone settings (parse_settings), never RecBole's."""
    return [Job(dataset, backbone, dim, toolkit, lr, label, seed, max_epochs, settings if toolkit == "alkd" else "")
            for dataset in datasets for backbone in backbones for dim in dims
            for lr, label in lr_values(backbone, lrs) for seed in seeds for toolkit in toolkits]


def load_results(archive: Path) -> list[dict]:
    """Rows of archive/results.jsonl (a torn last line, from a killed run, is ignored: that job reruns)."""
    path = archive / RESULTS
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def append_result(archive: Path, row: dict) -> None:
    """One line, flushed and synced: a finished job is never lost and never half-written next to good rows."""
    archive.mkdir(parents=True, exist_ok=True)
    path = archive / RESULTS
    text = json.dumps(row, sort_keys=True) + "\n"
    with path.open("a") as out:
        if path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            out.write("\n")           # end a torn line a killed writer left, so this row stands on its own
        out.write(text)
        out.flush()
        os.fsync(out.fileno())


def pending(jobs: Sequence[Job], archive: Path) -> list[Job]:
    done = {row_key(row) for row in load_results(archive)}
    return [job for job in jobs if job.key() not in done]


def load_dataset(name: str, from_dir: Path | None) -> Any:
    """A fetched dataset; fetched first from `from_dir` when it is not there yet."""
    from core.data import catalog
    from core.data.errors import DataError
    from core.paths import dataset_dir
    try:
        if not (dataset_dir(name, field="--datasets") / "meta.json").exists() and from_dir is not None:
            return catalog.fetch(name, from_dir)
        return catalog.load(name)
    except DataError as error:
        raise PeersError(str(error)) from None


def run_alkd(job: Job, dataset: Any) -> dict:
    """Our trainer on our instances (core.train.fit, one thread), then our test evaluation."""
    import torch

    from core.evaluate import evaluate
    from core.models import create
    from core.train import TrainConfig, fit, model_scorer, training_instances
    torch.set_num_threads(1)
    reference = our_train_settings(job.backbone, job.dim, job.seed)
    config = TrainConfig(backbone=job.backbone, dim=job.dim, seed=job.seed, lr=job.lr,
                         max_epochs=job.max_epochs, patience=reference.patience, batch_size=reference.batch_size,
                         **settings_dict(job.settings))
    max_len = int(dataset.meta.get("max_len", 50))
    instances = training_instances(dataset, max_len, config.augment_prefixes)
    torch.manual_seed(config.seed)
    model = create(config.backbone, dataset.n_items, config.dim, max_len, config.backbone_config)
    device = torch.device("cpu")
    started = time.perf_counter()
    curve, best_epoch, _ = fit(model, instances, dataset.split("valid", max_len), config, device)
    seconds = time.perf_counter() - started
    test = evaluate(model_scorer(model, device), dataset.split("test", max_len))
    epochs = int(curve["epoch"].max())
    return {"best_epoch": int(best_epoch), "epochs_run": epochs, "train_seconds": seconds,
            "n_train": len(instances), "samples_per_s": len(instances) * epochs / seconds,
            "ours": {"recall@10": test.metrics["recall@10"], "ndcg@10": test.metrics["ndcg@10"]},
            "own": None, "loss": config.loss, "patience": config.patience, "batch": config.batch_size,
            "threads": torch.get_num_threads(), "backbone_config": model.config.changed()}


def run_recbole(job: Job, dataset: Any, venv: Path, work: Path) -> dict:
    """RecBole on the benchmark files (peers_recbole_worker.py in the venv, one thread), its score matrix evaluated
    under our protocol beside its own metrics. The work folder is removed afterwards (score matrices are large)."""
    reference = our_train_settings(job.backbone, job.dim, job.seed)
    bench = convert(dataset, work / "benchmark")
    out = work / f"run-{os.getpid()}"          # this process's own: a second runner never shares it
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    spec = {"model": RECBOLE_MODEL[job.backbone], "dataset": bench.name, "data_path": str(bench.folder),
            "d": job.dim, "lr": job.lr, "batch": reference.batch_size, "epochs": job.max_epochs,
            # RecBole stops after stopping_step + 1 validations without improvement, ours after `patience`
            "stopping_step": int(reference.patience) - 1, "seed": job.seed, "max_len": bench.max_len,
            "out": str(out)}
    (out / "job.json").write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(venv_python(venv)), str(WORKER), str(out / "job.json")], cwd=out, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        (work / "worker.log").write_text(done.stdout + done.stderr)
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise PeersError(f"RecBole worker failed on {job.dataset}/{job.backbone}/d={job.dim}: {last} "
                         f"(full output: {work / 'worker.log'})")
    result = json.loads((out / "result.json").read_text())
    if (result["n_train"], result["n_valid"], result["n_test"]) != (bench.n_train, bench.n_valid, bench.n_test):
        raise PeersError(f"RecBole loaded {result['n_train']}/{result['n_valid']}/{result['n_test']} train/valid/"
                         f"test rows, the files hold {bench.n_train}/{bench.n_valid}/{bench.n_test}")
    import numpy as np
    scores = np.load(out / "scores.npy")
    if scores.shape[1] != dataset.n_items + 1:
        raise PeersError(f"RecBole scored {scores.shape[1] - 1} item ids, the dataset has {dataset.n_items}")
    test = protocol_metrics(scores, np.load(out / "sessions.npy"), dataset.split("test", bench.max_len))
    shutil.rmtree(out, ignore_errors=True)
    own = result["recbole_test"]
    return {"best_epoch": result["best_epoch"], "epochs_run": result["epochs_run"],
            "train_seconds": result["train_seconds"], "n_train": result["n_train"],
            "samples_per_s": result["n_train"] * result["epochs_run"] / result["train_seconds"],
            "ours": {"recall@10": test.metrics["recall@10"], "ndcg@10": test.metrics["ndcg@10"]},
            "own": {"recall@10": own.get("recall@10"), "ndcg@10": own.get("ndcg@10")},
            "loss": "bpr (1 uniform negative)" if job.backbone == "fpmc" else "ce", "patience": reference.patience,
            "batch": reference.batch_size, "threads": result["threads"], "recbole": RECBOLE_VERSION}


def git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def run(jobs: Sequence[Job], archive: Path, venv: Path, from_dir: Path | None, work: Path,
        log: Callable[[str], None] = print,
        runners: dict[str, Callable[[Job, Any], dict]] | None = None) -> int:
    """Run every job not yet in the archive, appending each row as it finishes; returns how many ran.
    runners: toolkit -> fn(job, dataset) (tests pass their own; default: run_alkd / run_recbole)."""
    todo = pending(jobs, archive)
    if runners is None and any(job.toolkit == "recbole" for job in todo):
        check_venv(venv)
    log(f"{len(jobs) - len(todo)} of {len(jobs)} rows already archived; {len(todo)} to run")
    if not todo:
        return 0
    if runners is None:
        runners = {"alkd": run_alkd, "recbole": lambda job, data: run_recbole(job, data, venv, work)}
    datasets: dict[str, Any] = {}
    for job in todo:
        if job.dataset not in datasets:
            datasets[job.dataset] = load_dataset(job.dataset, from_dir)
        log(f"{job.dataset} {job.backbone}{f' ({job.settings})' if job.settings else ''} d={job.dim} lr={job.lr:g} "
            f"({job.lr_choice}) seed {job.seed} {job.toolkit} (epoch limit {job.max_epochs}) ...")
        measured = runners[job.toolkit](job, datasets[job.dataset])
        row = {**asdict(job), **measured, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "commit": git_commit(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "load1": round(os.getloadavg()[0], 2)}
        append_result(archive, row)
        log(f"  NDCG@10 {row['ours']['ndcg@10']:.4f} (our protocol), best epoch {row['best_epoch']}/"
            f"{row['epochs_run']}, {row['train_seconds']:.1f} s, {row['samples_per_s']:,.0f} samples/s")
    return len(todo)


# --------------------------------------------------------------------------------------------------------- report

@dataclass(frozen=True)
class Side:
    """One toolkit's rows of one setting (one per seed)."""

    rows: tuple[dict, ...]

    def values(self, pick: Callable[[dict], Any]) -> list[float]:
        return [float(v) for v in map(pick, self.rows) if v is not None]

    def mean_std(self, pick: Callable[[dict], Any]) -> tuple[float, float] | None:
        from core.evaluate import mean_std
        values = self.values(pick)
        return mean_std(values) if values else None


def _ndcg(row: dict) -> float:
    return row["ours"]["ndcg@10"]


def _cell(stat: tuple[float, float] | None, n: int, digits: int = 4, thousands: bool = False) -> str:
    if stat is None:
        return "not run"
    fmt = (lambda v: f"{v:,.0f}") if thousands else (lambda v: f"{v:.{digits}f}")
    return fmt(stat[0]) + (f" ± {fmt(stat[1])}" if n > 1 else "")


def verdict(alkd: Side, recbole: Side) -> str:
    """Issue 14's bar for one row: alkd's NDCG@10 (our protocol) >= RecBole's - 1 std of RecBole's (within 5% when
    either side has one seed), and alkd's samples/s >= RecBole's."""
    a, r = alkd.mean_std(_ndcg), recbole.mean_std(_ndcg)
    sa, sr = alkd.mean_std(lambda row: row["samples_per_s"]), recbole.mean_std(lambda row: row["samples_per_s"])
    if a is None or r is None or sa is None or sr is None:
        return "–"
    one_seed = min(len(alkd.rows), len(recbole.rows)) == 1
    accuracy = a[0] >= 0.95 * r[0] if one_seed else a[0] >= r[0] - r[1]
    speed = sa[0] >= sr[0]
    return f"NDCG {'met' if accuracy else 'NOT met'}, speed {'met' if speed else 'NOT met'}"


def _ratio(a: tuple[float, float] | None, b: tuple[float, float] | None) -> str:
    return f"{a[0] / b[0]:.2f}" if a and b and b[0] > 0 else "–"


COLUMNS = ("dataset", "backbone", "d", "lr", "seeds", "alkd R@10", "alkd NDCG@10", "RecBole R@10", "RecBole NDCG@10",
           "RecBole R@10 (its own)", "RecBole NDCG@10 (its own)", "best epoch alkd / RecBole",
           "wall s alkd / RecBole", "samples/s alkd", "samples/s RecBole", "NDCG ratio", "samples/s ratio", "bar")


def table_row(setting: tuple, sides: dict[str, Side]) -> list[str]:
    """One row of the table: setting = (dataset, backbone, dim, lr, lr label, our settings); sides: toolkit ->
    Side."""
    dataset, backbone, dim, lr, label, settings = setting
    alkd, rb = sides.get("alkd", Side(())), sides.get("recbole", Side(()))
    na, nr = len(alkd.rows), len(rb.rows)
    if na == 0 and nr == 0:
        seeds = "not run"
    elif na == nr:
        seeds = f"{na}" + (" (one seed)" if na == 1 else "")
    else:
        seeds = f"alkd {na}, RecBole {nr}" + (" (one seed)" if min(na, nr) == 1 else "")

    def pair(pick: Callable[[dict], Any], digits: int = 1, whole: bool = False) -> str:
        """alkd / RecBole; whole: a count, shown without decimals when it is one seed's."""
        return " / ".join(_cell(side.mean_std(pick), len(side.rows), 0 if whole and len(side.rows) == 1 else digits)
                          for side in (alkd, rb))

    return [dataset, backbone + (f" (alkd: {settings})" if settings else ""), str(dim), f"{lr:g} ({label})", seeds,
            _cell(alkd.mean_std(lambda r: r["ours"]["recall@10"]), na),
            _cell(alkd.mean_std(_ndcg), na),
            _cell(rb.mean_std(lambda r: r["ours"]["recall@10"]), nr), _cell(rb.mean_std(_ndcg), nr),
            _cell(rb.mean_std(lambda r: r["own"]["recall@10"]), nr),
            _cell(rb.mean_std(lambda r: r["own"]["ndcg@10"]), nr),
            pair(lambda r: r["best_epoch"], whole=True), pair(lambda r: r["train_seconds"]),
            _cell(alkd.mean_std(lambda r: r["samples_per_s"]), na, thousands=True),
            _cell(rb.mean_std(lambda r: r["samples_per_s"]), nr, thousands=True),
            _ratio(alkd.mean_std(_ndcg), rb.mean_std(_ndcg)),
            _ratio(alkd.mean_std(lambda r: r["samples_per_s"]), rb.mean_std(lambda r: r["samples_per_s"])),
            verdict(alkd, rb)]


def group(rows: Sequence[dict], max_epochs: int) -> dict[tuple, dict[str, Side]]:
    """Rows at epoch limit `max_epochs` by setting (dataset, backbone, dim, lr, lr label, our settings) and toolkit;
    RecBole's rows of (dataset, backbone, dim, lr) stand beside every variant of ours. A seed's later row replaces an
    earlier one of the same key (a rerun after deleting nothing keeps the newest)."""
    latest: dict[tuple, dict] = {}
    for row in rows:
        if int(row["max_epochs"]) == max_epochs:
            latest[row_key(row)] = row
    ours: dict[tuple, list] = {}
    theirs: dict[tuple, list] = {}
    for row in latest.values():
        base = (row["dataset"], row["backbone"], int(row["dim"]), float(row["lr"]), row["lr_choice"])
        if row["toolkit"] == "alkd":
            ours.setdefault(base + (row.get("settings", ""),), []).append(row)
        else:
            theirs.setdefault(base, []).append(row)
    settings = set(ours) | {base + ("",) for base in theirs}

    def side(found: list | None) -> dict[str, Side]:
        return {} if not found else {found[0]["toolkit"]: Side(tuple(sorted(found, key=lambda r: r["seed"])))}
    return {s: side(ours.get(s)) | side(theirs.get(s[:5])) for s in settings}


def markdown(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in body]


PROTOCOL = f"""\
**Protocol.** Both toolkits train on the same instances: RecBole {RECBOLE_VERSION} reads benchmark atomic files
written from our split (`user_id:token item_id_list:token_seq item_id:token`; `benchmark_filename`, so RecBole does
not re-split): every training prefix our trainer sees (last `max_len` items; the script checks RecBole loaded exactly
as many rows as our trainer has instances), and one validation / test row per session with our evaluation window. Every
row is its own user, so RecBole masks no history across rows; every item id is listed in a `.item` file, so both rank
the same catalogue, and RecBole's internal ids are mapped back to ours through its `field2id_token`. Same optimiser
(Adam, no weight decay), batch (ours, 256), epoch limit, early stopping on validation NDCG@10 after every epoch with
our backbone's patience (RecBole `stopping_step` = patience − 1: it stops after `stopping_step` + 1 stale epochs),
best-epoch weights for test, one thread (`torch.set_num_threads(1)`, `OMP_NUM_THREADS=1`), the two toolkits of a
setting back to back. Each setting runs at our backbone's default lr and at RecBole's (1e-3); for FPMC they are the
same. Losses: full-softmax cross-entropy in both for STAMP, GRU4Rec and SASRec; FPMC is BPR in both but not the same
BPR — RecBole's with one uniformly sampled negative per row (its only FPMC loss, and its FPMC keeps a user–item term,
which for a user seen once is near noise), ours in-batch BPR (each row's target against the batch's other targets).
Sizes: RecBole `embedding_size` = `hidden_size` = d (SASRec also `inner_size` = d, as ours); its other model settings
are its defaults. **Our protocol** ranks RecBole's full score matrix of the test rows with `core.evaluate` exactly as
alkd's own models: full catalogue, the session window's items excluded except the label, ties broken by lower item
id, true NDCG (1/log2(rank + 2)); **its own** is RecBole's full-sort evaluator (window items not excluded). Wall s
is `Trainer.fit` / `core.train.fit` including the per-epoch validation; samples/s = training instances × epochs run /
wall s. Ratios are alkd / RecBole of the means. The bar (issue 14): alkd's NDCG@10 ≥ RecBole's − 1 std of RecBole's
over seeds (within 5% when a row has one seed), and alkd's samples/s ≥ RecBole's."""


def report(rows: Sequence[dict], datasets: Sequence[str] = DATASETS, backbones: Sequence[str] = BACKBONES,
           dims: Sequence[int] = DIMS, full_epochs: int = FULL_EPOCHS) -> str:
    """docs/peers.md from archived rows only: the full grid at `full_epochs` (a setting without rows says
    "not run"), then rows run at any other epoch limit, each table headed by its limit (smoke settings)."""
    lines = ["# alkd against RecBole on the same data", "",
             "Generated by `python scripts/bench_peers.py report` from `docs/peers/results.jsonl` (written by "
             "`bench_peers.py run`, one line per finished run; nothing here is typed by hand).", "", PROTOCOL, "",
             f"## Full runs (epoch limit {full_epochs})", ""]
    full = group(rows, full_epochs)
    grid = [(d, b, dim, lr, label, "") for d in datasets for b in backbones for dim in dims
            for lr, label in lr_values(b, LR_CHOICES)]
    complete = sum(1 for setting in grid if {"alkd", "recbole"} <= set(full.get(setting, {})))
    instances = {r["dataset"]: r["n_train"] for r in rows}
    lines[-2:-2] = [f"Status: {complete} of {len(grid)} settings of the full grid have run in both toolkits."
                    + ("" if not instances else " Training instances, identical in both toolkits: "
                       + ", ".join(f"{name} {n:,}" for name, n in sorted(instances.items())) + "."), ""]
    body = [table_row(setting, full.get(setting, {})) for setting in grid]
    body += [table_row(s, sides) for s, sides in sorted(full.items()) if s not in grid]
    lines += markdown(COLUMNS, body)
    for limit in sorted({int(r["max_epochs"]) for r in rows} - {full_epochs}):
        short = group(rows, limit)
        lines += ["", f"## Smoke runs: epoch limit {limit} (NOT comparable results: training stopped at {limit} "
                      f"epoch{'s' if limit > 1 else ''})", ""]
        lines += markdown(COLUMNS, [table_row(s, sides)[:-1] + ["– (smoke)"] for s, sides in sorted(short.items())])
    machines = sorted({f"{r.get('machine', '?')}" for r in rows})
    if rows:
        lines += ["", f"Measured on: {'; '.join(machines)}; 1-minute load average while a row finished: "
                      f"{min(r.get('load1', 0) for r in rows):g}–{max(r.get('load1', 0) for r in rows):g} "
                      "(a busy machine slows both toolkits; compare rows run back to back)."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------------ CLI

def _names(text: str, allowed: Sequence[str] | None, flag: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise PeersError(f"{flag} {text!r} names nothing (fix: e.g. {flag} {','.join(allowed or ['alkdrec-ml'])})")
    for value in values:
        if allowed is not None and value not in allowed:
            raise PeersError(f"{flag}: unknown {value!r} (fix: choose from {', '.join(allowed)})")
    return values


def _ints(text: str, flag: str, low: int) -> list[int]:
    try:
        values = [int(v) for v in _names(text, None, flag)]
    except ValueError:
        raise PeersError(f"{flag} {text!r} is not a comma-separated list of integers (fix: e.g. {flag} 0,1,2)"
                         ) from None
    if any(v < low for v in values):
        raise PeersError(f"{flag} {text!r}: every value must be >= {low}")
    return values


def check_datasets(names: Sequence[str], from_dir: Path | None) -> None:
    """Each name is a fetched dataset, or a source `from_dir` can build; else PeersError before anything runs."""
    from core.data.sources import SOURCES
    from core.paths import check_name, dataset_dir
    for name in names:
        try:
            check_name(name, field="--datasets", fix="--datasets alkdrec-ml")
        except Exception as error:        # core.paths.UnsafeName: already one line
            raise PeersError(str(error)) from None
        if (dataset_dir(name, field="--datasets") / "meta.json").exists():
            continue
        if name not in SOURCES.names():
            raise PeersError(f"--datasets: unknown dataset {name!r}: not fetched and not a source (fix: "
                             f"`alkd data fetch SOURCE --name {name}` first, or use {', '.join(DATASETS)})")
        if from_dir is None or not from_dir.is_dir():
            raise PeersError(f"--datasets: {name!r} has not been fetched and --from {from_dir} is not a folder (fix: "
                             f"`alkd data fetch {name} --from DIR`, or pass --from DIR)")


def default_from() -> Path | None:
    """$ALKD_SHARED/data/alkdrec when it exists (where the authors' files live on the project's machines)."""
    shared = os.environ.get("ALKD_SHARED")
    path = (Path(shared) if shared else ROOT.parent / "shared") / "data" / "alkdrec"
    return path if path.is_dir() else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("setup", "run"):
        sub = commands.add_parser(name)
        sub.add_argument("--venv", type=Path, default=None, help="RecBole's venv (default $ALKD_HOME/peers/"
                                                                 "recbole-venv)")
    run_parser = commands.choices["run"]
    run_parser.add_argument("--datasets", default=",".join(DATASETS))
    run_parser.add_argument("--backbones", default=",".join(BACKBONES))
    run_parser.add_argument("--dims", default=",".join(map(str, DIMS)))
    run_parser.add_argument("--seeds", default="0")
    run_parser.add_argument("--lrs", default=",".join(LR_CHOICES))
    run_parser.add_argument("--toolkits", default=",".join(TOOLKITS))
    run_parser.add_argument("--max-epochs", type=int, default=FULL_EPOCHS)
    run_parser.add_argument("--ours-set", default="", help="our backbone's settings for alkd's rows, KEY=VALUE,... "
                                                           "(e.g. gru4rec dropout=0.3,dense=true,tied=true)")
    run_parser.add_argument("--from", dest="from_dir", type=Path, default=None,
                            help="the authors' files for a dataset not fetched yet (default $ALKD_SHARED/data/alkdrec)")
    run_parser.add_argument("--archive", type=Path, default=ARCHIVE)
    run_parser.add_argument("--no-report", action="store_true", help="do not rewrite docs/peers.md afterwards")
    report_parser = commands.add_parser("report")
    report_parser.add_argument("--archive", type=Path, default=ARCHIVE)
    report_parser.add_argument("--out", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            setup(args.venv or default_venv())
        elif args.command == "run":
            if args.max_epochs < 1:
                raise PeersError(f"--max-epochs {args.max_epochs}: must be >= 1 (fix: --max-epochs {FULL_EPOCHS})")
            from_dir = args.from_dir or default_from()
            datasets = _names(args.datasets, None, "--datasets")
            check_datasets(datasets, from_dir)
            backbones = _names(args.backbones, BACKBONES, "--backbones")
            jobs = plan(datasets, backbones, _ints(args.dims, "--dims", 1),
                        _ints(args.seeds, "--seeds", 0), _names(args.lrs, LR_CHOICES, "--lrs"), args.max_epochs,
                        _names(args.toolkits, TOOLKITS, "--toolkits"), parse_settings(args.ours_set, backbones))
            venv = args.venv or default_venv()
            from core.paths import data_home
            run(jobs, args.archive, venv, from_dir, data_home() / "peers" / "work")
            if not args.no_report and args.archive == ARCHIVE:
                REPORT.write_text(report(load_results(args.archive)))
                print(f"wrote {REPORT}")
        else:
            args.out.write_text(report(load_results(args.archive)))
            print(f"wrote {args.out}")
    except PeersError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
