"""`alkd hints`: teacher cases summarised into stored, versioned hints that `alkd run` then sends (and records)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from fakeserver import FakeCall, FakeLLMServer, FakeReply, default_text

from core import store
from core.cli import main
from core.cli_hints import teacher_cases
from core.data.catalog import fetch
from core.teachers import load_hints

HINTS_REPLY = ("1. Shelf neighbours: items stocked next to the last one come next.\n"
               "2. Upward walk: the next item id follows the last.\n"
               "3. Repeat buyers: some items come back.\n"
               "4. Catalogue order: titles close in the catalogue go together.")


def test_hints_from_teacher_cases_are_stored_and_versioned(sessions_csv):
    dataset = fetch("csv", sessions_csv, dataset_name="shop")
    cases = teacher_cases(dataset, "fpmc", n_cases=5, seed=0, top_k=4, device="cpu")
    assert len(cases) == 5 and all(len(ranked) == 4 for _, ranked in cases)
    everything = teacher_cases(dataset, "fpmc", n_cases=5, seed=0, top_k=50, device="cpu")
    # never more than the items outside the session window
    assert all(len(ranked) == dataset.n_items - len(session) for session, ranked in everything)
    assert all(title.startswith("item") for session, _ in cases for title in session)
    runner = CliRunner()
    shown = runner.invoke(main, ["hints", "--dataset", "shop", "--show"])
    assert "the paper's defaults" in shown.output
    first = runner.invoke(main, ["hints", "--dataset", "shop", "--teacher", "simulated", "--cases", "5"])
    assert first.exit_code == 0, first.output
    assert "stored hints version 1" in first.output and "never sent" in first.output
    second = runner.invoke(main, ["hints", "--dataset", "shop", "--teacher", "simulated", "--cases", "5",
                                  "--seed", "1"])
    assert "stored hints version 2" in second.output
    assert load_hints("shop").version == 2
    # placeholders of the simulated teacher are stored but a run still sends the paper's hints: --show says so
    shown = runner.invoke(main, ["hints", "--dataset", "shop", "--show"])
    assert "uses the paper's defaults" in shown.output and "SIMULATED" not in shown.output


def test_runs_send_the_newest_stored_hints_and_record_their_version(csv_dataset, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ALKD_PRICES", raising=False)

    def behaviour(call: FakeCall) -> FakeReply:
        # a ranking prompt has candidates; anything else is the summarisation prompt
        return FakeReply(text=default_text(call) if call.candidates else HINTS_REPLY)

    runner = CliRunner()
    with FakeLLMServer(behaviour) as server:
        made = runner.invoke(main, ["hints", "--dataset", csv_dataset, "--teacher", "openai", "--model", "local-llm",
                                    "--base-url", server.openai_url, "--cases", "5"])
        assert made.exit_code == 0, made.output
        assert "stored hints version 1" in made.output and "Shelf neighbours" in made.output
        shown = runner.invoke(main, ["hints", "--dataset", csv_dataset, "--show"])
        assert "uses version 1 (openai:local-llm)" in shown.output and "Upward walk" in shown.output
        result = runner.invoke(main, ["run", "--dataset", csv_dataset, "--method", "alkdrec", "--teacher", "openai",
                                      "--model", "local-llm", "--base-url", server.openai_url, "--budget", "4",
                                      "--option", "max_epochs=2"])
        assert result.exit_code == 0, result.output
        ranking_calls = [call for call in server.calls if call.candidates]
    assert len(ranking_calls) == 4
    # the paper's movie hints are replaced by the stored ones in every prompt the teacher got
    assert all("1. Shelf neighbours" in call.system and "4. Catalogue order" in call.system
               and "Sequel and franchise" not in call.system for call in ranking_calls)
    config = json.loads(store.query("SELECT config FROM runs WHERE kind = 'distill'")["config"][0])
    assert config["extra"]["hints"] == {"source": "summarized", "version": 1, "provider": "openai",
                                        "model": "local-llm", "simulated": False}


def test_a_run_without_stored_hints_records_the_papers(csv_dataset):
    result = CliRunner().invoke(main, ["run", "--dataset", csv_dataset, "--method", "alkdrec", "--teacher",
                                       "simulated", "--budget", "4", "--option", "max_epochs=2"])
    assert result.exit_code == 0, result.output
    config = json.loads(store.query("SELECT config FROM runs WHERE kind = 'distill'")["config"][0])
    assert config["extra"]["hints"]["source"] == "paper" and config["extra"]["hints"]["version"] == 0
