"""Compare: configurations keyed by every setting that differs, one run per (configuration, seed) in every pairing,
and the budget chart (labelled sessions and USD, with what-if prices for free teachers)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from core import store
from core.evaluate import mean_ci
from core.paths import db_path
from core.teachers import estimate, price_for
from dashboard import analysis, data
from dashboard.demo_store import seed_store


def copy_group(source: str, target: str, usd_cap: float | None = None) -> None:
    """Every row of group `source` again as group `target` (run ids suffixed, an hour newer); usd_cap: the copy was
    launched with this (never reached) USD cap, a setting no label of the old page named."""
    with store.write() as con:
        ids = con.execute("SELECT run_id FROM runs WHERE groups = ?", [source]).df()["run_id"].tolist()
        con.execute("INSERT INTO runs SELECT * REPLACE (run_id || '-copy' AS run_id, ? AS groups, created_at + "
                    "INTERVAL 1 HOUR AS created_at, CASE WHEN teacher IS NULL THEN usd_cap ELSE ? END AS usd_cap)"
                    " FROM runs WHERE groups = ?", [target, usd_cap, source])
        for table in ("metrics", "session_results", "selections", "run_candidates"):
            con.execute(f"INSERT INTO {table} SELECT * REPLACE (run_id || '-copy' AS run_id) FROM {table}"
                        " WHERE list_contains(?, run_id)", [ids])


def per_session_test(at, groups: list[str]) -> pd.DataFrame:
    at.multiselect(key="groups").set_value(groups).run()
    at.radio(key="test").set_value("paired t-test per session").run()
    assert not at.exception, [e.value for e in at.exception]
    return at.dataframe[0].value.set_index("config")


@pytest.mark.parametrize("usd_cap", [None, 5.0], ids=["exact copy", "copy with a USD cap"])
def test_two_copies_of_a_group_pair_each_seed_and_session_once(seeded, app, usd_cap):
    one = per_session_test(app("compare"), ["g1"])
    p_one = one.loc["alkdrec", "NDCG@10 vs student"]
    copy_group("g1", "g1copy", usd_cap)
    both = per_session_test(app("compare"), ["g1", "g1copy"])
    # the old page pooled the capped copy with the original into one row and paired each seed's two alkdrec runs
    # with its student: twice the pairs, p = 0.062 where one copy gives 0.19 (p = 1e-185 at 200 test sessions)
    assert (both["seeds"] == 3).all()
    alkdrec = [c for c in both.index if c.startswith("alkdrec")]
    for config in alkdrec:
        assert both.loc[config, "NDCG@10 vs student"] == p_one
        assert both.loc[config, "NDCG@10 mean"] == pytest.approx(one.loc["alkdrec", "NDCG@10 mean"])
    assert len(alkdrec) == (1 if usd_cap is None else 2)
    if usd_cap is not None:   # the setting that differs is a column, and names the configurations apart
        assert set(both.loc[alkdrec, "usd_cap"]) == {"—", "5"}
        assert "usd_cap" in both.columns and "student" in both.index


def test_a_per_session_test_reads_all_configurations_ranks_in_one_query(seeded, app, monkeypatch):
    calls = []
    real = data.session_ranks
    monkeypatch.setattr(data, "session_ranks", lambda ids, *a, **k: calls.append(list(ids)) or real(ids, *a, **k))
    at = app("compare")
    calls.clear()                                  # Home's headline (the first page opened) reads its own
    table = per_session_test(at, ["g1"])
    assert len(calls) == 1 and len(calls[0]) == 9 and len(table) == 3


def test_settings_key_ignores_what_a_method_does_not_read():
    row = {"config": json.dumps({"budget": 50, "ratios": [1, 5, 4], "seed": 3, "options": {}, "mode": "paper"}),
           "method": "student", "dataset": "d", "backbone": "fpmc", "teacher": "replay", "budget": 50}
    other = {**row, "budget": 100, "config": json.dumps({"budget": 100, "seed": 4, "mode": "paper"})}
    assert data.config_key(row) == data.config_key(other)       # a student run of a budget sweep is one config
    llm = {**row, "method": "alkdrec"}
    assert json.loads(data.config_key(llm))["budget"] == 50
    assert data.config_key(llm) != data.config_key({**other, "method": "alkdrec"})
    assert json.loads(data.config_key(llm))["label_leak"] == "none"


@pytest.fixture
def sweep(seeded, tiny) -> pd.DataFrame:
    """A budget sweep over the tiny dataset: student, random, alkdrec x budgets 4 and 8 x seeds 0-1 (each budget its
    own group, as a sweep launched by hand), the budget-8 runs scoring 0.05 higher; a V-SKNN run in another group.
    Returns the test NDCG@10 of every run."""
    pool = tiny.sessions.loc[tiny.sessions["split"] == "train", "session_id"].to_numpy()
    test = tiny.sessions.loc[tiny.sessions["split"] == "test", "session_id"].to_numpy()
    common = dict(pool=pool, test_sessions=test, n_items=tiny.n_items, seeds=(0, 1))
    for budget in (4, 8):
        seed_store(db_path(), groups=(f"b{budget}",), methods=("student", "random", "alkdrec"), budget=budget,
                   base_time=pd.Timestamp("2026-03-01", tz="UTC") + pd.Timedelta(hours=budget), **common)
    seed_store(db_path(), groups=("refs",), methods=("vsknn",), **common)
    with store.write() as con:
        con.execute("UPDATE metrics SET value = value + 0.05 WHERE run_id LIKE 'b8-%' AND run_id NOT LIKE '%student%'")
    data.clear_cache()
    return store.query("SELECT r.run_id, r.method, r.budget, r.seed, m.value FROM metrics m JOIN runs r"
                       " USING (run_id) WHERE m.split = 'test' AND m.metric = 'ndcg' AND m.k = 10"
                       " AND r.groups IN ('b4', 'b8', 'refs')")


def budget_charts(at) -> tuple[dict, dict]:
    charts = {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    by_title = {spec["layout"].get("xaxis", {}).get("title", {}).get("text"): spec for spec in charts.values()}
    labelled = by_title["LLM-labelled sessions"]
    usd = next(spec for title, spec in by_title.items() if str(title).startswith("USD "))
    return labelled, usd


def decode(values) -> list[float]:
    """Plotly's JSON: a list, or {'dtype': .., 'bdata': base64} for numpy arrays."""
    import base64

    import numpy as np
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def test_budget_chart_one_line_per_method_with_ci_references_and_whatif_usd(sweep, app):
    at = app("compare")
    at.multiselect(key="groups").set_value(["b4", "b8"]).run()
    assert not at.exception
    summary = at.dataframe[0].value.set_index("config")
    assert {"student", "random · budget 4", "random · budget 8", "alkdrec · budget 4", "alkdrec · budget 8"} \
        == set(summary.index)
    assert summary.loc["student", "seeds"] == 2 and "budget" in summary.columns
    assert "teacher" not in summary.columns      # one teacher: the student's having none is no second value
    assert list(summary.index[:3]) == ["student", "alkdrec · budget 4", "alkdrec · budget 8"]
    labelled, usd = budget_charts(at)
    lines = {trace["name"]: trace for trace in labelled["data"]}
    assert set(lines) == {"random", "alkdrec"}
    for method in ("random", "alkdrec"):
        expected = [mean_ci(sweep[(sweep["method"] == method) & (sweep["budget"] == b)]["value"]) for b in (4, 8)]
        assert decode(lines[method]["x"]) == [4, 8]
        assert decode(lines[method]["y"]) == pytest.approx([m for m, _ in expected])
        assert decode(lines[method]["error_y"]["array"]) == pytest.approx([h for _, h in expected])
    notes = " ".join(a["text"] for a in labelled["layout"]["annotations"])
    student = sweep[sweep["method"] == "student"]
    assert f"Student {student[student['run_id'].str.startswith('b8')]['value'].mean():.4f}" in notes
    assert "V-SKNN" in notes                      # from the store: the selection has none
    # the simulated teacher paid nothing: USD is what-if at the paper's teacher's price, from the calls' tokens
    price = price_for(analysis.WHATIF_DEFAULT)
    per_label = (800 * price.input + 120 * price.output) / 1e6
    what_if = {trace["name"]: trace for trace in usd["data"]}
    assert set(what_if) == {"random (what-if $)", "alkdrec (what-if $)"}
    assert decode(what_if["alkdrec (what-if $)"]["x"]) == pytest.approx([4 * per_label, 8 * per_label])
    assert any("What-if USD" in c and analysis.WHATIF_DEFAULT in c for c in (e.value for e in at.caption))
    at.selectbox(key="whatif_model").set_value("gpt-4o-mini").run()
    cheap = price_for("gpt-4o-mini")
    _, usd = budget_charts(at)
    trace = next(t for t in usd["data"] if t["name"] == "alkdrec (what-if $)")
    assert decode(trace["x"])[0] == pytest.approx(4 * (800 * cheap.input + 120 * cheap.output) / 1e6)


def test_budget_chart_flags_label_leak_and_the_starting_model(sweep, app):
    for run_id in ("b4-alkdrec-s0", "b4-alkdrec-s1"):
        config = json.loads(store.query("SELECT config FROM runs WHERE run_id = ?", [run_id])["config"][0])
        config["extra"] = {"label_leak": "forced", "distill": {"returned_start": run_id.endswith("s1")}}
        store.set_run_fields(run_id, config=config)
    at = app("compare")
    at.multiselect(key="groups").set_value(["b4", "b8"]).run()
    assert not at.exception
    summary = at.dataframe[0].value.set_index("config")
    forced = "alkdrec · budget 4 · label forced"
    assert summary.loc[forced, "label leak"] == "forced" and summary.loc[forced, "kept start"] == "1 of 2"
    captions = " ".join(e.value for e in at.caption)
    assert "Label forced" in captions and "Returned the starting model" in captions
    points = next(d.value for d in at.dataframe if "kept start" in d.value.columns and "budget" in d.value.columns
                  and "line" in d.value.columns)
    assert points.set_index(["line", "budget"]).loc[("alkdrec · label forced", 4), "label leak"] == "forced"


def test_whatif_usd_without_calls_is_a_typical_request():
    usd = analysis.whatif_usd(100, None, None, "gpt-4o-mini")
    assert usd == pytest.approx(estimate(100, "openai", "gpt-4o-mini").usd) and usd > 0
    assert analysis.whatif_usd(0, None, None, "gpt-4o-mini") == 0
    assert math.isclose(analysis.whatif_usd(3, 1_000_000, 0, "gpt-4o-mini"), price_for("gpt-4o-mini").input)


def test_replay_runs_cost_a_typical_request_at_the_whatif_price(replayed, app):
    at = app("compare")
    at.multiselect(key="groups").set_value(["rp"]).run()
    assert not at.exception
    _, usd = budget_charts(at)
    trace = next(t for t in usd["data"] if t["name"] == "alkdrec (what-if $)")
    # replay runs make no calls: the labels are priced as typical requests (8 labelled sessions per run)
    assert decode(trace["x"]) == pytest.approx([estimate(8, "openai", analysis.WHATIF_DEFAULT).usd])
    assert usd["layout"]["xaxis"]["title"]["text"] == f"USD per run, what-if at {analysis.WHATIF_DEFAULT} prices"


def test_significance_pairs_each_seed_and_session_once_and_refuses_a_second_value():
    from scipy import stats
    rows = [(label, seed, session, value) for label, shift in (("a", 0.1), ("b", 0.0))
            for seed in (0, 1) for session, value in enumerate([0.2, 0.5, 0.1, 0.9, 0.4])
            for value in [value + shift * (session % 3)]]
    values = pd.DataFrame(rows, columns=["label", "seed", "session_id", "ndcg"])
    a, b = values[values["label"] == "a"]["ndcg"], values[values["label"] == "b"]["ndcg"]
    p = stats.ttest_rel(a.to_numpy(), b.to_numpy()).pvalue
    assert p < 0.05
    assert analysis.significance(values, "b", "ndcg", "session") == {"a": f"▲* p={p:.3g}", "b": "baseline"}
    with pytest.raises(ValueError, match="one run per configuration"):
        analysis.significance(pd.concat([values, values.head(1)]), "b", "ndcg", "session")
