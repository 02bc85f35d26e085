"""API keys: read from the environment or Streamlit secrets only, and scrubbed from every text we keep or show.

Keys never go to DuckDB, logs, exceptions shown to users or exports: every error string passes `scrub`, which
removes every key this process has read (and anything shaped like a key or bearer token).
"""

from __future__ import annotations

import os
import re
import threading

_known: set[str] = set()
_lock = threading.Lock()
_PATTERNS = (
    re.compile(r"sk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.=:/+]{8,}"),
    re.compile(r"(?i)((?:api[_-]?key|x-api-key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{8,}"),
)
REDACTED = "[REDACTED]"
#: environment variables whose values scrub always removes (besides those a provider declares): *_KEY, *_TOKEN,
#: *_SECRET, read at every scrub, so a key is scrubbed even before any provider module was imported
SECRET_NAME = re.compile(r"(?:^|_)(?:KEY|TOKEN|SECRET)$")
_declared: set[str] = set()


def declare(variable: str) -> None:
    """A provider's API-key variable (core.teachers.providers.register(..., key_env=...)): scrub removes its value."""
    with _lock:
        _declared.add(variable)


def remember(secret: str | None) -> None:
    """Register a secret so `scrub` removes it from any text."""
    if secret and len(secret) >= 4:
        with _lock:
            _known.add(secret)


def _streamlit_secret(name: str) -> str | None:
    try:
        import streamlit as st  # lazy: only when the environment lacks the key
        value = st.secrets.get(name)
    except Exception:  # no streamlit, no secrets file, or not in an app
        return None
    return str(value) if value else None


def api_key(name: str) -> str | None:
    """The key `name` (e.g. OPENAI_API_KEY) from the environment, else from `st.secrets`; None when neither has it.
    The one lookup of a key (providers, the dashboard's key status and the launch environment all call it)."""
    value = os.environ.get(name) or _streamlit_secret(name)
    remember(value)
    return value


def scrub(text: object, patterns: bool = True) -> str:
    """`text` as a string with every known key (and, if patterns, anything key-shaped) replaced by [REDACTED]."""
    out = str(text)
    with _lock:
        declared = set(_declared)
    for name, value in os.environ.items():
        if name in declared or SECRET_NAME.search(name) and len(value) >= 8:
            remember(value)
    with _lock:
        secrets = sorted(_known, key=len, reverse=True)
    for secret in secrets:
        out = out.replace(secret, REDACTED)
    if not patterns:
        return out
    out = _PATTERNS[0].sub(REDACTED, out)
    out = _PATTERNS[1].sub(lambda m: m.group(1) + REDACTED, out)
    out = _PATTERNS[2].sub(lambda m: m.group(1) + REDACTED, out)
    return out


def describe_error(error: BaseException) -> str:
    """'ErrorType: message' with secrets scrubbed, for storing and showing."""
    return scrub(f"{type(error).__name__}: {error}")[:2000]
