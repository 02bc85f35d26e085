"""ALKD dashboard: `streamlit run dashboard/app.py` (config in .streamlit/config.toml)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` from a checkout without an editable install
    sys.path.insert(0, str(ROOT))

PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="ALKD — what each LLM dollar buys", page_icon="🎓", layout="wide")
page = st.navigation([
    st.Page(PAGES / "home.py", title="Home", icon="🏠", default=True, url_path="home"),
    st.Page(PAGES / "launch.py", title="Launch", icon="🚀", url_path="launch"),
    st.Page(PAGES / "runs.py", title="Runs", icon="📋", url_path="runs"),
    st.Page(PAGES / "compare.py", title="Compare", icon="📊", url_path="compare"),
    st.Page(PAGES / "sessions.py", title="Sessions", icon="🔎", url_path="sessions"),
    st.Page(PAGES / "costs.py", title="Costs", icon="💵", url_path="costs"),
])
page.run()
