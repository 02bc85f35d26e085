"""The Sessions page on replay runs (no llm_calls row: the answer is read back from the recorded file) and on runs
moved between stores with `alkd runs export/import` (the llm_calls rows travel with them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import store
from core.data.errors import DataError
from core.paths import db_path
from dashboard import data
from tests.dashboard.test_pages import frame, open_run, texts


def test_sessions_opens_on_a_replay_run_and_shows_the_recorded_ranking(replayed: Path, tiny, app):
    at = app("sessions")               # the newest labelled run is a replay run: the first view must not crash
    assert at.selectbox(key="s_group").value == "rp"
    at = open_run(at, "rp-alkdrec-s1")
    assert any("replay" in t and "recorded" in t for t in texts(at, "info"))
    sid = int(at.selectbox(key="session").value)
    label = int(tiny.sessions.set_index("session_id").loc[sid, "label"])
    recorded = {json.loads(line)["session_id"]: json.loads(line) for line in replayed.read_text().splitlines()}
    ranking = frame(at, "rank", "true next")
    assert ranking["item"].tolist() == recorded[sid]["raw_ranking"]          # the list the run replayed
    hit = recorded[sid]["hit_position"]
    if hit < 25:                                                              # the true next item, highlighted
        assert ranking.loc[ranking["true next"], "rank"].tolist() == [hit + 1]
        assert f"position **{hit + 1}**" in " ".join(texts(at, "caption"))
    else:
        assert not ranking["true next"].any()
    assert ranking.loc[ranking["true next"], "item"].tolist() in ([label], [])
    captions = " ".join(texts(at, "caption"))
    assert "No rationale" in captions and "recorded" in captions
    candidates = frame(at, "item", "title", "true next")
    assert candidates["true next"].sum() == int(label in candidates["item"].tolist())


def test_every_session_of_a_replay_run_renders(replayed: Path, app):
    at = open_run(app("sessions"), "rp-random-s0")
    for sid in list(at.selectbox(key="session").options):
        at.selectbox(key="session").set_value(int(sid.split()[1])).run()
        assert not at.exception, [e.value for e in at.exception]
        assert len(frame(at, "rank", "true next"))


def test_a_replay_run_whose_file_is_gone_says_so(replayed: Path, app):
    replayed.unlink()
    data.clear_cache()
    data._replay_records.clear()
    at = open_run(app("sessions"), "rp-alkdrec-s0")
    assert any("cannot be read here" in t and str(replayed) in t for t in texts(at, "caption"))


def test_export_import_carries_the_llm_answers(seeded, app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    runs = ["g1-alkdrec-s0", "g1-student-s0"]
    counts = store.export_runs(runs, tmp_path / "export")
    keys = store.query("SELECT DISTINCT call_key FROM selections WHERE run_id = 'g1-alkdrec-s0' AND picked")
    assert counts["llm_calls"] == len(keys) == 8
    monkeypatch.setenv("ALKD_DB", str(tmp_path / "other.duckdb"))    # another store, the same datasets
    assert store.import_runs(tmp_path / "export") == 2
    assert store.query("SELECT count(*) AS n FROM llm_calls")["n"][0] == 8
    assert store.import_runs(tmp_path / "export") == 0                   # idempotent: no call doubled
    assert store.query("SELECT count(*) AS n FROM llm_calls")["n"][0] == 8
    at = open_run(app("sessions"), "g1-alkdrec-s0")
    sid = int(at.selectbox(key="session").value)
    assert any(f"Session {sid}: the user walks upward" in t for t in texts(at, "info"))


def test_import_refuses_a_bad_llm_calls_file_before_importing_anything(seeded, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    store.export_runs(["g1-alkdrec-s0"], tmp_path / "export")
    (tmp_path / "export" / "llm_calls.parquet").write_text("not parquet")
    monkeypatch.setenv("ALKD_DB", str(tmp_path / "other.duckdb"))
    with pytest.raises(DataError, match="llm_calls.parquet.*not a readable Parquet"):
        store.import_runs(tmp_path / "export")
    assert store.query("SELECT count(*) AS n FROM runs", path=db_path())["n"][0] == 0
