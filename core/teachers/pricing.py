"""Prices (USD per million tokens) from the shipped `prices.toml`, per-call cost, token estimates (a run's
estimate is core.teachers.estimate, which needs the prompt builders above this module).

Prices are strict (a money cap is only as good as its prices): a model matches its exact entry, or an entry plus a
dated-snapshot suffix (`-2024-08-06`, `-20241022`, `-latest`; DATED_ALIAS), never a shorter prefix
("gpt-4.5-preview" is not "gpt-4"). A model without a price is an error naming the fix, except at a local base URL
(127.0.0.1, localhost, ::1: a server you run) where it is free; a price of 0 otherwise must be given explicitly.
Every price is a finite number >= 0.

Token estimates: input = prompt characters / 4; output = 4 tokens per id x n_out + 60 for the rationale.
Worst case (what the budget reserves before a call): every UTF-8 byte of the prompt as one token (a BPE token never
covers less than one byte) plus per-message overhead, and the full max_tokens of output.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from dataclasses import dataclass, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import urlparse

import tomllib

from core.teachers.types import Completion, Prompt

PER_MESSAGE_OVERHEAD_TOKENS = 16
OUTPUT_TOKENS_PER_ID = 4
RATIONALE_TOKENS = 60
#: A vendor's dated snapshot (or -latest alias) of a listed model: "gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022".
DATED_ALIAS = re.compile(r"^(?P<base>.+?)-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")
SHIPPED = "core/teachers/prices.toml"


class UnknownPriceError(KeyError):
    """No price is known for a model; the message names it and says how to pass one."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class PriceError(ValueError):
    """A price that is not a finite number >= 0, or an unreadable prices file; the message names where."""


@dataclass(frozen=True)
class Price:
    """USD per million tokens, each finite and >= 0. cached_input: OpenAI's price for cached prompt tokens (default =
    input); cache_write / cache_read: Anthropic prompt-cache token prices (default = input)."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    cache_read: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name not in ("input", "output"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise PriceError(f"price {f.name} = {value!r}: must be a finite number >= 0 (USD per million "
                                 "tokens)")

    @property
    def free(self) -> bool:
        return self.input == 0 and self.output == 0 and not self.cache_write


FREE = Price(0.0, 0.0)


def is_local_url(base_url: str | None) -> bool:
    """True for a base URL on this machine (localhost, 127.0.0.0/8, ::1): a server you run, not a vendor's API."""
    if not base_url:
        return False
    host = (urlparse(base_url if "//" in base_url else f"//{base_url}").hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_toml(path: Path, label: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PriceError(f"{label}: cannot read prices: {error}") from None


def _entry_price(model: str, entry: Any, label: str) -> Price:
    where = f'{label}: [models."{model}"]'
    if not isinstance(entry, Mapping) or "input" not in entry or "output" not in entry:
        raise PriceError(f"{where} needs input = ... and output = ... (USD per million tokens)")
    values = {}
    for name in ("input", "output", "cached_input", "cache_write", "cache_read"):
        value = entry.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise PriceError(f"{where} {name} = {value!r}: a price must be a finite number >= 0 "
                             "(USD per million tokens)")
        values[name] = float(value)
    price = Price(**values)
    if model.startswith("claude") and price.cache_write is None:
        price = Price(price.input, price.output, price.cached_input, price.input * 1.25,
                      price.input * 0.1 if price.cache_read is None else price.cache_read)
    return price


@lru_cache(maxsize=8)
def _load(extra: str | None) -> dict[str, Any]:
    """{"models": {name: Price}, "batch_discount": float}: the shipped table, then the ALKD_PRICES file's entries."""
    shipped = tomllib.loads(resources.files("core.teachers").joinpath("prices.toml").read_text(encoding="utf-8"))
    tables = [(SHIPPED, shipped)]
    if extra:
        tables.append((f"ALKD_PRICES file {extra}", _read_toml(Path(extra), f"ALKD_PRICES file {extra}")))
    models: dict[str, Price] = {}
    discount = 0.5
    for label, table in tables:
        for model, entry in (table.get("models") or {}).items():
            models[model] = _entry_price(model, entry, label)
        if "batch_discount" in table:
            value = table["batch_discount"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise PriceError(f"{label}: batch_discount = {value!r}: must be a number in [0, 1]")
            discount = float(value)
    return {"models": models, "batch_discount": discount}


def price_table() -> dict[str, Any]:
    """The shipped prices merged with the TOML file named by ALKD_PRICES (if set), validated."""
    return _load(os.environ.get("ALKD_PRICES") or None)


def batch_discount() -> float:
    return float(price_table()["batch_discount"])


def listed_price(model: str) -> Price | None:
    """The table's price of `model`: its exact entry, else the entry it is a dated snapshot of; None if neither."""
    models: dict[str, Price] = price_table()["models"]
    if model in models:
        return models[model]
    match = DATED_ALIAS.match(model)
    if match and match["base"] in models:
        return models[match["base"]]
    return None


def price_for(model: str, override: Price | tuple[float, float] | None = None, *,
              base_url: str | None = None) -> Price:
    """The price of `model` served at `base_url` (None = the vendor's API). `override` (a Price or (input, output)
    USD per million tokens) wins; then the price table; then free for a local base URL; else UnknownPriceError."""
    if override is not None:
        return override if isinstance(override, Price) else Price(*(float(v) for v in override))
    price = listed_price(model)
    if price is not None:
        return price
    if is_local_url(base_url):
        return FREE
    where = f" at {base_url}" if base_url else ""
    raise UnknownPriceError(
        f"No price known for model {model!r}{where} (prices match exact names or dated snapshots, never a shorter "
        f"name). Fix: put the line  models.\"{model}\" = {{ input = <USD per 1M input tokens>, output = <USD per 1M "
        "output tokens> }  in a TOML file named by the ALKD_PRICES environment variable (input = 0, output = 0 if "
        "it is free), or pass price=(input, output) to the provider.")


def cost(price: Price, completion: Completion, batch: bool = False) -> float:
    """USD of one completion. OpenAI's cached_input_tokens are part of input_tokens; Anthropic's cache tokens are
    not."""
    cached = min(completion.cached_input_tokens, completion.input_tokens)
    usd = ((completion.input_tokens - cached) * price.input
           + cached * (price.cached_input if price.cached_input is not None else price.input)
           + completion.output_tokens * price.output
           + completion.cache_write_tokens * (price.cache_write if price.cache_write is not None else price.input)
           + completion.cache_read_tokens * (price.cache_read if price.cache_read is not None else price.input)) / 1e6
    return usd * (batch_discount() if batch else 1.0)


def estimate_tokens(text: str) -> int:
    """Expected tokens of a text: characters / 4."""
    return math.ceil(len(text) / 4)


def worst_case_input_tokens(prompt: Prompt, extra: Sequence[str] = (), overhead: int = 0) -> int:
    """An upper bound on input tokens: UTF-8 bytes of every part + per-message overhead + provider overhead."""
    parts = [prompt.system, prompt.user, *extra]
    return sum(len(p.encode("utf-8")) for p in parts) + PER_MESSAGE_OVERHEAD_TOKENS * len(parts) + overhead


def worst_case_usd(price: Price, input_tokens: int, max_output_tokens: int, batch: bool = False) -> float:
    """The most a call can cost: every input token at the dearest input rate, plus max_tokens of output."""
    dearest_in = max(price.input, price.cache_write or 0.0, price.cached_input or 0.0, price.cache_read or 0.0)
    usd = (input_tokens * dearest_in + max_output_tokens * price.output) / 1e6
    return usd * (batch_discount() if batch else 1.0)


def expected_output_tokens(n_out: int = 25, with_rationale: bool = True) -> int:
    return OUTPUT_TOKENS_PER_ID * n_out + (RATIONALE_TOKENS if with_rationale else 0)
