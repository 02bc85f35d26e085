"""core.registry: one registry type for every list of names. A dummy backbone, method and teacher registered here
(each in the one place its kind is declared) show up in the CLI, the dashboard's Launch pickers and the README's
generated tables without further edits, and a run with them goes through."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from core import store
from core.cli import main
from core.cli_registry import END, START, markdown, readme_block
from core.distill import METHODS, DistillResult
from core.distill import register as register_method
from core.models import BACKBONES, BackboneConfig, SessionModel
from core.models.base import mask_of
from core.models.registry import register as register_backbone
from core.registry import Registry, UnknownName
from core.teachers.providers import PROVIDERS
from core.teachers.providers import register as register_provider
from core.teachers.providers.simulated import SimulatedProvider
from dashboard import data

README = Path(__file__).resolve().parents[1] / "README.md"


# ---- the type ---------------------------------------------------------------------------------------------------

def test_register_get_names_describe_and_one_line_errors():
    things: Registry[int] = Registry("thing")
    assert things.register("a", 1, description="the  first\n thing") == 1

    @things.register("b", description="a | b")
    def b() -> int:
        return 2

    assert things.names() == ["a", "b"] and list(things) == ["a", "b"] and len(things) == 2
    assert things.get("a") == 1 and things["b"] is b and "a" in things and "c" not in things
    assert things.describe() == {"a": "the first thing", "b": "a | b"}
    assert things.markdown().splitlines()[-1] == "| `b` | a \\| b |"        # a | stays inside its cell
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        things.register("a", 3)
    assert things.register("a", 3, replace=True) == 3 and things.get("a") == 3
    with pytest.raises(UnknownName) as error:
        things.get("c")
    assert str(error.value) == "unknown thing 'c'; known: a, b"       # one line, no KeyError quotes
    assert isinstance(error.value, KeyError) and isinstance(error.value, ValueError)
    things.unregister("a")
    assert things.names() == ["b"]


def test_a_package_registry_imports_its_modules_once_the_first_ones_first(tmp_path, monkeypatch):
    package = tmp_path / "h5_plugins"
    package.mkdir()
    (package / "__init__.py").write_text("from core.registry import Registry\n"
                                         "PLUGINS = Registry('plugin', package='h5_plugins', first=('zeta',))\n")
    for module in ("alpha", "zeta", "_private"):
        (package / f"{module}.py").write_text(f"from h5_plugins import PLUGINS\n"
                                              f"PLUGINS.register({module!r}, {module!r}, description='x')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        from h5_plugins import PLUGINS
        assert PLUGINS.names() == ["zeta", "alpha"]        # `first` before the rest; _private is skipped
        assert PLUGINS.names() == ["zeta", "alpha"]        # imported once: no duplicate registration error
    finally:
        for name in [m for m in sys.modules if m.startswith("h5_plugins")]:
            del sys.modules[name]


def test_a_click_choice_reads_the_registry_when_asked():
    things: Registry[int] = Registry("thing")
    choice = things.click_choice()

    @click.command()
    @click.option("--thing", type=choice)
    def command(thing: str) -> None:
        click.echo(f"got {thing}")

    things.register("late", 1)                                # after the command was defined
    runner = CliRunner()
    assert "[late]" in runner.invoke(command, ["--help"]).output
    assert runner.invoke(command, ["--thing", "late"]).output == "got late\n"
    assert runner.invoke(command, ["--thing", "other"]).exit_code == 2


# ---- the six lists are registries ---------------------------------------------------------------------------------

def test_the_old_helpers_read_the_registries():
    from core import baselines
    from core.data.sources import SOURCES, all_sources
    from core.distill import method_names
    from core.models import backbone_names
    from core.selection.strategies import STRATEGIES, available_strategies
    from core.teachers.providers import default_model, provider_names

    assert backbone_names() == BACKBONES.names()[:5] == ["fpmc", "stamp", "attmix", "gru4rec", "sasrec"]
    assert method_names() == METHODS.names() and set(method_names("llm")) >= {"alkdrec", "random", "dllm2rec"}
    assert method_names("baseline") == baselines.available() == baselines.BASELINES.names()
    assert provider_names() == PROVIDERS.names() and default_model("openai") == "gpt-4o-mini"
    assert available_strategies() == tuple(sorted(STRATEGIES.names()))
    assert list(all_sources()) == SOURCES.names() and "ml-100k" in SOURCES
    for registry in (BACKBONES, METHODS, PROVIDERS, STRATEGIES, baselines.BASELINES, SOURCES):
        assert all(registry.describe().values()), registry       # every entry says what it is


def test_the_readme_tables_are_the_generated_ones():
    text = README.read_text()
    assert text.count(START) == 1 and text.count(END) == 1
    block = text[text.index(START):text.index(END) + len(END)]
    assert block == readme_block(), "README's registry tables are stale: run `alkd registry --update-readme README.md`"
    assert CliRunner().invoke(main, ["registry", "--markdown"]).output == markdown()


def test_update_readme_rewrites_only_the_marked_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{START}\nold table\n{END}\n\nmore text\n")
    result = CliRunner().invoke(main, ["registry", "--update-readme", str(readme)])
    assert result.exit_code == 0 and "updated" in result.output
    assert readme.read_text() == f"# title\n\n{readme_block()}\n\nmore text\n"
    assert "already current" in CliRunner().invoke(main, ["registry", "--update-readme", str(readme)]).output
    readme.write_text("no markers here\n")
    refused = CliRunner().invoke(main, ["registry", "--update-readme", str(readme)])
    assert refused.exit_code == 1 and len(refused.output.strip().splitlines()) == 1 and "fix:" in refused.output
    assert readme.read_text() == "no markers here\n"


# ---- a new backbone, method and teacher: one registration each -------------------------------------------------

class DummyConfig(BackboneConfig):
    scale: float = 1.0


class Dummy(SessionModel):
    """Mean of the window's item embeddings times `scale`."""

    name = "dummy-bb"
    description = "test dummy: mean pooling"
    Config = DummyConfig

    def __init__(self, n_items: int, dim: int, max_len: int, config=None, **settings) -> None:
        super().__init__(n_items, dim, max_len, config, **settings)
        self.embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)

    def encode(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = mask_of(inputs)
        pooled = (self.embedding(inputs) * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.config.scale * pooled

    def item_embeddings(self) -> torch.Tensor:
        return self.embedding.weight


class DummyTeacher(SimulatedProvider):
    name = "dummy-teacher"


@pytest.fixture
def dummies():
    """A backbone, a method and a teacher provider registered as a new module of each would register them."""
    BACKBONES.load(), METHODS.load(), PROVIDERS.load()
    register_backbone(Dummy)
    register_method("dummy-method", "teacher-rankings", description="test dummy: the student as it is")(
        lambda ctx: DistillResult(ctx.student, None, {"dummy": True}))
    register_provider("dummy-teacher", default_model="dummy", description="test dummy teacher")(DummyTeacher)
    yield
    BACKBONES.unregister("dummy-bb"), METHODS.unregister("dummy-method"), PROVIDERS.unregister("dummy-teacher")


def test_dummy_entries_show_in_the_cli(dummies):
    runner = CliRunner()
    assert "dummy-bb" in runner.invoke(main, ["train", "--help"]).output
    assert "dummy-teacher" in runner.invoke(main, ["run", "--help"]).output
    hints = runner.invoke(main, ["hints", "--help"]).output
    assert "dummy-bb" in hints and "dummy-teacher" in hints
    tables = runner.invoke(main, ["registry", "--markdown"]).output
    assert all(f"`{name}`" in tables for name in ("dummy-bb", "dummy-method", "dummy-teacher"))
    # accepted: what stops these is the missing dataset, not the names
    for argv in (["train", "--dataset", "nowhere", "--backbone", "dummy-bb"],
                 ["run", "--dataset", "nowhere", "--backbone", "dummy-bb", "--method", "dummy-method",
                  "--teacher", "dummy-teacher"]):
        result = runner.invoke(main, argv)
        assert result.exit_code == 1 and "nowhere" in result.output, result.output
        assert "dummy-" not in result.output and "known" not in result.output


def test_dummy_entries_show_in_the_dashboards_launch_pickers(dummies, isolated_home):
    from streamlit.testing.v1 import AppTest

    assert "dummy-bb" not in data.BACKBONES          # imported before the dummies were: the pickers must read live
    assert "dummy-bb" in data.backbone_options()
    assert "dummy-method" in data.method_options() and "dummy-teacher" in data.teacher_options()
    app = AppTest.from_file(str(Path(data.__file__).parent / "app.py"), default_timeout=60)
    app.run()
    app.switch_page("views/launch.py")
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert "dummy-bb" in app.selectbox(key="backbone").options
    assert "dummy-method" in app.multiselect(key="methods").options
    assert "dummy-teacher" in app.selectbox(key="teacher").options


def test_a_run_with_the_dummy_backbone_method_and_teacher_goes_through(dummies, csv_dataset):
    result = CliRunner().invoke(main, ["run", "--dataset", csv_dataset, "--backbone", "dummy-bb",
                                       "--method", "dummy-method", "--teacher", "dummy-teacher", "--no-save-model",
                                       "--pretrain", "max_epochs=1", "--pretrain", "scale=2"])
    assert result.exit_code == 0, result.output
    run = store.query("SELECT backbone, method, teacher, status, config FROM runs WHERE kind = 'distill'").iloc[0]
    assert (run["backbone"], run["method"], run["teacher"], run["status"]) == \
        ("dummy-bb", "dummy-method", "dummy-teacher", "done")
    assert json.loads(run["config"])["pretrain"] == {"max_epochs": 1, "scale": 2}
    checkpoints = sorted(p.name for p in (isolated_home_checkpoints()).glob("*.pt"))
    assert [n.split("-")[:3] for n in checkpoints] == [["dummy", "bb", "d10"], ["dummy", "bb", "d100"]]


def isolated_home_checkpoints() -> Path:
    from core.paths import checkpoints_dir
    return checkpoints_dir() / "csv"


def test_a_paid_provider_declares_its_key_where_it_registers(monkeypatch):
    from core.teachers.keys import scrub
    from core.teachers.providers import key_envs as key_env
    from core.teachers.providers import teacher_key
    assert key_env() == {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
    register_provider("dummy-paid", default_model="dummy", description="test dummy", key_env="DUMMY_PAID_KEY")(
        DummyTeacher)
    try:
        monkeypatch.setenv("DUMMY_PAID_KEY", "dummy-secret-123456")
        assert key_env()["dummy-paid"] == "DUMMY_PAID_KEY"
        assert teacher_key("dummy-paid") == ("DUMMY_PAID_KEY", "dummy-secret-123456")
        assert "dummy-secret-123456" not in scrub("the key dummy-secret-123456 leaked", patterns=False)
    finally:
        PROVIDERS.unregister("dummy-paid")
    assert "dummy-paid" not in key_env()
