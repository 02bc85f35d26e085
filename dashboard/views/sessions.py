"""Sessions: which pool sessions a run sent to the teacher, what the teacher answered, and what that taught."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from core.pipeline import LEAK_TEXT, stored_label_leak
from core.teachers.types import ABSENT_POSITION
from dashboard import data

st.title("Sessions")
st.caption("A **labelled session** is a training session the selection policy sent to the LLM teacher. The teacher "
           "ranked candidate next items; the student was then distilled on those rankings. Pick a run, then a "
           "session, to read what the teacher answered.")
with st.expander("What the columns mean"):
    st.markdown("\n".join(f"- **{name}**: {text}." for name, text in data.CATEGORY_TEXT.items()) + f"""
- **LLM hit**: where the true next item stands in the teacher's list (1 = first), or "not in top {ABSENT_POSITION}".
- **student rank**: where the pre-trained student ranked the true next item among all items (1 = first); top
  {ABSENT_POSITION} counts as a hit for the categories.
- **p\\***: the probability the max-min policy gave the session; **difficulty**: 1 − the session's consistency with
  its own items under the student (0 to 1, larger = harder); **pick**: the order in which it was drawn.""")

runs = data.labelled_runs()
if runs.empty:
    st.info("No run with selected sessions yet: launch a method that asks the teacher (e.g. alkdrec).")
    st.stop()
runs["groups"] = runs["groups"].fillna("(no group)")


def _keep(key: str, options: list[Any], wanted: Any = None) -> None:
    """Reset a picker whose remembered value is no longer offered (another group or method was picked above)."""
    if wanted in options:
        st.session_state[key] = wanted
    elif key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]


# a run among thousands: group -> method -> seed; ?run=RUN_ID opens one directly
asked = st.query_params.get("run")
asked_row = runs[runs["run_id"] == asked].iloc[0] if asked in set(runs["run_id"]) else None
c = st.columns([3, 2, 3])
groups = list(dict.fromkeys(runs["groups"]))
_keep("s_group", groups, asked_row["groups"] if asked_row is not None and "s_group" not in st.session_state else None)
group = c[0].selectbox("Group", groups, key="s_group", help=f"{len(groups):,} groups with labelled sessions, newest "
                                                            "first")
in_group = runs[runs["groups"] == group]
methods = list(dict.fromkeys(in_group["method"]))
_keep("s_method", methods, asked_row["method"] if asked_row is not None and "s_method" not in st.session_state
      else None)
method = c[1].selectbox("Method", methods, key="s_method")
candidates_runs = in_group[in_group["method"] == method].sort_values(["seed", "created_at"])
ids = list(candidates_runs["run_id"])
_keep("run", ids, asked if asked_row is not None and "run" not in st.session_state else None)
info = runs.set_index("run_id")
run_id = c[2].selectbox("Run", ids, key="run",
                        format_func=lambda r: f"seed {info.loc[r, 'seed']} · {info.loc[r, 'teacher']} · {r}")
dataset, teacher = info.loc[run_id, "dataset"], info.loc[run_id, "teacher"]
config = json.loads(info.loc[run_id, "config"] or "{}")
leak = stored_label_leak(teacher, dataset, config)
if leak != "none":
    st.warning(f"**{LEAK_TEXT[leak].split(':')[0]}** — {LEAK_TEXT[leak].split(':', 1)[1].strip()}.")
if teacher == "simulated":
    st.warning("Teacher: **simulated** — a what-if stand-in that hits the true next item with a set probability; "
               "its rankings and rationales are not from an LLM.")
elif teacher == "replay":
    model = (config.get("extra") or {}).get("teacher_model") or "replay"
    st.info(f"Teacher: **replay** ({model}) — this run used rankings recorded earlier (for the ALKDRec datasets, the "
            "authors' GPT-4-turbo answers); nothing was asked or paid. They are shown from the recorded file.")

picked = data.selections(run_id)
titles, sessions = data.dataset_titles(dataset)
if not titles:
    st.caption(f"Dataset {dataset} is not on disk here: items show as ids.")
by_session = sessions.set_index("session_id") if not sessions.empty else sessions


def title(item: int) -> str:
    return titles.get(int(item), f"item {int(item)}")


def value(row: pd.Series, column: str) -> Any:
    """row[column], or None when the column is absent or NA (a LEFT JOIN with no llm_calls row gives NA)."""
    return data.present(row.get(column))


def llm_hit(position: Any) -> str:
    """The stored 0-based hit position as words: 1-based, or not in the top 25."""
    if position is None or pd.isna(position) or not 0 <= int(position) < ABSENT_POSITION:
        return f"not in top {ABSENT_POSITION}"
    return f"{int(position) + 1}"


c = st.columns([2, 3, 2])
categories = c[0].multiselect("Category", data.CATEGORIES, key="category")
search = c[1].text_input("Search titles (any item of the session, or its true next item)", key="search").strip()
right_wrong = c[2].toggle("LLM right, student wrong", key="right_wrong",
                          help="Only the sessions where the LLM had the true next item in its top 25 and the student "
                               "did not (category effective): where the teacher knew better.")
view = picked
if categories:
    view = view[view["category"].isin(categories)]
if right_wrong:
    view = view[view["category"] == "effective"]
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

table = pd.DataFrame({
    "pick": view["pick_order"].astype("Int64") + 1, "session": view["session_id"], "category": view["category"],
    "LLM hit": view["hit_position"].map(llm_hit),
    "student rank": view["student_rank"].astype("Int64") + 1,
    "p*": view["probability"], "difficulty": data.positive_difficulty(view["consistency"]), "gain": view["gain"]})
st.caption(f"{len(view):,} of {len(picked):,} labelled sessions shown.")
st.dataframe(table, hide_index=True, width="stretch", key="selected", height=min(36 * (len(table) + 1) + 3, 420),
             column_config={"p*": st.column_config.NumberColumn(format="%.3e"),
                            "difficulty": st.column_config.NumberColumn(format="%.4f"),
                            "gain": st.column_config.NumberColumn(format="%.3e"),
                            "student rank": st.column_config.NumberColumn(format="%d")})
if view.empty:
    st.stop()

category_of = dict(zip(view["session_id"], view["category"]))
session_id = st.selectbox("Open session", list(view["session_id"]), key="session",
                          format_func=lambda s: f"session {s} — {category_of.get(s)}")
row = view[view["session_id"] == session_id].iloc[0]
category = value(row, "category")
st.subheader(f"Session {session_id} — {category or 'no category'}")
if category in data.CATEGORY_TEXT:
    st.caption(f"**{category}**: {data.CATEGORY_TEXT[category]}.")
label = None
if session_id in by_session.index:
    label = int(by_session.loc[session_id, "label"])
elif value(row, "label") is not None:
    label = int(row["label"])
answer = data.session_answer(row, teacher, dataset, config)


def highlighted(frame: pd.DataFrame):
    """The frame styled with its true-next-item row in green."""
    return frame.style.apply(lambda r: ["background-color: #c8f7c5; font-weight: bold" if r["true next"] else ""
                                        for _ in r], axis=1)


left, right = st.columns(2)
with left:
    st.markdown("**Items in the session** (in order)")
    if session_id in by_session.index:
        entry = by_session.loc[session_id]
        st.dataframe(pd.DataFrame({"item": [int(i) for i in entry["items"]],
                                   "title": [title(i) for i in entry["items"]]}),
                     hide_index=True, width="stretch", key="items")
    else:
        st.caption("Session items unavailable here.")
    if label is not None:
        st.markdown(f"True next item: **{title(label)}** (id {label})")
    rank = value(row, "student_rank")
    if rank is not None:
        st.markdown(f"The student ranked it **{int(rank) + 1:,}**" + (f" of {len(titles):,} items" if titles else "")
                    + (f" — inside its top {ABSENT_POSITION}." if int(rank) < ABSENT_POSITION
                       else f" — outside its top {ABSENT_POSITION}."))
    cands = data.candidates(run_id, session_id)
    if cands:
        st.markdown(f"**Teacher's candidates** ({len(cands)}: the pre-trained teacher's top {len(cands)}, shown to the "
                    "LLM)" if teacher != "replay" else
                    f"**Our teacher's candidates** ({len(cands)}; the recorded list was made from the authors' "
                    "candidate set, which was not published)")
        frame = pd.DataFrame({"item": cands, "title": [title(i) for i in cands]})
        frame["true next"] = frame["item"].eq(label) if label is not None else False
        st.dataframe(highlighted(frame), hide_index=True, width="stretch", height=240, key="candidates")
        if label is not None and label not in cands:
            st.caption("The true next item is not among these candidates.")
with right:
    if isinstance(answer, str):
        st.markdown("**LLM ranking**")
        st.caption(answer[0].upper() + answer[1:] + ".")
    else:
        heading = "LLM ranking" if answer.source == "call" else "Recorded LLM ranking"
        st.markdown(f"**{heading}**" + (f" — {answer.model}" if answer.model else "")
                    + (" (SIMULATED)" if bool(value(row, "simulated") or False) else ""))
        ranked = pd.DataFrame({"rank": range(1, len(answer.ranking) + 1), "item": answer.ranking,
                               "title": [title(i) for i in answer.ranking]})
        ranked["true next"] = ranked["item"].eq(label) if label is not None else False
        # a static table (not a canvas grid): the highlighted row is plain HTML a reader - or a browser test - sees
        st.table(highlighted(ranked).hide(axis="index").format({"true next": lambda v: "✔" if v else ""}))
        hit = llm_hit(value(row, "hit_position"))
        st.caption("True next item: " + (f"position **{hit}** of the teacher's list" if hit.isdigit()
                                         else f"**{hit}** of the teacher's list")
                   + (" (as recorded: ids repeated, in the session or outside the catalogue were dropped before "
                      "distillation)." if answer.source == "recording" else "."))
        if leak == "forced":
            st.caption("⚠ This list was made with the true next item forced into the LLM's candidates.")
    st.markdown("**Rationale**")
    if isinstance(answer, str):
        st.caption("—")
    elif answer.rationale:
        st.info(answer.rationale)
    elif answer.source == "recording":
        st.caption("No rationale: the recorded rankings hold only the ranked item ids (the authors' GPT-4-turbo files "
                   "kept no explanation). A live provider's rationale is shown here when it gives one.")
    else:
        st.caption("The teacher gave no rationale for this answer.")
    if not isinstance(answer, str) and answer.source == "call":
        m = st.columns(2) + st.columns(2)
        tokens_in, tokens_out = value(row, "input_tokens"), value(row, "output_tokens")
        usd, latency = value(row, "usd"), value(row, "latency_s")
        m[0].metric("Input tokens", f"{int(tokens_in):,}" if tokens_in is not None else "—")
        m[1].metric("Output tokens", f"{int(tokens_out):,}" if tokens_out is not None else "—")
        m[2].metric("Cost", f"${usd:.5f}" if usd is not None else "—")
        m[3].metric("Latency", f"{latency:.2f} s" if latency is not None else "—")
        if value(row, "provider"):
            st.caption(f"{row['provider']} · {row['model']} · call {row['call_key']}")
