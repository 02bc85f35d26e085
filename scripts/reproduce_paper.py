r"""Reproduce the ALKDRec paper's Table 1/2 with the replay teacher (the authors' recorded GPT-4-turbo rankings),
writing every run to the store, then write docs/results.md FROM THE STORE.

    .venv/bin/python scripts/reproduce_paper.py --quick            # alkdrec-ml x fpmc x all methods x seeds 0-1
    .venv/bin/python scripts/reproduce_paper.py                    # both datasets x fpmc/stamp/attmix x seeds 0-4
    .venv/bin/python scripts/reproduce_paper.py --report-only      # only regenerate docs/results.md
    # a cell beyond the paper's grid (shown in the report, kept out of its averages):
    .venv/bin/python scripts/reproduce_paper.py --datasets alkdrec-games --backbones sasrec \
        --methods student,teacher,tr,random,alkdrec

Runs accumulate across machines through docs/reproduction/*.parquet (committed): imported into the store first,
rewritten from it at the end. Resumable: a (dataset, backbone, method, seed) that already has a 'done' run in group
`reproduce` (teacher replay, mode paper) is skipped. Each (dataset, backbone, seed) runs as one `alkd run` subprocess
(so checkpoints and the difficulty key are shared), budget 500 (750 for FPMC on Games). Reference baselines run once
per dataset (seed 0).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import store  # noqa: E402
from core.cli_run import parse_seeds  # noqa: E402
from core.evaluate import mean_std, paired_ttest, per_session  # noqa: E402

GROUP = "reproduce"
#: The paper's protocol, and the same with a weaker, paper-like student: pre-training cut to 3 epochs at batch 1024
#: gives an FPMC student with the paper's student recall@10 on ML (ours 0.0105, paper 0.01055; our default student
#: has about twice that), to test whether ALKDRec helps a student with more room to improve.
VARIANTS = {"paper": {"group": GROUP, "pretrain": []},
            "weak-student": {"group": "reproduce-weak", "pretrain": ["batch_size=1024", "max_epochs=3"]}}
WEAK_METHODS = ["student", "teacher", "tr", "random", "alkdrec"]
ARCHIVE = ROOT / "docs" / "reproduction"
DATASETS = {"alkdrec-ml": "ML", "alkdrec-games": "Games"}
BACKBONES = {"fpmc": "FPMC", "stamp": "STAMP", "attmix": "AttMix"}   # the paper's grid
#: Backbones the paper did not use; their cells are shown (`--backbones sasrec`) but kept out of the averages.
OTHER_BACKBONES = {"sasrec": "SASRec", "gru4rec": "GRU4Rec"}
BACKBONE_LABELS = {**BACKBONES, **OTHER_BACKBONES}
METHODS = ["student", "teacher", "tr", "random", "easiest", "hardest", "rad-bc", "dllm2rec", "alkdrec"]
BASELINES = ["popular", "transitions", "sknn", "vsknn"]
LABEL = {"student": "Student", "teacher": "Teacher", "tr": "TR", "random": "Random", "easiest": "Easiest",
         "hardest": "Hardest", "rad-bc": "RAD-BC", "dllm2rec": "DLLM2Rec", "alkdrec": "ALKDRec",
         "llmd4rec": "LLMD4Rec (adapted)", "popular": "Most popular", "transitions": "Transitions", "sknn": "SKNN",
         "vsknn": "V-SKNN"}
FULL_SEEDS = range(5)   # the paper's grid: seeds 0-4
METRICS = ["recall@5", "ndcg@5", "recall@10", "ndcg@10"]
SHARED_ROOT = Path(os.environ.get("ALKD_SHARED", ROOT.parent / "shared"))   # the authors' data and the paper's tables
SPEC = SHARED_ROOT / "spec" / "paper_results.md"
SHARED = SHARED_ROOT / "data" / "alkdrec"


def paper_values() -> dict[tuple[str, str, str, str], float]:
    """(dataset ML/Games, backbone FPMC/STAMP/AttMix, method label, metric) -> the paper's value."""
    values: dict[tuple[str, str, str, str], float] = {}
    if not SPEC.exists():
        return values
    table1_methods = None
    section = ""
    for line in SPEC.read_text().splitlines():
        if line.startswith("## "):
            section = line
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if "Table 1" in section:
            if cells[:3] == ["dataset", "backbone", "metric"]:
                table1_methods = cells[3:]
            elif table1_methods and len(cells) == 3 + len(table1_methods) and re.match(r"^[\d.]+$", cells[3]):
                for method, value in zip(table1_methods, cells[3:]):
                    values[(cells[0], cells[1], method, cells[2])] = float(value)
        elif "Table 2" in section and len(cells) == 8 and re.match(r"^[\d.]+$", cells[2]):
            for i, backbone in enumerate(("FPMC", "STAMP", "AttMix")):
                values[(cells[0], backbone, cells[1], "recall@10")] = float(cells[2 + 2 * i])
                values[(cells[0], backbone, cells[1], "ndcg@10")] = float(cells[3 + 2 * i])
    return values


def done_runs(group: str = GROUP) -> pd.DataFrame:
    return store.query("SELECT run_id, dataset, backbone, method, seed, config FROM runs WHERE kind = 'distill'"
                       " AND status = 'done' AND groups = ? AND teacher = 'replay'", [group])


def ensure_dataset(name: str) -> None:
    from core.data import catalog
    from core.data.errors import DataError
    try:
        catalog.load(name)
    except DataError:
        catalog.fetch(name, SHARED if SHARED.exists() else None)


def run_cells(datasets, backbones, methods, seeds, dry: bool = False, variant: str = "paper") -> None:
    done = done_runs(VARIANTS[variant]["group"])
    have = set(zip(done["dataset"], done["backbone"], done["method"], done["seed"]))
    baselines_done = set(zip(done["dataset"], done["method"]))   # backbone-free: once per dataset
    for dataset in datasets:
        ensure_dataset(dataset)
        base_todo = [m for m in BASELINES if m in methods and (dataset, m) not in baselines_done]
        if base_todo:
            _alkd_run(dataset, backbones[0], base_todo, 0, dry, variant)
        for backbone in backbones:
            for seed in seeds:
                todo = [m for m in methods if m not in BASELINES and (dataset, backbone, m, seed) not in have]
                if todo:
                    _alkd_run(dataset, backbone, todo, seed, dry, variant)


def _alkd_run(dataset: str, backbone: str, methods: list[str], seed: int, dry: bool, variant: str = "paper") -> None:
    budget = 750 if (dataset == "alkdrec-games" and backbone == "fpmc") else 500
    setting = VARIANTS[variant]
    command = [sys.executable, "-c", "from core.cli import main; main()", "run", "--dataset", dataset,
               "--backbone", backbone, "--method", ",".join(methods), "--teacher", "replay", "--budget", str(budget),
               "--seeds", str(seed), "--mode", "paper", "--group", setting["group"], "--tag", "reproduce_paper",
               "--no-save-model",  # hundreds of runs; their metrics and ranks are what the report needs
               "--option", "recipe=finetune"]  # the paper's recipe: fine-tune on the distilled rows alone
    for value in setting["pretrain"]:
        command += ["--pretrain", value]
    print(" ".join(command[3:]), flush=True)
    if not dry:
        subprocess.run(command, cwd=ROOT, check=False)


# ---- report ---------------------------------------------------------------------------------------------------

def _fmt(mean: float, std: float, n: int) -> str:
    return f"{mean:.5f} ± {std:.5f}" if n > 1 else f"{mean:.5f}"


def _metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per done run: run_id, dataset, backbone, method, seed and a column per test metric."""
    if runs.empty:
        return pd.DataFrame()
    frame = store.query("SELECT run_id, metric || '@' || k AS key, value FROM metrics WHERE split = 'test'")
    frame = frame[frame["run_id"].isin(runs["run_id"])]
    wide = frame.pivot(index="run_id", columns="key", values="value").reset_index()
    return runs[["run_id", "dataset", "backbone", "method", "seed"]].merge(wide, on="run_id")


def _coverage(runs: pd.DataFrame) -> str:
    """One sentence: whether the paper's whole grid (datasets x backbones x METHODS x 5 seeds) is in the store."""
    have = set(zip(runs["dataset"], runs["backbone"], runs["method"], runs["seed"]))
    missing = [cell for cell in itertools.product(DATASETS, BACKBONES, METHODS, FULL_SEEDS) if cell not in have]
    grid = (f"{len(DATASETS)} datasets x {len(BACKBONES)} backbones x {len(METHODS)} methods x "
            f"{len(FULL_SEEDS)} seeds")
    if not missing:
        return f"The full grid ran: {grid}, every (dataset, backbone, method, seed) done."
    return (f"{len(missing)} of the {grid} runs are NOT in the store yet (cells not listed above were not run); "
            f"`scripts/reproduce_paper.py` resumes where it stopped.")


def report(path: Path) -> str:
    paper = paper_values()
    runs = done_runs()
    metrics = _metrics(runs)
    lines = ["# Results: ALKDRec reproduction with the replay teacher", "",
             f"Generated by `scripts/reproduce_paper.py` from the run store on "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Every number below is read from the store "
             f"(group `{GROUP}`, teacher `replay` = the authors' recorded GPT-4-turbo rankings, mode `paper`, "
             "the paper's "
             "finetune recipe). **Label forced**: the authors made every recorded list with the true next item forced "
             "into the LLM's candidates, so every LLM number below overstates what a deployed LLM could teach. The "
             "paper's \"ndcg\" columns are its set-order variant and are not shown beside our true NDCG; compare "
             "recall.", ""]
    if metrics.empty:
        lines += ["No runs yet: run `scripts/reproduce_paper.py --quick`.", ""]
        path.write_text("\n".join(lines))
        return "\n".join(lines)
    cells = runs.groupby(["dataset", "backbone"])
    lines += ["## Which cells were run", "", "| dataset | backbone | method | seeds |", "|---|---|---|---|"]
    for (dataset, backbone), frame in cells:
        for method, group in frame.groupby("method"):
            lines.append(f"| {dataset} | {backbone} | {method} | {', '.join(map(str, sorted(group['seed'])))} |")
    lines += ["", _coverage(runs), ""]
    lines += [_targets(metrics, paper), ""]
    ranks = store.query("SELECT s.run_id, s.session_id, s.rank FROM session_results s JOIN runs r USING (run_id)"
                        " WHERE s.split = 'test' AND list_contains(?, r.groups) AND r.status = 'done'",
                        [[v["group"] for v in VARIANTS.values()]])
    for (dataset, backbone), frame in cells:
        if backbone in BASELINES:
            continue
        ds_label, bb_label = DATASETS.get(dataset, dataset), BACKBONE_LABELS.get(backbone, backbone)
        source = ("paper: Table 1 (Student, Teacher, DLLM2Rec, ALKDRec) or Table 2 (TR and the selection "
                  "ablations; recall@10/ndcg@10 only)." if backbone in BACKBONES else
                  "the paper did not run this backbone (a cell beyond its grid, kept out of the averages).")
        lines += [f"## {ds_label} / {bb_label}", "", f"Ours: mean ± sample std over the seeds run (n); {source}", "",
                  "| method | n | " + " | ".join(f"{m} ours | {m} paper" for m in METRICS) + " |",
                  "|---|---|" + "---|---|" * len(METRICS)]
        sub = metrics[(metrics["dataset"] == dataset) & (metrics["backbone"] == backbone)]
        for method in METHODS + ["llmd4rec"] + BASELINES:
            rows = sub[sub["method"] == method]
            if method in BASELINES:   # backbone-free: run once per dataset, shown in every cell
                rows = metrics[(metrics["dataset"] == dataset) & (metrics["method"] == method)]
            if rows.empty:
                continue
            cells_text = []
            for metric in METRICS:
                mean, std = mean_std(rows[metric].to_numpy())
                # the paper's "ndcg" is set-order (not our true NDCG): only recall is compared
                ref = paper.get((ds_label, bb_label, LABEL[method], metric)) if metric.startswith("recall") else None
                cells_text.append(f"{_fmt(mean, std, len(rows))} | {'' if ref is None else f'{ref:.5f}'}")
            lines.append(f"| {LABEL[method]} | {len(rows)} | " + " | ".join(cells_text) + " |")
        with_baselines = runs[(runs["dataset"] == dataset)
                              & ((runs["backbone"] == backbone) | runs["method"].isin(BASELINES))]
        lines += ["", _ttests(with_baselines, ranks), "", _categories(frame), "", _returned_start(frame), ""]
    lines += [_weak_student(ranks), NOTES]
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def _weak_student(ranks: pd.DataFrame) -> str:
    """The weak-student variant: the same methods on a paper-like, weaker pretrained student."""
    setting = VARIANTS["weak-student"]
    runs = done_runs(setting["group"])
    head = ["## A weaker, paper-like student (variant `weak-student`)", "",
            "Same protocol, but teacher and student pre-trained with `--pretrain " + " --pretrain ".join(
                setting["pretrain"]) + "` (3 epochs at batch 1024), which gives an FPMC student with the paper's "
            "student recall@10 on ML. Run with `scripts/reproduce_paper.py --variant weak-student`.", ""]
    if runs.empty:
        return "\n".join(head + ["Not run yet.", ""])
    metrics = _metrics(runs)
    out = head
    for (dataset, backbone), frame in runs.groupby(["dataset", "backbone"]):
        sub = metrics[(metrics["dataset"] == dataset) & (metrics["backbone"] == backbone)]
        student = sub.loc[sub["method"] == "student", "ndcg@10"].mean()
        out += [f"### {DATASETS.get(dataset, dataset)} / {BACKBONE_LABELS.get(backbone, backbone)}", "",
                "| method | n | recall@10 | ndcg@10 | ndcg@10 vs Student |", "|---|---|---|---|---|"]
        for method in WEAK_METHODS:
            rows = sub[sub["method"] == method]
            if rows.empty:
                continue
            r_mean, r_std = mean_std(rows["recall@10"].to_numpy())
            n_mean, n_std = mean_std(rows["ndcg@10"].to_numpy())
            out.append(f"| {LABEL[method]} | {len(rows)} | {_fmt(r_mean, r_std, len(rows))} | "
                       f"{_fmt(n_mean, n_std, len(rows))} | {(n_mean / student - 1) * 100:+.1f}% |")
        out += ["", _ttests(frame, ranks), ""]
    return "\n".join(out)


def _targets(metrics: pd.DataFrame, paper: dict) -> str:
    """The issue's accuracy targets per (dataset, backbone) cell on test NDCG@10 (mean over the seeds run):
    ALKDRec against the paper's ALKDRec, Random and TR, and the distance to session-kNN (the dataset's V-SKNN)."""
    def mean_of(frame: pd.DataFrame, method: str, metric: str = "ndcg@10") -> tuple[float, int]:
        values = frame.loc[frame["method"] == method, metric]
        return (float(values.mean()), len(values)) if len(values) else (float("nan"), 0)

    out = ["## Targets at a glance (mean over the seeds run)", "",
           "Against the paper on **recall@10** only: the paper's \"ndcg\" is the authors' set-order variant, not "
           "comparable with our true NDCG. The rest on our test NDCG@10.", "",
           "| cell | ALKDRec recall@10 (n) | paper ALKDRec recall@10 | ≥ paper | ALKDRec NDCG@10 | Random | TR | "
           "ALKDRec − Random | ALKDRec − TR | Student | V-SKNN | ALKDRec vs V-SKNN |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    diffs: dict[str, list[float]] = {"random": [], "tr": []}
    for (dataset, backbone), frame in metrics.groupby(["dataset", "backbone"]):
        if backbone in BASELINES:
            continue
        ours, n = mean_of(frame, "alkdrec")
        if not n:
            continue
        ds_label, bb_label = DATASETS.get(dataset, dataset), BACKBONE_LABELS.get(backbone, backbone)
        ref = paper.get((ds_label, bb_label, "ALKDRec", "recall@10"))
        recall, _ = mean_of(frame, "alkdrec", "recall@10")
        random, _ = mean_of(frame, "random")
        tr, _ = mean_of(frame, "tr")
        student, _ = mean_of(frame, "student")
        knn, _ = mean_of(metrics[metrics["dataset"] == dataset], "vsknn")
        if backbone in BACKBONES:   # the average is over the paper's cells only
            for name, other in (("random", random), ("tr", tr)):
                if np.isfinite(other):
                    diffs[name].append(ours - other)
        else:
            bb_label += " (not in the paper)"
        out.append(f"| {ds_label} / {bb_label} | {recall:.5f} ({n}) | {'' if ref is None else f'{ref:.5f}'} | "
                   f"{'' if ref is None else ('yes' if recall >= ref else 'no')} | {ours:.5f} | {random:.5f} | "
                   f"{tr:.5f} | "
                   f"{ours - random:+.5f} | {ours - tr:+.5f} | {student:.5f} | {knn:.5f} | "
                   f"{(ours / knn - 1) * 100:+.0f}% |")
    average = {k: (np.mean(v) if v else float("nan"), len(v)) for k, v in diffs.items()}
    out += ["", f"Average over the paper's cells run: ALKDRec − Random {average['random'][0]:+.5f} "
            f"({average['random'][1]} cells), ALKDRec − TR {average['tr'][0]:+.5f} ({average['tr'][1]} cells). "
            "The issue's target is both above zero on average over the six cells, and ALKDRec ≥ the paper in every "
            "cell; the last column is how far the distilled d=10 student is from session-kNN (negative = below)."]
    return "\n".join(out)


def _categories(frame: pd.DataFrame) -> str:
    """Achieved effective/similar/incorrect shares of the answered selected sessions beside the planned 1:5:4."""
    import json
    out = ["Categories of the selected sessions once the teacher answered (achieved, mean over seeds; planned "
           "0.10 / 0.50 / 0.40):", "", "| method | effective | similar | incorrect |", "|---|---|---|---|"]
    for method, group in frame.groupby("method"):
        ratios = [json.loads(c).get("extra", {}).get("achieved_ratio") for c in group["config"]]
        ratios = [r for r in ratios if r]
        if ratios:
            mean = {k: np.mean([r[k] for r in ratios]) for k in ("effective", "similar", "incorrect")}
            out.append(f"| {LABEL.get(method, method)} | {mean['effective']:.3f} | {mean['similar']:.3f} | "
                       f"{mean['incorrect']:.3f} |")
    return "\n".join(out) if len(out) > 4 else ""


def _returned_start(frame: pd.DataFrame) -> str:
    """Per distillation method: how many runs returned the pretrained student unchanged (best check = the start)."""
    import json
    parts = []
    for method, group in frame.groupby("method"):
        facts = [json.loads(c).get("extra", {}).get("distill") for c in group["config"]]
        facts = [f for f in facts if f and "best_epoch" in f]
        if facts:
            same = sum(bool(f.get("returned_start", f["best_epoch"] == 0)) for f in facts)
            parts.append(f"{LABEL.get(method, method)} {same}/{len(facts)}")
    return ("Runs that returned the pretrained student unchanged (the best validation check was the start): "
            + ", ".join(parts) + ".") if parts else ""


def _ttests(frame: pd.DataFrame, ranks: pd.DataFrame) -> str:
    """Paired t-test of ALKDRec against each method on per-session test NDCG@10, each averaged over its seeds."""
    def seed_mean(method: str) -> pd.Series | None:
        ids = frame[frame["method"] == method]["run_id"]
        part = ranks[ranks["run_id"].isin(ids)]
        if part.empty:
            return None
        part = part.assign(ndcg=per_session(part["rank"].to_numpy(), "ndcg@10"))
        return part.groupby("session_id")["ndcg"].mean()

    ours = seed_mean("alkdrec")
    if ours is None:
        return "(no ALKDRec run in this cell: no t-test)"
    out = ["Paired t-test, ALKDRec vs each method: per-session test NDCG@10 averaged over each method's seeds, "
           "sessions aligned by id (two-sided).", "", "| vs | mean diff (ALKDRec − other) | t | p | sessions |",
           "|---|---|---|---|---|"]
    for method in METHODS + ["llmd4rec"] + BASELINES:
        if method == "alkdrec":
            continue
        other = seed_mean(method)
        if other is None:
            continue
        joined = pd.concat([ours, other], axis=1, keys=["a", "b"]).dropna()
        test = paired_ttest(joined["a"].to_numpy(), joined["b"].to_numpy())
        out.append(f"| {LABEL[method]} | {test.mean_difference:+.5f} | {test.statistic:.3f} | {test.p_value:.3g} | "
                   f"{test.n} |")
    return "\n".join(out)


NOTES = """## Where we differ from the paper, and why

- **Metric**: true NDCG (one relevant item, 1/log2(rank+2)); the paper's ndcg came from the authors' set-order
  computation (spec alkdrec.md §11 #17: 43 of 54 Table-1 ndcg@10 cells are infeasible under standard NDCG), so our
  ndcg columns are not directly comparable; recall is.
- **Seeds**: we report mean ± std over the seeds run; the paper's cells are most likely single runs (§11 #18).
  The ML test set has 2,465 sessions, so one hit is 0.0004 recall: differences of a few hits decide orderings; read the
  t-tests, not only the means.
- **Backbones and training**: our student/teacher are trained by `core.train` (FPMC with in-batch BPR as the
  authors', STAMP/Atten-Mixer with full-softmax cross-entropy at lr 0.01 and patience 5, which trained better here
  than lr 1e-3 / patience 3; batch 256, prefix augmentation, early stopping on validation NDCG@10 instead of HR@25),
  so the Student and Teacher rows differ from the paper's (compare the Student rows' recall@10); every distillation
  method starts from the same pretrained student. The weak-student section repeats the comparison with a paper-like
  student.
- **Distillation objective** (mode `paper`): BPR of each LLM-ranked item against one uniformly sampled negative,
  position weights 3/2/1 for ranks [1,5]/(5,15]/(15,25] as row weights, Adam lr 1e-3, batch 1024, early stopping on
  validation NDCG@10 checked every epoch or every 20 steps, whichever comes first (patience 5 checks; TR's ~360-step
  epochs need the 20-step checks, as in the authors' loop); the authors used in-batch BPR, 0-based thresholds and
  HR@50/HR@15 validation (`--mode authors-code` reproduces those choices).
- **Selection**: our own max-min policy on the consistency key of OUR pretrained FPMC student; on ML the authors' key
  came from an unknown checkpoint (§5.1), so the selected 500 differ from `ML_ALKERec.base`. The pool is restricted to
  the sessions with a recorded GPT-4 answer (replay), not all training sessions.
- **DLLM2Rec** is the adapted baseline (dllm2rec.md §8): position + consistency weights, NO confidence weight (an
  ID-list teacher gives no distances), no embedding distillation, joint base + 0.8·RD loss warm-started from the
  pretrained student, on a seeded random subset of the same size.
- **LLMD4Rec** (if shown) is an adaptation; with the replay teacher it degenerates to one round.
- **TR** uses the same-backbone teacher's top-50 over all training sessions, weight 1.
- A method whose row equals **Student** exactly never beat the pretrained student on validation NDCG@10, so early
  stopping kept epoch 0 (the best epoch is in each run's `config.extra.distill`).
- **Categories**: "similar" (label also in the student's top-25) is rarer than planned with our d=10 students
  (each cell's categories table), so the achieved split is far from the planned 1:5:4 — the ratio only shapes the
  policy (spec §6), no instance is labelled by it.
- The **reference baselines** SKNN and V-SKNN beat every d=10 student of the paper's three backbones, and the d=100
  teachers on ML (on Games the FPMC and Atten-Mixer teachers are above V-SKNN); first-order transitions is close to
  the FPMC teacher. The paper does not report them.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="alkdrec-ml,alkdrec-games")
    parser.add_argument("--backbones", default="fpmc,stamp,attmix")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--methods", default=",".join(METHODS + BASELINES))
    parser.add_argument("--quick", action="store_true", help="alkdrec-ml x fpmc x all methods x seeds 0-1")
    parser.add_argument("--variant", choices=list(VARIANTS), default="paper",
                        help="weak-student: the same protocol with a paper-like, weaker student (alkdrec-ml x fpmc x "
                             f"{', '.join(WEAK_METHODS)} unless given)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="print the alkd run commands only")
    parser.add_argument("--output", default=str(ROOT / "docs" / "results.md"))
    parser.add_argument("--archive", default=str(ARCHIVE),
                        help="committed Parquet copy of the reproduction runs: imported before running (so cells done "
                             "on another machine are skipped) and rewritten after")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.backbones, args.seeds = "alkdrec-ml", "fpmc", "0-1"
    if args.variant == "weak-student":
        given = set(sys.argv)
        args.datasets = args.datasets if "--datasets" in given else "alkdrec-ml"
        args.backbones = args.backbones if "--backbones" in given else "fpmc"
        args.methods = args.methods if "--methods" in given else ",".join(WEAK_METHODS)
    archive = Path(args.archive)
    if (archive / "runs.parquet").exists():
        print(f"imported {store.import_runs(archive)} runs from {archive}")
    if not args.report_only:
        run_cells(args.datasets.split(","), args.backbones.split(","), args.methods.split(","),
                  parse_seeds(args.seeds), args.dry_run, args.variant)
    groups = [v["group"] for v in VARIANTS.values()]
    done = store.query("SELECT run_id FROM runs WHERE list_contains(?, groups) AND status = 'done'",
                       [groups])["run_id"].tolist()
    if done and not args.dry_run:
        store.export_runs(done, archive)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    report(Path(args.output))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
