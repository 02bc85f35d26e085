"""The ALKD dashboard (Streamlit): `streamlit run dashboard/app.py`. Reads the run store, launches `alkd run`."""
