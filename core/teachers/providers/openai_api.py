"""OpenAI Chat Completions teacher (official SDK); any base_url, so OpenAI-compatible servers work too.

Temperature 0. Structured output via `response_format` json_schema by default ("json_object" or "none" for servers
without it; the parser is tolerant either way). Retries with backoff on 429/5xx/timeouts are the SDK's own
(`max_retries`, `timeout`, honouring retry-after). The key comes from OPENAI_API_KEY (environment or Streamlit
secrets); a non-OpenAI base_url without a key gets a placeholder, as local servers ignore it.
"""

from __future__ import annotations

import io
import json
import os
import time
from typing import Any, Literal, Sequence
from urllib.parse import urlparse

from core.teachers import keys, pricing
from core.teachers.cache import endpoint_key
from core.teachers.providers import register
from core.teachers.providers.base import DEFAULT_MAX_OUTPUT_TOKENS, BatchEntry, Provider
from core.teachers.types import Completion, Prompt, RankRequest, Turn

RANKING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ranking": {"type": "array", "items": {"type": "integer"}}, "rationale": {"type": "string"}},
    "required": ["ranking", "rationale"],
    "additionalProperties": False,
}


class MissingKeyError(RuntimeError):
    pass


def _is_openai(base_url: str | None) -> bool:
    return not base_url or (urlparse(base_url).hostname or "").endswith("openai.com")


def completion_from_dict(body: dict[str, Any], prompt_chars: int = 0, latency_s: float = 0.0) -> Completion:
    """A Completion from a chat.completion JSON body; tokens estimated (chars/4) when the server sends no usage."""
    choices = body.get("choices") or []
    message = (choices[0] or {}).get("message") or {} if choices else {}
    text = message.get("content") or ""
    if not text and message.get("tool_calls"):
        text = message["tool_calls"][0].get("function", {}).get("arguments") or ""
    usage = body.get("usage") or {}
    if usage.get("prompt_tokens") is None:
        return Completion(text=text, input_tokens=-(-prompt_chars // 4),
                          output_tokens=pricing.estimate_tokens(text), latency_s=latency_s, usage_reported=False)
    details = usage.get("prompt_tokens_details") or {}
    return Completion(text=text, input_tokens=int(usage["prompt_tokens"] or 0),
                      output_tokens=int(usage.get("completion_tokens") or 0), latency_s=latency_s,
                      cached_input_tokens=int(details.get("cached_tokens") or 0))


@register("openai", default_model="gpt-4o-mini", key_env="OPENAI_API_KEY",
          description="OpenAI Chat Completions (or any OpenAI-compatible server via base_url: Ollama, vLLM, LM Studio)")
class OpenAIProvider(Provider):
    """model: e.g. "gpt-4-turbo-2024-04-09" (the paper's), "gpt-4o-mini", or a local model name. base_url: e.g.
    "http://localhost:11434/v1" (Ollama); default OPENAI_BASE_URL or OpenAI. timeout: seconds per HTTP attempt;
    max_retries: SDK retries on 429/5xx/timeouts. temperature: 0 (the paper's); None omits it.
    response_format: "json_schema" | "json_object" | "none".
    max_tokens_param: "max_tokens" or "max_completion_tokens" (newer OpenAI models want the latter)."""

    name = "openai"
    supports_batch = True

    def __init__(self, model: str = "gpt-4o-mini", *, base_url: str | None = None,
                 price: pricing.Price | tuple[float, float] | None = None, temperature: float | None = 0.0,
                 max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
                 response_format: Literal["json_schema", "json_object", "none"] = "json_schema",
                 max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
                 seed: int | None = None, max_retries: int = 3, timeout: float = 60.0, concurrency: int = 8,
                 db: Any = None) -> None:
        super().__init__(model, price=price, max_output_tokens=max_output_tokens, concurrency=concurrency, db=db,
                         base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None)
        import openai  # the SDK is a core dependency; imported here to keep `core.teachers` light

        key = keys.api_key("OPENAI_API_KEY")
        if key is None:
            if _is_openai(self.base_url):
                raise MissingKeyError("OPENAI_API_KEY is not set: export it, or add it to Streamlit secrets")
            key = "not-needed"
        self.temperature = temperature
        self.response_format = response_format
        self.max_tokens_param = max_tokens_param
        self.seed = seed
        self._client = openai.OpenAI(api_key=key, base_url=self.base_url, max_retries=max_retries, timeout=timeout)

    def call_options(self) -> dict[str, Any]:
        return {"max_tokens": self.max_output_tokens, "temperature": self.temperature, "seed": self.seed,
                "response_format": self.response_format, "base_url": endpoint_key(self.base_url, "openai")}

    def body(self, prompt: Prompt, turns: Sequence[Turn], request: RankRequest | None,
             max_tokens: int) -> dict[str, Any]:
        """The chat.completions request body (also one line of a batch file)."""
        messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]
        messages += [{"role": t.role, "content": t.content} for t in turns]
        body: dict[str, Any] = {"model": self.model, "messages": messages, self.max_tokens_param: max_tokens}
        if self.temperature is not None:  # None for models that reject it (reasoning models)
            body["temperature"] = self.temperature
        if self.seed is not None:
            body["seed"] = self.seed
        structured = request is not None and request.options.with_rationale
        if structured and self.response_format == "json_schema":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "ranking", "strict": True, "schema": RANKING_SCHEMA}}
        elif structured and self.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def generate(self, prompt: Prompt, turns: Sequence[Turn], request: RankRequest | None,
                 max_tokens: int) -> Completion:
        body = self.body(prompt, turns, request, max_tokens)
        start = time.perf_counter()
        reply = self._client.chat.completions.create(**body)
        chars = len(prompt.system) + len(prompt.user) + sum(len(t.content) for t in turns)
        return completion_from_dict(reply.model_dump(), chars, time.perf_counter() - start)

    # ---- batch (half price) -----------------------------------------------------------------------------------
    def submit_batch(self, entries: Sequence[BatchEntry], *, poll_interval_s: float,
                     max_wait_s: float) -> dict[str, Completion | str]:
        """Upload a JSONL of requests, create a /v1/chat/completions batch, poll, read the output/error files."""
        lines = [json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                             "body": self.body(prompt, turns, request, self.max_output_tokens)})
                 for cid, prompt, turns, request in entries]
        upload = self._client.files.create(file=("teacher-batch.jsonl", io.BytesIO("\n".join(lines).encode())),
                                           purpose="batch")
        batch = self._client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                            completion_window="24h")
        deadline = time.monotonic() + max_wait_s
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"OpenAI batch {batch.id} not finished after {max_wait_s:.0f} s "
                                   f"(status {batch.status}); it may still complete and be billed")
            time.sleep(poll_interval_s)
            batch = self._client.batches.retrieve(batch.id)
        chars = {cid: len(p.system) + len(p.user) + sum(len(t.content) for t in turns)
                 for cid, p, turns, _ in entries}
        results: dict[str, Completion | str] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            for line in self._client.files.content(file_id).text.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                response = item.get("response") or {}
                if item.get("error") or response.get("status_code", 200) != 200:
                    results[item["custom_id"]] = keys.scrub(
                        f"batch request failed: {item.get('error') or response.get('body')}")
                else:
                    results[item["custom_id"]] = completion_from_dict(response.get("body") or {},
                                                                      chars.get(item["custom_id"], 0))
        if batch.status != "completed":
            for cid, _, _, _ in entries:
                results.setdefault(cid, f"OpenAI batch {batch.id} ended with status {batch.status}")
        return results
