"""Session-based recommender backbones sharing one interface (core.models.base.SessionModel)."""

from core.models.base import SessionModel
from core.models.registry import backbone_names, create

__all__ = ["SessionModel", "backbone_names", "create"]
