"""The Launch page (AppTest against a seeded store): it builds a core.run_spec.LaunchSpec from its widgets, lists
core's problems at the top, estimates the cost, and launches `alkd run` (one budget and seed) or `alkd sweep`."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from core.paths import data_home
from core.run_spec import LaunchSpec
from dashboard import data


def texts(at, kind: str) -> list[str]:
    return [e.value for e in at.get(kind)]


def command(at) -> str:
    return at.code[0].value


def walk(node):
    """Every element of an AppTest tree in page order (depth first)."""
    children = getattr(node, "children", None)
    if children is None:
        yield node
        return
    for key in sorted(children):
        yield from walk(children[key])


def test_launch_widgets_estimate_and_pstar(seeded, app):
    at = app("launch")
    for key in ("dataset", "backbone", "methods", "teacher", "budgets", "r_ef", "r_si", "r_in", "mu", "seeds",
                "hit_rate"):
        assert at.session_state[key] is not None, key
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["data"][0]["name"] == "p*"
    assert "k*" in json.dumps(spec["layout"])
    assert not texts(at, "error")
    assert not at.button(key="launch").disabled
    assert "simulated" in at.selectbox(key="teacher").format_func("simulated")
    assert command(at).startswith("alkd run --dataset tiny ")     # one budget and seed: alkd run, no machine path


def test_launch_validation_messages(seeded, app, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    at = app("launch")
    at.text_input(key="budgets").set_value("10000").run()
    assert any("exceeds the pool" in t for t in texts(at, "error"))
    at.text_input(key="budgets").set_value("10, many").run()
    assert any(t.startswith("LLM budget: 'many'") for t in texts(at, "error"))
    at.text_input(key="budgets").set_value("10").run()
    at.multiselect(key="methods").set_value([]).run()
    assert any("at least one method" in t for t in texts(at, "error"))
    at.multiselect(key="methods").set_value(["student", "alkdrec"]).run()
    at.selectbox(key="teacher").set_value("replay").run()
    assert any("replay teacher" in t for t in texts(at, "error"))
    at.selectbox(key="teacher").set_value("openai").run()
    at.text_input(key="model_openai").set_value("my-private-llm").run()
    errors = texts(at, "error")
    assert any("No price known for model 'my-private-llm'" in t for t in errors)
    assert any("OPENAI_API_KEY is not set" in t for t in errors)
    assert at.button(key="launch").disabled


def test_several_budgets_and_seeds_launch_a_sweep(seeded, app):
    at = app("launch")
    at.multiselect(key="methods").set_value(["student", "random", "alkdrec"]).run()
    at.text_input(key="budgets").set_value("4, 8").run()
    at.text_input(key="seeds").set_value("0-1").run()
    at.text_input(key="group").set_value("grid one").run()
    assert not texts(at, "error")
    assert command(at) == "alkd sweep launches/grid_one.toml"
    grid = LaunchSpec.parse(__import__("tomllib").loads(at.code[1].value))   # the launch file shown is the launch
    assert grid.n_runs() == 12 and grid.budget == [4, 8] and grid.seed == [0, 1] and grid.group == "grid one"
    assert any("12 runs (seed, budget, method swept)" in t for t in texts(at, "caption"))


def test_launch_switching_provider_switches_model_and_price(seeded, app, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-1234567890abcd")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-1234567890")
    at = app("launch")
    at.selectbox(key="teacher").set_value("openai").run()
    assert at.text_input(key="model_openai").value == "gpt-4o-mini"
    openai_usd = next(m.value for m in at.metric if m.label == "Expected per labelled run")
    at.selectbox(key="teacher").set_value("anthropic").run()
    assert at.text_input(key="model_anthropic").value == "claude-haiku-4-5"
    assert "--model claude-haiku-4-5" in command(at) and "gpt-4o-mini" not in command(at)
    assert next(m.value for m in at.metric if m.label == "Expected per labelled run") != openai_usd


def test_launch_usd_cap_is_a_hard_cap_and_errors_come_first(seeded, app, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-1234567890abcd")
    at = app("launch")
    at.selectbox(key="teacher").set_value("openai").run()
    at.text_input(key="budgets").set_value("30").run()
    at.text_input(key="seeds").set_value("0-4").run()
    assert not texts(at, "error")
    uncapped = {m.label: m.value for m in at.metric}
    per_run = float(uncapped["Expected per labelled run"].lstrip("$"))
    at.checkbox(key="use_cap").check().run()
    cap = round(per_run / 2, 4)
    at.number_input(key="usd_cap").set_value(cap).run()
    capped = {m.label: m.value for m in at.metric}
    runs = int(capped["Runs asking the LLM"])
    assert runs == 10                                                           # random and alkdrec x 5 seeds
    assert capped["At most for this launch"] == f"${cap * runs:,.4f}"          # each run at most its cap
    assert any("below the expected" in t for t in texts(at, "warning"))
    at.number_input(key="usd_cap").set_value(0.0).run()
    assert any("$0.00 allows no paid call" in t for t in texts(at, "error"))
    assert at.button(key="launch").disabled
    kinds = [type(e).__name__ for e in walk(at.main)]
    first_error = kinds.index("Error")
    headers = [i for i, e in enumerate(walk(at.main)) if type(e).__name__ == "Subheader"]
    assert first_error < headers[0]                                             # above the first section


def test_launch_warns_when_checkpoints_must_be_trained_first(seeded, app):
    from core.paths import checkpoints_dir
    at = app("launch")
    assert any("No pre-trained fpmc teacher and student for tiny seed(s) 0" in t for t in texts(at, "warning"))
    folder = checkpoints_dir() / "tiny"
    folder.mkdir(parents=True)
    for dim in (64, 10):          # a teacher and a student of seed 0
        (folder / f"fpmc-d{dim}-s0-0123456789.pt").write_bytes(b"")
    at = app("launch")
    assert not any("No pre-trained" in t for t in texts(at, "warning"))


def test_launch_training_settings_reach_the_command_and_are_checked(seeded, app):
    at = app("launch")
    at.text_area(key="pretrain").set_value("loss=ce").run()
    at.text_area(key="options").set_value("lr=1e-4\npatience=10").run()
    assert not texts(at, "error")
    assert "--pretrain loss=ce" in command(at) and "--option lr=0.0001" in command(at)
    assert "--option patience=10" in command(at)
    assert "objective" in at.dataframe[0].value["option"].tolist()
    at.text_area(key="options").set_value("patiance=10").run()
    assert any("did you mean 'patience'" in t for t in texts(at, "error"))
    at.text_area(key="options").set_value("").run()
    at.text_area(key="pretrain").set_value("loss=mse").run()
    assert any(t.startswith("Pre-training settings: loss=") for t in texts(at, "error"))
    at.text_area(key="pretrain").set_value("just words").run()
    assert any("is not KEY=VALUE" in t for t in texts(at, "error"))
    assert at.button(key="launch").disabled


def test_launch_distillation_objective_reaches_the_command(seeded, app):
    at = app("launch")
    assert "recipe=" not in command(at) and "lambda" not in command(at)          # defaults add nothing
    at.selectbox(key="recipe").set_value("finetune").run()
    at.selectbox(key="init").set_value("scratch").run()
    at.selectbox(key="loss").set_value("pairwise").run()
    at.selectbox(key="lists").set_value("in-candidates").run()
    at.number_input(key="lambda").set_value(0.3).run()
    for option in ("recipe=finetune", "init=scratch", "loss=pairwise", "lists=in-candidates", "lambda=0.3"):
        assert f"--option {option}" in command(at), option
    assert not texts(at, "error")


def test_launch_shows_masked_key_and_cost(seeded, app, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-1234567890abcd")
    at = app("launch")
    at.selectbox(key="teacher").set_value("openai").run()
    captions = " ".join(texts(at, "caption"))
    assert "sk-…abcd" in captions and "1234567890" not in captions
    assert any(m.label == "Expected per labelled run" and m.value.startswith("$") for m in at.metric)


def test_launch_caps_the_whole_launch(seeded, app, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-1234567890abcd")
    at = app("launch")
    at.selectbox(key="teacher").set_value("openai").run()
    at.checkbox(key="use_cap").check().run()
    at.text_input(key="budgets").set_value("100").run()
    at.text_input(key="seeds").set_value("0-9").run()
    at.number_input(key="usd_cap").set_value(1000.0).run()
    at.number_input(key="launch_usd_cap").set_value(0.01).run()
    # several seeds: a sweep, whose launch file carries both caps
    assert command(at) == "alkd sweep launches/GROUP.toml"
    grid = at.code[1].value
    assert "launch_usd_cap = 0.01" in grid and "usd_cap = 1000.0" in grid
    total = next(m for m in at.metric if m.label == "At most for this launch")
    assert total.value == "$0.0100"                           # never more than the launch's cap


def test_command_of_a_launch_is_shell_quoted_with_no_machine_path():
    spec = LaunchSpec.parse(dict(dataset="ml-100k", methods=["student", "alkdrec"], teacher="openai",
                                 model="gpt-4o-mini", budget=50, usd_cap=2.0, ratios=(1, 5, 4), seeds="0",
                                 group="my group", tags=["a"]))
    shown = data.shown_command(spec)
    assert shlex.split(shown) == [
        "alkd", "run", "--dataset", "ml-100k", "--backbone", "fpmc", "--method", "student,alkdrec", "--teacher",
        "openai", "--budget", "50", "--ratios", "1:5:4", "--mu", "10", "--seeds", "0", "--mode", "paper",
        "--device", "auto", "--model", "gpt-4o-mini", "--usd-cap", "2", "--group", "my group", "--tag", "a"]
    assert "'my group'" in shown and sys.executable not in shown
    spec = spec.model_copy(update={"options": [{"lr": 1e-4, "objective": "ce"}], "pretrain": [{"loss": "ce"}]})
    assert spec.run_argv()[-6:] == ["--option", "lr=0.0001", "--option", "objective=ce", "--pretrain", "loss=ce"]
    assert data.shown_command(spec.model_copy(update={"seed": [0, 1]})) == "alkd sweep launches/my_group.toml"


def test_a_sweep_launch_writes_its_file_and_starts_alkd_sweep(seeded, monkeypatch):
    started = {}

    class Child:
        pid = 4242

    def fake_popen(argv, **kwargs):
        started.update(argv=argv, cwd=kwargs["cwd"])
        return Child()

    monkeypatch.setattr(subprocess, "Popen", fake_popen)
    monkeypatch.setattr(data, "_recent", {})
    spec = LaunchSpec.parse(dict(dataset="tiny", methods=["student"], teacher="simulated", budgets=[4, 8],
                                 group="g-sweep"))
    pid, log, args = data.launch(spec)
    assert pid == 4242 and args == ["sweep", "launches/g-sweep.toml"]
    assert started["argv"][-2:] == args and started["cwd"] == data_home()
    assert LaunchSpec.from_toml(data_home() / "launches" / "g-sweep.toml") == spec
    assert log.read_text().startswith("$ alkd sweep launches/g-sweep.toml")


def test_launch_problems_of_a_spec_with_a_missing_dataset(seeded):
    spec, errors, _ = data.launch_problems({"dataset": "nope", "methods": "student"})
    assert spec is not None and len(errors) == 1 and "alkd data fetch nope" in errors[0]
    spec, errors, _ = data.launch_problems({"dataset": "tiny", "methods": "student", "budget": 0, "mu": -1})
    assert spec is None and len(errors) == 2 and errors[0].startswith(("LLM budget", "mu"))


@pytest.mark.parametrize("budgets", ["8", "4,8"])
def test_the_launch_page_starts_the_same_spec_it_shows(seeded, app, monkeypatch, budgets):
    launched = []
    monkeypatch.setattr(data, "launch", lambda spec: launched.append(spec) or (1, data_home() / "x.log",
                                                                               data.launch_args(spec)))
    at = app("launch")
    at.text_input(key="budgets").set_value(budgets).run()
    at.button(key="launch").click().run()
    assert len(launched) == 1 and launched[0].budget == [int(b) for b in budgets.split(",")]
