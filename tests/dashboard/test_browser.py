"""The dashboard in a real browser: Playwright (PyPI) driving Debian's /usr/bin/chromium; skipped without either.

Serves the app on 127.0.0.1 (free port) over a tiny CSV dataset fetched with `alkd data fetch csv`, launches a run
from the Launch page, follows it on Runs, opens Compare and Sessions, and saves screenshots (to docs/screenshots/ with ALKD_SCREENSHOTS=1).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def alkd_run_exists() -> bool:
    done = subprocess.run([*ALKD, "run", "--help"], capture_output=True, cwd=ROOT, timeout=60)
    return done.returncode == 0


def seed_like_a_run(dataset: str) -> None:
    from core.data import catalog
    from dashboard.demo_store import seed_store
    data = catalog.load(dataset)
    sessions = data.sessions
    seed_store(db_path(), groups=("browser",), methods=("student", "alkdrec"), seeds=(0,), dataset=dataset,
               pool=sessions.loc[sessions["split"] == "train", "session_id"].to_numpy(),
               test_sessions=sessions.loc[sessions["split"] == "test", "session_id"].to_numpy(), budget=5,
               n_items=data.n_items)


def wait_for_runs(group: str, n: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = store.query("SELECT status FROM runs WHERE groups = ?", [group])
        if len(frame) >= n and frame["status"].isin(["done", "failed", "cancelled"]).all():
            assert (frame["status"] == "done").all(), frame
            return
        time.sleep(1)
    raise AssertionError(f"runs of {group} not done after {timeout} s")


def test_launch_follow_compare_and_sessions_in_chromium(tinycsv: str, isolated_home: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    # screenshots go to a temp folder; ALKD_SCREENSHOTS=1 refreshes the committed docs/screenshots instead
    if os.environ.get("ALKD_SCREENSHOTS") != "1":
        monkeypatch.setattr(shots, "SHOTS", tmp_path / "screenshots")
    real_run = alkd_run_exists()
    env = {"ALKD_HOME": str(isolated_home)}
    with shots.serve(env, log=isolated_home / "streamlit.log") as url, shots.browser() as page:
        link = f"{url}/launch?dataset={tinycsv}&methods=student,alkdrec&teacher=simulated&budget=5&seeds=0&group=browser"
        shots.shoot(page, link, "launch", shots.CHART)
        assert page.locator(shots.CHART).count() >= 1  # p* plot
        assert "k* =" in page.inner_text('[data-testid="stPlotlyChart"]')
        if real_run:
            page.get_by_role("button", name="Launch", exact=True).click()
            page.wait_for_selector("text=Started group", timeout=30_000)
            wait_for_runs("browser", 2)
        else:
            seed_like_a_run(tinycsv)
        shots.shoot(page, f"{url}/runs", "runs", '[data-testid="stDataFrame"]')
        page.wait_for_selector("text=done: 2", timeout=30_000)
        shots.shoot(page, f"{url}/compare", "compare", shots.CHART)
        assert page.locator(shots.CHART).count() >= 3  # bars, NDCG vs sessions, NDCG vs USD
        shots.shoot(page, f"{url}/sessions", "sessions", '[data-testid="stDataFrame"]')
        assert "Rationale" in page.inner_text('[data-testid="stMain"]')
        shots.shoot(page, f"{url}/costs", "costs", shots.CHART)
        shots.shoot(page, f"{url}/home", "home", '[data-testid="stDataFrame"]')
    if not real_run:
        pytest.xfail("`alkd run` does not exist yet (another engineer is writing it): the store was seeded instead of "
                     "launching from the Launch page; every page was still rendered and screenshotted")
