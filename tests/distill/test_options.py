"""Distillation options (`alkd run --option KEY=VALUE`): every key a method reads is declared, with a checked type."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import core.distill
from core.distill import DEFAULTS, OPTIONS, validate_options


def test_every_option_is_declared_and_every_declared_option_is_read():
    source = "\n".join(p.read_text() for p in Path(core.distill.__file__).parent.glob("*.py"))
    read = set(re.findall(r'(?:ctx|self)\.param\("([a-z_]+)"\)', source))
    assert read == set(OPTIONS)
    assert DEFAULTS["lr"] == 1e-3 and DEFAULTS["patience"] == 5


def test_numbers_are_cast_to_the_default_type():
    assert validate_options({"lr": 1, "patience": 7.0, "objective": "ce"}) == {"lr": 1.0, "patience": 7,
                                                                               "objective": "ce"}
    assert isinstance(validate_options({"lr": 1})["lr"], float)


@pytest.mark.parametrize("options, message", [
    ({"learning_rate": 1e-4}, "unknown distillation option 'learning_rate'"),
    ({"patiance": 3}, "did you mean 'patience'"),
    ({"lr": "fast"}, "'lr' must be a number"),
    ({"patience": 2.5}, "'patience' must be a whole number"),
    ({"lr": True}, "'lr' must be a number"),
    ({"objective": "mse"}, "'objective' must be one of bpr, bpr-inbatch, ce"),
    ({"valid_metric": 3}, "'valid_metric' must be text"),
    ({"recipe": "mixed"}, "'recipe' must be one of joint, finetune"),
    ({"base_loss": "bpr"}, "'base_loss' must be one of ce, bpr-inbatch"),
    ({"init": "random"}, "'init' must be one of pretrained, scratch, teacher-pca"),
    ({"loss": "mse"}, "'loss' must be one of kd, bpr-top50, listwise, pairwise"),
    ({"lists": "gold"}, "'lists' must be one of llm, in-candidates, shuffled, teacher"),
    ({"lambda": -1.0}, "'lambda' must be a finite number at least 0"),
    ({"lambda": float("nan")}, "'lambda' must be a finite number at least 0"),
    ({"kd_temperature": 0}, "'kd_temperature' must be a finite number above 0"),
    ({"tau": float("inf")}, "'tau' must be a finite number above 0"),
])
def test_bad_options_name_the_key(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_options(options)


def test_lambda_zero_is_allowed():
    assert validate_options({"lambda": 0}) == {"lambda": 0.0}


def test_valid_every_is_a_positive_step_count():
    assert validate_options({"valid_every": 20}) == {"valid_every": 20}
    with pytest.raises(ValueError, match="at least 1 step"):
        validate_options({"valid_every": 0})
