"""Distillation methods of `alkd run`, one module each, by name (a registry).

kinds:
- `reference`: evaluate a pretrained model as is (`student` d=10, `teacher` d=100).
- `baseline`: a reference baseline from core.baselines (`popular`, `transitions`, `sknn`, `vsknn`).
- `teacher-rankings`: distil the teacher recommender on every training session, no LLM (`tr`: soft-target KD, or
  its top-50 pairwise with loss=bpr-top50; `rd`: ranking distillation of its top-10).
- `llm`: select sessions with a core.selection strategy, ask the LLM teacher, distil its rankings (`alkdrec` and its
  ablations `random`, `easiest`, `hardest`, `rad-bc`; `dllm2rec`; `llmd4rec`).

    spec = get_method("alkdrec"); result = spec.distill(ctx)   # ctx: core.distill.common.DistillContext

A new method is one module here with its `@register(...)` (core.registry finds it); the CLI, the dashboard and the
README table list it from `METHODS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from core.distill.common import (
    DEFAULTS,
    MODES,
    OPTIONS,
    DistillContext,
    DistillResult,
    position_weight,
    position_weights,
    validate_options,
)
from core.registry import Registry

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


#: every method by name; the reference rows first, then the paper's, then the others (module order)
METHODS: Registry[MethodSpec] = Registry("method", package="core.distill",
                                         first=("reference", "tr", "alkdrec", "dllm2rec", "llmd4rec"))


def register(name: str, kind: Kind, *, strategy: str | None = None, description: str = ""):
    """Decorator: register the objective it decorates (None for reference/baseline rows) as method `name`."""
    def deco(fn: Callable[[DistillContext], DistillResult] | None):
        METHODS.register(name, MethodSpec(name, kind, fn, strategy, description), description=description)
        return fn
    return deco


def method_names(kind: Kind | None = None) -> list[str]:
    """Registered method names in order; only those of `kind` when given (e.g. "llm": the methods that ask the
    LLM teacher and cost money, "baseline": the reference baselines)."""
    return [e.name for e in METHODS.entries() if kind is None or e.value.kind == kind]


def get_method(name: str) -> MethodSpec:
    """The method's spec; UnknownName (a KeyError) naming the known methods."""
    return METHODS.get(name)


__all__ = ["DEFAULTS", "METHODS", "MODES", "OPTIONS", "DistillContext", "DistillResult", "MethodSpec", "get_method",
           "method_names", "position_weight", "position_weights", "register", "validate_options"]
