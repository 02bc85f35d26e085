"""Costs: tokens and USD by provider, model and endpoint; cache reuse; a full labelling of each pool against spend."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard import data

st.title("Costs")
st.caption("What the LLM teachers cost. Replay and simulated teachers are free (the replay teacher re-uses rankings "
           "recorded earlier and stores no call); a label that another run had already paid for is served from the "
           "store and not paid twice.")

by_model = data.costs_by_model()
reuse = data.cache_reuse()
c = st.columns(4)
c[0].metric("LLM calls stored", f"{int(by_model['calls'].sum()) if not by_model.empty else 0:,}")
c[1].metric("USD paid", f"${by_model['usd'].sum() if not by_model.empty else 0:,.4f}")
c[2].metric("Cache hit rate", f"{reuse.hit_rate:.1%}" if reuse.labels else "—",
            help=f"Of {reuse.labels:,} labels that came from a stored call, {reuse.labels - reuse.calls:,} reused a "
                 "call another label (of this or another run) had already made. Replay labels have no call and are "
                 "not counted.")
tokens_in = by_model["input_tokens"].sum() if not by_model.empty else 0
c[3].metric("Prompt-cache reads", f"{(by_model['cache_read_tokens'].sum() / tokens_in) if tokens_in else 0:.1%}",
            help="Anthropic prompt-cache read tokens / input tokens.")

st.subheader("By provider, model and endpoint")
if by_model.empty:
    st.info("No LLM call recorded yet (replay runs store none: their rankings were recorded earlier).")
else:
    st.dataframe(by_model, hide_index=True, width="stretch", key="by_model",
                 column_config={"usd": st.column_config.NumberColumn("USD", format="$%.4f"),
                                "calls": st.column_config.NumberColumn(format="localized"),
                                "input_tokens": st.column_config.NumberColumn("input tokens", format="localized"),
                                "output_tokens": st.column_config.NumberColumn("output tokens", format="localized"),
                                "cache_read_tokens": st.column_config.NumberColumn("cache reads", format="localized"),
                                "mean_latency_s": st.column_config.NumberColumn("mean latency s", format="%.2f")})
    if by_model["priced"].str.startswith("list price").any():
        st.warning("Calls to a **local server** (a `--base-url` other than the provider's API) are priced at the "
                   "model's list price: they show what the same calls would cost at the provider, not a bill.")
    paid = by_model[by_model["usd"] > 0]
    if paid.empty:
        st.caption("Every call so far was free: no USD chart.")
    else:
        fig = go.Figure(go.Bar(x=paid["provider"] + " · " + paid["model"].astype(str), y=paid["usd"]))
        fig.update_layout(height=300, yaxis_title="USD", margin=dict(t=20, b=40, l=50, r=20))
        st.plotly_chart(fig, key="usd_by_model")

st.subheader("What a full labelling of each pool would cost, against what was spent")
pools = data.full_labelling()
if pools.empty:
    st.info("No run has labelled sessions yet.")
else:
    st.dataframe(pools, hide_index=True, width="stretch", key="pools",
                 column_config={"pool": st.column_config.NumberColumn("pool sessions", format="localized"),
                                "labelled": st.column_config.NumberColumn("labels (all runs)", format="localized"),
                                "runs": st.column_config.NumberColumn(format="localized"),
                                "usd_per_label": st.column_config.NumberColumn("USD per label", format="$%.5f"),
                                "spent_usd": st.column_config.NumberColumn("spent (all runs)", format="$%.4f"),
                                "full_pool_usd": st.column_config.NumberColumn("full pool once", format="$%.4f")})
    st.caption("Full pool once = the mean paid cost per labelled session × the pool (every training session of the "
               "dataset), counted once per dataset, teacher and model however many runs labelled it.")
    priced = pools[(pools["spent_usd"] > 0) | (pools["full_pool_usd"] > 0)]
    if priced.empty:
        st.caption("Only free teachers so far (replay, simulated): nothing to chart.")
    else:
        names = priced["dataset"] + " · " + priced["teacher"] + " · " + priced["model"].astype(str)
        fig = go.Figure([go.Bar(name="spent (all runs)", x=names, y=priced["spent_usd"]),
                         go.Bar(name="full labelling of the pool, once", x=names, y=priced["full_pool_usd"])])
        fig.update_layout(barmode="group", height=300, yaxis_title="USD", margin=dict(t=20, b=40, l=50, r=20))
        st.plotly_chart(fig, key="full_vs_spent")

st.subheader("By run")
by_run = data.costs_by_run()
if by_run.empty:
    st.info("No run has labelled sessions yet.")
else:
    st.dataframe(by_run, hide_index=True, width="stretch", key="by_run", height=400,
                 column_config={"usd_spent": st.column_config.NumberColumn("spent USD", format="$%.4f"),
                                "usd_cap": st.column_config.NumberColumn("USD cap", format="$%.4f"),
                                "n_labelled": st.column_config.NumberColumn("labelled", format="localized"),
                                "input_tokens": st.column_config.NumberColumn("input tokens", format="localized"),
                                "output_tokens": st.column_config.NumberColumn("output tokens", format="localized")})
