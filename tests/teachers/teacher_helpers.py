"""Shared helpers for the teacher tests (a uniquely named module, so no clash with other folders' conftest)."""

from __future__ import annotations

from shared_data import ALKDREC

from core.teachers.types import PromptOptions, RankRequest

FAKE_OPENAI_KEY = "sk-test-FAKEKEY-0123456789abcdef"
FAKE_ANTHROPIC_KEY = "sk-ant-test-FAKEKEY-fedcba9876543210"
ALKDREC_DIR = ALKDREC                     # $ALKD_SHARED/data/alkdrec (tests/shared_data.py)


def make_request(session_id: int, *, n_candidates: int = 50, label: int | None = None,
                 options: PromptOptions | None = None, first_title: str | None = None) -> RankRequest:
    """A synthetic session: items 1..3 titled by session id, candidates 100+ (the session id picks the slice)."""
    base = 100 + (session_id % 7) * 10
    candidates = list(range(base, base + n_candidates))
    titles = [f"Movie {c} ({1950 + c % 60})" for c in candidates]
    session_titles = [first_title or f"Session {session_id} first", "Second film", "Third film"]
    return RankRequest(session_id=session_id, session_items=[1, 2, 3], session_titles=session_titles,
                       candidates=candidates, candidate_titles=titles, label=label,
                       options=options or PromptOptions(), dataset="test")
