"""Runs: every run in the store with live progress; filter, tag, cancel, delete. The `money` column says what the
USD caps did (reached, EXCEEDED by a server that reported more than allowed, possible charges of killed calls) and
`warnings` what the teacher's answers lacked (too few usable rankings)."""

from __future__ import annotations

import json
import re

import pandas as pd
import streamlit as st

from dashboard import data

st.title("Runs")

live = st.toggle("Live refresh (every 3 s)", value=True, key="live")
# what a reader needs first (status, what ran, the score, the distillation outcome) fits in 1,400 px; the rest scrolls
columns = ["effective", "progress", "method", "dataset", "backbone", "seed", "ndcg10", "best_epoch", "returned_start",
           "label_leak", "stage", "message", "money", "warnings", "teacher", "model", "budget", "n_labelled", "usd_cap",
           "usd_spent",
           "groups", "tags", "run_id", "created_at"]


def _join(parts: list[str | None]) -> str:
    return " | ".join(p for p in parts if isinstance(p, str) and p)


def with_notes(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (data.runs()) with the money and warnings notes each run stored in its config."""
    notes = data.run_notes()
    out = frame.merge(notes, on="run_id", how="left") if not notes.empty else frame.assign(
        run_usd=None, launch_usd=None, warnings=None)
    out["money"] = [_join([r, f"launch: {launch}" if isinstance(launch, str) and launch else None])
                    for r, launch in zip(out["run_usd"], out["launch_usd"])]
    out["warnings"] = out["warnings"].map(lambda w: _join(json.loads(w)) if isinstance(w, str) and w else "")
    return out


def filtered(frame: pd.DataFrame) -> pd.DataFrame:
    state = st.session_state
    for column, key in (("effective", "f_status"), ("dataset", "f_dataset"), ("method", "f_method"),
                        ("groups", "f_group")):
        chosen = state.get(key) or []
        if chosen:
            frame = frame[frame[column].isin(chosen)]
    tag = state.get("f_tag") or []
    if tag:
        frame = frame[frame["tags"].map(lambda tags: bool(set(tags) & set(tag)))]
    text = (state.get("f_text") or "").strip().lower()
    if text:
        frame = frame[frame["run_id"].str.lower().str.contains(re.escape(text))]
    return frame


all_runs = data.runs()
with st.expander("Filters", expanded=True):
    c = st.columns(5)
    c[0].multiselect("Status", ["running", "done", "failed", "cancelled"], key="f_status")
    c[1].multiselect("Dataset", sorted(all_runs["dataset"].dropna().unique()), key="f_dataset")
    c[2].multiselect("Method", sorted(all_runs["method"].dropna().unique()), key="f_method")
    c[3].multiselect("Group", sorted(all_runs["groups"].dropna().unique()), key="f_group")
    c[4].multiselect("Tag", sorted({t for tags in all_runs["tags"] for t in tags}), key="f_tag")
    st.text_input("Run id contains", key="f_text")


@st.fragment(run_every=3 if live else None)
def table() -> None:
    now = data.runs()
    if set(zip(now["run_id"], now["effective"])) != set(zip(all_runs["run_id"], all_runs["effective"])):
        st.rerun()   # a run was added, ended or removed: the filter and "act on runs" lists are rebuilt too
    frame = with_notes(filtered(now))
    counts = frame["effective"].value_counts()
    st.caption(" · ".join(f"{status}: {counts.get(status, 0)}" for status in ("running", "done", "failed",
                                                                              "cancelled")) + f" · shown: {len(frame)}")
    view = frame[columns].copy()
    view["tags"] = view["tags"].map(lambda t: ", ".join(t))
    st.dataframe(view, hide_index=True, width="stretch", height=min(36 * (len(view) + 1) + 3, 600), key="runs_table",
                 column_config={
                     "effective": st.column_config.TextColumn("status"),
                     "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0,
                                                                 format="percent"),
                     "usd_spent": st.column_config.NumberColumn("spent USD", format="$%.4f"),
                     "usd_cap": st.column_config.NumberColumn("USD cap", format="$%.4f"),
                     "money": st.column_config.TextColumn("USD cap notes"),
                     "ndcg10": st.column_config.NumberColumn("NDCG@10", format="%.4f"),
                     "best_epoch": st.column_config.NumberColumn(
                         "best epoch", help="The distillation epoch whose model was kept (best on validation)."),
                     "returned_start": st.column_config.CheckboxColumn(
                         "kept start", help="No distillation epoch beat the starting (pre-trained) student on "
                                            "validation: the run returned the starting model unchanged."),
                     "label_leak": st.column_config.TextColumn(
                         "label leak", help="forced: the LLM's lists were made with the true next item forced into "
                                            "its candidates, so its scores are not a fair LLM's "
                                            "(none: they were not)."),
                     "n_labelled": st.column_config.NumberColumn("labelled"),
                     "created_at": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm:ss"),
                 })
    died = frame[(frame["effective"] == "failed") & (frame["status"] == "running")]
    for row in died.head(5).itertuples():
        st.error(f"{row.run_id}: its process {row.pid} is gone — shown as failed. Last message: {row.message}")
    for row in frame[frame["money"].str.contains("EXCEEDED", na=False)].head(5).itertuples():
        st.error(f"{row.run_id}: {row.money}")


table()
st.caption(data.protocol())

st.subheader("Act on runs")
shown = filtered(all_runs)
chosen = st.multiselect("Runs", list(shown["run_id"]), key="chosen",
                        format_func=lambda r: f"{r} ({shown.loc[shown['run_id'] == r, 'effective'].iloc[0]})")
c = st.columns([1, 1, 2, 1])
if c[0].button("Cancel", key="cancel", disabled=not chosen):
    for run_id in chosen:
        st.toast(data.cancel(run_id))
    st.rerun()
confirm = c[3].checkbox("confirm delete", key="confirm_delete")
if c[1].button("Delete", key="delete", disabled=not chosen or not confirm):
    n = data.delete(chosen)
    st.session_state.pop("chosen", None)
    st.toast(f"deleted {n} run(s)")
    st.rerun()
tag = c[2].text_input("Tag", key="new_tag", label_visibility="collapsed", placeholder="tag to add / -tag to remove")
if c[2].button("Apply tag", key="apply_tag", disabled=not chosen or not tag.strip()):
    for run_id in chosen:
        current = set(all_runs.loc[all_runs["run_id"] == run_id, "tags"].iloc[0])
        name = tag.strip()
        current = current - {name[1:]} if name.startswith("-") else current | {name}
        data.set_tags(run_id, current)
    st.rerun()

if chosen:
    group = all_runs.loc[all_runs["run_id"] == chosen[0], "groups"].iloc[0]
    log = data.logs_dir() / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', str(group))}.log"
    if group and log.exists():
        with st.expander(f"Log of group {group}"):
            st.code(log.read_text(errors="replace")[-4000:])
    saved = data.model_file(chosen[0])
    if saved is not None:
        st.markdown(f"**Ship the student.** The model of `{chosen[0]}` is saved at `{saved}` "
                    f"({saved.stat().st_size / 1e6:.1f} MB). Recommend with it:")
        st.code(f"alkd recommend {chosen[0]} --items 12,55,78 -k 10", language="bash")
