"""LLM teachers for ALKDRec: prompt an LLM (or a stand-in) to rank a session's candidates; cache and account every call.

    from core.teachers import Budget, PromptOptions, RankRequest, get_provider, estimate
    teacher = get_provider("openai", model="gpt-4o-mini")            # or "anthropic", "replay", "simulated", ...
    print(estimate(requests, teacher))                                # tokens and USD before starting
    responses = teacher.rank(requests, budget=Budget(max_sessions=500, max_usd=5.0), db=path)
    usable = [r for r in responses if r.ok]                           # failed/skipped ones are excluded

Responses come back in request order; one failing session never fails the run; every call lands in DuckDB
`llm_calls` (the cache: a rerun never pays for the same prompt twice). See README notes in each module.
"""

from core.teachers.budget import Budget
from core.teachers.estimate import Estimate, estimate
from core.teachers.hints import hints_for, load_hints, paper_hints, save_hints
from core.teachers.pricing import Price, UnknownPriceError, price_for
from core.teachers.prompts import build_rank_prompt, summarize_hints
from core.teachers.providers import Provider, get_provider, provider_names
from core.teachers.types import Hints, PromptOptions, RankRequest, RankResponse, totals

__all__ = ["Budget", "Estimate", "Hints", "Price", "PromptOptions", "Provider", "RankRequest", "RankResponse",
           "UnknownPriceError", "build_rank_prompt", "estimate", "get_provider", "hints_for", "load_hints",
           "paper_hints", "price_for", "provider_names", "save_hints", "summarize_hints", "totals"]
