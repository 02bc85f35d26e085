"""Shared fixtures: tiny datasets built in code, an isolated data home and store per test, the shared-data path
(ALKD_SHARED, see tests/shared_data.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_data import alkdrec_or_skip
from tiny_data import make_dataset, write_sessions_csv

from core.data.dataset import SessionDataset


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory and DuckDB file."""
    home = tmp_path / "alkd-home"
    monkeypatch.setenv("ALKD_HOME", str(home))
    monkeypatch.delenv("ALKD_DB", raising=False)
    return home


@pytest.fixture
def alkdrec_dir() -> Path:
    """$ALKD_SHARED/data/alkdrec (tests/shared_data.py): skipped when absent, failed when ALKD_REQUIRE_SHARED=1."""
    return alkdrec_or_skip()


@pytest.fixture
def tiny() -> SessionDataset:
    return make_dataset()


@pytest.fixture
def sessions_csv(tmp_path: Path) -> Path:
    return write_sessions_csv(tmp_path / "raw")


@pytest.fixture
def csv_dataset(tmp_path: Path) -> str:
    """A fetched `csv` dataset of 100 sessions over 25 titled items (for CLI runs); returns its name."""
    from click.testing import CliRunner

    from core.cli import main
    raw = write_sessions_csv(tmp_path / "raw", n_sessions=100, n_items=25, lengths=(3, 7), titles=True)
    result = CliRunner().invoke(main, ["data", "fetch", "csv", "--from", str(raw), "-o", "max_length=5"])
    assert result.exit_code == 0, result.output
    return "csv"
