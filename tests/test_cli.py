from click.testing import CliRunner

from core import store
from core.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_fetch_train_evaluate_and_browse(sessions_csv, tmp_path):
    result = invoke("data", "fetch", "csv", "--from", sessions_csv, "-o", "dataset_name=shop")
    assert result.exit_code == 0, result.output
    assert "n_sessions" in result.output
    listing = invoke("data", "list")
    assert "shop" in listing.output and "ml-100k" in listing.output
    assert "n_items" in invoke("data", "stats", "shop").output

    evaluated = invoke("evaluate", "--dataset", "shop", "--model", "transitions")
    assert evaluated.exit_code == 0, evaluated.output
    trained = invoke("train", "--dataset", "shop", "--backbone", "gru4rec", "--role", "student", "--set",
                     "max_epochs=2", "--set", "batch_size=32")
    assert trained.exit_code == 0, trained.output
    runs = store.query("SELECT run_id, status, role, kind FROM runs ORDER BY created_at")
    assert runs["status"].tolist() == ["done", "done"]
    assert runs["role"].tolist() == ["baseline", "student"]
    curve = store.query("SELECT count(*) AS n FROM training_curves")["n"][0]
    assert curve >= 2
    ranks = store.query("SELECT count(*) AS n FROM session_results WHERE run_id = ?", [runs["run_id"][1]])["n"][0]
    assert ranks == store.query("SELECT n_test FROM datasets WHERE name = 'shop'")["n_test"][0]
    assert "done" in invoke("runs", "list").output
    shown = invoke("runs", "show", runs["run_id"][1])
    assert "ndcg@10" in shown.output and "gru4rec" in shown.output
    exported = invoke("runs", "export", "--run", runs["run_id"][1], "--out", tmp_path / "export")
    assert exported.exit_code == 0 and "exported 1 runs" in exported.output
    assert "imported 0 new runs" in invoke("runs", "import", tmp_path / "export").output   # already present


def test_clear_errors(tmp_path):
    missing = invoke("data", "stats", "nothing")
    assert missing.exit_code != 0 and "alkd data fetch nothing" in missing.output
    bad_source = invoke("data", "fetch", "no-such-source")
    assert bad_source.exit_code != 0 and "unknown dataset source" in bad_source.output
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "interactions.csv").write_text("session_id,item_id,timestamp\ns1,a,1\ns1,b,oops\n")
    bad_row = invoke("data", "fetch", "csv", "--from", tmp_path / "raw")
    assert bad_row.exit_code != 0 and "line 3" in bad_row.output and "timestamp" in bad_row.output
    bad_setting = invoke("train", "--dataset", "x", "--set", "lr=1")
    assert bad_setting.exit_code != 0
    assert invoke("runs", "show", "nope").exit_code != 0


def test_runs_delete_by_id_and_by_group_and_method():
    from core.model_files import model_path, save_model
    from core.models import create
    for run_id, method, group in (("a", "tr", "g"), ("b", "tr", "g"), ("c", "alkdrec", "g"), ("d", "tr", "h")):
        store.create_run(run_id, kind="distill", dataset="d", method=method, config={}, versions={},
                         backbone="stamp" if run_id == "c" else "fpmc")
        store.set_run_fields(run_id, groups=group)
        store.save_metrics(run_id, "test", {"ndcg@10": 0.1})
    saved = save_model(create("fpmc", 10, 4, 5), model_path("a"), {"run_id": "a"})
    runner = CliRunner()
    result = runner.invoke(main, ["runs", "delete", "a"], input="y\n")
    assert result.exit_code == 0 and "deleted 1 run" in result.output and not saved.exists()
    assert runner.invoke(main, ["runs", "delete", "b"], input="n\n").exit_code != 0       # declined: kept
    result = runner.invoke(main, ["runs", "delete", "--group", "g", "--method", "tr", "--yes"])
    assert result.exit_code == 0 and "deleted 1 run" in result.output
    assert sorted(store.query("SELECT run_id FROM runs")["run_id"]) == ["c", "d"]
    assert store.query("SELECT count(*) AS n FROM metrics")["n"][0] == 2
    result = runner.invoke(main, ["runs", "delete", "--group", "g", "--backbone", "fpmc", "--yes"])
    assert result.exit_code != 0 and "no runs selected" in result.output   # c is stamp, d is another group
    result = runner.invoke(main, ["runs", "delete", "--dataset", "d", "--backbone", "stamp", "--yes"])
    assert "deleted 1 run" in result.output and store.query("SELECT run_id FROM runs")["run_id"].tolist() == ["d"]
    result = runner.invoke(main, ["runs", "delete"])
    assert result.exit_code != 0 and "no runs selected" in result.output


def one_line_error(result) -> str:
    """The error of a failed command: exit code 1 and exactly one line, no traceback."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_a_dataset_name_never_leaves_the_datasets_folder(sessions_csv, isolated_home, tmp_path):
    for folder, name in (("checkpoints", "tiny/fpmc.pt"), ("models", "run-1.pt")):
        (isolated_home / folder / name).parent.mkdir(parents=True, exist_ok=True)
        (isolated_home / folder / name).write_text("keep me")
    attempts = [("--name", "../../x"), ("--name", "../checkpoints"), ("--name", "../models"), ("--name", "/tmp/x"),
                ("--name", "a/b"), ("--name", ".."), ("--name", ""), ("--name", "x\ny"),
                ("-o", "dataset_name=../checkpoints"), ("-o", "dataset_name=../../y")]
    for flag, value in attempts:
        result = CliRunner().invoke(main, ["data", "fetch", "csv", "--from", str(sessions_csv), flag, value])
        line = one_line_error(result)
        assert "may use letters, digits" in line and "fix:" in line, line
    assert (isolated_home / "checkpoints" / "tiny" / "fpmc.pt").read_text() == "keep me"
    assert (isolated_home / "models" / "run-1.pt").read_text() == "keep me"
    assert not (isolated_home.parent / "x").exists() and not (tmp_path / "y").exists()
    assert not (isolated_home / "datasets").exists() or list((isolated_home / "datasets").iterdir()) == []
    assert store.query("SELECT count(*) AS n FROM datasets")["n"][0] == 0
    line = one_line_error(CliRunner().invoke(main, ["data", "stats", "../checkpoints"]))
    assert line.startswith("Error: dataset '../checkpoints'")
    line = one_line_error(CliRunner().invoke(main, ["train", "--dataset", "../models"]))
    assert "may use letters, digits" in line


def test_fetch_replaces_only_a_folder_alkd_wrote(sessions_csv, isolated_home):
    foreign = isolated_home / "datasets" / "mine"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("not a dataset")
    line = one_line_error(CliRunner().invoke(main, ["data", "fetch", "csv", "--from", str(sessions_csv),
                                                    "--name", "mine"]))
    assert "not an alkd dataset" in line and "fix:" in line
    assert (foreign / "notes.txt").read_text() == "not a dataset"
    assert sorted(foreign.iterdir()) == [foreign / "notes.txt"]
    assert invoke("data", "fetch", "csv", "--from", sessions_csv, "--name", "shop").exit_code == 0
    again = invoke("data", "fetch", "csv", "--from", sessions_csv, "--name", "shop", "-o", "seed=1")
    assert again.exit_code == 0, again.output          # an alkd dataset is replaced whole
    assert sorted(p.name for p in (isolated_home / "datasets").iterdir()) == ["mine", "shop"]


def test_fetch_refuses_a_dataset_without_valid_or_test_sessions(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "interactions.csv").write_text("session_id,item_id,timestamp\ns1,a,1\ns1,b,2\ns2,b,3\ns2,c,4\n")
    line = one_line_error(CliRunner().invoke(main, ["data", "fetch", "csv", "--from", str(raw)]))
    assert "interactions.csv: dataset 'csv' has no" in line and "sessions" in line and "fix:" in line
    assert store.query("SELECT count(*) AS n FROM datasets")["n"][0] == 0


def test_runs_list_and_show_store_a_dead_run_as_failed():
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    store.create_run("gone", kind="distill", dataset="d", config={}, versions={}, pid=child.pid)
    store.create_run("gone-too", kind="distill", dataset="d", config={}, versions={}, pid=child.pid)
    child.kill()
    child.wait()
    assert invoke("runs", "list").exit_code == 0
    assert store.query("SELECT status FROM runs")["status"].tolist() == ["failed", "failed"]
    with store.write() as con:
        con.execute("UPDATE runs SET status = 'running' WHERE run_id = 'gone-too'")
    shown = invoke("runs", "show", "gone-too")
    assert "status: failed" in shown.output and "message: process died" in shown.output


def test_runs_import_refuses_a_run_id_that_is_a_path(tmp_path, isolated_home):
    import pandas as pd
    store.create_run("fine", kind="train", dataset="d", config={}, versions={})
    store.export_runs(["fine"], tmp_path / "export")
    runs = pd.read_parquet(tmp_path / "export" / "runs.parquet")
    runs.loc[0, "run_id"] = "../../../x"
    runs.to_parquet(tmp_path / "export" / "runs.parquet", index=False)
    store.delete_runs(["fine"])
    line = one_line_error(CliRunner().invoke(main, ["runs", "import", str(tmp_path / "export")]))
    assert "run_id '../../../x': a run id may use letters" in line and "fix:" in line
    assert store.query("SELECT count(*) AS n FROM runs")["n"][0] == 0
    line = one_line_error(CliRunner().invoke(main, ["recommend", "../../x", "--items", "1,2"]))
    assert "TARGET '../../x' is no model file" in line


class _Payload:
    """Unpickling this runs os.mkdir(marker): what a tampered checkpoint could do with weights_only=False."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.mkdir, (self.marker,)


def test_a_tampered_checkpoint_is_refused_without_running_it(sessions_csv, isolated_home, tmp_path):
    import torch
    assert invoke("data", "fetch", "csv", "--from", sessions_csv, "--name", "shop").exit_code == 0
    args = ["train", "--dataset", "shop", "--backbone", "gru4rec", "--role", "student", "--set", "max_epochs=1"]
    assert invoke(*args).exit_code == 0
    [checkpoint] = (isolated_home / "checkpoints" / "shop").glob("*.pt")
    assert [p.name for p in checkpoint.parent.iterdir()] == [checkpoint.name]     # no temporary file left
    marker = tmp_path / "code-ran"
    torch.save({"state": _Payload(str(marker))}, checkpoint)
    line = one_line_error(CliRunner().invoke(main, args))
    assert not marker.exists()
    assert f"{checkpoint}: not a checkpoint alkd can load safely" in line and "fix: delete the file" in line
