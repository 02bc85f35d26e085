"""Backbones by name (a core.registry.Registry). Each model module registers its class with `@register`; a new
module in core/models with a registered class is found without further edits."""

from __future__ import annotations

from typing import Any, Mapping

from core.models.base import BackboneConfig, SessionModel
from core.registry import Registry

#: the paper's three first, then ours; any other module of core.models is imported after them
BACKBONES: Registry[type[SessionModel]] = Registry(
    "backbone", package="core.models", first=("fpmc", "stamp", "attmix", "gru4rec", "sasrec"))
#: the same registry under its old name (`MODELS["fpmc"]` still works)
MODELS = BACKBONES


def register(cls: type[SessionModel]) -> type[SessionModel]:
    """Class decorator: register a backbone under its `name`, described by its `description`."""
    return BACKBONES.register(cls.name, cls, description=cls.description)


def backbone_names() -> list[str]:
    return BACKBONES.names()


def backbone_config(name: str, settings: Mapping[str, Any] | BackboneConfig | None = None) -> BackboneConfig:
    """The backbone's typed hyper-parameters: its defaults overridden by `settings` (pydantic ValidationError on a
    bad value or an unknown field)."""
    cls = BACKBONES.get(name)
    values = settings.model_dump() if isinstance(settings, BackboneConfig) else dict(settings or {})
    return cls.Config(**values)


def create(name: str, n_items: int, dim: int, max_len: int,
           config: Mapping[str, Any] | BackboneConfig | None = None) -> SessionModel:
    """A fresh backbone; config: its own hyper-parameters (default: the backbone's defaults)."""
    return BACKBONES.get(name)(n_items, dim, max_len, config)
