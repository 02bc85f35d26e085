"""Landing page: what the tool does, the datasets present, and a one-click demo comparison."""

from __future__ import annotations

import streamlit as st

from dashboard import data

st.title("ALKD — distil LLM recommenders into small session-based students")
st.markdown(
    "An LLM can rank a session's next items well, but asking it about every session is slow and costly. "
    "**ALKDRec** (AAAI 2025) asks it only about the sessions a small *student* model learns most from, chosen by a "
    "max-min policy over the difficulty-sorted pool. This dashboard shows what each LLM dollar buys:\n\n"
    "- **Launch** a comparison (dataset, backbone, methods, teacher, budget in sessions and USD);\n"
    "- follow it on **Runs**, then **Compare** accuracy against budget and cost;\n"
    "- open **Sessions** to read what the teacher answered and why, and **Costs** for tokens and dollars.")

st.subheader("Datasets present")
frame = data.datasets()
if frame.empty:
    st.info("No dataset fetched yet: run `alkd data fetch ml-100k` (offline, from the RecBole wheel).")
else:
    st.dataframe(frame, hide_index=True, width="stretch")

st.subheader("Demo comparison")
target = "ml-100k"
st.write(f"Student, teacher, random and ALKDRec on **{target}** (FPMC backbone, 100 LLM-labelled sessions, seed 0) "
         "with the **simulated** teacher — offline and free; the simulated teacher is a what-if stand-in, not an LLM.")
cfg = data.demo_config(target)
errors, _ = data.validate(cfg)
for error in errors:
    st.error(error)
if st.button("Run the demo comparison", key="demo", type="primary", disabled=bool(errors)):
    pid, log, argv = data.launch(cfg)
    st.session_state["last_launch"] = {"group": cfg.group, "pid": pid, "log": str(log)}
    st.success(f"Started group **{cfg.group}** (process {pid}); follow it on Runs. Log: `{log}`")
    st.code(" ".join(argv), language="bash")
    st.page_link("views/runs.py", label="Open Runs", icon=":material/list:")

runs = data.runs()
if not runs.empty:
    st.subheader("Store at a glance")
    cols = st.columns(4)
    cols[0].metric("Runs", len(runs))
    cols[1].metric("Running", int((runs["effective"] == "running").sum()))
    cols[2].metric("LLM-labelled sessions", int(runs["n_labelled"].sum()))
    cols[3].metric("USD spent", f"${runs['usd_spent'].sum():,.2f}")
