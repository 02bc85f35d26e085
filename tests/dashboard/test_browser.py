"""The dashboard in a real browser: Playwright (PyPI) driving Debian's /usr/bin/chromium; skipped without either.

The store holds the three kinds of runs a demo meets: simulated runs, replay runs (no llm_calls row: their answers
are the recorded file) moved in from another store with export/import, and a real `alkd run` against a loopback
OpenAI-compatible server (tests/fakeserver.py), launched from the Launch page. Every page is opened (Home at /
and /home too) and must show no exception and no "Page not found"; Sessions must show the replay run's recorded
ranking with the true next item highlighted. Screenshots go to a temp folder (docs/screenshots/ with
ALKD_SCREENSHOTS=1).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from fakeserver import FakeLLMServer

from core import store
from core.paths import db_path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
shots = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shots)

pytestmark = [
    pytest.mark.skipif(not Path(shots.CHROMIUM).exists(), reason="no /usr/bin/chromium (apt-get install -y chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright is not installed"),
]
ALKD = [str(Path(sys.executable).parent / "alkd")] if (Path(sys.executable).parent / "alkd").exists() \
    else [sys.executable, "-m", "core.cli"]
ERRORS = '[data-testid="stException"]'


@pytest.fixture
def tinycsv(isolated_home: Path, tmp_path: Path) -> str:
    """A 60-session CSV dataset fetched into ALKD_HOME through the CLI, as a user would."""
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = ["session_id,item_id,timestamp"]
    for s in range(60):
        for step in range(3 + s % 4):
            lines.append(f"{s},{(s + step) % 12},{1_700_000_000 + 100 * s + step}")
    (raw / "interactions.csv").write_text("\n".join(lines) + "\n")
    (raw / "items.csv").write_text("item_id,title\n" + "".join(f"{i},Film number {i}\n" for i in range(12)))
    env = {**os.environ, "ALKD_HOME": str(isolated_home)}
    subprocess.run([*ALKD, "data", "fetch", "csv", "--from", str(raw), "-o", "dataset_name=tinycsv"], check=True,
                   env=env, cwd=ROOT, capture_output=True, timeout=120)
    return "tinycsv"


def seed(dataset: str, tmp_path: Path) -> str:
    """Simulated runs written here; replay runs written to another store and imported through export/import.
    Returns the replay run to open on Sessions."""
    from core.data import catalog
    from dashboard.demo_store import seed_store
    data = catalog.load(dataset)
    sessions = data.sessions
    common = dict(dataset=dataset, pool=sessions.loc[sessions["split"] == "train", "session_id"].to_numpy(),
                  test_sessions=sessions.loc[sessions["split"] == "test", "session_id"].to_numpy(), budget=6,
                  n_items=data.n_items, labels=dict(zip(sessions["session_id"], sessions["label"])))
    seed_store(db_path(), groups=("simulated",), methods=("student", "random", "alkdrec"), seeds=(0, 1), **common)
    other = tmp_path / "elsewhere.duckdb"
    seed_store(other, groups=("replayed",), methods=("student", "alkdrec"), seeds=(0, 1), teacher="replay",
               model="gpt-4-turbo-2024-04-09", replay_path=tmp_path / "recorded.jsonl",
               base_time=pd.Timestamp("2026-02-01", tz="UTC"), **common)
    store.export_runs(store.query("SELECT run_id FROM runs", path=other)["run_id"].tolist(), tmp_path / "export",
                      db=other)
    assert store.import_runs(tmp_path / "export") == 4
    return "replayed-alkdrec-s0"


def wait_for_runs(group: str, n: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = store.query("SELECT status, message FROM runs WHERE groups = ?", [group])
        if len(frame) >= n and frame["status"].isin(["done", "failed", "cancelled"]).all():
            assert (frame["status"] == "done").all(), frame.to_dict("records")
            return
        time.sleep(0.5)
    raise AssertionError(f"runs of {group} not done after {timeout} s")


def visit(page, url: str, name: str, selector: str | None) -> str:
    """Open a page, wait for it, fail on an exception element or a "Page not found"; returns its text."""
    shots.shoot(page, url, name, selector)
    text = page.inner_text('[data-testid="stApp"]')
    assert "Page not found" not in text, url
    problems = page.locator(ERRORS)
    assert problems.count() == 0, f"{url}: {problems.all_inner_texts()}"
    return text


def test_every_page_in_chromium(tinycsv: str, isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if os.environ.get("ALKD_SCREENSHOTS") != "1":
        monkeypatch.setattr(shots, "SHOTS", tmp_path / "screenshots")
    replay_run = seed(tinycsv, tmp_path)
    env = {"ALKD_HOME": str(isolated_home), "OPENAI_API_KEY": "sk-loopback-test-key", "OMP_NUM_THREADS": "1"}
    with FakeLLMServer() as llm, shots.serve(env, log=isolated_home / "streamlit.log") as url, \
            shots.browser() as page:
        # a real run against the loopback OpenAI-compatible server, launched as a user does
        visit(page, f"{url}/launch?dataset={tinycsv}&methods=student,alkdrec&teacher=openai&budget=5&seeds=0"
                    "&group=loopback", "launch", shots.CHART)
        field = page.get_by_label("Base URL (optional: an OpenAI-compatible local server)")
        field.fill(llm.openai_url)
        field.press("Enter")
        shots.wait_idle(page)
        # the rerun that redraws the command may land after the page first reads idle (a loaded machine)
        page.locator('[data-testid="stCode"]', has_text=f"--base-url {llm.openai_url}").wait_for(timeout=30_000)
        page.get_by_role("button", name="Launch", exact=True).click()
        page.wait_for_selector("text=Started group", timeout=30_000)

        # while it runs: the replay run's recorded ranking, the true next item highlighted
        text = visit(page, f"{url}/sessions?run={replay_run}", "sessions", '[data-testid="stTable"]')
        assert "Recorded LLM ranking" in text and "No rationale" in text
        recorded = {r["session_id"]: r for r in map(json.loads, (tmp_path / "recorded.jsonl").read_text().splitlines())}
        picked = store.query("SELECT session_id FROM selections WHERE run_id = ? AND picked ORDER BY pick_order",
                             [replay_run])["session_id"].tolist()
        ranking = page.locator('[data-testid="stTable"]').first
        rows = ranking.locator("tbody tr")
        assert [int(rows.nth(i).locator("td").nth(1).inner_text()) for i in range(rows.count())] == \
            recorded[picked[0]]["raw_ranking"]
        marked = [i for i in range(rows.count()) if rows.nth(i).locator("td").nth(3).inner_text().strip() == "✔"]
        hit = recorded[picked[0]]["hit_position"]
        assert marked == ([hit] if hit < 25 else [])
        if marked:
            colour = rows.nth(marked[0]).locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
            assert colour == "rgb(200, 247, 197)"     # #c8f7c5

        for path, name, selector in (("", "home", shots.CHART), ("home", "home", shots.CHART),
                                     ("compare", "compare", shots.CHART)):
            visit(page, f"{url}/{path}", name, selector)
        wait_for_runs("loopback", 2)
        assert llm.count("openai") >= 1
        visit(page, f"{url}/runs", "runs", '[data-testid="stDataFrame"]')
        text = visit(page, f"{url}/costs", "costs", shots.CHART)
        assert "local server" in text


def options_of(page, label: str) -> list[str]:
    """The options a multiselect labelled `label` offers now (opens its list, reads it, closes it)."""
    box = page.locator('[data-testid="stMultiSelect"]').filter(has=page.get_by_text(label, exact=True)).first
    box.locator("input").click()
    listbox = page.locator('[role="listbox"]')
    listbox.wait_for(timeout=10_000)
    found = listbox.locator('[role="option"]').all_inner_texts()
    page.keyboard.press("Escape")
    return [text.strip() for text in found]


def test_budget_chart_and_live_run_lists_in_chromium(tinycsv: str, isolated_home: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    """A small budget sweep (student, random, alkdrec x budgets 2 and 4 x seeds 0-1, simulated teacher, and a V-SKNN
    run) drawn on Compare with no exception; then the Runs page's filter and "act on runs" lists pick up a run
    stored while the page is open, without a reload."""
    from core.data import catalog
    from dashboard.demo_store import seed_store
    if os.environ.get("ALKD_SCREENSHOTS") != "1":
        monkeypatch.setattr(shots, "SHOTS", tmp_path / "screenshots")
    sessions = catalog.load(tinycsv).sessions
    common = dict(dataset=tinycsv, pool=sessions.loc[sessions["split"] == "train", "session_id"].to_numpy(),
                  test_sessions=sessions.loc[sessions["split"] == "test", "session_id"].to_numpy(), seeds=(0, 1),
                  n_items=int(sessions["label"].max()), labels=dict(zip(sessions["session_id"], sessions["label"])))
    for budget in (2, 4):
        seed_store(db_path(), groups=(f"b{budget}",), methods=("student", "random", "alkdrec"), budget=budget,
                   base_time=pd.Timestamp("2026-03-01", tz="UTC") + pd.Timedelta(hours=budget), **common)
    seed_store(db_path(), groups=("refs",), methods=("vsknn",), **common)
    with shots.serve({"ALKD_HOME": str(isolated_home)}, log=isolated_home / "streamlit.log") as url, \
            shots.browser() as page:
        visit(page, f"{url}/compare?group=b2,b4", "compare-budget", shots.CHART)
        page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .main-svg')"
                               ".length >= 4", timeout=60_000)
        text = visit(page, f"{url}/compare?group=b2,b4", "compare-budget", shots.CHART)
        assert "What-if USD" in text and "V-SKNN" in text
        svg_text = "els => els.map(e => e.textContent)"     # SVG text has no innerText
        titles = page.locator('[data-testid="stPlotlyChart"] .xtitle').evaluate_all(svg_text)
        assert "LLM-labelled sessions" in titles and any(t.startswith("USD per run") for t in titles)
        legend = set(page.locator('[data-testid="stPlotlyChart"] .legendtext').evaluate_all(svg_text))
        assert {"random", "alkdrec", "random (what-if $)", "alkdrec (what-if $)"} <= legend

        visit(page, f"{url}/runs", "runs-live", '[data-testid="stDataFrame"]')
        assert "fresh" not in options_of(page, "Group")
        seed_store(db_path(), groups=("fresh",), methods=("student",), seeds=(0,),
                   base_time=pd.Timestamp("2026-04-01", tz="UTC"), **{k: v for k, v in common.items() if k != "seeds"})
        deadline = time.monotonic() + 30
        while "fresh" not in options_of(page, "Group"):
            assert time.monotonic() < deadline, "the Group filter did not pick up the new run"
            page.wait_for_timeout(1000)
        assert "fresh-student-s0 (done)" in options_of(page, "Runs")
        assert page.locator(ERRORS).count() == 0
