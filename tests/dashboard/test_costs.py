"""The Costs page: reuse counted over real calls only, a full labelling counted once per pool, local servers marked,
no empty charts when every teacher was free."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from core import store
from core.paths import db_path
from dashboard import data
from dashboard.demo_store import seed_store
from tests.dashboard.test_pages import frame, texts


def plotted(values) -> list[float]:
    """A plotly trace's numbers, whether JSON lists or plotly's typed-array encoding ({'dtype', 'bdata'})."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def paid_group(tiny, group: str = "paid", base_url: str | None = None) -> None:
    pool = tiny.sessions.loc[tiny.sessions["split"] == "train", "session_id"].to_numpy()
    test = tiny.sessions.loc[tiny.sessions["split"] == "test", "session_id"].to_numpy()
    seed_store(db_path(), groups=(group,), methods=("alkdrec",), seeds=(0, 1, 2), pool=pool, test_sessions=test,
               budget=8, n_items=tiny.n_items, teacher="openai", model="gpt-4o-mini", usd_per_call=0.001,
               base_url=base_url, base_time=pd.Timestamp("2026-03-01", tz="UTC"))
    data.clear_cache()


def test_reuse_leaves_out_replay_labels_and_free_teachers_draw_no_chart(replayed, app):
    at = app("costs")
    calls = store.query("SELECT count(*) AS labels, count(DISTINCT call_key) AS calls FROM selections"
                        " WHERE picked AND call_key <> ''").iloc[0]
    assert store.query("SELECT count(*) AS n FROM selections WHERE picked AND call_key = ''")["n"][0] == 32
    hit = next(m for m in at.metric if m.label == "Cache hit rate")
    assert hit.value == f"{1 - calls['calls'] / calls['labels']:.1%}"
    by_model = frame(at, "provider", "calls")
    assert by_model["provider"].tolist() == ["simulated"]           # not "simulated (simulated)"
    assert by_model["calls"].sum() == store.query("SELECT count(*) AS n FROM llm_calls")["n"][0]
    assert not at.get("plotly_chart")                                # only free teachers: no ±1 USD empty axes
    assert any("nothing to chart" in t for t in texts(at, "caption"))
    pools = frame(at, "dataset", "teacher", "full_pool_usd")
    assert set(pools["teacher"]) == {"simulated", "replay"} and (pools["full_pool_usd"] == 0).all()


def test_a_full_labelling_is_counted_once_per_pool(seeded, tiny, app):
    paid_group(tiny)
    at = app("costs")
    pools = frame(at, "dataset", "teacher", "full_pool_usd").set_index("teacher")
    pool = int((tiny.sessions["split"] == "train").sum())
    assert pools.loc["openai", "runs"] == 3 and pools.loc["openai", "pool"] == pool
    assert pools.loc["openai", "full_pool_usd"] == pytest.approx(0.001 * pool)     # once, not 3 x
    assert pools.loc["openai", "spent_usd"] == pytest.approx(3 * 8 * 0.001)
    chart = json.loads(at.get("plotly_chart")[-1].proto.spec)
    full = next(d for d in chart["data"] if d["name"].startswith("full labelling"))
    assert plotted(full["y"]) == pytest.approx([0.001 * pool])
    compare = app("compare")       # the paid group is the newest: its USD curve is drawn
    titles = [json.loads(c.proto.spec)["layout"].get("xaxis", {}).get("title", {}).get("text")
              for c in compare.get("plotly_chart")]
    assert titles[1:3] == ["LLM-labelled sessions", "USD spent per run"]
    spent = next(d for d in json.loads(compare.get("plotly_chart")[2].proto.spec)["data"] if d["name"] == "alkdrec")
    assert plotted(spent["x"]) == pytest.approx([8 * 0.001])      # what the runs paid, not a what-if
    by_model = frame(at, "provider", "calls").set_index("provider")
    assert by_model.loc["openai", "priced"] == "provider's price"
    assert by_model.loc["openai", "endpoint"] == "provider API"
    assert not texts(at, "warning")


def test_calls_to_a_local_server_are_marked_as_list_price(seeded, tiny, app):
    paid_group(tiny, base_url="http://127.0.0.1:8080/v1")
    at = app("costs")
    by_model = frame(at, "provider", "calls").set_index("provider")
    assert by_model.loc["openai", "endpoint"] == "http://127.0.0.1:8080/v1"
    assert by_model.loc["openai", "priced"].startswith("list price, local server")
    assert any("local server" in t and "not a bill" in t for t in texts(at, "warning"))
