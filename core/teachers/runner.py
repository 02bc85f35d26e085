"""The engine behind `Provider.rank`: cache, budget, bounded concurrency, parsing, one repair retry, the ledger.

Per request: build the prompt and its call_key; reuse a stored reply when there is one (no cost, counts as a labelled
session); otherwise take a session from the instance budget, reserve the call's worst-case USD, call, settle the
actual cost, parse; a reply without a usable ranking is retried once with a repair message, then recorded "failed"
(cost counted, excluded from distillation). Each finished call is written to llm_calls by the thread that made it.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from core.teachers import cache, pricing
from core.teachers.budget import Budget
from core.teachers.keys import describe_error, scrub
from core.teachers.parsing import ParsedReply, parse_reply
from core.teachers.prompts import effective_candidates, repair_message
from core.teachers.types import Completion, Prompt, RankRequest, RankResponse, Turn

if TYPE_CHECKING:
    from core.teachers.providers.base import Provider

log = logging.getLogger(__name__)

SKIP_SESSIONS = "skipped: instance budget used up"
SKIP_USD = "skipped: the USD cap would be exceeded"
MAX_ATTEMPTS = 2  # the call and one repair retry


@dataclass
class _Job:
    index: int
    request: RankRequest
    prompt: Prompt
    key: str
    candidates: tuple[int, ...]
    replies: list[str] = field(default_factory=list)
    parsed: ParsedReply | None = None
    error: str | None = None
    transport_error: bool = False
    skipped: str | None = None
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    usd: float = 0.0
    latency_s: float = 0.0

    def next_turns(self) -> list[Turn] | None:
        """The turns for the next attempt, or None when done."""
        if self.skipped or self.transport_error or self.attempts >= MAX_ATTEMPTS:
            return None
        if self.attempts == 0:
            return []
        if self.parsed is not None and self.parsed.usable:
            return None
        last = self.replies[-1] if self.replies and self.replies[-1].strip() else "(empty reply)"
        return [Turn("assistant", last), Turn("user", repair_message(self.request.options))]

    def absorb(self, completion: Completion, usd: float) -> None:
        self.attempts += 1
        self.replies.append(completion.text)
        self.input_tokens += completion.input_tokens
        self.output_tokens += completion.output_tokens
        self.cache_read_tokens += completion.cache_read_tokens
        self.cache_write_tokens += completion.cache_write_tokens
        self.usd += usd
        self.latency_s += completion.latency_s
        self.parsed = parse_reply(completion.text, self.candidates, self.request.options.n_out)

    def fail(self, error: BaseException | str) -> None:
        self.attempts += 1
        self.transport_error = True
        self.error = error if isinstance(error, str) else describe_error(error)

    @property
    def status(self) -> str:
        if self.skipped and self.attempts == 0:
            return "skipped"
        if self.parsed is not None and self.parsed.usable:
            return "ok"
        if self.transport_error:
            return "error"
        return "failed"


def _notify(callback: Callable[[RankResponse], None] | None, response: RankResponse) -> None:
    if callback is None:
        return
    try:
        callback(response)
    except Exception as error:  # a progress callback must not fail the run
        log.warning("on_response callback failed: %s", scrub(error))


def _key_for(provider: "Provider", request: RankRequest | None, prompt: Prompt) -> str:
    return cache.call_key(provider.name, provider.model, prompt.text, provider.key_options(request))


def _response(provider: "Provider", job: _Job) -> RankResponse:
    status = job.status
    parsed = job.parsed
    error = job.error
    if status == "skipped":
        error = job.skipped
    elif status == "failed":
        error = "no usable ranking in the reply" + (" (after a repair retry)" if job.attempts > 1 else "")
        if job.skipped:
            error += f"; repair {job.skipped}"
    elif status == "ok":
        error = None
    return RankResponse(
        session_id=int(job.request.session_id), ranking=parsed.ranking if parsed and status == "ok" else (),
        raw_ranking=parsed.raw_ids if parsed else (), rationale=scrub(parsed.rationale) if parsed else "",
        input_tokens=job.input_tokens, output_tokens=job.output_tokens, usd=job.usd, latency_s=job.latency_s,
        error=error, n_valid=parsed.n_valid if parsed else 0, cached=False, simulated=provider.simulated,
        status=status, provider=provider.name, model=provider.model, call_key=job.key,  # type: ignore[arg-type]
        attempts=job.attempts)


def _record_of(provider: "Provider", job: _Job, response: RankResponse, mode: str) -> cache.CallRecord:
    reply = job.replies[-1] if len(job.replies) == 1 else "\n--- repair reply ---\n".join(job.replies)
    request = job.request
    return cache.CallRecord(
        call_key=job.key, provider=provider.name, model=provider.model, prompt_hash=cache.sha256(job.prompt.text),
        prompt=job.prompt.text, raw_reply=reply, ranking=response.ranking, rationale=response.rationale,
        n_valid=response.n_valid, input_tokens=job.input_tokens, output_tokens=job.output_tokens, usd=job.usd,
        latency_s=job.latency_s, error=response.error, simulated=provider.simulated,
        session_id=int(request.session_id), dataset=request.dataset,
        label=None if request.label is None else int(request.label), raw_ranking=response.raw_ranking,
        status=response.status, attempts=job.attempts, mode=mode, cache_read_tokens=job.cache_read_tokens,
        cache_write_tokens=job.cache_write_tokens)


def _from_row(provider: "Provider", request: RankRequest, row: dict[str, Any]) -> RankResponse:
    ranking = tuple(int(i) for i in (row["ranking"] or ()))
    return RankResponse(
        session_id=int(request.session_id), ranking=ranking if row["status"] == "ok" else (),
        raw_ranking=tuple(int(i) for i in (row["raw_ranking"] or ())), rationale=row["rationale"] or "",
        input_tokens=int(row["input_tokens"] or 0), output_tokens=int(row["output_tokens"] or 0),
        usd=float(row["usd"] or 0.0), latency_s=float(row["latency_s"] or 0.0), error=row["error"],
        n_valid=int(row["n_valid"] or 0), cached=True, simulated=bool(row["simulated"]), status=row["status"],
        provider=provider.name, model=provider.model, call_key=row["call_key"], attempts=int(row["attempts"] or 0))


def _worst(provider: "Provider", job: _Job, turns: Sequence[Turn], batch: bool) -> float:
    tokens = pricing.worst_case_input_tokens(job.prompt, [t.content for t in turns],
                                             provider.overhead_tokens(job.request))
    return pricing.worst_case_usd(provider.price, tokens, provider.max_output_tokens, batch)


def _work(provider: "Provider", job: _Job, budget: Budget) -> None:
    """All attempts of one job, in the calling thread."""
    while (turns := job.next_turns()) is not None:
        worst = _worst(provider, job, turns, batch=False)
        if not budget.reserve(worst):
            job.skipped = SKIP_USD
            return
        actual = 0.0
        try:
            start = time.perf_counter()
            completion = provider.generate(job.prompt, turns, job.request, provider.max_output_tokens)
            if completion.latency_s == 0.0 and not provider.instant:
                completion = Completion(**{**completion.__dict__, "latency_s": time.perf_counter() - start})
            actual = pricing.cost(provider.price, completion)
            job.absorb(completion, actual)
        except Exception as error:  # one failing session never fails the run
            job.fail(error)
        finally:
            budget.settle(worst, actual)


def _run_batch(provider: "Provider", jobs: list[_Job], budget: Budget, poll_interval_s: float,
               max_wait_s: float) -> None:
    """Rounds through the provider's batch API: the calls, then one round of repairs."""
    for round_ in range(MAX_ATTEMPTS):
        entries, reserved = [], {}
        for job in jobs:
            turns = job.next_turns()
            if turns is None:
                continue
            worst = _worst(provider, job, turns, batch=True)
            if not budget.reserve(worst, wait=False):
                job.skipped = SKIP_USD
                continue
            custom_id = f"r{round_}-{job.index}"
            reserved[custom_id] = (job, worst)
            entries.append((custom_id, job.prompt, turns, job.request))
        if not entries:
            return
        try:
            results = provider.submit_batch(entries, poll_interval_s=poll_interval_s, max_wait_s=max_wait_s)
        except Exception as error:
            results = {custom_id: describe_error(error) for custom_id in reserved}
        for custom_id, (job, worst) in reserved.items():
            result = results.get(custom_id, "no result for this request in the batch output")
            actual = 0.0
            if isinstance(result, Completion):
                actual = pricing.cost(provider.price, result, batch=True)
                job.absorb(result, actual)
            else:
                job.fail(scrub(result))
            budget.settle(worst, actual)


def run(provider: "Provider", requests: Sequence[RankRequest], *, budget: Budget | None = None,
        db: Path | str | None = None, concurrency: int = 8, use_cache: bool = True, batch: bool = False,
        poll_interval_s: float = 30.0, max_wait_s: float = 86400.0,
        on_response: Callable[[RankResponse], None] | None = None) -> list[RankResponse]:
    """See `Provider.rank`."""
    budget = budget if budget is not None else Budget()
    responses: list[RankResponse | None] = [None] * len(requests)
    jobs: list[_Job] = []
    for index, request in enumerate(requests):
        try:
            prompt = provider.build_prompt(request)
            candidates = tuple(effective_candidates(request)[0])
        except ValueError as error:
            responses[index] = RankResponse(session_id=int(request.session_id), error=describe_error(error),
                                            status="error", provider=provider.name, model=provider.model,
                                            simulated=provider.simulated)
            continue
        jobs.append(_Job(index, request, prompt, _key_for(provider, request, prompt), candidates))

    cached_rows = cache.lookup([j.key for j in jobs], db) if use_cache and provider.records_calls else {}
    leaders: dict[str, _Job] = {}
    followers: list[_Job] = []
    for job in jobs:
        if not budget.take_session():
            responses[job.index] = RankResponse(session_id=int(job.request.session_id), error=SKIP_SESSIONS,
                                                status="skipped", provider=provider.name, model=provider.model,
                                                simulated=provider.simulated, call_key=job.key)
            _notify(on_response, responses[job.index])
        elif job.key in cached_rows:
            responses[job.index] = _from_row(provider, job.request, cached_rows[job.key])
            _notify(on_response, responses[job.index])
        elif job.key in leaders:
            followers.append(job)
        else:
            leaders[job.key] = job
    todo = list(leaders.values())

    def finish(job: _Job, mode: str) -> RankResponse:
        response = _response(provider, job)
        if job.skipped and response.status == "skipped":
            budget.give_back_session()
        responses[job.index] = response
        return response

    if todo:
        provider.prepare([j.request for j in todo])
    mode = "batch" if batch else "sync"
    pending_records: list[cache.CallRecord] = []
    if batch:
        if not provider.supports_batch:
            raise NotImplementedError(f"provider {provider.name!r} has no batch mode")
        _run_batch(provider, todo, budget, poll_interval_s, max_wait_s)
        for job in todo:
            response = finish(job, mode)
            if provider.records_calls and response.status != "skipped":
                cache.record(_record_of(provider, job, response, mode), db)
            _notify(on_response, response)
    else:
        def one(job: _Job) -> None:
            _work(provider, job, budget)
            response = finish(job, mode)
            if provider.records_calls and response.status != "skipped":
                record = _record_of(provider, job, response, mode)
                if provider.instant:
                    pending_records.append(record)
                else:
                    cache.record(record, db)
            _notify(on_response, response)

        if provider.instant or concurrency <= 1:
            for job in todo:
                one(job)
        else:
            with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"teacher-{provider.name}") as pool:
                for future in [pool.submit(one, job) for job in todo]:
                    future.result()
        if pending_records:
            cache.record_many(pending_records, db)
    for job in followers:
        leader = responses[leaders[job.key].index]
        assert leader is not None
        responses[job.index] = RankResponse(**{**leader.__dict__, "session_id": int(job.request.session_id),
                                               "cached": True})
    return [r for r in responses if r is not None]


def complete(provider: "Provider", prompt: Prompt, *, max_tokens: int, db: Path | str | None = None,
             dataset: str = "", use_cache: bool = True, budget: Budget | None = None) -> Completion:
    """One free-form call through the cache and ledger (no parsing); raises if the call fails."""
    key = cache.call_key(provider.name, provider.model, prompt.text,
                         {**provider.key_options(None), "kind": "complete", "max_tokens": max_tokens})
    if use_cache and provider.records_calls:
        row = cache.lookup([key], db).get(key)
        if row is not None:
            return Completion(text=row["raw_reply"] or "", input_tokens=int(row["input_tokens"] or 0),
                              output_tokens=int(row["output_tokens"] or 0))
    budget = budget if budget is not None else Budget()
    tokens = pricing.worst_case_input_tokens(prompt, (), provider.overhead_tokens(None))
    worst = pricing.worst_case_usd(provider.price, tokens, max_tokens)
    if not budget.reserve(worst):
        raise RuntimeError(SKIP_USD)
    actual = 0.0
    try:
        completion = provider.generate(prompt, [], None, max_tokens)
        actual = pricing.cost(provider.price, completion)
    except Exception as error:
        raise RuntimeError(f"{provider.name}/{provider.model} call failed: {describe_error(error)}") from None
    finally:
        budget.settle(worst, actual)
    if provider.records_calls:
        cache.record(cache.CallRecord(
            call_key=key, provider=provider.name, model=provider.model, prompt_hash=cache.sha256(prompt.text),
            prompt=prompt.text, raw_reply=completion.text, ranking=(), rationale="", n_valid=0,
            input_tokens=completion.input_tokens, output_tokens=completion.output_tokens, usd=actual,
            latency_s=completion.latency_s, error=None, simulated=provider.simulated, dataset=dataset,
            status="ok", mode="sync", cache_read_tokens=completion.cache_read_tokens,
            cache_write_tokens=completion.cache_write_tokens), db)
    return completion
