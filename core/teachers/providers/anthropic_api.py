"""Anthropic Messages API teacher (official SDK).

The static instruction + hints block is a system block marked `cache_control: ephemeral` (prompt caching; the API
caches it only above the model's minimum prefix length, ~1-2k tokens, and silently ignores the mark below it).
Structured output: "tool" (default; a forced `submit_ranking` tool whose input is {"ranking", "rationale"}),
"json_schema" (`output_config.format`) or "text" (plain text, tolerant parsing). Retries: the SDK's own. The key
comes from ANTHROPIC_API_KEY (environment or Streamlit secrets).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Literal, Sequence

from core.teachers import keys, pricing
from core.teachers.cache import endpoint_key
from core.teachers.providers import register
from core.teachers.providers.base import DEFAULT_MAX_OUTPUT_TOKENS, BatchEntry, Provider
from core.teachers.providers.openai_api import RANKING_SCHEMA, MissingKeyError
from core.teachers.types import Completion, Prompt, RankRequest, Turn

TOOL_NAME = "submit_ranking"
TOOL = {"name": TOOL_NAME, "description": "Submit the ranked candidate ids and a short rationale.",
        "input_schema": RANKING_SCHEMA}
TOOL_USE_OVERHEAD_TOKENS = 600  # the API's tool-use system prompt plus the tool definition (upper bound)


def completion_from_message(message: dict[str, Any], prompt_chars: int = 0, latency_s: float = 0.0) -> Completion:
    """A Completion from a Messages API `message` JSON; text blocks joined, tool_use input as JSON text."""
    parts = []
    for block in message.get("content") or []:
        if block.get("type") == "text":
            parts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            parts.append(json.dumps(block.get("input") or {}))
    text = "\n".join(parts)
    usage = message.get("usage") or {}
    if usage.get("input_tokens") is None:
        return Completion(text=text, input_tokens=-(-prompt_chars // 4), output_tokens=pricing.estimate_tokens(text),
                          latency_s=latency_s, usage_reported=False)
    return Completion(text=text, input_tokens=int(usage["input_tokens"] or 0),
                      output_tokens=int(usage.get("output_tokens") or 0), latency_s=latency_s,
                      cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
                      cache_write_tokens=int(usage.get("cache_creation_input_tokens") or 0))


@register("anthropic", default_model="claude-haiku-4-5", key_env="ANTHROPIC_API_KEY",
          description="Anthropic Messages API, static prompt block marked for prompt caching")
class AnthropicProvider(Provider):
    """model: e.g. "claude-haiku-4-5", "claude-sonnet-4-5". base_url: default ANTHROPIC_BASE_URL or Anthropic's
    (no /v1). temperature: None leaves the API default (sent via extra_body when set; this SDK version dropped the
    keyword). timeout: seconds per HTTP attempt; max_retries: SDK retries on 429/5xx/timeouts."""

    name = "anthropic"
    supports_batch = True

    def __init__(self, model: str = "claude-haiku-4-5", *, base_url: str | None = None,
                 price: pricing.Price | tuple[float, float] | None = None, temperature: float | None = None,
                 max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
                 structured: Literal["tool", "json_schema", "text"] = "tool", max_retries: int = 3,
                 timeout: float = 60.0, concurrency: int = 8, db: Any = None) -> None:
        super().__init__(model, price=price, max_output_tokens=max_output_tokens, concurrency=concurrency, db=db,
                         base_url=base_url or os.environ.get("ANTHROPIC_BASE_URL") or None)
        import anthropic

        key = keys.api_key("ANTHROPIC_API_KEY")
        if key is None:
            raise MissingKeyError("ANTHROPIC_API_KEY is not set: export it, or add it to Streamlit secrets")
        self.temperature = temperature
        self.structured = structured
        self._client = anthropic.Anthropic(api_key=key, base_url=self.base_url, max_retries=max_retries,
                                           timeout=timeout)

    def call_options(self) -> dict[str, Any]:
        return {"max_tokens": self.max_output_tokens, "temperature": self.temperature,
                "structured": self.structured, "base_url": endpoint_key(self.base_url, "anthropic")}

    def overhead_tokens(self, request: RankRequest | None) -> int:
        return TOOL_USE_OVERHEAD_TOKENS if self.structured == "tool" and request is not None else 0

    def params(self, prompt: Prompt, turns: Sequence[Turn], request: RankRequest | None,
               max_tokens: int) -> dict[str, Any]:
        """The messages.create parameters (also the `params` of a batch request)."""
        params: dict[str, Any] = {
            "model": self.model, "max_tokens": max_tokens,
            "system": [{"type": "text", "text": prompt.system, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": prompt.user}]
            + [{"role": t.role, "content": t.content} for t in turns],
        }
        structured = request is not None and request.options.with_rationale
        if structured and self.structured == "tool":
            params["tools"] = [TOOL]
            params["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        elif structured and self.structured == "json_schema":
            params["output_config"] = {"format": {"type": "json_schema", "schema": RANKING_SCHEMA}}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        return params

    def generate(self, prompt: Prompt, turns: Sequence[Turn], request: RankRequest | None,
                 max_tokens: int) -> Completion:
        params = self.params(prompt, turns, request, max_tokens)
        extra = {"temperature": params.pop("temperature")} if "temperature" in params else None
        start = time.perf_counter()
        message = self._client.messages.create(**params, extra_body=extra)
        chars = len(prompt.system) + len(prompt.user) + sum(len(t.content) for t in turns)
        return completion_from_message(message.model_dump(), chars, time.perf_counter() - start)

    # ---- batch (half price) -----------------------------------------------------------------------------------
    def submit_batch(self, entries: Sequence[BatchEntry], *, poll_interval_s: float,
                     max_wait_s: float) -> dict[str, Completion | str]:
        """Create a Message Batch, poll until it has ended, read its results."""
        requests = [{"custom_id": cid, "params": self.params(prompt, turns, request, self.max_output_tokens)}
                    for cid, prompt, turns, request in entries]
        batch = self._client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        deadline = time.monotonic() + max_wait_s
        while batch.processing_status != "ended":
            if time.monotonic() > deadline:
                raise TimeoutError(f"Anthropic batch {batch.id} not finished after {max_wait_s:.0f} s "
                                   f"(status {batch.processing_status}); it may still complete and be billed")
            time.sleep(poll_interval_s)
            batch = self._client.messages.batches.retrieve(batch.id)
        chars = {cid: len(p.system) + len(p.user) + sum(len(t.content) for t in turns)
                 for cid, p, turns, _ in entries}
        results: dict[str, Completion | str] = {}
        for item in self._client.messages.batches.results(batch.id):
            result = item.result
            if result.type == "succeeded":
                results[item.custom_id] = completion_from_message(result.message.model_dump(),
                                                                  chars.get(item.custom_id, 0))
            else:
                detail = getattr(result, "error", None)
                results[item.custom_id] = keys.scrub(f"batch request {result.type}: {detail}")
        return results
