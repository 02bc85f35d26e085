"""Tokens and USD of a run before it starts: the prompts it would send, priced by core.teachers.pricing.

Sits above the prompt builders and the provider registry (pricing sits below both), so the teachers package has no
import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from core.teachers.pricing import (
    PER_MESSAGE_OVERHEAD_TOKENS,
    Price,
    batch_discount,
    estimate_tokens,
    expected_output_tokens,
    price_for,
    worst_case_input_tokens,
    worst_case_usd,
)
from core.teachers.prompts import build_rank_prompt
from core.teachers.providers import default_model
from core.teachers.providers.base import Provider
from core.teachers.types import RankRequest


@dataclass(frozen=True)
class Estimate:
    """Expected tokens and USD of a run before it starts; worst_case_usd is what the budget may reserve."""

    n_requests: int
    input_tokens: int
    output_tokens: int
    usd: float
    worst_case_usd: float
    model: str
    batch: bool = False

    @property
    def usd_per_request(self) -> float:
        return self.usd / self.n_requests if self.n_requests else 0.0


def _typical_request(n_session: int = 8, n_candidates: int = 50, title_chars: int = 26) -> RankRequest:
    title = "T" * title_chars
    return RankRequest(session_id=0, session_items=list(range(1, n_session + 1)), session_titles=[title] * n_session,
                       candidates=list(range(1000, 1000 + n_candidates)), candidate_titles=[title] * n_candidates)


def estimate(requests: Sequence[RankRequest] | int, provider: Provider | str = "openai", model: str | None = None,
             *, batch: bool = False, price: Price | tuple[float, float] | None = None,
             max_output_tokens: int = 512) -> Estimate:
    """Tokens and USD of ranking `requests` (or that many typical sessions: 8 items, 50 candidates, 26-char titles).

    provider: a Provider (its prompt builder, model and price are used) or a registry name (then `model` is needed
    unless the name has a default, e.g. "openai" -> gpt-4o-mini). Raises UnknownPriceError for an unpriced model.
    """
    if isinstance(provider, str):
        model = model or default_model(provider)
        build = build_rank_prompt
        the_price = price_for(model, price)
    else:
        model = model or provider.model
        build = provider.build_prompt
        the_price = price_for(model, price) if (price is not None or model != provider.model) else provider.price
    if isinstance(requests, int):
        sample, scale = [_typical_request()], requests
    else:
        sample, scale = list(requests), 1
    n = len(sample) * scale
    tokens_in = tokens_out = worst = 0
    for request in sample:
        prompt = build(request)
        tokens_in += estimate_tokens(prompt.system) + estimate_tokens(prompt.user) + 2 * PER_MESSAGE_OVERHEAD_TOKENS
        tokens_out += expected_output_tokens(request.options.n_out, request.options.with_rationale)
        worst += worst_case_input_tokens(prompt)
    tokens_in, tokens_out, worst = tokens_in * scale, tokens_out * scale, worst * scale
    factor = batch_discount() if batch else 1.0
    usd = (tokens_in * the_price.input + tokens_out * the_price.output) / 1e6 * factor
    worst_usd = worst_case_usd(the_price, worst, max_output_tokens * n, batch)
    return Estimate(n, tokens_in, tokens_out, usd, worst_usd, model, batch)
