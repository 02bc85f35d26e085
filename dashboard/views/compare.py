"""Compare: accuracy per method over seeds, significance against a baseline, budget/cost curves, category mix."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from scipy import stats

from core.pipeline import stored_label_leak
from dashboard import data

st.title("Compare")
NAMES = {"recall": "HR", "ndcg": "NDCG", "mrr": "MRR"}

runs = data.runs()
# done runs only, one per (configuration, seed): the newest (a rerun replaces its earlier copy)
finished = data.comparable_runs(runs)
finished = finished[finished["ndcg10"].notna() | finished["recall10"].notna()]
groups = [g for g in finished["groups"].dropna().unique()] if not finished.empty else []
# links: /compare?group=NAME&dataset=alkdrec-games&backbone=sasrec (comma-separated lists)
wanted = {key: [v for v in st.query_params.get(key, "").split(",") if v] for key in ("group", "dataset", "backbone")}
c = st.columns([2, 3])
picked_groups = c[0].multiselect("Groups", groups, default=[g for g in wanted["group"] if g in groups] or groups[:1],
                                 key="groups")
picked_runs = c[1].multiselect("…or individual runs", list(finished["run_id"]) if not finished.empty else [],
                               key="runs")
selected = finished[finished["groups"].isin(picked_groups) | finished["run_id"].isin(picked_runs)] \
    if not finished.empty else finished
c = st.columns(2)
for col, column, title in ((c[0], "dataset", "Narrow to datasets"), (c[1], "backbone", "Narrow to backbones")):
    options = sorted(selected[column].dropna().unique())
    narrow = col.multiselect(title, options, default=[v for v in wanted[column] if v in options], key=f"c_{column}",
                             placeholder="all")
    if narrow:
        selected = selected[selected[column].isin(narrow)]
if selected.empty:
    st.info("No finished runs selected: launch a comparison, or pick a group or runs above.")
    st.stop()

long = data.metrics_long(list(selected["run_id"]))
ks = sorted(int(k) for k in long["k"].dropna().unique())
c = st.columns(3)
k = c[0].selectbox("K", ks, index=ks.index(10) if 10 in ks else 0, key="k")
# a label names what varies: dataset/backbone/teacher across the selection, the LLM model/budget within a method
varying = [col for col in ("dataset", "backbone", "teacher") if selected[col].nunique() > 1] + \
    [col for col in ("model", "budget") if selected.groupby("method")[col].nunique().max() > 1]
labels = selected.set_index("run_id").apply(
    lambda r: " · ".join([str(r["method"])] + [f"budget {r[col]:g}" if col == "budget" and pd.notna(r[col])
                                               else str(r[col]) for col in varying]), axis=1)
# lists made with the true next item forced into the LLM's candidates are named so wherever a number is shown
leak = selected.set_index("run_id").apply(lambda r: stored_label_leak(
    r["teacher"], r["dataset"], json.loads(r["config"]) if isinstance(r["config"], str) else {})
    if r["method"] in data.LLM_METHODS else "none", axis=1)
labels = labels + leak.map({"forced": " · label forced", "filtered": " · no-leak replay"}).fillna("")
# two configurations that differ only in other settings (e.g. --option) get a short settings hash each
settings = selected.set_index("run_id")["config_key"]
shared = settings.groupby(labels).transform("nunique") > 1
labels = labels.where(~shared, labels + " [" + settings.map(
    lambda k: hashlib.sha256(str(k).encode()).hexdigest()[:6]) + "]")
wide = long[long["k"] == k].pivot_table(index="run_id", columns="metric", values="value").reset_index()
wide = wide.merge(selected[["run_id", "seed", "n_labelled", "usd_spent"]], on="run_id")
wide["config"] = wide["run_id"].map(labels)
metrics = [m for m in ("recall", "ndcg", "mrr") if m in wide.columns]
order = list(dict.fromkeys(labels[wide["run_id"]].tolist()))
students = [label for label in order if label == "student" or label.startswith("student · ")]
baseline = c[1].selectbox("Baseline", order, index=order.index(students[0]) if students else 0, key="baseline")
test = c[2].radio("Significance test", ["paired t-test over seeds", "paired t-test per session"], key="test")

# ---- summary table ------------------------------------------------------------------------------------------------
summary = wide.groupby("config", sort=False).agg(
    seeds=("seed", "nunique"), **{f"{NAMES[m]}@{k} mean": (m, "mean") for m in metrics},
    **{f"{NAMES[m]}@{k} std": (m, "std") for m in metrics}).reindex(order).reset_index()
summary = summary[["config", "seeds"] + [f"{NAMES[m]}@{k} {s}" for m in metrics for s in ("mean", "std")]]


def per_session(run_ids: list[str]) -> pd.DataFrame:
    ranks = data.session_ranks(run_ids)
    seeds = selected.set_index("run_id")["seed"]
    ranks["seed"] = ranks["run_id"].map(seeds)
    ranks["recall"] = data.hit_from_rank(ranks["rank"], k)
    ranks["ndcg"] = data.ndcg_from_rank(ranks["rank"], k)
    r = ranks["rank"].astype(float)
    ranks["mrr"] = np.where((r >= 0) & (r < k), 1.0 / (r + 1.0), 0.0)
    return ranks


def significance(metric: str, config: str) -> str:
    if config == baseline:
        return "baseline"
    a = wide[wide["config"] == config]
    b = wide[wide["config"] == baseline]
    if test.endswith("seeds"):
        pairs = a[["seed", metric]].merge(b[["seed", metric]], on="seed", suffixes=("", "_b")).dropna()
        x, y = pairs[metric].to_numpy(), pairs[f"{metric}_b"].to_numpy()
    else:
        ranks = per_session(list(a["run_id"]) + list(b["run_id"]))
        ranks["config"] = ranks["run_id"].map(labels)
        ra, rb = ranks[ranks["config"] == config], ranks[ranks["config"] == baseline]
        pairs = ra[["seed", "session_id", metric]].merge(rb[["seed", "session_id", metric]],
                                                         on=["seed", "session_id"], suffixes=("", "_b"))
        x, y = pairs[metric].to_numpy(), pairs[f"{metric}_b"].to_numpy()
    if len(x) < 2 or np.allclose(x - y, (x - y)[0]):
        return "n/a"
    p = stats.ttest_rel(x, y).pvalue
    arrow = "▲" if x.mean() > y.mean() else "▼"
    stars = "**" if p < 0.01 else "*" if p < 0.05 else ""
    return f"{arrow}{stars} p={p:.3g}"


for m in metrics:
    summary[f"{NAMES[m]}@{k} vs {baseline}"] = [significance(m, cfg) for cfg in summary["config"]]
st.subheader(f"Mean ± std over seeds (test split, K = {k})")
st.caption(data.protocol(int(summary["seeds"].max()) if not summary.empty else None).replace("NDCG@K", f"NDCG@{k}")
           .replace("HR@K", f"HR@{k}"))
st.dataframe(summary, hide_index=True, width="stretch", key="summary",
             column_config={col: st.column_config.NumberColumn(format="%.4f") for col in summary.columns
                            if col.endswith(("mean", "std"))})
st.caption(f"Significance: {test} (scipy.stats.ttest_rel) against **{baseline}**; "
           + ("pairs are the runs with the same seed." if test.endswith("seeds")
              else "pairs are (seed, test session), the per-session metric from each run's stored rank.")
           + " ▲/▼ direction, * p < 0.05, ** p < 0.01, n/a: fewer than two pairs or no variation.")

# ---- grouped bars -------------------------------------------------------------------------------------------------
fig = go.Figure()
for m in [m for m in ("recall", "ndcg") if m in metrics]:
    fig.add_bar(name=f"{NAMES[m]}@{k}", x=summary["config"], y=summary[f"{NAMES[m]}@{k} mean"],
                error_y=dict(type="data", array=summary[f"{NAMES[m]}@{k} std"].fillna(0)))
fig.update_layout(barmode="group", height=360, yaxis_title="test score (mean over seeds, bars: ± std)",
                  margin=dict(t=30, b=40, l=50, r=20))
st.plotly_chart(fig, key="bars")

# ---- budget and cost --------------------------------------------------------------------------------------------------
st.subheader("What the budget buys")
points = selected[["run_id", "method", "n_labelled", "usd_spent", "ndcg10", "teacher"]].dropna(subset=["ndcg10"])
points = points.assign(config=points["run_id"].map(labels))
paid = bool((points["usd_spent"] > 0).any())
cols = st.columns(2) if paid else [st.container()]
axes = [("n_labelled", "LLM-labelled sessions"), ("usd_spent", "USD spent")][:2 if paid else 1]
for col, (x, title) in zip(cols, axes):
    fig = go.Figure()
    for config, part in points.groupby("config", sort=False):
        fig.add_scatter(x=part[x], y=part["ndcg10"], mode="markers", name=config, text=part["run_id"])
    front = data.pareto(points, x, "ndcg10")
    fig.add_scatter(x=front[x], y=front["ndcg10"], mode="lines", name="Pareto frontier",
                    line=dict(dash="dash", color="black", shape="hv"))
    fig.update_layout(height=340, xaxis_title=title, yaxis_title="NDCG@10", margin=dict(t=30, b=40, l=50, r=20))
    col.plotly_chart(fig, key=f"budget_{x}")
if not paid:
    st.caption("No run here spent USD (replay, simulated or free teachers): no cost curve.")
elif (points["teacher"] == "simulated").any():
    st.caption("Runs with the **simulated** teacher spend $0: their cost axis shows what-if numbers, not LLM bills.")

# ---- achieved category mix ------------------------------------------------------------------------------------------
mix = data.category_mix(list(selected["run_id"]))
if not mix.empty:
    st.subheader("Achieved effective / similar / incorrect mix of the labelled sessions")
    mix["config"] = mix["run_id"].map(labels)
    shares = mix.pivot_table(index="config", columns="category", values="n", aggfunc="sum").fillna(0)
    shares = shares.div(shares.sum(axis=1), axis=0)
    fig = go.Figure()
    for category in [c for c in data.CATEGORIES if c in shares.columns] + \
            [c for c in shares.columns if c not in data.CATEGORIES]:
        fig.add_bar(name=category, y=shares.index, x=shares[category], orientation="h")
    fig.update_layout(barmode="stack", height=80 + 40 * len(shares), xaxis_title="share of labelled sessions",
                      margin=dict(t=20, b=40, l=50, r=20))
    st.plotly_chart(fig, key="mix")

# ---- what differs --------------------------------------------------------------------------------------------------
st.subheader("What differs between two configurations or two runs")
kind = st.radio("Between", ["two configurations", "two runs"], horizontal=True, key="diff_kind")
by_run = selected.set_index("run_id")
if kind == "two runs":
    options = list(selected["run_id"])
    configs = by_run["config"].to_dict()
    name = {r: f"{labels[r]} · seed {by_run.loc[r, 'seed']} · {r}" for r in options}
else:   # a configuration's settings: its runs' config without seed, device and what each run recorded
    options = order
    configs = {label: by_run.loc[labels[labels == label].index[0], "config_key"] for label in order}
    name = {label: label for label in options}
c = st.columns(2)
left = c[0].selectbox("A", options, key="diff_a", format_func=name.get)
right = c[1].selectbox("B", options, index=min(1, len(options) - 1), key="diff_b", format_func=name.get)
diff = data.config_diff(configs[left], configs[right])
if left == right:
    st.caption("Pick two different ones.")
elif diff.empty:
    st.caption("The same settings" + (" (seed, device and what the runs recorded aside)."
                                      if kind == "two configurations" else "."))
else:
    st.dataframe(diff.rename(columns={"a": "A", "b": "B"}), hide_index=True, width="stretch", key="diff")

# ---- export -----------------------------------------------------------------------------------------------------------
st.subheader("Export")
export = long.merge(selected[["run_id", "groups", "n_labelled", "usd_spent", "budget"]], on="run_id", how="left")
c = st.columns(3)
c[0].download_button("Metrics (CSV)", export.to_csv(index=False), "alkd-metrics.csv", "text/csv", key="csv")
buffer = io.BytesIO()
export.to_parquet(buffer, index=False)
c[1].download_button("Metrics (Parquet)", buffer.getvalue(), "alkd-metrics.parquet", "application/octet-stream",
                     key="parquet")
c[2].download_button("Summary table (CSV)", summary.to_csv(index=False), "alkd-summary.csv", "text/csv",
                     key="summary_csv")
