"""Bad input, everywhere it can come in: each case must end in ONE line that names what was wrong and where (the
flag, file, setting or field), never a traceback, and must leave everything stored as it was (every table's row
count and every file under the data folder, byte for byte).

Cases by where the input comes from: command-line flags (`alkd run`, `train`, `evaluate`, `data fetch`, `hints`,
`estimate`, `recommend`, `runs`), files (CSV, JSON lines, the authors' pickles, .pt models, Parquet exports),
environment (ALKD_DB, ALKD_HOME), prices (ALKD_PRICES), server replies (a loopback OpenAI-compatible server,
tests/fakeserver.py) and dashboard values (the Launch page's checks, dashboard.data.launch_problems: core.run_spec).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner
from fakeserver import FakeLLMServer, FakeReply
from tiny_data import write_sessions_csv

from core import store
from core.cli import main

FAKE_KEY = "sk-test-BADINPUT-0123456789abcdef"


# ---- the world a case runs in ---------------------------------------------------------------------------------------

@dataclass
class World:
    home: Path          # ALKD_HOME: datasets, checkpoints, models and the store
    tmp: Path           # scratch files a case writes (outside the data folder)
    raw: Path           # a good CSV source folder (100 sessions, 25 titled items)
    model: Path         # a good alkd model file of the fetched dataset
    url: str = ""       # the loopback LLM server's OpenAI base URL, while a case has one

    def fill(self, text: str) -> str:
        return text.format(home=self.home, tmp=self.tmp, raw=self.raw, model=self.model, url=self.url)


def snapshot(world: World) -> dict[str, Any]:
    """Row counts of every table of the store and the bytes of every other file under the data folder."""
    with store.connect(world.home / "runs.duckdb", read_only=True) as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables"
                                            " WHERE table_schema = 'main' ORDER BY table_name").fetchall()]
        rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    files = {str(p.relative_to(world.home)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(world.home.rglob("*")) if p.is_file() and not p.name.startswith("runs.duckdb")}
    return {"rows": rows, "files": files}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A data folder with the fetched `csv` dataset (100 sessions, 25 titled items) and its raw folder, made once;
    each case gets a copy."""
    root = tmp_path_factory.mktemp("bad-input")
    raw = write_sessions_csv(root / "raw", n_sessions=100, n_items=25, lengths=(3, 7), titles=True)
    home = root / "home"
    result = CliRunner().invoke(main, ["data", "fetch", "csv", "--from", str(raw), "-o", "max_length=5"],
                                env={"ALKD_HOME": str(home), "ALKD_DB": None})
    assert result.exit_code == 0, result.output
    return home, raw


@pytest.fixture
def world(template: tuple[Path, Path], tmp_path: Path, isolated_home: Path,
          monkeypatch: pytest.MonkeyPatch) -> World:
    from core.model_files import save_model
    from core.models import create

    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ALKD_PRICES", "ALKD_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    home, raw = template
    shutil.copytree(home, isolated_home)
    shutil.copytree(raw, tmp_path / "raw")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    model = save_model(create("fpmc", 25, 4, 5), scratch / "good.pt", {"dataset": "csv", "run_id": "r1"})
    return World(isolated_home, scratch, tmp_path / "raw", model)


# ---- cases -----------------------------------------------------------------------------------------------------------

Setup = Callable[[World], None]


@dataclass(frozen=True)
class Case:
    """args: the command line (`{tmp}`, `{raw}`, `{model}`, `{home}`, `{url}` filled in); expect: text the one line
    must contain (what and where); env: variables set for the command (None = unset); setup: writes the bad files;
    may_log_calls: the case calls an LLM server, whose call log (llm_calls) records the attempt by design."""

    args: tuple[str, ...]
    expect: tuple[str, ...]
    env: dict[str, str | None] = field(default_factory=dict)
    setup: Setup | None = None
    server: Callable[..., FakeReply] | None = None
    may_log_calls: bool = False


def run(*args: str) -> tuple[str, ...]:
    return ("run", "--dataset", "csv", "--method", "alkdrec", "--teacher", "simulated", "--budget", "5", *args)


def write(relative: str, text: str | bytes) -> Setup:
    def setup(world: World) -> None:
        path = world.tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return setup


def csv_folder(lines: list[str], items: str | None = None) -> Setup:
    def setup(world: World) -> None:
        folder = world.tmp / "src"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "interactions.csv").write_text("\n".join(lines) + "\n")
        if items is not None:
            (folder / "items.csv").write_text(items)
    return setup


def parquet(table: str, frame_of: Callable[[], Any], folder: str = "export") -> Setup:
    def setup(world: World) -> None:
        path = world.tmp / folder / f"{table}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame_of().to_parquet(path, index=False)
    return setup


def both(*setups: Setup) -> Setup:
    def setup(world: World) -> None:
        for one in setups:
            one(world)
    return setup


def pretrained(world: World) -> None:
    """The teacher recommender `alkd hints` trains, cached before the snapshot (so the case changes nothing)."""
    from core.cli_hints import teacher_cases
    from core.data import catalog
    teacher_cases(catalog.load("csv"), "fpmc", 3, 0)


def runs_frame():
    import pandas as pd
    return pd.DataFrame({"run_id": ["imported-1"], "status": ["done"], "dataset": ["csv"]})


CSV_HEADER = "session_id,item_id,timestamp"

CASES: dict[str, Case] = {
    # ---- alkd run: every flag checked before the first run row ----
    "run-budget-zero": Case(run("--budget", "0"), ("--budget",)),
    "run-budget-negative": Case(run("--budget", "-1"), ("--budget",)),
    "run-usd-cap-negative": Case(run("--usd-cap", "-1"), ("--usd-cap",)),
    "run-usd-cap-nan": Case(run("--usd-cap", "nan"), ("--usd-cap",)),
    "run-usd-cap-inf": Case(run("--usd-cap", "inf"), ("--usd-cap",)),
    "run-launch-usd-cap-negative": Case(run("--launch-usd-cap", "-0.5"), ("--launch-usd-cap",)),
    "run-mu-zero": Case(run("--mu", "0"), ("--mu",)),
    "run-mu-nan": Case(run("--mu", "nan"), ("--mu",)),
    "run-ratios-two-parts": Case(run("--ratios", "1:5"), ("--ratios", "1:5:4")),
    "run-ratios-negative": Case(run("--ratios", "1:-5:4"), ("--ratios",)),
    "run-ratios-nan": Case(run("--ratios", "1:nan:4"), ("--ratios",)),
    "run-ratios-all-zero": Case(run("--ratios", "0:0:0"), ("--ratios",)),
    "run-seeds-backwards": Case(run("--seeds", "4-1"), ("--seeds", "backwards")),
    "run-seeds-text": Case(run("--seeds", "a,b"), ("--seeds",)),
    "run-seeds-beyond-32-bits": Case(run("--seeds", "99999999999999999999"), ("--seeds", "2**32")),
    "run-seeds-too-many": Case(run("--seeds", "0-100000"), ("--seeds", "0-4")),
    "run-unknown-method": Case(run("--method", "alkdrc"), ("--method", "alkdrc")),
    "run-unknown-dataset": Case(("run", "--dataset", "nope", "--method", "student"), ("nope", "alkd data fetch")),
    "run-dataset-path-escape": Case(("run", "--dataset", "../x", "--method", "student"), ("../x",)),
    "run-unknown-backbone": Case(run("--backbone", "fpmcc"), ("--backbone", "fpmcc")),
    "run-hit-rate-above-one": Case(run("--hit-rate", "1.5"), ("--hit-rate",)),
    "run-hit-rate-nan": Case(run("--hit-rate", "nan"), ("--hit-rate",)),
    "run-unknown-selection": Case(run("--selection", "best"), ("--selection", "best")),
    "run-option-misspelt": Case(run("--option", "patiance=3"), ("patiance", "patience")),
    "run-option-not-a-number": Case(run("--option", "lr=fast"), ("lr", "fast")),
    "run-option-without-equals": Case(run("--option", "lr"), ("--option", "KEY=VALUE")),
    "run-pretrain-unknown": Case(run("--pretrain", "learning_rate=1"), ("--pretrain", "learning_rate")),
    "run-pretrain-negative-lr": Case(run("--pretrain", "lr=-1"), ("--pretrain", "lr")),
    "run-replay-without-recordings": Case(run("--teacher", "replay"), ("--teacher", "replay", "fix:")),
    "run-openai-unknown-price": Case(run("--teacher", "openai", "--model", "gpt-unknown-9"),
                                     ("gpt-unknown-9", "ALKD_PRICES")),
    "run-openai-missing-key": Case(run("--teacher", "openai"), ("OPENAI_API_KEY",), env={"OPENAI_API_KEY": None}),
    # ---- train / evaluate ----
    "train-set-unknown": Case(("train", "--dataset", "csv", "--set", "lrr=1"), ("--set", "lrr")),
    "train-set-lr-text": Case(("train", "--dataset", "csv", "--set", "lr=abc"), ("--set", "lr")),
    "train-set-zero-epochs": Case(("train", "--dataset", "csv", "--set", "max_epochs=0"), ("max_epochs",)),
    "train-set-unknown-loss": Case(("train", "--dataset", "csv", "--set", "loss=hinge"), ("loss", "hinge")),
    "train-dim-zero": Case(("train", "--dataset", "csv", "--dim", "0"), ("--dim",)),
    "train-seed-negative": Case(("train", "--dataset", "csv", "--seed", "-1"), ("--seed",)),
    "train-unknown-backbone": Case(("train", "--dataset", "csv", "--backbone", "lstm"), ("--backbone", "lstm")),
    "train-unknown-dataset": Case(("train", "--dataset", "nope"), ("nope",)),
    "evaluate-unknown-model": Case(("evaluate", "--dataset", "csv", "--model", "knn"), ("knn", "baselines")),
    "evaluate-seed-negative": Case(("evaluate", "--dataset", "csv", "--model", "sknn", "--seed", "-3"), ("--seed",)),
    # ---- data fetch: flags and source options ----
    "fetch-misspelt-option": Case(("data", "fetch", "csv", "--from", "{raw}", "-o", "sesion_by=day"),
                                  ("sesion_by", "session_by")),
    "fetch-ml100k-misspelt-option": Case(("data", "fetch", "ml-100k", "-o", "sed=1"), ("sed", "seed")),
    "fetch-option-without-key": Case(("data", "fetch", "csv", "--from", "{raw}", "-o", "=3"), ("--option",)),
    "fetch-option-bad-integer": Case(("data", "fetch", "csv", "--from", "{raw}", "-o", "max_length=abc"),
                                     ("max_length", "abc")),
    "fetch-option-bad-choice": Case(("data", "fetch", "csv", "--from", "{raw}", "-o", "session_by=week"),
                                    ("session_by", "week")),
    "fetch-unknown-source": Case(("data", "fetch", "movielens-1b"), ("movielens-1b",)),
    "fetch-missing-folder": Case(("data", "fetch", "csv", "--from", "{tmp}/absent"), ("absent",)),
    "fetch-name-escapes": Case(("data", "fetch", "csv", "--from", "{raw}", "--name", "../../x"), ("--name",)),
    "fetch-name-absolute": Case(("data", "fetch", "csv", "--from", "{raw}", "--name", "/tmp/x"), ("--name",)),
    "stats-unknown-dataset": Case(("data", "stats", "nope"), ("nope",)),
    # ---- files: CSV ----
    "csv-bad-timestamp": Case(("data", "fetch", "csv", "--from", "{tmp}/src", "--name", "bad"),
                              ("interactions.csv", "line 3", "timestamp"),
                              setup=csv_folder([CSV_HEADER, "s1,a,1", "s1,b,oops", "s1,c,3"])),
    "csv-missing-column": Case(("data", "fetch", "csv", "--from", "{tmp}/src", "--name", "bad"),
                               ("interactions.csv", "timestamp"),
                               setup=csv_folder(["session_id,item_id", "s1,a", "s1,b"])),
    "csv-extra-field": Case(("data", "fetch", "csv", "--from", "{tmp}/src", "--name", "bad"),
                            ("interactions.csv", "line 2"),
                            setup=csv_folder([CSV_HEADER, "s1,a,1,EXTRA", "s1,b,2", "s1,c,3"])),
    "csv-header-only": Case(("data", "fetch", "csv", "--from", "{tmp}/src", "--name", "bad"),
                            ("interactions.csv",), setup=csv_folder([CSV_HEADER])),
    "csv-empty-splits": Case(("data", "fetch", "csv", "--from", "{tmp}/src", "--name", "bad"),
                             ("interactions.csv", "train"),
                             setup=csv_folder([CSV_HEADER, "s1,a,1", "s1,b,2", "s1,c,3"])),
    "csv-items-without-title": Case(("data", "fetch", "csv", "--from", "{tmp}/src", "--name", "bad"),
                                    ("items.csv", "title"),
                                    setup=csv_folder([CSV_HEADER, "s1,a,1", "s1,b,2"], items="item_id,name\na,A\n")),
    # ---- files: JSON lines, pickles, raw folders ----
    "amazon-malformed-json-line": Case(
        ("data", "fetch", "amazon-games", "--from", "{tmp}/amazon"), ("Video_Games.json", "line 2"),
        setup=both(write("amazon/Video_Games.json", '{"reviewerID": "U", "asin": "A1", "unixReviewTime": 1}\n'
                                                    '{"reviewerID": "U", "asin": \n'),
                   write("amazon/meta_Video_Games.json", '{"asin": "A1", "title": "One"}\n'))),
    "amazon-broken-gzip": Case(("data", "fetch", "amazon-games", "--from", "{tmp}/amazon"),
                               ("Video_Games_5.json.gz", "gzip"),
                               setup=both(write("amazon/Video_Games_5.json.gz", b"not gzip at all"),
                                          write("amazon/meta_Video_Games.json", '{"asin": "A1", "title": "One"}\n'))),
    "alkdrec-tampered-pickle": Case(("data", "fetch", "alkdrec-ml", "--from", "{tmp}/authors"), ("ML",),
                                    setup=write("authors/ML/ML.pkl", b"\x80\x04not the authors' pickle")),
    "hetrec-missing-files": Case(("data", "fetch", "hetrec2011", "--from", "{tmp}"), ("user_ratedmovies",)),
    # ---- files: model files ----
    "recommend-corrupt-pt": Case(("recommend", "{tmp}/broken.pt", "--items", "1,2"), ("broken.pt", "fix:"),
                                 setup=write("broken.pt", b"garbage, not a torch file")),
    "recommend-foreign-pt": Case(("recommend", "{tmp}/foreign.pt", "--items", "1,2"),
                                 ("foreign.pt", "not an alkd model file"),
                                 setup=lambda w: __import__("torch").save({"weights": [1, 2]}, w.tmp / "foreign.pt")),
    "recommend-missing-pt": Case(("recommend", "{tmp}/absent.pt", "--items", "1,2"), ("absent.pt",)),
    "recommend-unknown-run": Case(("recommend", "run-nope", "--items", "1,2"), ("run-nope",)),
    "recommend-items-not-numbers": Case(("recommend", "{model}", "--items", "a,b"), ("--items",)),
    "recommend-items-outside-catalogue": Case(("recommend", "{model}", "--items", "1,999"), ("--items", "999")),
    "recommend-k-zero": Case(("recommend", "{model}", "--items", "1,2", "-k", "0"), ("-k",)),
    # ---- files: Parquet exports ----
    "import-corrupt-parquet": Case(("runs", "import", "{tmp}/export"), ("runs.parquet", "fix:"),
                                   setup=write("export/runs.parquet", b"PAR1 not really")),
    "import-no-runs-file": Case(("runs", "import", "{tmp}/export"), ("runs.parquet",),
                                setup=write("export/notes.txt", "an unrelated folder")),
    "import-foreign-columns": Case(("runs", "import", "{tmp}/export"), ("metrics.parquet", "flavour"),
                                   setup=both(parquet("runs", runs_frame),
                                              parquet("metrics", lambda: __import__("pandas").DataFrame(
                                                  {"run_id": ["imported-1"], "flavour": ["x"]})))),
    "import-not-a-folder": Case(("runs", "import", "{raw}/interactions.csv"), ("interactions.csv",)),
    "export-out-is-a-file": Case(("runs", "export", "--run", "x", "--out", "{raw}/interactions.csv"), ("--out",)),
    "runs-show-unknown": Case(("runs", "show", "run-nope"), ("run-nope",)),
    # ---- hints / estimate flags ----
    "hints-unknown-teacher": Case(("hints", "--dataset", "csv", "--teacher", "oracle"), ("--teacher", "oracle")),
    "hints-zero-cases": Case(("hints", "--dataset", "csv", "--teacher", "simulated", "--cases", "0"), ("--cases",)),
    "hints-unknown-dataset": Case(("hints", "--dataset", "nope", "--show"), ("nope",)),
    "estimate-budget-zero": Case(("estimate", "--dataset", "csv", "--budget", "0"), ("--budget",)),
    "estimate-unknown-model": Case(("estimate", "--dataset", "csv", "--model", "gpt-unknown-9"), ("gpt-unknown-9",)),
    "estimate-unknown-teacher": Case(("estimate", "--dataset", "csv", "--teacher", "oracle"), ("oracle",)),
    # ---- environment: the store and the data folder ----
    "alkd-db-is-a-folder": Case(("runs", "list"), ("ALKD_DB", "folder"), env={"ALKD_DB": "{tmp}"}),
    "alkd-db-not-duckdb": Case(("runs", "list"), ("ALKD_DB", "not a DuckDB file"), env={"ALKD_DB": "{tmp}/x.duckdb"},
                               setup=write("x.duckdb", "just some text, certainly not a database")),
    "alkd-db-under-a-file": Case(("data", "list"), ("ALKD_DB", "interactions.csv"),
                                 env={"ALKD_DB": "{raw}/interactions.csv/runs.duckdb"}),
    "alkd-db-unwritable": Case(("runs", "list"), ("ALKD_DB", "/proc"), env={"ALKD_DB": "/proc/alkd/runs.duckdb"}),
    "alkd-db-bad-on-fetch": Case(("data", "fetch", "csv", "--from", "{raw}", "--name", "other"), ("ALKD_DB",),
                                 env={"ALKD_DB": "{tmp}"}),
    "alkd-db-empty-file": Case(("runs", "list"), ("ALKD_DB", "not a DuckDB file"), env={"ALKD_DB": "{tmp}/e.duckdb"},
                               setup=write("e.duckdb", b"")),
    "alkd-home-is-a-file": Case(("data", "list"), ("ALKD_HOME",), env={"ALKD_HOME": "{raw}/interactions.csv"}),
    "alkd-home-unwritable": Case(("data", "list"), ("ALKD_HOME", "/proc"), env={"ALKD_HOME": "/proc/alkd-home"}),
    # ---- prices (ALKD_PRICES) ----
    "prices-missing-file": Case(("estimate", "--dataset", "csv"), ("ALKD_PRICES", "absent.toml"),
                                env={"ALKD_PRICES": "{tmp}/absent.toml"}),
    "prices-bad-toml": Case(("estimate", "--dataset", "csv"), ("ALKD_PRICES", "line 1"),
                            env={"ALKD_PRICES": "{tmp}/p.toml"}, setup=write("p.toml", "[[[ not toml")),
    "prices-negative": Case(("estimate", "--dataset", "csv"), ("ALKD_PRICES", "gpt-4o-mini", "input"),
                            env={"ALKD_PRICES": "{tmp}/p.toml"},
                            setup=write("p.toml", '[models."gpt-4o-mini"]\ninput = -1\noutput = 1\n')),
    "prices-nan": Case(("estimate", "--dataset", "csv"), ("ALKD_PRICES", "output"), env={"ALKD_PRICES": "{tmp}/p.toml"},
                       setup=write("p.toml", '[models."gpt-4o-mini"]\ninput = 1\noutput = nan\n')),
    "prices-text": Case(("estimate", "--dataset", "csv"), ("ALKD_PRICES", "input"), env={"ALKD_PRICES": "{tmp}/p.toml"},
                        setup=write("p.toml", '[models."gpt-4o-mini"]\ninput = "cheap"\noutput = 1\n')),
    "prices-missing-output": Case(("estimate", "--dataset", "csv"), ("ALKD_PRICES", "output"),
                                  env={"ALKD_PRICES": "{tmp}/p.toml"},
                                  setup=write("p.toml", '[models."gpt-4o-mini"]\ninput = 1\n')),
    "prices-batch-discount-above-one": Case(("estimate", "--dataset", "csv"), ("ALKD_PRICES", "batch_discount"),
                                            env={"ALKD_PRICES": "{tmp}/p.toml"},
                                            setup=write("p.toml", "batch_discount = 2\n")),
    "prices-bad-file-refuses-a-run": Case(run("--teacher", "openai"), ("ALKD_PRICES",),
                                          env={"ALKD_PRICES": "{tmp}/p.toml"}, setup=write("p.toml", "[[[")),
    # ---- server replies: `alkd hints` against a loopback OpenAI-compatible server ----
    **{f"server-{name}": Case(("hints", "--dataset", "csv", "--teacher", "openai", "--model", "local-llm",
                               "--base-url", "{url}", "--cases", "3"), ("openai:local-llm", "no hints stored", "fix:"),
                              setup=pretrained, server=reply, may_log_calls=True)
       for name, reply in {"http-500": lambda call: FakeReply(status=500),
                           "http-401": lambda call: FakeReply(status=401),
                           "not-json": lambda call: FakeReply(raw=b"<html>gateway</html>"),
                           "empty-reply": lambda call: FakeReply(text=""),
                           "blank-lines": lambda call: FakeReply(text="\n  \n\t\n")}.items()},
}


def _fill_env(env: dict[str, str | None], world: World) -> dict[str, str | None]:
    return {k: world.fill(v) if v is not None else None for k, v in env.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_and_changes_nothing(name: str, world: World) -> None:
    case = CASES[name]
    if case.setup is not None:
        case.setup(world)
    server = FakeLLMServer(case.server).start() if case.server else None
    world.url = server.openai_url if server is not None else ""
    try:
        before = snapshot(world)
        args = [world.fill(a) for a in case.args]
        result = CliRunner().invoke(main, args, env=_fill_env(case.env, world))
        after = snapshot(world)
    finally:
        if server is not None:
            server.stop()
    output = result.output
    lines = [line for line in output.splitlines() if line.strip()]
    assert result.exit_code not in (0, None), output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in output and len(lines) == 1, output
    line = lines[0]
    assert line.startswith("Error: "), line
    for text in case.expect:
        assert world.fill(text) in line, (text, line)
    assert FAKE_KEY not in output and "weights_only" not in line
    if case.may_log_calls:
        before["rows"].pop("llm_calls", None)
        after["rows"].pop("llm_calls", None)
    assert after == before


def test_there_are_at_least_sixty_cases() -> None:
    assert len(CASES) + len(DASHBOARD_CASES) >= 60


# ---- dashboard values (the Launch page's checks, before it starts `alkd run`) -------------------------------------

DASHBOARD_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "dashboard-budget-zero": ({"budget": 0}, "budget"),
    "dashboard-budget-above-pool": ({"budget": 10_000}, "pool"),
    "dashboard-mu-zero": ({"mu": 0.0}, "mu"),
    "dashboard-mu-nan": ({"mu": float("nan")}, "mu"),
    "dashboard-ratios-negative": ({"ratios": (1, -5, 4)}, "Ratios"),
    "dashboard-ratios-all-zero": ({"ratios": (0, 0, 0)}, "Ratios"),
    "dashboard-ratios-nan": ({"ratios": (1, float("nan"), 4)}, "Ratios"),
    "dashboard-seeds-backwards": ({"seeds": "4-1"}, "4-1"),
    "dashboard-seeds-text": ({"seeds": "x"}, "seed"),
    "dashboard-hit-rate-above-one": ({"hit_rate": 1.5}, "hit rate"),
    "dashboard-unknown-method": ({"methods": ["alkdrc"]}, "alkdrc"),
    "dashboard-no-method": ({"methods": []}, "method"),
    "dashboard-unknown-dataset": ({"dataset": "nope"}, "nope"),
    "dashboard-replay-without-recordings": ({"teacher": "replay"}, "replay"),
    "dashboard-unknown-price": ({"teacher": "openai", "model": "gpt-unknown-9"}, "gpt-unknown-9"),
    "dashboard-usd-cap-negative": ({"teacher": "openai", "usd_cap": -1.0}, "cap"),
    "dashboard-option-misspelt": ({"options": {"patiance": 3}}, "patiance"),
    "dashboard-pretrain-negative-lr": ({"pretrain": {"lr": -1}}, "lr"),
}


@pytest.mark.parametrize("name", sorted(DASHBOARD_CASES))
def test_dashboard_launch_values_get_one_message_each(name: str, world: World) -> None:
    from dashboard import data

    data.clear_cache()
    changes, expect = DASHBOARD_CASES[name]
    good = dict(dataset="csv", methods=["student", "alkdrec"], teacher="simulated", budget=5)
    assert data.launch_problems(good)[1] == [], data.launch_problems(good)[1]
    before = snapshot(world)
    _, errors, _ = data.launch_problems({**good, **changes})
    assert len(errors) == 1, errors
    assert "\n" not in errors[0] and expect.lower() in errors[0].lower(), errors
    assert snapshot(world) == before
    assert FAKE_KEY not in json.dumps(errors)
