"""Home: the headline computed from the store, the demo not started twice, live store metrics."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core import store
from core.paths import db_path
from dashboard import data
from dashboard.demo_store import seed_store
from tests.dashboard.test_pages import texts


def ndcg10(run_ids: list[str]) -> pd.DataFrame:
    frame = store.query("SELECT r.seed, s.session_id, s.rank FROM session_results s JOIN runs r USING (run_id)"
                        " WHERE list_contains(?, run_id) AND s.split = 'test'", [run_ids])
    frame["ndcg"] = np.where(frame["rank"] < 10, 1 / np.log2(frame["rank"] + 2.0), 0.0)
    return frame


def test_headline_is_the_latest_comparison_computed_from_the_store(seeded, tiny, app):
    seed_store(db_path(), groups=("h2",), methods=("teacher", "student", "random", "alkdrec"), seeds=(0, 1),
               pool=tiny.sessions.loc[tiny.sessions["split"] == "train", "session_id"].to_numpy(),
               test_sessions=tiny.sessions.loc[tiny.sessions["split"] == "test", "session_id"].to_numpy(),
               budget=6, n_items=tiny.n_items, base_time=pd.Timestamp("2026-05-01", tz="UTC"))
    data.clear_cache()
    at = app()
    stored = store.query("SELECT r.method, m.value FROM metrics m JOIN runs r USING (run_id) WHERE r.groups = 'h2'"
                         " AND m.split = 'test' AND m.metric = 'ndcg' AND m.k = 10").groupby("method")["value"].mean()
    a, b = ndcg10(["h2-alkdrec-s0", "h2-alkdrec-s1"]), ndcg10(["h2-student-s0", "h2-student-s1"])
    pairs = a.merge(b, on=["seed", "session_id"], suffixes=("", "_s"))
    p = stats.ttest_rel(pairs["ndcg"], pairs["ndcg_s"]).pvalue
    sentence = " ".join(at.markdown[i].value for i in range(len(at.markdown)))
    assert f"reaches **{stored['student'] / stored['teacher']:.0%}** of the teacher's NDCG@10" in sentence
    assert f"moved it by **{stored['alkdrec'] / stored['student'] - 1:+.1%}**" in sentence
    assert f"p = {p:.2g}" in sentence and "**6 sessions**" in sentence and "simulated teacher" in sentence
    chart = at.get("plotly_chart")[0].proto.spec
    assert "Group h2" in chart
    assert any("full ranking" in t.lower() and "2 seeds" in t for t in texts(at, "caption"))


def test_headline_of_a_budget_sweep_is_one_configuration(seeded, app):
    """A group holding alkdrec at two budgets (a sweep): the headline is the newest budget's runs alone, its t-test
    pairing each (seed, session) once - not both budgets pooled into one mean and twice the pairs."""
    with store.write() as con:
        con.execute("INSERT INTO runs SELECT * REPLACE (run_id || '-b4' AS run_id, 4 AS budget, 4 AS n_labelled,"
                    " finished_at + INTERVAL 1 HOUR AS finished_at) FROM runs WHERE run_id LIKE 'g1-alkdrec-%'")
        for table in ("metrics", "session_results"):
            con.execute(f"INSERT INTO {table} SELECT * REPLACE (run_id || '-b4' AS run_id) FROM {table}"
                        " WHERE run_id LIKE 'g1-alkdrec-%'")
        con.execute("UPDATE session_results SET rank = rank + 1 WHERE run_id LIKE '%-b4'")
        con.execute("UPDATE metrics SET value = value / 2 WHERE run_id LIKE '%-b4'")
    data.clear_cache()
    top = data.headline()
    b4 = [f"g1-alkdrec-s{seed}-b4" for seed in range(3)]
    expected = store.query("SELECT avg(value) AS v FROM metrics WHERE list_contains(?, run_id) AND split = 'test'"
                           " AND metric = 'ndcg' AND k = 10", [b4])["v"][0]
    a, b = ndcg10(b4), ndcg10([f"g1-student-s{seed}" for seed in range(3)])
    pairs = a.merge(b, on=["seed", "session_id"], suffixes=("", "_s"))
    assert top.method_ndcg == pytest.approx(expected) and top.labelled == 4 and top.seeds == 3
    assert top.p == pytest.approx(stats.ttest_rel(pairs["ndcg"], pairs["ndcg_s"]).pvalue)


def test_home_without_a_comparison_says_how_to_get_one(isolated_home, app):
    at = app()
    assert any("No finished comparison" in t for t in texts(at, "info"))


def test_the_same_launch_is_not_started_twice(seeded, monkeypatch: pytest.MonkeyPatch):
    started = []

    def fake_start(cfg):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
        started.append(child)
        return child.pid, db_path().parent / "x.log", ["alkd", "run"]

    monkeypatch.setattr(data, "_start", fake_start)
    monkeypatch.setattr(data, "_recent", {})
    try:
        data.launch(data.demo_config("tiny"))
        with pytest.raises(data.RepeatedLaunch, match="the same launch started"):
            data.launch(data.demo_config("tiny"))           # a double click: another group name, same settings
        data.launch(data.LaunchSpec.parse({"dataset": "tiny", "methods": "student", "budget": 7}))   # other settings
        assert len(started) == 2
        started[0].kill()
        started[0].wait()
        data.launch(data.demo_config("tiny"))               # the first one is over: may start again
        assert len(started) == 3
    finally:
        for child in started:
            child.kill()


def test_a_demo_already_in_the_store_is_not_rerun_by_default(seeded, app):
    seed_store(db_path(), groups=("demo-20260101",), methods=("student", "alkdrec"), seeds=(0,), dataset="ml-100k",
               base_time=pd.Timestamp("2026-06-01", tz="UTC"))
    with store.write() as con:
        con.execute("UPDATE runs SET tags = ['demo'] WHERE groups = 'demo-20260101'")
    data.clear_cache()
    at = app()
    assert any("demo-20260101" in t for t in texts(at, "success"))
    assert at.button(key="demo").disabled
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Runs"] == f"{len(store.query('SELECT run_id FROM runs')):,}"
