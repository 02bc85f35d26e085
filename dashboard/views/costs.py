"""Costs: tokens and USD by provider, model and run; cache reuse; full-pool labelling cost against what was spent."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard import data

st.title("Costs")

by_model = data.read(
    "SELECT provider, model, bool_or(coalesce(simulated, false)) AS simulated, count(*) AS calls,"
    " sum(coalesce(input_tokens, 0)) AS input_tokens, sum(coalesce(output_tokens, 0)) AS output_tokens,"
    " sum(coalesce(cache_read_tokens, 0)) AS cache_read_tokens, sum(coalesce(usd, 0)) AS usd,"
    " avg(latency_s) AS mean_latency_s FROM llm_calls GROUP BY ALL ORDER BY usd DESC")
uses = data.read(
    "SELECT count(*) AS labels, count(DISTINCT call_key) AS distinct_calls FROM selections"
    " WHERE picked AND call_key IS NOT NULL")
c = st.columns(4)
c[0].metric("LLM calls stored", f"{int(by_model['calls'].sum()) if not by_model.empty else 0:,}")
c[1].metric("USD paid", f"${by_model['usd'].sum() if not by_model.empty else 0:,.4f}")
labels, distinct = int(uses["labels"].iloc[0] or 0), int(uses["distinct_calls"].iloc[0] or 0)
hit_rate = 1 - distinct / labels if labels else 0.0
c[2].metric("Cache hit rate", f"{hit_rate:.1%}", help="Share of labelled sessions (over all runs) served by a call "
                                                     "another run had already paid for.")
tokens_in = by_model["input_tokens"].sum() if not by_model.empty else 0
c[3].metric("Prompt-cache reads", f"{(by_model['cache_read_tokens'].sum() / tokens_in) if tokens_in else 0:.1%}",
            help="Anthropic prompt-cache read tokens / input tokens.")

st.subheader("By provider and model")
if by_model.empty:
    st.info("No LLM call recorded yet.")
else:
    view = by_model.assign(provider=by_model["provider"].where(~by_model["simulated"],
                                                               by_model["provider"] + " (simulated)"))
    st.dataframe(view, hide_index=True, width="stretch", key="by_model",
                 column_config={"usd": st.column_config.NumberColumn("USD", format="$%.4f")})
    fig = go.Figure(go.Bar(x=view["provider"] + " · " + view["model"].astype(str), y=view["usd"]))
    fig.update_layout(height=300, yaxis_title="USD", margin=dict(t=20, b=40, l=50, r=20))
    st.plotly_chart(fig, key="usd_by_model")

st.subheader("By run: spent against a full labelling of the pool")
by_run = data.read(
    "WITH pool AS (SELECT run_id, count(*) AS pool, count(*) FILTER (WHERE picked) AS picked FROM selections"
    "  GROUP BY run_id),"
    " paid AS (SELECT s.run_id, sum(c.input_tokens) AS input_tokens, sum(c.output_tokens) AS output_tokens,"
    "  avg(c.usd) AS usd_per_call FROM selections s JOIN llm_calls c USING (call_key) WHERE s.picked GROUP BY s.run_id)"
    " SELECT r.run_id, r.method, r.teacher, r.dataset, coalesce(r.n_labelled, 0) AS n_labelled,"
    " coalesce(r.usd_spent, 0) AS usd_spent, r.usd_cap, pool.pool, paid.input_tokens, paid.output_tokens,"
    " paid.usd_per_call * pool.pool AS full_pool_usd FROM runs r JOIN pool USING (run_id)"
    " LEFT JOIN paid USING (run_id) ORDER BY usd_spent DESC, r.created_at DESC")
if by_run.empty:
    st.info("No run has labelled sessions yet.")
else:
    by_run["share_of_full"] = by_run["usd_spent"] / by_run["full_pool_usd"].where(by_run["full_pool_usd"] > 0)
    st.dataframe(by_run, hide_index=True, width="stretch", key="by_run", height=400,
                 column_config={"usd_spent": st.column_config.NumberColumn("spent USD", format="$%.4f"),
                                "full_pool_usd": st.column_config.NumberColumn("full pool USD", format="$%.4f"),
                                "share_of_full": st.column_config.NumberColumn("share", format="percent")})
    st.caption("Full pool = the run's mean cost per labelled session × the pool size (every training session). "
               "Simulated and replay teachers cost nothing.")
    total = by_run.groupby("teacher", as_index=False)[["usd_spent", "full_pool_usd"]].sum()
    fig = go.Figure([go.Bar(name="spent", x=total["teacher"], y=total["usd_spent"]),
                     go.Bar(name="full labelling of the pool", x=total["teacher"], y=total["full_pool_usd"])])
    fig.update_layout(barmode="group", height=300, yaxis_title="USD", margin=dict(t=20, b=40, l=50, r=20))
    st.plotly_chart(fig, key="full_vs_spent")
