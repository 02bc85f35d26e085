"""Fixtures for the teacher tests: fake keys, a temp DuckDB, loopback LLM servers, request factories."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest
from fakeserver import Behaviour, FakeLLMServer
from teacher_helpers import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, make_request

from core.teachers.types import RankRequest


@pytest.fixture(autouse=True)
def fake_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_ANTHROPIC_KEY)
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "ALKD_PRICES"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.duckdb"


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeLLMServer]]:
    """fake_server(behaviour=None, delay_s=0.0) -> a started FakeLLMServer, stopped after the test."""
    started: list[FakeLLMServer] = []

    def start(behaviour: Behaviour | None = None, delay_s: float = 0.0) -> FakeLLMServer:
        server = FakeLLMServer(behaviour, delay_s).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def requests_for() -> Callable[..., list[RankRequest]]:
    def build(n: int, **kwargs: object) -> list[RankRequest]:
        return [make_request(i, **kwargs) for i in range(n)]  # type: ignore[arg-type]
    return build
