"""Session-based recommender backbones sharing one interface (core.models.base.SessionModel)."""

from core.models.base import BackboneConfig, SessionModel
from core.models.registry import BACKBONES, backbone_config, backbone_names, create

__all__ = ["BACKBONES", "BackboneConfig", "SessionModel", "backbone_config", "backbone_names", "create"]
