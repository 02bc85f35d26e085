"""scripts/bench_peers.py (issue 14): the RecBole benchmark files hold exactly our training instances and evaluation
windows, RecBole's ids map back to ours, a score matrix is ranked under our protocol, the archive is resumable and the
report says what ran, with how many seeds, and what did not.

RecBole's venv is not installed in CI: `test_recbole_worker_end_to_end_on_tiny_data` runs the real worker only when
ALKD_PEERS_VENV names a venv made by `bench_peers.py setup`, and is skipped otherwise."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_data import make_dataset

from core.data.dataset import SessionBatch, save_dataset
from core.paths import datasets_dir
from core.train import training_instances

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def peers():
    yield _load("bench_peers")
    sys.modules.pop("bench_peers", None)


@pytest.fixture
def worker():
    yield _load("peers_recbole_worker")
    sys.modules.pop("peers_recbole_worker", None)


@pytest.fixture
def tiny_fetched():
    """The tiny dataset saved under the test's ALKD_HOME as `tiny` (catalog.load finds it)."""
    dataset = make_dataset(n_sessions=50, n_items=12, max_len=4)
    save_dataset(dataset, datasets_dir() / "tiny")
    return dataset


# ----------------------------------------------------------------------------------------------------- conversion

def test_benchmark_files_hold_exactly_our_training_instances_and_evaluation_windows(peers, tmp_path):
    dataset = make_dataset(n_sessions=50, n_items=12, max_len=4)
    bench = peers.convert(dataset, tmp_path / "bench")
    folder = tmp_path / "bench" / "tiny"
    train = training_instances(dataset, 4, augment_prefixes=True)
    rows = peers.read_inter(folder / "tiny.train.inter")
    assert bench.n_train == len(rows) == len(train) > dataset.stats().n_train      # every prefix, not one per session
    assert [r[1] for r in rows] == [list(w[:n]) for w, n in zip(train.inputs.tolist(), train.lengths.tolist())]
    assert [r[2] for r in rows] == train.targets.tolist()
    assert max(len(r[1]) for r in rows) == 4                                          # the same max_len truncation
    users = [r[0] for r in rows]
    for split, prefix in (("valid", "v"), ("test", "e")):
        batch = dataset.split(split, 4)
        rows = peers.read_inter(folder / f"tiny.{split}.inter")
        assert [r[0] for r in rows] == [f"{prefix}{s}" for s in batch.session_ids.tolist()]
        assert [r[1] for r in rows] == [list(w[:n]) for w, n in zip(batch.inputs.tolist(), batch.lengths.tolist())]
        assert [r[2] for r in rows] == batch.labels.tolist()
        users += [r[0] for r in rows]
    assert len(set(users)) == len(users)                                              # every row its own user
    assert (folder / "tiny.item").read_text().split() == ["item_id:token"] + [str(i) for i in range(1, 13)]


def test_recbole_ids_map_back_to_ours(worker):
    """RecBole numbers tokens by first appearance; the worker puts each internal column back at our id."""
    tokens = np.array(["[PAD]", "7", "2", "5", "1"])          # internal id -> our id as text
    scores = np.array([[0.0, 0.7, 0.2, 0.5, 0.1], [9.0, 1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    ours = worker.our_columns(scores, tokens)
    assert ours.shape == (2, 8)
    np.testing.assert_array_equal(ours[0, [7, 2, 5, 1]], scores[0, 1:])
    np.testing.assert_array_equal(ours[1, [7, 2, 5, 1]], [1.0, 2.0, 3.0, 4.0])
    assert np.isneginf(ours[:, [0, 3, 4, 6]]).all()          # padding and ids RecBole never saw: never ranked
    assert worker.session_of("e41") == 41
    with pytest.raises(ValueError, match="expected e<session id>"):
        worker.session_of("t3")


# ------------------------------------------------------------------------------------------------------- protocol

def test_importing_the_worker_leaves_torch_as_it_was():
    """The suite imports the worker: its trust in RecBole's own checkpoints and its one thread belong to its run only
    (a patched torch.load here let a tampered alkd checkpoint run code in a later test)."""
    import torch
    load, threads = torch.load, torch.get_num_threads()
    try:
        _load("peers_recbole_worker")
        assert torch.load is load
        assert torch.get_num_threads() == threads
    finally:
        torch.load = load
        torch.set_num_threads(threads)
        sys.modules.pop("peers_recbole_worker", None)


def test_a_score_matrix_is_ranked_under_our_protocol(peers):
    """Window items excluded except the label, ties broken by lower item id, rows matched by session id."""
    batch = SessionBatch(session_ids=np.array([10, 11, 12]),
                         inputs=np.array([[1, 2, 0], [4, 3, 0], [5, 0, 0]]), lengths=np.array([2, 2, 1]),
                         labels=np.array([3, 4, 2]))
    by_session = {
        # label 3 = 0.5; items 1, 2 beat it but are the window; 4 ties (higher id: behind); 5 beats it -> rank 1
        10: [0.0, 0.9, 0.8, 0.5, 0.5, 0.6],
        # label 4 is in the window too and stays a candidate; 3 (window) beats it; 1, 2 tie at lower ids -> rank 2
        11: [0.0, 0.4, 0.4, 0.9, 0.4, 0.1],
        # label 2 = 0.3; 1 ties at a lower id, 3 beats it, 4 ties at a higher id, 5 (window) beats it -> rank 2
        12: [0.0, 0.3, 0.3, 0.7, 0.3, 0.9],
    }
    order = [12, 10, 11]                                      # RecBole's rows need not be in our order
    result = peers.protocol_metrics(np.array([by_session[s] for s in order]), np.array(order), batch)
    assert result.ranks.tolist() == [1, 2, 2]
    assert result.metrics["ndcg@10"] == pytest.approx(np.mean(1 / np.log2(np.array([1, 2, 2]) + 2)))
    assert result.metrics["recall@10"] == 1.0
    with pytest.raises(peers.PeersError, match="RecBole scored 2 test sessions, ours are 3"):
        peers.protocol_metrics(np.array([by_session[10], by_session[11]]), np.array([10, 11]), batch)


# ------------------------------------------------------------------------------------------------ archive, report

def _row(peers, dataset="alkdrec-ml", backbone="sasrec", dim=10, toolkit="alkd", lr=0.01, label="ours", seed=0,
         max_epochs=30, ndcg=0.02, recall=0.04, own=None, sps=10_000.0, best=7, seconds=60.0, settings=""):
    return {"dataset": dataset, "backbone": backbone, "dim": dim, "toolkit": toolkit, "lr": lr, "lr_choice": label,
            "seed": seed, "max_epochs": max_epochs, "settings": settings, "best_epoch": best, "epochs_run": best + 5,
            "train_seconds": seconds, "n_train": 59771, "samples_per_s": sps,
            "ours": {"recall@10": recall, "ndcg@10": ndcg},
            "own": None if toolkit == "alkd" else (own or {"recall@10": recall, "ndcg@10": ndcg}),
            "machine": "x86_64, 2 cores", "load1": 2.0}


def _table_row(text: str, *cells: str) -> list[str]:
    for line in text.splitlines():
        fields = [f.strip() for f in line.strip("|").split("|")]
        if fields[:len(cells)] == list(cells):
            return fields
    raise AssertionError(f"no row {cells} in\n{text}")


def test_the_report_shows_means_ratios_one_seed_and_not_run(peers):
    rows = [_row(peers, toolkit="alkd", seed=s, ndcg=v, sps=20_000.0) for s, v in enumerate((0.020, 0.022, 0.024))]
    rows += [_row(peers, toolkit="recbole", seed=s, ndcg=v, sps=5_000.0, own={"recall@10": 0.05, "ndcg@10": 0.03})
             for s, v in enumerate((0.024, 0.026, 0.028))]
    # one seed, alkd more than 5% below RecBole and slower
    rows += [_row(peers, backbone="fpmc", lr=0.001, label="ours = recbole", toolkit="alkd", ndcg=0.009, sps=1.0)]
    rows += [_row(peers, backbone="fpmc", lr=0.001, label="ours = recbole", toolkit="recbole", ndcg=0.010, sps=2.0)]
    rows += [_row(peers, backbone="stamp", max_epochs=2, toolkit="alkd", ndcg=0.005)]        # a smoke row
    text = peers.report(rows)
    header = [c.strip() for c in text.split("## Full runs")[1].splitlines()[2].strip("|").split("|")]
    assert header == list(peers.COLUMNS)
    row = dict(zip(header, _table_row(text, "alkdrec-ml", "sasrec", "10", "0.01 (ours)")))
    assert row["seeds"] == "3"
    assert row["alkd NDCG@10"] == "0.0220 ± 0.0020" and row["RecBole NDCG@10"] == "0.0260 ± 0.0020"
    assert row["RecBole NDCG@10 (its own)"] == "0.0300 ± 0.0000"
    assert row["NDCG ratio"] == f"{0.022 / 0.026:.2f}" and row["samples/s ratio"] == "4.00"
    assert row["samples/s alkd"] == "20,000 ± 0" and row["wall s alkd / RecBole"] == "60.0 ± 0.0 / 60.0 ± 0.0"
    assert row["bar"] == "NDCG NOT met, speed met"          # 0.022 < 0.026 - 0.002
    fpmc = dict(zip(header, _table_row(text, "alkdrec-ml", "fpmc", "10", "0.001 (ours = recbole)")))
    assert row["best epoch alkd / RecBole"] == "7.0 ± 0.0 / 7.0 ± 0.0" and fpmc["best epoch alkd / RecBole"] == "7 / 7"
    assert fpmc["seeds"] == "1 (one seed)" and fpmc["bar"] == "NDCG NOT met, speed NOT met"   # 0.009 < 0.95 * 0.010
    # every other setting of the grid is listed, as not run: 2 datasets x (FPMC 1 lr + 3 backbones x 2 lrs) x 2 dims
    full = text.split("## Full runs")[1].split("## Smoke")[0]
    assert sum(1 for line in full.splitlines() if line.startswith("| alkdrec-")) == 2 * 7 * 2
    games = dict(zip(header, _table_row(text, "alkdrec-games", "gru4rec", "100", "0.001 (recbole)")))
    assert games["seeds"] == "not run" and games["alkd NDCG@10"] == "not run" and games["bar"] == "–"
    assert "not run" not in _table_row(text, "alkdrec-ml", "sasrec", "10", "0.01 (ours)")
    smoke = text.split("## Smoke runs: epoch limit 2")[1]
    assert "NOT comparable" in smoke.splitlines()[0]
    stamp = _table_row(smoke, "alkdrec-ml", "stamp", "10")
    assert "0.0050" in stamp and "not run" in stamp          # its RecBole side never ran
    assert stamp[-1] == "– (smoke)"                          # a smoke row is never judged against the bar
    assert "Status: 2 of 28 settings of the full grid have run in both toolkits." in text
    assert _table_row(full, "alkdrec-ml", "stamp", "10", "0.01 (ours)")[4] == "not run"   # not in the full grid


def test_a_variant_of_ours_is_its_own_row_beside_the_same_recbole_rows(peers, tmp_path, tiny_fetched):
    rows = [_row(peers, backbone="gru4rec", toolkit="alkd", ndcg=0.0065, sps=9.0),
            _row(peers, backbone="gru4rec", toolkit="alkd", ndcg=0.0130, sps=8.0, settings="dense=true,tied=true"),
            _row(peers, backbone="gru4rec", toolkit="recbole", ndcg=0.0125, sps=3.0)]
    text = peers.report(rows).split("## Full runs")[1]
    header = list(peers.COLUMNS)
    ours = dict(zip(header, _table_row(text, "alkdrec-ml", "gru4rec", "10", "0.01 (ours)")))
    variant = dict(zip(header, _table_row(text, "alkdrec-ml", "gru4rec (alkd: dense=true,tied=true)", "10")))
    assert ours["alkd NDCG@10"] == "0.0065" and ours["bar"] == "NDCG NOT met, speed met"
    assert variant["alkd NDCG@10"] == "0.0130" and variant["RecBole NDCG@10"] == "0.0125"
    assert variant["bar"] == "NDCG met, speed met"
    # the variant's jobs: ours with the settings (a new row), RecBole's the same as before (archived: not rerun)
    archive = tmp_path / "archive"
    for job in peers.plan(["tiny"], ["gru4rec"], [10], [0], ["ours"], 2):
        peers.append_result(archive, {**_row(peers, dataset="tiny", backbone="gru4rec", toolkit=job.toolkit,
                                             lr=job.lr, max_epochs=2)})
    settings = peers.parse_settings(" tied=true, dense=true", ["gru4rec"])
    assert settings == "dense=true,tied=true"
    variant_jobs = peers.plan(["tiny"], ["gru4rec"], [10], [0], ["ours"], 2, settings=settings)
    [todo] = peers.pending(variant_jobs, archive)
    assert todo.toolkit == "alkd" and todo.settings == settings
    row = peers.run_alkd(todo, tiny_fetched)
    assert row["backbone_config"] == {"dense": True, "tied": True} and 0 < row["ours"]["ndcg@10"] <= 1


def test_a_bad_setting_of_ours_is_one_line(peers, capsys):
    assert peers.main(["run", "--backbones", "gru4rec", "--ours-set", "dense=maybe", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: --ours-set 'dense=maybe': gru4rec's dense:") and "fix: its settings are" in err
    assert peers.main(["run", "--backbones", "fpmc", "--ours-set", "tied"]) == 2
    assert "expected KEY=VALUE pairs" in capsys.readouterr().err


def test_one_seed_within_five_percent_meets_the_bar(peers):
    alkd = peers.Side((_row(peers, ndcg=0.0096, sps=3.0),))
    recbole = peers.Side((_row(peers, toolkit="recbole", ndcg=0.0100, sps=3.0),))
    assert peers.verdict(alkd, recbole) == "NDCG met, speed met"
    assert peers.verdict(peers.Side((_row(peers, ndcg=0.0094),)), recbole).startswith("NDCG NOT met")


def test_a_rerun_skips_archived_rows_and_redoes_a_torn_one(peers, tmp_path, tiny_fetched):
    calls: list[tuple] = []

    def fake(job, dataset):
        assert dataset.name == "tiny"
        calls.append(job.key())
        return {"best_epoch": 1, "epochs_run": 1, "train_seconds": 1.0, "n_train": 10, "samples_per_s": 10.0,
                "ours": {"recall@10": 0.5, "ndcg@10": 0.25}, "own": None}

    runners = {"alkd": fake, "recbole": fake}
    jobs = peers.plan(["tiny"], ["fpmc", "sasrec"], [10], [0, 1], ["ours", "recbole"], 2)
    assert len(jobs) == (1 + 2) * 2 * 2                 # FPMC's two lrs are one value: one setting, not two
    archive = tmp_path / "archive"
    assert peers.run(jobs, archive, tmp_path / "no-venv", None, tmp_path / "work", log=lambda _: None,
                     runners=runners) == 12
    assert len(calls) == 12 and len(peers.load_results(archive)) == 12
    calls.clear()
    assert peers.run(jobs, archive, tmp_path / "no-venv", None, tmp_path / "work", log=lambda _: None,
                     runners=runners) == 0
    assert calls == []
    # a killed writer left half a line: that row's job runs again, the other rows stay
    path = archive / peers.RESULTS
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:25])
    assert peers.run(jobs, archive, tmp_path / "no-venv", None, tmp_path / "work", log=lambda _: None,
                     runners=runners) == 1
    assert calls == [jobs[-1].key()] and len(peers.load_results(archive)) == 12
    # a longer epoch limit is another row
    longer = peers.plan(["tiny"], ["fpmc"], [10], [0], ["ours"], 3, toolkits=["alkd"])
    assert peers.pending(longer, archive) == longer


def test_our_side_trains_and_reports_on_tiny_data(peers, tiny_fetched):
    job = peers.Job("tiny", "sasrec", 8, "alkd", 0.01, "ours", 0, 2)
    row = peers.run_alkd(job, tiny_fetched)
    assert row["n_train"] == len(training_instances(tiny_fetched, 4, True))
    assert 1 <= row["best_epoch"] <= row["epochs_run"] <= 2 and row["threads"] == 1
    assert row["samples_per_s"] == pytest.approx(row["n_train"] * row["epochs_run"] / row["train_seconds"])
    assert 0 < row["ours"]["ndcg@10"] <= row["ours"]["recall@10"] <= 1
    assert (row["loss"], row["patience"], row["batch"]) == ("ce", 5, 256)


# ------------------------------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("argv, message", [
    (["run", "--backbones", "fpmc,attmix"], "--backbones: unknown 'attmix' (fix: choose from fpmc, stamp"),
    (["run", "--datasets", "nope"], "--datasets: unknown dataset 'nope': not fetched and not a source"),
    (["run", "--datasets", "../x"], "--datasets '../x': a dataset name may use"),
    (["run", "--datasets", "tiny", "--dims", "ten"], "--dims 'ten' is not a comma-separated list of integers"),
    (["run", "--datasets", "tiny", "--lrs", "fast"], "--lrs: unknown 'fast'"),
    (["run", "--datasets", "tiny", "--max-epochs", "0"], "--max-epochs 0: must be >= 1"),
    (["run", "--datasets", "tiny", "--toolkits", "recbole", "--venv", "/nonexistent/venv"],
     "no RecBole venv at /nonexistent/venv (fix: run `bench_peers.py setup` first"),
])
def test_bad_input_is_one_line_and_writes_nothing(peers, tiny_fetched, tmp_path, capsys, argv, message):
    archive = tmp_path / "archive"
    assert peers.main([*argv, "--archive", str(archive), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err and len(err.strip().splitlines()) == 1, err
    assert not archive.exists()


def test_setup_in_an_unusable_folder_is_one_line(peers, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert peers.main(["setup", "--venv", str(blocker / "sub" / "venv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: --venv ") and "cannot create its folder" in err and len(err.splitlines()) == 1


# ------------------------------------------------------------------------------------- the real worker (optional)

@pytest.mark.skipif(not os.environ.get("ALKD_PEERS_VENV"), reason="RecBole's venv is not installed here (set "
                    "ALKD_PEERS_VENV to a venv made by `bench_peers.py setup` to run this)")
@pytest.mark.parametrize("backbone", ["fpmc", "sasrec"])
def test_recbole_worker_end_to_end_on_tiny_data(peers, tiny_fetched, tmp_path, backbone):
    venv = Path(os.environ["ALKD_PEERS_VENV"])
    job = peers.Job("tiny", backbone, 8, "recbole", 0.01, "ours", 0, 2)
    row = peers.run_recbole(job, tiny_fetched, venv, tmp_path / "work")
    assert row["n_train"] == len(training_instances(tiny_fetched, 4, True))
    assert 1 <= row["best_epoch"] <= row["epochs_run"] <= 2 and row["threads"] == 1
    assert 0 <= row["ours"]["ndcg@10"] <= row["ours"]["recall@10"] <= 1
    assert 0 <= row["own"]["ndcg@10"] <= 1
    assert not (tmp_path / "work" / f"run-{os.getpid()}").exists()      # the score matrix is not kept
    json.dumps(row)
