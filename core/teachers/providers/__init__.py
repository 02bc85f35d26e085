"""Teacher providers by name: `get_provider("openai", model="gpt-4o-mini")`.

Each lives in its own module, imported only when asked for (the embedding teacher pulls heavy optional packages).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from core.teachers.providers.base import Provider

#: name -> (module, class, default model, description)
REGISTRY: dict[str, tuple[str, str, str, str]] = {
    "openai": ("core.teachers.providers.openai_api", "OpenAIProvider", "gpt-4o-mini",
               "OpenAI Chat Completions (or any OpenAI-compatible server via base_url: Ollama, vLLM, LM Studio)"),
    "anthropic": ("core.teachers.providers.anthropic_api", "AnthropicProvider", "claude-haiku-4-5",
                  "Anthropic Messages API, static prompt block marked for prompt caching"),
    "replay": ("core.teachers.providers.replay", "ReplayProvider", "replay",
               "recorded rankings: the authors' GPT-4-turbo files or this project's JSONL exports (free)"),
    "simulated": ("core.teachers.providers.simulated", "SimulatedProvider", "simulated",
                  "SIMULATED what-if teacher for demos and tests: hits the true next item with probability h"),
    "embedding": ("core.teachers.providers.embedding", "EmbeddingProvider", "all-MiniLM-L6-v2",
                  "label-free local teacher: title cosine similarity (extra 'semantic')"),
}


def provider_names() -> list[str]:
    return list(REGISTRY)


def default_model(name: str) -> str:
    if name not in REGISTRY:
        raise KeyError(f"unknown teacher provider {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name][2]


def provider_class(name: str) -> type[Provider]:
    if name not in REGISTRY:
        raise KeyError(f"unknown teacher provider {name!r}; known: {', '.join(REGISTRY)}")
    module, cls, _, _ = REGISTRY[name]
    return getattr(import_module(module), cls)


def get_provider(name: str, **options: Any) -> Provider:
    """A provider instance; options go to its constructor (model, price, base_url, ...)."""
    return provider_class(name)(**options)


def register_provider(name: str, module: str, cls: str, default: str, description: str = "") -> None:
    """Add a provider implemented elsewhere (module path and class name)."""
    REGISTRY[name] = (module, cls, default, description)


__all__ = ["Provider", "REGISTRY", "get_provider", "provider_class", "provider_names", "default_model",
           "register_provider"]
