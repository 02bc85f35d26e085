"""Landing page: the latest result in one sentence and one chart, what the tool does, datasets, a one-click demo."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard import data, launching

st.title("ALKD — distil LLM recommenders into small session-based students")

# ---- the headline: the latest comparison in the store, computed, never written by hand -----------------------------
top = data.headline()
if top is None:
    st.info("No finished comparison with a student and an LLM-labelled method yet: run the demo below, or launch "
            "one from **Launch**. The latest one is summarised here.")
else:
    st.markdown(top.sentence)
    fig = go.Figure(go.Bar(x=top.bars["method"], y=top.bars["mean"],
                           error_y=dict(type="data", array=top.bars["std"].fillna(0)),
                           marker_color=["#3b6fd8" if m == top.method else "#9aa9c7" for m in top.bars["method"]],
                           text=[f"{v:.4f}" for v in top.bars["mean"]], textposition="outside"))
    fig.update_layout(height=300, yaxis_title="test NDCG@10 (mean over seeds ± std)",
                      margin=dict(t=30, b=40, l=60, r=20),
                      title=dict(text=f"Group {top.group}: {top.dataset} · {top.backbone}", font=dict(size=14)))
    st.plotly_chart(fig, key="headline")
    st.caption(data.protocol(top.seeds) + " Details and significance on **Compare**.")

st.markdown(
    "An LLM can rank a session's next items well, but asking it about every session is slow and costly. "
    "**ALKDRec** (AAAI 2025) asks it only about the sessions a small *student* model learns most from, chosen by a "
    "max-min policy over the difficulty-sorted pool. This dashboard shows what each LLM dollar buys:\n\n"
    "- **Launch** a comparison (dataset, backbone, methods, teacher, budget in sessions and USD);\n"
    "- follow it on **Runs**, then **Compare** accuracy against budget and cost;\n"
    "- open **Sessions** to read what the teacher answered and why, and **Costs** for tokens and dollars.")


@st.fragment(run_every=5)
def store_glance() -> None:
    """Store metrics, refreshed every 5 s while the page is open."""
    runs = data.runs()
    if runs.empty:
        return
    st.subheader("Store at a glance")
    cols = st.columns(4)
    cols[0].metric("Runs", f"{len(runs):,}")
    cols[1].metric("Running", f"{int((runs['effective'] == 'running').sum()):,}")
    cols[2].metric("LLM-labelled sessions", f"{int(runs['n_labelled'].sum()):,}")
    cols[3].metric("USD spent", f"${runs['usd_spent'].sum():,.2f}")


store_glance()

st.subheader("Datasets present")
frame = data.datasets()
if frame.empty:
    st.info("No dataset fetched yet: run `alkd data fetch ml-100k` (offline, from the RecBole wheel).")
else:
    counts = ("n_sessions", "n_items", "n_interactions", "n_train", "n_valid", "n_test")
    st.dataframe(frame, hide_index=True, width="stretch", key="datasets",
                 column_config={**{c: st.column_config.NumberColumn(c.removeprefix("n_"), format="localized")
                                   for c in counts},
                                "mean_length": st.column_config.NumberColumn("mean length", format="%.1f")})

st.subheader("Demo comparison")
target = "ml-100k"
st.write(f"Student, teacher, random and ALKDRec on **{target}** (FPMC backbone, 100 LLM-labelled sessions, seed 0) "
         "with the **simulated** teacher — offline and free; the simulated teacher is a what-if stand-in, not an LLM.")
cfg = data.demo_config(target)
_, errors, _ = data.launch_problems(cfg)
for error in errors:
    st.error(error)
earlier = data.demo_runs(target)
running = earlier[earlier["running"] > 0]
finished = earlier[earlier["done"] > 0]
if not running.empty:
    st.info(f"A demo is running now (group **{running['groups'].iloc[0]}**): follow it on Runs.")
    st.page_link("views/runs.py", label="Open Runs", icon=":material/list:")
elif not finished.empty:
    st.success(f"The demo comparison is in the store (group **{finished['groups'].iloc[0]}**, "
               f"{finished['created_at'].iloc[0]:%Y-%m-%d %H:%M}): its result is above and on Compare.")
    st.page_link("views/compare.py", label="Open Compare", icon=":material/bar_chart:")
again = not finished.empty and running.empty and not errors and st.checkbox("Run it again anyway", key="demo_again")
if st.button("Run the demo comparison", key="demo", type="primary",
             disabled=bool(errors) or not running.empty or (not finished.empty and not again)):
    launched = launching.start(cfg)
    if launched is not None:
        st.code(data.shown_command(cfg), language="bash")
        st.page_link("views/runs.py", label="Open Runs", icon=":material/list:")
