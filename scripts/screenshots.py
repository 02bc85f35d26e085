"""Screenshots of every dashboard page in a real browser (Playwright from PyPI + Debian's /usr/bin/chromium).

    python scripts/screenshots.py                 # serve the dashboard on the current store, shoot every page
    python scripts/screenshots.py --seed          # ...on a synthetic store in a temporary ALKD_HOME instead
    python scripts/screenshots.py --archive DIR   # ...on the committed run archives (docs/reproduction,
                                                  # docs/engine_runs) with alkdrec-ml/-games fetched from DIR (the
                                                  # authors' data folder holding ML/ and Games/): the README's shots

Writes docs/screenshots/<page>.png. Never runs `playwright install`: it drives the system Chromium with the flags
from the environment notes. The helpers here (free_port, serve, browser, shoot) are shared with the browser test.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "docs" / "screenshots"
CHART = '[data-testid="stPlotlyChart"] .main-svg'
PAGES = {"home": CHART, "launch": CHART, "runs": '[data-testid="stDataFrame"]', "compare": CHART,
         "sessions": '[data-testid="stDataFrame"]', "costs": '[data-testid="stDataFrame"]'}
ARCHIVES = [ROOT / "docs" / "reproduction", ROOT / "docs" / "engine_runs", ROOT / "docs" / "budget_runs"]
#: with --archive: one cell of the reproduction on Compare (5 methods x 5 seeds), not all 353 runs at once
#: Compare on the budget grid (docs/budget.md's runs): its budget chart with the Student / Teacher / V-SKNN lines
ARCHIVE_QUERY = {"compare": "?group=budget&dataset=alkdrec-ml&backbone=fpmc"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(env: dict[str, str] | None = None, port: int | None = None, log: Path | None = None) -> Iterator[str]:
    """Serve dashboard/app.py headless on 127.0.0.1; yields the base URL; stops the server (by its pid) at exit."""
    port = port or free_port()
    argv = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"), "--server.headless", "true",
            "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none"]
    out = open(log, "wb") if log else subprocess.DEVNULL
    server = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not come up on {url} (exit {server.poll()})")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        if log:
            out.close()


@contextmanager
def browser() -> Iterator[object]:
    """A Playwright page in headless system Chromium with a tall viewport (Streamlit scrolls inside a container)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                       viewport={"width": 1400, "height": 2000})
        try:
            yield context.new_page()
        finally:
            context.close()


def shoot(page, url: str, name: str, selector: str | None = None, timeout_ms: int = 60_000) -> Path:
    """Open url, wait for the app (and `selector` if given) to render, save docs/screenshots/NAME.png."""
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    if selector:
        page.wait_for_selector(selector, timeout=timeout_ms)
    wait_idle(page, timeout_ms)
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def wait_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished the script run (no 'Running…' status widget), then let charts settle."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)
    page.wait_for_timeout(600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", action="store_true", help="shoot a synthetic store in a temporary ALKD_HOME")
    parser.add_argument("--archive", type=Path, default=None, metavar="DIR",
                        help="shoot the committed run archives, alkdrec datasets fetched from DIR")
    args = parser.parse_args()
    env = {}
    if args.archive is not None:
        home = tempfile.mkdtemp(prefix="alkd-shots-")
        os.environ["ALKD_HOME"] = env["ALKD_HOME"] = home
        os.environ.pop("ALKD_DB", None)
        alkd = [sys.executable, "-m", "core.cli"]
        for name in ("alkdrec-ml", "alkdrec-games"):
            subprocess.run([*alkd, "data", "fetch", name, "--from", str(args.archive)], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)
        for folder in ARCHIVES:
            subprocess.run([*alkd, "runs", "import", str(folder)], check=True, cwd=ROOT)
    elif args.seed:
        sys.path.insert(0, str(ROOT))
        home = tempfile.mkdtemp(prefix="alkd-shots-")
        os.environ["ALKD_HOME"] = env["ALKD_HOME"] = home
        from core.paths import db_path
        from dashboard.demo_store import seed_store
        seed_store(db_path(), methods=("student", "random", "alkdrec"), seeds=(0, 1, 2), budget=10)
    with serve(env) as url, browser() as page:
        for name, selector in PAGES.items():
            query = ARCHIVE_QUERY.get(name, "") if args.archive is not None else ""
            print(shoot(page, f"{url}/{name}{query}", name, selector))


if __name__ == "__main__":
    main()
