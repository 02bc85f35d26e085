"""Sessions: which pool sessions a run sent to the teacher, and what the teacher answered."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core.pipeline import LEAK_TEXT, stored_label_leak
from dashboard import data

st.title("Sessions")

runs = data.read("SELECT r.run_id, r.dataset, r.method, r.teacher, r.seed, r.config, r.created_at FROM runs r"
                 " WHERE EXISTS (SELECT 1 FROM selections s WHERE s.run_id = r.run_id AND s.picked)"
                 " ORDER BY r.created_at DESC")
if runs.empty:
    st.info("No run with selected sessions yet: launch a method that asks the teacher (e.g. alkdrec).")
    st.stop()
info = runs.set_index("run_id")
run_id = st.selectbox("Run", list(runs["run_id"]), key="run",
                      format_func=lambda r: f"{r} — {info.loc[r, 'method']} · {info.loc[r, 'dataset']} · "
                                            f"{info.loc[r, 'teacher']} · seed {info.loc[r, 'seed']}")
dataset, teacher = info.loc[run_id, "dataset"], info.loc[run_id, "teacher"]
leak = stored_label_leak(teacher, dataset, json.loads(info.loc[run_id, "config"] or "{}"))
if leak != "none":
    st.warning(f"**{LEAK_TEXT[leak].split(':')[0]}** — {LEAK_TEXT[leak].split(':', 1)[1].strip()}.")
if teacher == "simulated":
    st.warning("Teacher: **simulated** — a what-if stand-in that hits the true next item with a set probability; "
               "its rankings and rationales are not from an LLM.")

picked = data.selections(run_id)
titles, sessions = data.dataset_titles(dataset)
if not titles:
    st.caption(f"Dataset {dataset} is not on disk here: items show as ids.")
by_session = sessions.set_index("session_id") if not sessions.empty else sessions


def title(item: int) -> str:
    return titles.get(int(item), f"item {int(item)}")


c = st.columns([2, 3])
categories = c[0].multiselect("Category", data.CATEGORIES, key="category")
search = c[1].text_input("Search titles (any item of the session, or its true next item)", key="search").strip()
view = picked
if categories:
    view = view[view["category"].isin(categories)]
if search and not by_session.empty:
    needle = search.lower()
    matches = {int(i) for i, t in titles.items() if needle in t.lower()}
    ok = []
    for sid in view["session_id"]:
        if sid in by_session.index:
            row = by_session.loc[sid]
            ok.append(bool(matches & (set(int(x) for x in row["items"]) | {int(row["label"])})))
        else:
            ok.append(False)
    view = view[ok]

table = view[["pick_order", "session_id", "probability", "difficulty", "consistency", "position", "gain", "category",
              "hit_position", "student_rank"]].rename(columns={"probability": "p*"})
st.caption(f"{len(view)} of {len(picked)} labelled sessions shown.")
st.dataframe(table, hide_index=True, width="stretch", key="selected", height=min(36 * (len(table) + 1) + 3, 420),
             column_config={"p*": st.column_config.NumberColumn(format="%.3e"),
                            "gain": st.column_config.NumberColumn(format="%.3e")})
if view.empty:
    st.stop()

session_id = st.selectbox("Open session", list(view["session_id"]), key="session")
row = view[view["session_id"] == session_id].iloc[0]
st.subheader(f"Session {session_id} — {row['category']}")
label = None
left, right = st.columns(2)
with left:
    st.markdown("**Items in the session** (in order)")
    if session_id in by_session.index:
        entry = by_session.loc[session_id]
        label = int(entry["label"])
        st.dataframe(pd.DataFrame({"item": [int(i) for i in entry["items"]],
                                   "title": [title(i) for i in entry["items"]]}),
                     hide_index=True, width="stretch", key="items")
        st.markdown(f"True next item: **{title(label)}** (id {label})")
    elif pd.notna(row.get("label")):
        label = int(row["label"])
        st.caption(f"Session items unavailable; true next item id {label}.")
    cands = data.candidates(run_id, session_id)
    if cands:
        st.markdown(f"**Teacher's candidates** ({len(cands)})")
        st.dataframe(pd.DataFrame({"item": cands, "title": [title(i) for i in cands]}), hide_index=True,
                     width="stretch", height=240, key="candidates")
with right:
    st.markdown("**LLM ranking**" + (" (SIMULATED)" if bool(row.get("simulated")) else ""))
    ranking = row.get("ranking")
    if ranking is not None and not (isinstance(ranking, float) and pd.isna(ranking)):
        ranked = pd.DataFrame({"rank": range(1, len(ranking) + 1), "item": [int(i) for i in ranking],
                               "title": [title(i) for i in ranking]})
        ranked["true next"] = ranked["item"].eq(label) if label is not None else False
        st.dataframe(ranked.style.apply(lambda r: ["background-color: #c8f7c5; font-weight: bold"
                                                   if r["true next"] else "" for _ in r], axis=1),
                     hide_index=True, width="stretch", height=300, key="ranking")
        hit = row.get("hit_position")
        # hit_position is 0-based; 25 (or more, or missing) means the true item is not in the LLM's top 25
        in_top = pd.notna(hit) and 0 <= hit < 25
        st.caption(f"True next item at position {int(hit) + 1}" if in_top
                   else "True next item not in the LLM's top 25")
    else:
        st.caption("No ranking stored for this session.")
    st.markdown("**Rationale**")
    st.info(row.get("rationale") or "(none)")
    m = st.columns(2) + st.columns(2)
    m[0].metric("Input tokens", f"{int(row['input_tokens'] or 0):,}" if pd.notna(row.get("input_tokens")) else "—")
    m[1].metric("Output tokens", f"{int(row['output_tokens'] or 0):,}" if pd.notna(row.get("output_tokens")) else "—")
    m[2].metric("Cost", f"${row['usd']:.5f}" if pd.notna(row.get("usd")) else "—")
    m[3].metric("Latency", f"{row['latency_s']:.2f} s" if pd.notna(row.get("latency_s")) else "—")
    if pd.notna(row.get("model")):
        st.caption(f"{row['provider']} · {row['model']} · call {row['call_key']}")
