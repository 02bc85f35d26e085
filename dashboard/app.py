"""ALKD dashboard: `streamlit run dashboard/app.py` (config in .streamlit/config.toml)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` from a checkout without an editable install
    sys.path.insert(0, str(ROOT))

# Not "pages/": Streamlit treats a pages/ folder beside the main script as a v1 multipage app and never runs
# this file (nor st.navigation) when serving.
PAGES = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="ALKD — what each LLM dollar buys", page_icon=":material/school:", layout="wide")
# The default page is served at "/" only (Streamlit ignores its url_path), so /home - the address the README and
# links use - is a hidden second entry running the same script.
page = st.navigation([
    st.Page(PAGES / "home.py", title="Home", icon=":material/home:", default=True, url_path="overview"),
    st.Page(PAGES / "home.py", title="Home", icon=":material/home:", url_path="home", visibility="hidden"),
    st.Page(PAGES / "launch.py", title="Launch", icon=":material/rocket_launch:", url_path="launch"),
    st.Page(PAGES / "runs.py", title="Runs", icon=":material/list:", url_path="runs"),
    st.Page(PAGES / "compare.py", title="Compare", icon=":material/bar_chart:", url_path="compare"),
    st.Page(PAGES / "sessions.py", title="Sessions", icon=":material/search:", url_path="sessions"),
    st.Page(PAGES / "costs.py", title="Costs", icon=":material/payments:", url_path="costs"),
])
page.run()
