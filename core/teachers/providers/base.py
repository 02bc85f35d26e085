"""The provider interface: a batch of RankRequests in, RankResponses out (see `Provider.rank`).

A provider implements `generate(prompt, turns, request) -> Completion` (one model call; may raise). The shared runner
(`core.teachers.runner`) adds everything else: prompt building, the DuckDB cache/ledger, the budget, bounded
concurrency, parsing and the one repair retry. Providers that can use the half-price batch APIs implement
`submit_batch`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from core.teachers import pricing
from core.teachers.budget import Budget
from core.teachers.prompts import build_rank_prompt
from core.teachers.types import Completion, Prompt, RankRequest, RankResponse, Turn

DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_OUTPUT_TOKENS = 512

BatchEntry = tuple[str, Prompt, Sequence[Turn], RankRequest | None]


class Provider(ABC):
    """Base class. model: the model name shown everywhere; price: USD per million tokens (see pricing.price_for).

    max_output_tokens: the reply cap sent to the API, also the output part of the worst-case reservation; a reply
    reporting more output tokens is refused and stops the run (the server ignores the cap the budget relies on).
    concurrency: default number of calls in flight. db: default DuckDB path (None = core.paths.db_path()).
    base_url: the server (None = the vendor's API); a model without a listed price is free only at a local one.
    """

    name: ClassVar[str] = ""
    #: Calls are stored in llm_calls (and reused as a cache).
    records_calls: ClassVar[bool] = True
    #: Local and instantaneous (no network): run in the caller's thread, rows written in one transaction.
    instant: ClassVar[bool] = False
    supports_batch: ClassVar[bool] = False
    #: Made-up answers (the simulated what-if teacher): flagged in every response and row.
    simulated: bool = False

    def __init__(self, model: str, *, price: pricing.Price | tuple[float, float] | None = None,
                 max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS, concurrency: int = DEFAULT_CONCURRENCY,
                 db: Path | str | None = None, base_url: str | None = None) -> None:
        self.model = model
        self.base_url = base_url
        self.price = pricing.price_for(model, price, base_url=base_url)
        self.max_output_tokens = int(max_output_tokens)
        self.concurrency = int(concurrency)
        self.db = db

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"

    # ---- hooks ------------------------------------------------------------------------------------------------
    def build_prompt(self, request: RankRequest) -> Prompt:
        return build_rank_prompt(request)

    def call_options(self) -> dict[str, Any]:
        """Everything besides provider, model and prompt that changes the answer (part of the cache key)."""
        return {"max_tokens": self.max_output_tokens}

    def key_options(self, request: RankRequest | None) -> dict[str, Any]:
        return self.call_options()

    def overhead_tokens(self, request: RankRequest | None) -> int:
        """Input tokens the API adds beyond the messages (e.g. a tool definition), for the worst-case reservation."""
        return 0

    def prepare(self, requests: Sequence[RankRequest]) -> None:  # noqa: B027 (optional hook)
        """Called once before a run with the requests that will be generated (e.g. to embed all titles at once)."""

    @abstractmethod
    def generate(self, prompt: Prompt, turns: Sequence[Turn], request: RankRequest | None,
                 max_tokens: int) -> Completion:
        """One model call with at most `max_tokens` of output. `turns` are extra turns after the prompt (the repair
        retry); request is None for free-form calls such as summarisation. Raises on failure (after the SDK's own
        retries)."""

    def submit_batch(self, entries: Sequence[BatchEntry], *, poll_interval_s: float,
                     max_wait_s: float) -> dict[str, Completion | str]:
        """Run entries through the provider's batch API: custom_id -> Completion, or an error string."""
        raise NotImplementedError(f"provider {self.name!r} has no batch mode")

    # ---- the interface ----------------------------------------------------------------------------------------
    def rank(self, requests: Sequence[RankRequest], *, budget: Budget | None = None, db: Path | str | None = None,
             concurrency: int | None = None, use_cache: bool = True, batch: bool = False,
             poll_interval_s: float = 30.0, max_wait_s: float = 24 * 3600.0,
             on_response: Callable[[RankResponse], None] | None = None) -> list[RankResponse]:
        """Rank every request; one response per request, in request order. Never raises for one session's failure.

        budget: caps on labelled sessions and USD (None = no caps). db: the DuckDB file (default: the provider's,
        then core.paths.db_path()). use_cache: reuse stored replies for identical calls (and skip paying for them).
        batch: use the provider's half-price batch API (OpenAI Batch / Anthropic Message Batches) and poll every
        poll_interval_s seconds for at most max_wait_s. on_response: called with each response as it completes
        (from worker threads).
        """
        from core.teachers.runner import run

        return run(self, requests, budget=budget, db=db if db is not None else self.db,
                   concurrency=concurrency or self.concurrency, use_cache=use_cache, batch=batch,
                   poll_interval_s=poll_interval_s, max_wait_s=max_wait_s, on_response=on_response)

    def complete(self, prompt: Prompt, *, max_tokens: int = 600, db: Path | str | None = None, dataset: str = "",
                 use_cache: bool = True, budget: Budget | None = None) -> Completion:
        """A free-form call (e.g. summarisation), cached and accounted in llm_calls like ranking calls."""
        from core.teachers.runner import complete

        return complete(self, prompt, max_tokens=max_tokens, db=db if db is not None else self.db, dataset=dataset,
                        use_cache=use_cache, budget=budget)
