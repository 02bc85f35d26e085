"""core.run_spec: one description of a run (RunConfig) and of a launch (LaunchSpec): TOML in and out, the cartesian
product, one-line errors naming the field (and the flag or file it came from), checks against this machine, the
USD estimate, and `alkd run --config` with flags overriding the file."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from core import store
from core.cli import main
from core.cli_run import given_flags, run_cmd
from core.run_spec import (
    LaunchSpec,
    RunConfig,
    SpecError,
    check,
    estimate_usd,
    flag,
    seeds_text,
)


def test_run_config_lives_in_run_spec_and_pipeline_still_exports_it():
    from core import pipeline
    assert pipeline.RunConfig is RunConfig
    a, b = RunConfig(dataset="d", seed=1), RunConfig(dataset="d", seed=1)
    assert a.key() == b.key() and a.key() != RunConfig(dataset="d", seed=2).key()


def test_the_issues_grid_is_eighteen_runs_in_seed_major_order():
    spec = LaunchSpec.parse({"dataset": "ml-100k", "methods": ["student", "random", "alkdrec"],
                             "teacher": "simulated", "budgets": [25, 50, 100], "seeds": "0-1"})
    runs = spec.runs()
    assert len(runs) == spec.n_runs() == 18 and len({r.key() for r in runs}) == 18
    assert [r.seed for r in runs] == [0] * 9 + [1] * 9
    assert [(r.budget, r.method) for r in runs[:4]] == [(25, "student"), (25, "random"), (25, "alkdrec"),
                                                         (50, "student")]
    assert spec.swept() == ["seed", "budget", "method"]


def test_scalars_lists_and_sweeps_of_settings():
    spec = LaunchSpec.parse({"datasets": ["a", "b"], "method": "student,tr", "ratios": ["1:5:4", [1, 1, 1]],
                             "options": {"lr": [1e-3, 1e-4], "patience": 5}, "seeds": [0, 2]})
    assert spec.dataset == ["a", "b"] and spec.method == ["student", "tr"]
    assert spec.ratios == [(1.0, 5.0, 4.0), (1.0, 1.0, 1.0)]
    assert spec.options == [{"lr": 1e-3, "patience": 5}, {"lr": 1e-4, "patience": 5}]
    assert spec.n_runs() == 2 * 2 * 2 * 2 * 2
    assert LaunchSpec.parse({"dataset": "a", "method": "student", "ratios": [1, 5, 4]}).ratios == [(1.0, 5.0, 4.0)]
    assert seeds_text([0, 1, 2, 4, 6, 7]) == "0-2,4,6-7"


def test_toml_round_trip(tmp_path: Path):
    spec = LaunchSpec.parse({"dataset": "ml-100k", "methods": ["student", "alkdrec"], "teacher": "openai",
                             "model": "gpt-4o-mini", "budgets": [25, 50], "usd_cap": 0.5, "seeds": "0-2",
                             "ratios": ["1:5:4", "1:1:1"], "hit_rate": 0.6, "force_label": True,
                             "options": {"lr": [1e-3, 1e-4], "recipe": "joint"}, "pretrain": {"loss": "ce"},
                             "group": "g \"quoted\"", "tags": ["a", "b c"], "launch_usd_cap": 3.0,
                             "save_model": False})
    path = tmp_path / "grid.toml"
    path.write_text(spec.to_toml())
    assert LaunchSpec.from_toml(path) == spec
    minimal = LaunchSpec.parse({"dataset": "x", "method": "student"})
    path.write_text(minimal.to_toml())
    assert LaunchSpec.from_toml(path) == minimal and path.read_text().count("\n") == 2


def test_the_shown_command_reads_back_to_the_same_launch():
    spec = LaunchSpec.parse({"dataset": "ml-100k", "backbone": "sasrec", "methods": ["student", "alkdrec"],
                             "teacher": "simulated", "budget": 40, "ratios": "2:3:4", "mu": 5, "seeds": "0-2,7",
                             "hit_rate": 0.4, "mode": "authors-code", "difficulty": "teacher", "force_label": False,
                             "selection": "random", "options": {"lr": 1e-4, "recipe": "finetune"},
                             "pretrain": {"loss": "ce"}, "group": "my group", "tags": ["x y"], "save_model": False})
    argv = shlex.split(shlex.join(spec.run_argv()))
    context = run_cmd.make_context("run", argv[1:])
    params = dict(context.params)
    assert params.pop("config_path") is None
    assert LaunchSpec.parse(given_flags(**params)) == spec
    with pytest.raises(ValueError, match="alkd sweep"):
        spec.model_copy(update={"budget": [1, 2]}).run_argv()


@pytest.mark.parametrize(("raw", "field", "expect"), [
    ({"methods": "alkdrc"}, "method", "alkdrc"),
    ({"budgets": [5, 0]}, "budget", "at least 1"),
    ({"ratios": "1:5"}, "ratios", "1:5:4"),
    ({"seeds": "4-1"}, "seed", "backwards"),
    ({"mu": float("nan")}, "mu", "mu must be"),
    ({"usd_cap": -1}, "usd_cap", "finite number >= 0"),
    ({"launch_usd_cap": float("inf")}, "launch_usd_cap", "finite number >= 0"),
    ({"hit_rate": 1.5}, "hit_rate", "probability"),
    ({"options": {"patiance": 3}}, "options", "did you mean 'patience'"),
    ({"pretrain": {"lr": -1}}, "pretrain", "lr"),
    ({"backbone": "fpmcc"}, "backbone", "known backbones"),
    ({"teacher": "gpt"}, "teacher", "known teachers"),
    ({"budgte": 5}, "budgte", "did you mean 'budget'"),
    ({"budget": "many"}, "budget", "'many'"),
    ({"method": "student", "methods": "tr"}, "method", "given twice"),
])
def test_a_bad_value_is_one_spec_error_naming_its_field(raw, field, expect):
    with pytest.raises(SpecError) as caught:
        LaunchSpec.parse({"dataset": "d", "method": "student", **raw} if "method" not in raw and "methods" not in raw
                         else {"dataset": "d", **raw})
    error = caught.value
    assert error.field == field and expect in error.text()
    line = error.line(flag)
    assert "\n" not in line and line.startswith(flag(field))


def test_checks_against_this_machine(csv_dataset, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    ok = LaunchSpec.parse({"dataset": "csv", "methods": ["student", "alkdrec"], "teacher": "simulated", "budget": 5})
    assert check(ok) == []
    assert [e.field for e in check(ok.model_copy(update={"dataset": ["nope"]}))] == ["dataset"]
    errors = check(ok.model_copy(update={"budget": [5, 10_000]}))
    assert [e.field for e in errors] == ["budget"] and "exceeds the pool" in errors[0].text()
    assert [e.field for e in check(ok.model_copy(update={"teacher": ["replay"]}))] == ["teacher"]
    assert check(ok.model_copy(update={"teacher": ["replay"], "method": ["student"]})) == []  # no LLM asked
    errors = check(ok.model_copy(update={"teacher": ["openai"], "model": ["gpt-unknown-9"]}))
    assert {e.field for e in errors} == {"model", "teacher"}                       # no price, and no key
    assert any("OPENAI_API_KEY" in e.text() for e in errors)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    errors = check(ok.model_copy(update={"teacher": ["openai"], "usd_cap": [0.0]}))
    assert [e.field for e in errors] == ["usd_cap"] and "$0.00" in errors[0].text()


def test_usd_estimate_counts_llm_runs_each_at_most_its_cap_all_at_most_the_launch_cap():
    spec = LaunchSpec.parse({"dataset": "d", "methods": ["student", "alkdrec", "random"], "teacher": "openai",
                             "model": "gpt-4o-mini", "budgets": [100, 200], "seeds": "0-1"})
    per_run, total = estimate_usd(spec)
    one = estimate_usd(spec.model_copy(update={"budget": [200], "seed": [0], "method": ["alkdrec"]}))[1]
    small = estimate_usd(spec.model_copy(update={"budget": [100], "seed": [0], "method": ["alkdrec"]}))[1]
    assert per_run == pytest.approx(one) and total == pytest.approx(4 * one + 4 * small)
    capped = estimate_usd(spec.model_copy(update={"usd_cap": [small / 2]}))
    assert capped[1] == pytest.approx(8 * small / 2)
    assert estimate_usd(spec.model_copy(update={"launch_usd_cap": small}))[1] == pytest.approx(small)
    assert estimate_usd(spec.model_copy(update={"teacher": ["simulated"]})) == (0.0, 0.0)
    assert estimate_usd(spec.model_copy(update={"model": ["gpt-unknown-9"]})) is None


def _one_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_alkd_run_config_with_flags_overriding_the_file(csv_dataset, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('dataset = "csv"\nmethods = ["popular", "transitions"]\nteacher = "simulated"\nbudget = 5\n'
                    'group = "from-file"\ntags = ["t"]\nsave_model = false\n[options]\npatience = 4\n')
    result = CliRunner().invoke(main, ["run", "--config", str(path), "--budget", "7", "--method", "popular",
                                       "-o", "lr=0.002"])
    assert result.exit_code == 0, result.output
    runs = store.query("SELECT method, budget, groups, tags, config FROM runs")
    assert runs["method"].tolist() == ["popular"]                              # the flag replaced the file's list
    assert runs["budget"].tolist() == [7] and runs["groups"].tolist() == ["from-file"]
    config = json.loads(runs["config"][0])
    assert config["budget"] == 7 and config["teacher"] == "simulated"
    assert config["options"] == {"patience": 4, "lr": 0.002}                    # settings merged, the flag added


def test_a_bad_run_file_is_one_line_naming_the_file_and_field_and_writes_nothing(csv_dataset, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('dataset = "csv"\nmethods = ["student"]\nbudgte = 5\n')
    line = _one_line(CliRunner().invoke(main, ["run", "--config", str(path)]))
    assert f"{path}, field 'budgte'" in line and "did you mean 'budget'" in line
    path.write_text('dataset = "csv"\nmethods = ["student"]\nbudget = 0\n')
    line = _one_line(CliRunner().invoke(main, ["run", "--config", str(path)]))
    assert f"{path}, field 'budget'" in line and "at least 1" in line
    line = _one_line(CliRunner().invoke(main, ["run", "--config", str(path), "--budget", "0"]))
    assert line.startswith("Error: invalid --budget:")                          # the flag is named, not the file
    path.write_text('dataset = "csv"\nmethods = ["student"]\nbudget = = 3\n')
    line = _one_line(CliRunner().invoke(main, ["run", "--config", str(path)]))
    assert "--config" in line and "not valid TOML" in line and "line 3" in line
    line = _one_line(CliRunner().invoke(main, ["run", "--config", str(tmp_path / "absent.toml")]))
    assert "no such file" in line
    line = _one_line(CliRunner().invoke(main, ["run", "--method", "student"]))
    assert "--dataset" in line and "is required" in line
    assert store.query("SELECT count(*) AS n FROM runs")["n"][0] == 0
