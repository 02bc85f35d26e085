"""Records that cross the teacher interface: prompt options, requests in, responses out.

Ids are the project's internal item ids (1..n_items; 0 is padding). Money is USD, time is seconds, tokens are the
provider's own token counts (or chars/4 estimates where a server reports none).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, Sequence

from core.data.domain import domain_of

Domain = str  # "movies", "games" or any plural noun for other catalogues
Status = Literal["ok", "failed", "error", "skipped", "unavailable"]

#: Position recorded for "label not in the list" (the authors' convention, spec 2.1).
ABSENT_POSITION = 25


@dataclass(frozen=True)
class PromptOptions:
    """How a recommendation prompt is built (spec 3.2).

    domain: "movies" | "games" | another plural noun, picks the wording and the default hints.
    n_out: how many ranked ids to ask for (paper: 25). kappa: candidate-set size (paper: 50); longer lists are cut.
    window: how many of the session's last items are shown (paper: 10).
    force_label_in_candidates: if the true next item is missing from the teacher's top-kappa, it replaces the last
        candidate, as the authors' code did. This is LABEL LEAKAGE (privileged training-label information): on for
        the paper reproduction only; it needs `RankRequest.label` and `label_title`.
    candidate_order: "teacher" keeps the teacher recommender's order; "shuffled" shuffles deterministically per
        (shuffle_seed, session_id), like the authors' set order (it also hides where a forced label was put).
    with_rationale: ask for {"ranking": [...], "rationale": "..."} (True) or a bare JSON list of ids (False).
    """

    domain: Domain = "movies"
    n_out: int = 25
    kappa: int = 50
    window: int = 10
    force_label_in_candidates: bool = False
    candidate_order: Literal["teacher", "shuffled"] = "teacher"
    shuffle_seed: int = 0
    with_rationale: bool = True

    @classmethod
    def paper(cls, domain: Domain = "movies") -> "PromptOptions":
        """The authors' setting: label forced into the candidates (leakage, see above), candidates unordered."""
        return cls(domain=domain, force_label_in_candidates=True, candidate_order="shuffled")

    @classmethod
    def for_dataset(cls, dataset: str, paper: bool = False) -> "PromptOptions":
        """Options with the domain of `dataset` ("games" for game catalogues, else "movies"); paper=True -> .paper()."""
        domain = domain_of(dataset)
        return cls.paper(domain) if paper else cls(domain=domain)

    def with_(self, **changes: object) -> "PromptOptions":
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Hints:
    """The hint block of the recommendation prompt (spec 3.2/3.3) and where it came from.

    lines: the hints, one per entry, without numbering. source: "paper" (published defaults), "summarized" (made by
    `summarize_hints`) or "custom". version: the row version in the DuckDB `hints` table (0 = not stored).
    """

    dataset: str
    lines: tuple[str, ...]
    source: str = "custom"
    version: int = 0
    provider: str = ""
    model: str = ""
    simulated: bool = False

    @property
    def text(self) -> str:
        return "\n".join(f"{i}. {line}" for i, line in enumerate(self.lines, 1))


@dataclass(frozen=True)
class RankRequest:
    """One session for the LLM teacher.

    session_items / session_titles: the session's input items in time order (oldest first) and their titles.
    candidates / candidate_titles: the teacher recommender's top-kappa for this session, in the teacher's order.
    label: the true next item if known (used only by `force_label_in_candidates`, the simulated teacher and for
        recording); label_title: its title (needed when the label is forced into the candidates).
    hints: the hint block; None = the paper's default hints for `options.domain`.
    dataset: a dataset name recorded beside the call (optional).
    """

    session_id: int
    session_items: Sequence[int]
    session_titles: Sequence[str]
    candidates: Sequence[int]
    candidate_titles: Sequence[str]
    label: int | None = None
    label_title: str | None = None
    hints: Hints | str | None = None
    options: PromptOptions = field(default_factory=PromptOptions)
    dataset: str = ""

    def __post_init__(self) -> None:
        if len(self.session_items) != len(self.session_titles):
            raise ValueError(f"session {self.session_id}: {len(self.session_items)} items but "
                             f"{len(self.session_titles)} titles")
        if len(self.candidates) != len(self.candidate_titles):
            raise ValueError(f"session {self.session_id}: {len(self.candidates)} candidates but "
                             f"{len(self.candidate_titles)} titles")


@dataclass(frozen=True)
class RankResponse:
    """The teacher's answer for one session.

    ranking: cleaned ranked ids (only candidates, no duplicates, order kept, at most n_out). raw_ranking: every id
    the reply contained, as returned (for replay: the recorded list). n_valid: distinct candidate ids that came back.
    input_tokens / output_tokens: summed over attempts (a repair retry included). usd: what the call(s) cost when made
    (a cached response reports the original cost; this run paid nothing for it). latency_s: wall seconds of the
    call(s). error: None when a usable ranking came back; otherwise why not (secrets scrubbed). cached: served from
    the DuckDB cache; simulated: made by the simulated what-if teacher, not an LLM.
    """

    session_id: int
    ranking: tuple[int, ...] = ()
    raw_ranking: tuple[int, ...] = ()
    rationale: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    latency_s: float = 0.0
    error: str | None = None
    n_valid: int = 0
    cached: bool = False
    simulated: bool = False
    status: Status = "ok"
    provider: str = ""
    model: str = ""
    call_key: str = ""
    attempts: int = 0

    @property
    def ok(self) -> bool:
        """A usable ranking came back: use it for distillation."""
        return self.status == "ok" and bool(self.ranking)

    def hit_position(self, label: int, raw: bool = True) -> int:
        """0-based index of `label` in the raw (default) or cleaned list, or 25 when absent (spec 2.1)."""
        items = self.raw_ranking if raw else self.ranking
        try:
            return list(items).index(label)
        except ValueError:
            return ABSENT_POSITION


@dataclass(frozen=True)
class Completion:
    """One reply from a model. Tokens as the server reported them (usage_reported) or chars/4 estimates.

    cache_read_tokens / cache_write_tokens: Anthropic prompt-cache reads/writes (not included in input_tokens);
    cached_input_tokens: OpenAI's cached share of input_tokens.
    """

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cached_input_tokens: int = 0
    usage_reported: bool = True


@dataclass(frozen=True)
class Prompt:
    """A two-part prompt: `system` is static per (domain, hints) and cacheable; `user` carries the session's data."""

    system: str
    user: str

    @property
    def text(self) -> str:
        return f"[system]\n{self.system}\n[user]\n{self.user}"


@dataclass(frozen=True)
class Turn:
    """An extra conversation turn after the prompt (used for the repair retry)."""

    role: Literal["assistant", "user"]
    content: str


def totals(responses: Sequence[RankResponse]) -> dict[str, float]:
    """Counts by status, cache hits, tokens and USD of a run. usd_spent: paid in this run (cached excluded);
    usd_recorded: what all returned labels cost when they were made."""
    fresh = [r for r in responses if not r.cached]
    out: dict[str, float] = {"n": len(responses), "cached": len(responses) - len(fresh),
                             "usd_spent": sum(r.usd for r in fresh), "usd_recorded": sum(r.usd for r in responses),
                             "input_tokens": sum(r.input_tokens for r in fresh),
                             "output_tokens": sum(r.output_tokens for r in fresh)}
    for status in ("ok", "failed", "error", "skipped", "unavailable"):
        out[status] = sum(r.status == status for r in responses)
    return out
