"""`alkd run` saves each run's model; `alkd recommend` serves it: the saved student reproduces the stored metrics."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from core import store
from core.cli import main
from core.data import catalog
from core.evaluate import evaluate
from core.model_files import load_model, model_path
from core.train import model_scorer


@pytest.fixture
def runs(csv_dataset):
    result = CliRunner().invoke(main, ["run", "--dataset", csv_dataset, "--method", "alkdrec,popular", "--teacher",
                                       "simulated", "--budget", "10", "--option", "max_epochs=3",
                                       "--pretrain", "max_epochs=2"])
    assert result.exit_code == 0, result.output
    frame = store.query("SELECT run_id, method, config FROM runs")
    return dict(zip(frame["method"], frame["run_id"])), frame


def test_the_saved_student_reproduces_the_stored_test_metrics(runs, csv_dataset):
    ids, frame = runs
    path = model_path(ids["alkdrec"])
    config = json.loads(frame.set_index("method").loc["alkdrec", "config"])
    assert config["extra"]["model_path"] == str(path)
    model, meta = load_model(path)
    assert meta["run_id"] == ids["alkdrec"] and meta["method"] == "alkdrec" and model.dim == 10
    dataset = catalog.load(csv_dataset)
    test = evaluate(model_scorer(model, "cpu"), dataset.split("test", model.max_len))
    stored = store.query("SELECT value FROM metrics WHERE run_id = ? AND split = 'test' AND metric = 'ndcg'"
                         " AND k = 10", [ids["alkdrec"]])["value"][0]
    assert test.metrics["ndcg@10"] == pytest.approx(stored, abs=1e-6)
    assert not model_path(ids["popular"]).exists()      # a reference baseline has no model


def test_recommend_prints_titles_and_accepts_raw_ids(runs, csv_dataset):
    ids, _ = runs
    items = catalog.load(csv_dataset).items
    result = CliRunner().invoke(main, ["recommend", ids["alkdrec"], "--items", "1,2,3", "-k", "4"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert len(rows) == 4 and all(any(t in line for t in items["title"]) for line in rows)
    raw = ",".join(items["raw_id"].astype(str).iloc[:3])
    by_raw = CliRunner().invoke(main, ["recommend", str(model_path(ids["alkdrec"])), "--items", raw, "--raw",
                                       "-k", "4"])
    assert by_raw.exit_code == 0 and by_raw.output.splitlines()[-4:] == result.output.splitlines()[-4:]


@pytest.mark.parametrize("args, message", [
    (["nope-run", "--items", "1"], "no such run"),
    (["{popular}", "--items", "1"], "has no saved model"),
    (["{alkdrec}", "--items", "1,999"], "outside this model's catalogue"),
    (["{alkdrec}", "--items", "a,b"], "item ids are whole numbers"),
    (["{alkdrec}", "--items", "zzz", "--raw"], "not in the dataset's items"),
])
def test_recommend_errors_say_what_is_wrong(runs, args, message):
    ids, _ = runs
    result = CliRunner().invoke(main, ["recommend", *[a.format(**ids) for a in args]])
    assert result.exit_code != 0 and message in result.output


def test_no_save_model_writes_no_file(csv_dataset, isolated_home):
    result = CliRunner().invoke(main, ["run", "--dataset", csv_dataset, "--method", "student", "--teacher",
                                       "simulated", "--pretrain", "max_epochs=2", "--no-save-model"])
    assert result.exit_code == 0, result.output
    assert not (isolated_home / "models").exists()
