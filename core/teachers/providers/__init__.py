"""Teacher providers by name: `get_provider("openai", model="gpt-4o-mini")`.

Each provider is one module here whose class carries `@register(name, default_model=..., description=...)`; the
registry (core.registry) imports the modules when first read, so a new provider is one new file: the CLI's
`--teacher` choices, the dashboard's teacher picker and the README table list it from `PROVIDERS`. Modules import
their heavy packages (SDKs, sentence-transformers) only when a provider is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any, Callable

from core.registry import Registry
from core.teachers import keys
from core.teachers.providers.base import Provider


@dataclass(frozen=True)
class ProviderEntry:
    """A registered provider: its class, the model it asks when none is given, and the environment variable (or
    Streamlit secret) holding its API key (None: it needs none; a provider with a key is a paid one)."""

    cls: type[Provider]
    default_model: str
    key_env: str | None = None


PROVIDERS: Registry[ProviderEntry] = Registry(
    "teacher provider", package="core.teachers.providers",
    first=("openai_api", "anthropic_api", "replay", "simulated", "embedding"))


def register(name: str, *, default_model: str, description: str, key_env: str | None = None
             ) -> Callable[[type[Provider]], type[Provider]]:
    """Class decorator: register a Provider subclass as teacher `name` (key_env: its API key's variable)."""
    def deco(cls: type[Provider]) -> type[Provider]:
        PROVIDERS.register(name, ProviderEntry(cls, default_model, key_env), description=description)
        if key_env:
            keys.declare(key_env)
        return cls
    return deco


def key_envs() -> dict[str, str]:
    """teacher -> the environment variable holding its API key, for every provider that needs one (the paid ones)."""
    return {e.name: e.value.key_env for e in PROVIDERS.entries() if e.value.key_env}


def teacher_key(teacher: str) -> tuple[str | None, str | None]:
    """(environment variable name, key or None) of a teacher; (None, None) for one that needs no key."""
    name = key_envs().get(teacher)
    return (name, keys.api_key(name)) if name else (None, None)


def provider_names() -> list[str]:
    return PROVIDERS.names()


def default_model(name: str) -> str:
    return PROVIDERS.get(name).default_model


def provider_class(name: str) -> type[Provider]:
    return PROVIDERS.get(name).cls


def get_provider(name: str, **options: Any) -> Provider:
    """A provider instance; options go to its constructor (model, price, base_url, ...)."""
    return provider_class(name)(**options)


def register_provider(name: str, module: str, cls: str, default: str, description: str = "") -> None:
    """Add a provider implemented outside this package (module path and class name)."""
    register(name, default_model=default, description=description)(getattr(import_module(module), cls))


__all__ = ["PROVIDERS", "Provider", "ProviderEntry", "default_model", "get_provider", "key_envs", "provider_class",
           "teacher_key",
           "provider_names", "register", "register_provider"]
