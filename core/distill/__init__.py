"""Distillation methods of `alkd run`, one module each, by name (a registry).

kinds:
- `reference`: evaluate a pretrained model as is (`student` d=10, `teacher` d=100).
- `baseline`: a reference baseline from core.baselines (`popular`, `transitions`, `sknn`, `vsknn`).
- `teacher-rankings`: distil the teacher recommender on every training session, no LLM (`tr`: soft-target KD, or
  its top-50 pairwise with loss=bpr-top50; `rd`: ranking distillation of its top-10).
- `llm`: select sessions with a core.selection strategy, ask the LLM teacher, distil its rankings (`alkdrec` and its
  ablations `random`, `easiest`, `hardest`, `rad-bc`; `dllm2rec`; `llmd4rec`).

    spec = get_method("alkdrec"); result = spec.distill(ctx)   # ctx: core.distill.common.DistillContext
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Literal

from core.distill.common import (DEFAULTS, MODES, OPTIONS, DistillContext, DistillResult, position_weight,
                                 position_weights, validate_options)

Kind = Literal["reference", "baseline", "teacher-rankings", "llm"]


@dataclass(frozen=True)
class MethodSpec:
    """name; kind (see module doc); strategy: the selection strategy for `llm` methods; distill: the objective
    (None for reference/baseline rows); description: one line for tables and the dashboard."""

    name: str
    kind: Kind
    distill: Callable[[DistillContext], DistillResult] | None
    strategy: str | None = None
    description: str = ""


METHODS: dict[str, MethodSpec] = {}
_MODULES = ("reference", "alkdrec", "tr", "dllm2rec", "llmd4rec")


def register(name: str, kind: Kind, *, strategy: str | None = None, description: str = ""):
    def deco(fn: Callable[[DistillContext], DistillResult] | None):
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered")
        METHODS[name] = MethodSpec(name, kind, fn, strategy, description)
        return fn
    return deco


def _load_all() -> None:
    for module in _MODULES:
        importlib.import_module(f"core.distill.{module}")


def method_names() -> list[str]:
    _load_all()
    return list(METHODS)


def get_method(name: str) -> MethodSpec:
    _load_all()
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]


__all__ = ["DEFAULTS", "METHODS", "MODES", "OPTIONS", "DistillContext", "DistillResult", "MethodSpec", "get_method",
           "method_names", "position_weight", "position_weights", "register", "validate_options"]
