from click.testing import CliRunner

from core.cli import main
from core.cli_hints import teacher_cases
from core.data.catalog import fetch
from core.teachers import load_hints


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
    assert "stored hints version 1" in first.output and "simulated" in first.output
    second = runner.invoke(main, ["hints", "--dataset", "shop", "--teacher", "simulated", "--cases", "5",
                                  "--seed", "1"])
    assert "stored hints version 2" in second.output
    assert load_hints("shop").version == 2
    assert "version 2" in runner.invoke(main, ["hints", "--dataset", "shop", "--show"]).output
