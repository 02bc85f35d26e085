"""Starting a launch from a page (Home's demo, Launch): one place that launches, refuses a repeat and says so."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.run_spec import LaunchSpec
from dashboard import data


def start(spec: LaunchSpec) -> tuple[int, Path, list[str]] | None:
    """Launch `spec` in the background (data.launch: `alkd run`, or `alkd sweep` for several budgets or seeds) and
    say so on the page; remembers it in the session as `last_launch`. None, with a warning, when the same launch was
    started within the last minute."""
    try:
        pid, log, argv = data.launch(spec)
    except data.RepeatedLaunch as error:
        st.warning(f"Not started twice: {error}.")
        return None
    st.session_state["last_launch"] = {"group": spec.group, "pid": pid, "log": str(log)}
    kind = "a sweep of " if argv[0] == "sweep" else ""
    st.success(f"Started {kind}group **{spec.group}** ({spec.n_runs()} runs) as process {pid}; follow it on Runs. "
               f"Log: `{log}`")
    return pid, log, argv
