"""One registry type for every list of names: backbones, distillation methods, teacher providers, selection
strategies, reference baselines, dataset sources.

    BACKBONES = Registry("backbone", package="core.models", first=("fpmc", "stamp"))

    @BACKBONES.register("fpmc", description="factorised Markov chain over the previous item")
    class FPMC(SessionModel): ...

    BACKBONES.get("fpmc")        # the registered value; unknown -> UnknownName naming the known names
    BACKBONES.names()            # ['fpmc', 'stamp', ...] in registration order
    BACKBONES.describe()         # {'fpmc': 'factorised Markov chain ...', ...}

A registry with a `package` imports that package's modules the first time it is read (`first` ones before the
rest, which fixes the order of the names), so a new entry is one new module with its `register` decorator: the CLI
choices, the dashboard's pickers and the README tables read the registry and pick it up without further edits.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Generic, Iterator, TypeVar, overload

if TYPE_CHECKING:
    import click

T = TypeVar("T")
_MISSING = object()


class UnknownName(KeyError, ValueError):
    """A name no entry has. A KeyError (a lookup) and a ValueError (bad input) both, so callers catching either
    keep working; str() is the plain one-line message (KeyError's would add quotes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name: its value (a class, a function, a spec) and a one-line description."""

    name: str
    value: T
    description: str = ""


class Registry(Generic[T]):
    """Names -> values with a description each, in registration order.

    kind: what an entry is, for messages ("backbone", "teacher provider"); package: a package whose modules register
    entries when imported (imported once, on first read; modules whose name starts with '_' are skipped); first:
    those modules' names, ordered before the others. With a package the order of the names is its modules' order
    (`first`, then the others by name), whichever module happened to be imported first."""

    def __init__(self, kind: str, *, package: str | None = None, first: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.package = package
        self.first = first
        self._entries: dict[str, Entry[T]] = {}
        self._modules: dict[str, str] = {}          # name -> the package module that registered it
        self._loaded = package is None
        self._loading = False
        self._lock = threading.RLock()              # the dashboard reads from several threads at once

    # ---- writing -------------------------------------------------------------------------------------------------

    @overload
    def register(self, name: str, value: T, *, description: str = "", replace: bool = False) -> T: ...

    @overload
    def register(self, name: str, *, description: str = "", replace: bool = False) -> Callable[[T], T]: ...

    def register(self, name, value=_MISSING, *, description="", replace=False):
        """Add `value` under `name` (returns it), or, without a value, a decorator that adds what it decorates.
        A taken name is a ValueError unless replace=True."""
        def add(item: T) -> T:
            if not name or not isinstance(name, str):
                raise ValueError(f"a {self.kind} needs a non-empty name, not {name!r}")
            if name in self._entries and not replace:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(name, item, " ".join(str(description).split()))
            if self.package:
                self._modules[name] = self._registering_module()
            return item
        return add if value is _MISSING else add(value)

    def unregister(self, name: str) -> None:
        """Remove `name` (tests that register a dummy entry take it out again); absent names are ignored."""
        self._entries.pop(name, None)
        self._modules.pop(name, None)

    # ---- reading -------------------------------------------------------------------------------------------------

    def load(self) -> None:
        """Import the package's modules (once), so every entry they declare is registered."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded or self._loading:     # another thread finished it, or a module being imported asks
                return
            self._loading = True
            try:
                self._import_all()
                self._loaded = True
            finally:
                self._loading = False

    def _import_all(self) -> None:
        """Import every module of the package (`first` ones first) and order the entries by module."""
        package = importlib.import_module(self.package)  # type: ignore[arg-type]
        found = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))
        order = [*[m for m in self.first if m in found], *[m for m in found if m not in self.first]]
        for module in order:
            importlib.import_module(f"{self.package}.{module}")
        rank = {f"{self.package}.{m}": i for i, m in enumerate(order)}
        position = {name: i for i, name in enumerate(self._entries)}
        ordered = sorted(self._entries, key=lambda n: (rank.get(self._modules.get(n, ""), len(rank)),
                                                       position[n]))
        self._entries = {name: self._entries[name] for name in ordered}

    def _registering_module(self) -> str:
        """The module of this package whose top-level code is registering an entry now (the innermost such frame:
        a helper like core.models.registry.register runs inside a function, not at top level); '' when none."""
        frame = sys._getframe(1)
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if frame.f_code.co_name == "<module>" and module.startswith(f"{self.package}."):
                return module
            frame = frame.f_back
        return ""

    def entry(self, name: str) -> Entry[T]:
        """The entry of `name`; UnknownName (one line naming the known names) if there is none."""
        self.load()
        if name not in self._entries:
            raise UnknownName(f"unknown {self.kind} {name!r}; known: {', '.join(self._entries) or 'none'}")
        return self._entries[name]

    def get(self, name: str) -> T:
        return self.entry(name).value

    def names(self) -> list[str]:
        self.load()
        return list(self._entries)

    def entries(self) -> list[Entry[T]]:
        self.load()
        return list(self._entries.values())

    def describe(self) -> dict[str, str]:
        """name -> one-line description."""
        return {e.name: e.description for e in self.entries()}

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names() if self._loaded else '<not loaded>'})"

    # ---- views -----------------------------------------------------------------------------------------------------

    def markdown(self, header: tuple[str, str] = ("name", "what")) -> str:
        """A two-column Markdown table of the names (as code) and their descriptions, one line per entry."""
        lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
        lines += [f"| `{e.name}` | {_cell(e.description)} |" for e in self.entries()]
        return "\n".join(lines)

    def click_choice(self) -> "click.Choice":
        """A click.Choice whose choices are read from the registry whenever click asks (help, validation,
        completion), so an entry registered after the command was defined is offered and accepted too."""
        import click

        registry = self

        class LiveChoice(click.Choice):
            @property  # type: ignore[override]
            def choices(self) -> tuple[str, ...]:
                return tuple(registry.names())

            @choices.setter
            def choices(self, _value: object) -> None:   # click.Choice.__init__ assigns; the registry is the truth
                pass

        return LiveChoice((), case_sensitive=True)


def _cell(text: str) -> str:
    """`text` safe inside a Markdown table cell (a literal | would end the cell)."""
    return text.replace("|", "\\|")
