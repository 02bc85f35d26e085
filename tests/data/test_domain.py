"""core.data.domain.domain_of: the one movies/games decision (prompt wording, paper hints, simulated hit rate)."""

from __future__ import annotations

import pytest

from core.data.domain import domain_of
from core.teachers import PromptOptions
from core.teachers.hints import paper_hints
from core.teachers.providers.simulated import RECORDED_HIT_RATE, SimulatedProvider


@pytest.mark.parametrize("name, meta, expected", [
    ("alkdrec-games", None, "games"), ("Games", {}, "games"), ("amazon-GAMES", {"domain": None}, "games"),
    ("ml-100k", None, "movies"), ("shop", {}, "movies"),
    ("shop", {"domain": "books"}, "books"),            # a recorded domain wins over the name
    ("my-games", {"domain": "movies"}, "movies")])
def test_domain_of(name, meta, expected):
    assert domain_of(name, meta) == expected


def test_every_user_of_the_domain_agrees():
    assert PromptOptions.for_dataset("Amazon-Games").domain == "games"
    assert paper_hints("alkdrec-games").lines != paper_hints("alkdrec-ml").lines
    assert SimulatedProvider(dataset="Games").hit_rate == RECORDED_HIT_RATE["games"]
    assert SimulatedProvider(dataset="movies").hit_rate == RECORDED_HIT_RATE["movies"]
