"""The domain of a dataset (what its items are): picks the prompt's wording, the paper's hint block and the simulated
teacher's recorded hit rate. The one place this is decided."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def domain_of(dataset: str, meta: Mapping[str, Any] | None = None) -> str:
    """The plural noun for a dataset's items: its meta's `domain` when it records one (alkdrec and ml-100k do), else
    'games' for game catalogues (a name containing 'game', any case: alkdrec-games, amazon-games, Games) and 'movies'
    for everything else shipped here."""
    recorded = (meta or {}).get("domain")
    if recorded:
        return str(recorded)
    return "games" if "game" in dataset.lower() else "movies"
