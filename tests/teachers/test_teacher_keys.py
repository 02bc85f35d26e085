"""Keys come from the environment or Streamlit secrets only, and are scrubbed from everything we keep."""

import sys
import types

from core.teachers import keys


def test_streamlit_secrets_fallback(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    fake_streamlit = types.ModuleType("streamlit")
    fake_streamlit.secrets = {"OPENAI_API_KEY": "sk-from-secrets-1234567890"}
    monkeypatch.setitem(sys.modules, "streamlit", fake_streamlit)
    assert keys.api_key("OPENAI_API_KEY") == "sk-from-secrets-1234567890"
    assert "1234567890" not in keys.scrub("bad key sk-from-secrets-1234567890 given")
    assert keys.api_key("NOT_A_KEY_NAME") is None


def test_scrub_patterns():
    keys.remember("plainsecretvalue")
    text = keys.scrub('Authorization: Bearer abc.def-123456789 api_key="zzzzzzzzzzzz" sk-proj-ABCDEFGH12345 '
                      "plainsecretvalue")
    assert "abc.def" not in text and "zzzzzzzz" not in text and "ABCDEFGH" not in text
    assert "plainsecretvalue" not in text and text.count("[REDACTED]") == 4
    assert keys.scrub("Toy Story (1995)") == "Toy Story (1995)"


def test_scrub_removes_any_key_shaped_variable_before_a_provider_declares_it(monkeypatch):
    from core.teachers.keys import scrub
    monkeypatch.setenv("ACME_API_KEY", "acme-secret-98765")
    monkeypatch.setenv("ACME_TOKEN", "tok3n-value-4321")
    monkeypatch.setenv("FEATURE_KEY", "true")            # too short to be a secret: left alone
    text = scrub("sent acme-secret-98765 and tok3n-value-4321; flag true", patterns=False)
    assert "acme-secret-98765" not in text and "tok3n-value-4321" not in text and "flag true" in text
