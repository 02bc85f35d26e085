"""Compare: accuracy per method over seeds, significance against a baseline, budget/cost curves, category mix."""

from __future__ import annotations

import io

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import analysis, data

st.title("Compare")

runs = data.runs()
# done runs only (one per configuration and seed is kept within the selection, below)
finished = data.finished_runs(runs)
finished = finished[finished["ndcg10"].notna() | finished["recall10"].notna()]
groups = [g for g in finished["groups"].dropna().unique()] if not finished.empty else []
# links: /compare?group=NAME&dataset=alkdrec-games&backbone=sasrec (comma-separated lists; &test=session)
wanted = {key: [v for v in st.query_params.get(key, "").split(",") if v] for key in ("group", "dataset", "backbone")}
c = st.columns([2, 3])
picked_groups = c[0].multiselect("Groups", groups, default=[g for g in wanted["group"] if g in groups] or groups[:1],
                                 key="groups")
picked_runs = c[1].multiselect("…or individual runs", list(finished["run_id"]) if not finished.empty else [],
                               key="runs")
# one run per (configuration, seed) of the selection: a rerun or a copy of a group counts once
selected = data.one_per_seed(finished[finished["groups"].isin(picked_groups) | finished["run_id"].isin(picked_runs)]) \
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

configs = analysis.configurations(selected)
selected = configs.runs
long = data.metrics_long(list(selected["run_id"]))
ks = sorted(int(k) for k in long["k"].dropna().unique())
c = st.columns(3)
k = c[0].selectbox("K", ks, index=ks.index(10) if 10 in ks else 0, key="k")
values = analysis.run_values(long, selected, k)
metrics = [m for m in ("recall", "ndcg", "mrr") if m in values.columns]
order = list(configs.table["config"])
students = [label for label in order if label == "student" or label.startswith("student · ")]
baseline = c[1].selectbox("Baseline", order, index=order.index(students[0]) if students else 0, key="baseline")
tests = ["paired t-test over seeds", "paired t-test per session"]   # ?test=session opens the second
test = c[2].radio("Significance test", tests, key="test", index=int(st.query_params.get("test") == "session"))

# ---- summary table ------------------------------------------------------------------------------------------------
summary = analysis.summary(values, configs.table, selected, metrics, k)
tested = analysis.tests(tuple(zip(selected["run_id"], selected["label"], selected["seed"])), baseline, tuple(metrics),
                        k, "seed" if test.endswith("seeds") else "session", data.db())
for m in metrics:
    summary[f"{analysis.NAMES[m]}@{k} vs {baseline}"] = summary["config"].map(tested[m]).fillna("n/a")
st.subheader(f"Mean ± std over seeds (test split, K = {k})")
st.caption(data.protocol(int(summary["seeds"].max()) if not summary.empty else None).replace("NDCG@K", f"NDCG@{k}")
           .replace("HR@K", f"HR@{k}"))
st.dataframe(summary, hide_index=True, width="stretch", key="summary",
             column_config={col: st.column_config.NumberColumn(format="%.4f") for col in summary.columns
                            if col.endswith(("mean", "std", "±95%"))})
shown = [name for name in configs.varying if name not in ("method", "label_leak")]
st.caption("One row per configuration: runs with the same settings but the seed"
           + (f" (the settings that differ here are columns: {', '.join(shown)})" if shown else "")
           + "; one run per configuration and seed (the newest). **label leak**: *forced* = the LLM's lists were made "
             "with the true next item forced into its candidates (their scores are not a fair LLM's); **kept start**: "
             "seeds whose distillation returned the starting model (no epoch beat it on validation). ±95%: half-width "
             "of the 95% confidence interval over seeds (Student's t).")
st.caption(f"Significance: {test} (core.evaluate.paired_ttest, scipy.stats.ttest_rel) against **{baseline}**; "
           + ("pairs are the runs with the same seed." if test.endswith("seeds")
              else "pairs are (seed, test session), the per-session metric from each run's stored rank.")
           + " ▲/▼ direction, * p < 0.05, ** p < 0.01, n/a: fewer than two pairs or no variation.")

# ---- grouped bars -------------------------------------------------------------------------------------------------
fig = go.Figure()
for m in [m for m in ("recall", "ndcg") if m in metrics]:
    name = f"{analysis.NAMES[m]}@{k}"
    fig.add_bar(name=name, x=summary["config"], y=summary[f"{name} mean"],
                error_y=dict(type="data", array=summary[f"{name} std"].fillna(0)))
fig.update_layout(barmode="group", height=360, yaxis_title="test score (mean over seeds, bars: ± std)",
                  margin=dict(t=30, b=40, l=50, r=20))
st.plotly_chart(fig, key="bars")

# ---- budget and cost ---------------------------------------------------------------------------------------------
st.subheader("What the budget buys")
llm = selected[selected["method"].isin(data.LLM_METHODS)]
if llm.empty:
    st.info("No LLM-labelled run in this selection, so no budget curve: add a group with random, alkdrec, ... runs.")
else:
    cells = list(dict.fromkeys(zip(llm["dataset"], llm["backbone"])))
    c = st.columns(3)
    cell = c[0].selectbox("Budget chart for", cells, key="budget_cell", format_func=lambda x: f"{x[0]} · {x[1]}") \
        if len(cells) > 1 else cells[0]
    names = sorted(f"{m}@{int(kk)}" for m, kk in set(zip(long["metric"], long["k"])))
    metric = c[1].selectbox("Metric", names, index=names.index("ndcg@10") if "ndcg@10" in names else 0,
                            key="budget_metric")
    priced = analysis.priced_models()
    default = priced.index(analysis.WHATIF_DEFAULT) if analysis.WHATIF_DEFAULT in priced else 0
    whatif_model = c[2].selectbox("What-if price for free teachers", priced, key="whatif_model", index=default,
                                  help="Simulated and replay runs pay nothing; their USD axis shows what their labels "
                                       "would have cost at this model's list price (core/teachers/prices.toml).")
    in_cell = selected[(selected["dataset"] == cell[0]) & ((selected["backbone"] == cell[1])
                                                           | selected["method"].isin(data.BASELINES))]
    scored = long
    vsknn = data.one_per_seed(finished[(finished["method"] == "vsknn") & (finished["dataset"] == cell[0])])
    if not (in_cell["method"] == "vsknn").any() and not vsknn.empty:   # a dataset's reference: any finished one
        in_cell = pd.concat([in_cell, analysis.configurations(vsknn).runs])
        scored = pd.concat([long, data.metrics_long(list(vsknn["run_id"]))])
    name, kk = metric.split("@")
    scores = scored[(scored["metric"] == name) & (scored["k"] == int(kk))][["run_id", "value"]].rename(
        columns={"value": metric})
    cell_llm = in_cell[in_cell["method"].isin(data.LLM_METHODS)]
    tokens = data.label_tokens(list(cell_llm["run_id"]))
    cell_llm = cell_llm.merge(tokens, on="run_id", how="left")
    cell_llm["whatif_usd"] = [analysis.whatif_usd(n, i, o, whatif_model) if usd == 0 else usd for n, i, o, usd in
                              zip(cell_llm["n_labelled"], cell_llm["input_tokens"], cell_llm["output_tokens"],
                                  cell_llm["usd_spent"].fillna(0))]
    points = analysis.budget_points(scores, cell_llm, metric)
    refs = analysis.references(scores, in_cell, metric)
    label = metric.replace("ndcg", "NDCG").replace("recall", "HR").replace("mrr", "MRR")
    cols = st.columns(2)
    free = bool(points["free"].any())
    usd_title = "USD spent per run" if not free else f"USD per run, what-if at {whatif_model} prices" \
        if points["free"].all() else f"USD per run (spent; what-if at {whatif_model} prices where the teacher was free)"
    for col, x, title in ((cols[0], "n_labelled", "LLM-labelled sessions"), (cols[1], "usd", usd_title)):
        fig = go.Figure()
        for line, part in points.groupby("line", sort=False):
            whatif = x == "usd" and bool(part["free"].all())
            fig.add_scatter(x=part["whatif_usd"] if whatif else part[x], y=part["mean"], mode="lines+markers",
                            name=f"{line} (what-if $)" if whatif else line, line=dict(dash="dot" if whatif else None),
                            error_y=dict(type="data", array=part["ci"].fillna(0)),
                            customdata=part[["budget", "seeds", "kept"]].to_numpy(),
                            hovertemplate="budget %{customdata[0]}, %{customdata[1]} seeds, kept start "
                                          "%{customdata[2]}<br>%{x}: %{y:.4f}<extra></extra>")
        fig.update_layout(   # the reference lines as layout shapes: add_hline costs ~50 ms a line
            shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": r.mean, "y1": r.mean,
                     "line": {"dash": "dash", "color": "grey"}} for r in refs.itertuples()],
            annotations=[{"xref": "paper", "x": 0, "yref": "y", "y": r.mean, "text": f"{r.name} {r.mean:.4f}",
                          "showarrow": False, "xanchor": "left", "yanchor": "bottom"} for r in refs.itertuples()])
        fig.update_layout(height=380, xaxis_title=title, yaxis_title=f"test {label}, mean ± 95% CI",
                          margin=dict(t=30, b=40, l=50, r=20), legend=dict(orientation="h", y=-0.25))
        col.plotly_chart(fig, key=f"budget_{x}")
    forced = sorted(set(points.loc[points["leak"] == "forced", "line"]))
    kept = points[points["kept"] > 0]
    notes = [f"Reference lines: {', '.join(f'{r.name} = {r.config}' for r in refs.itertuples())}."
             if not refs.empty else "No student, teacher or V-SKNN run for reference lines."]
    if free:
        notes.append("**What-if USD**: dotted lines are runs that paid nothing (simulated or replay teacher, or a free "
                     f"server); their USD is what their labels would cost at **{whatif_model}** list prices, from the "
                     "stored calls' tokens or, without calls (replay), a typical request - not money spent.")
    if forced:
        notes.append(f"**Label forced** ({', '.join(forced)}): the LLM's lists were made with the true next item "
                     "forced into its candidates; their gain is not what a fair LLM would give.")
    if not kept.empty:
        notes.append("**Returned the starting model**: " + "; ".join(
            f"{r.line} at budget {r.budget}: {r.kept} of {r.seeds} seeds" for r in kept.itertuples())
            + " (no distillation epoch beat the pre-trained student on validation).")
    st.caption(" ".join(notes))
    st.dataframe(points.rename(columns={"mean": f"{label} mean", "ci": "±95%", "usd": "USD spent",
                                        "whatif_usd": "USD (what-if if free)", "kept": "kept start",
                                        "leak": "label leak"}),
                 hide_index=True, width="stretch", key="budget_points",
                 column_config={f"{label} mean": st.column_config.NumberColumn(format="%.4f"),
                                "±95%": st.column_config.NumberColumn(format="%.4f"),
                                "USD spent": st.column_config.NumberColumn(format="$%.4f"),
                                "USD (what-if if free)": st.column_config.NumberColumn(format="$%.4f")})

# ---- achieved category mix ------------------------------------------------------------------------------------------
mix = data.category_mix(list(selected["run_id"]))
if not mix.empty:
    st.subheader("Achieved effective / similar / incorrect mix of the labelled sessions")
    mix["config"] = mix["run_id"].map(selected.set_index("run_id")["label"])
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
    name = {r: f"{by_run.loc[r, 'label']} · seed {by_run.loc[r, 'seed']} · {r}" for r in options}
else:   # a configuration's settings: its runs' config without seed, device and what each run recorded
    options = order
    configs = dict(zip(by_run["label"], by_run["config_key"]))
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

# ---- export ------------------------------------------------------------------------------------------------------
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
