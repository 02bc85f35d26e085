"""Backbones by name. Each model module registers its class with `@register`."""

from __future__ import annotations

import importlib

from core.models.base import SessionModel

MODELS: dict[str, type[SessionModel]] = {}
MODULES = ("fpmc", "stamp", "attmix", "gru4rec", "sasrec")


def register(cls: type[SessionModel]) -> type[SessionModel]:
    MODELS[cls.name] = cls
    return cls


def _load_all() -> None:
    for module in MODULES:
        importlib.import_module(f"core.models.{module}")


def backbone_names() -> list[str]:
    _load_all()
    return list(MODELS)


def create(name: str, n_items: int, dim: int, max_len: int) -> SessionModel:
    _load_all()
    if name not in MODELS:
        raise KeyError(f"unknown backbone {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](n_items, dim, max_len)
