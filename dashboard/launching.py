"""Starting a launch from a page (Home's demo, Launch): one place that launches, refuses a repeat and says so."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import data


def start(cfg: data.LaunchConfig) -> tuple[int, Path, list[str]] | None:
    """Launch `cfg` in the background (data.launch) and say so on the page; remembers it in the session as
    `last_launch`. None, with a warning, when the same launch was started within the last minute."""
    try:
        pid, log, argv = data.launch(cfg)
    except data.RepeatedLaunch as error:
        st.warning(f"Not started twice: {error}.")
        return None
    st.session_state["last_launch"] = {"group": cfg.group, "pid": pid, "log": str(log)}
    st.success(f"Started group **{cfg.group}** as process {pid}; follow it on Runs. Log: `{log}`")
    return pid, log, argv
