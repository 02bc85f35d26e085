"""The engine behind `Provider.rank`: cache, budget, bounded concurrency, parsing, one repair retry, the ledger.

Per request: build the prompt and its call_key; reuse a stored reply when there is one (no cost, counts as a labelled
session); otherwise take a session from the instance budget, reserve the call's worst-case USD, write a "pending"
ledger row, call, settle the cost the server reported, parse; a reply without a usable ranking is retried once with
a repair message, then recorded "failed" (cost counted, excluded from distillation). Each finished call is written
to llm_calls by the thread that made it.

Money guarantees: no call starts once the budget (or a parent: the launch) is stopped or its cap cannot hold the
call's worst case. A reply reporting more completion tokens than max_tokens (or costing more than the worst case, or
longer than max_tokens can be) is refused (status "error", its reported cost counted) and stops every budget up to
the root: the server ignores the bound the cap relies on. CIRCUIT_BREAKER consecutive failed calls (transport/API
errors) stop the rest of the queue. Cancelling (budget.stop, or an exception such as the CLI's signal in the waiting
thread) starts no new call, drops the queued ones and records the ones in flight when they finish. A pending row left
by a killed process is counted as possibly billed (see core.teachers.cache).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from core import store
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
CIRCUIT_BREAKER = 5  # consecutive failed calls that stop the queue
LEDGER_FAILED = "not asked: could not write the pending row to llm_calls"


def reply_char_limit(max_tokens: int) -> int:
    """The longest reply text kept (and accepted) for a call capped at `max_tokens`: 16 characters a token, at least
    8000 (no tokenizer's tokens average more)."""
    return max(8000, 16 * int(max_tokens))


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [truncated {len(text) - limit} characters]"


def over_limit(completion: Completion, max_tokens: int, usd: float, worst_usd: float) -> str | None:
    """Why a reply cannot be trusted against the cap (None when it can): more completion tokens than max_tokens,
    more USD than the call's worst case, or more text than max_tokens allows."""
    if completion.usage_reported and completion.output_tokens > max_tokens:
        return (f"refused: the server reported {completion.output_tokens} completion tokens for max_tokens="
                f"{max_tokens}")
    if usd > worst_usd * (1 + 1e-9) + 1e-12:
        return f"refused: the server reported ${usd:.6f} for a call whose worst case is ${worst_usd:.6f}"
    if len(completion.text) > reply_char_limit(max_tokens):
        return f"refused: a reply of {len(completion.text)} characters is longer than max_tokens={max_tokens} allows"
    return None


class _Breaker:
    """Counts consecutive failed calls; at `limit` it stops `guard` (the rest of this queue)."""

    def __init__(self, guard: Budget, limit: int = CIRCUIT_BREAKER) -> None:
        self.guard, self.limit, self.count = guard, limit, 0
        self._lock = threading.Lock()

    def success(self) -> None:
        with self._lock:
            self.count = 0

    def failure(self, error: str | None) -> None:
        with self._lock:
            self.count += 1
            if self.count >= self.limit:
                self.guard.stop(f"circuit breaker: {self.count} consecutive failed calls (last: {error})")


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
    refused: str | None = None
    interrupted_usd: float = 0.0
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    usd: float = 0.0
    latency_s: float = 0.0

    def next_turns(self) -> list[Turn] | None:
        """The turns for the next attempt, or None when done."""
        if self.skipped or self.refused or self.transport_error or self.attempts >= MAX_ATTEMPTS:
            return None
        if self.attempts == 0:
            return []
        if self.parsed is not None and self.parsed.usable:
            return None
        last = self.replies[-1] if self.replies and self.replies[-1].strip() else "(empty reply)"
        return [Turn("assistant", last), Turn("user", repair_message(self.request.options))]

    def absorb(self, completion: Completion, usd: float, refused: str | None = None) -> None:
        """Add one reply and its reported cost; a refused reply's cost counts but its ranking is not used."""
        self.attempts += 1
        self.replies.append(completion.text)
        self.input_tokens += completion.input_tokens
        self.output_tokens += completion.output_tokens
        self.cache_read_tokens += completion.cache_read_tokens
        self.cache_write_tokens += completion.cache_write_tokens
        self.usd += usd
        self.latency_s += completion.latency_s
        if refused:
            self.refused, self.error, self.parsed = refused, refused, None
            return
        self.parsed = parse_reply(completion.text, self.candidates, self.request.options.n_out)

    def fail(self, error: BaseException | str) -> None:
        self.attempts += 1
        self.transport_error = True
        self.error = error if isinstance(error, str) else describe_error(error)

    @property
    def status(self) -> str:
        if self.skipped and self.attempts == 0:
            return "skipped"
        if self.refused:
            return "error"
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
    limit = reply_char_limit(provider.max_output_tokens)
    replies = [_bounded(text, limit) for text in job.replies] or [""]
    reply = "\n--- repair reply ---\n".join(replies)
    request = job.request
    return cache.CallRecord(
        call_key=job.key, provider=provider.name, model=provider.model, prompt_hash=cache.sha256(job.prompt.text),
        prompt=job.prompt.text, raw_reply=reply, ranking=response.ranking, rationale=response.rationale,
        n_valid=response.n_valid, input_tokens=job.input_tokens, output_tokens=job.output_tokens, usd=job.usd,
        latency_s=job.latency_s, error=response.error, simulated=provider.simulated,
        session_id=int(request.session_id), dataset=request.dataset,
        label=None if request.label is None else int(request.label), raw_ranking=response.raw_ranking,
        status=response.status, attempts=job.attempts, mode=mode, cache_read_tokens=job.cache_read_tokens,
        cache_write_tokens=job.cache_write_tokens, interrupted_usd=job.interrupted_usd)


def _pending_of(provider: "Provider", job: _Job, mode: str, reserved_usd: float) -> cache.CallRecord:
    """The ledger row written before a request: what the job has so far, status pending, the worst case reserved."""
    limit = reply_char_limit(provider.max_output_tokens)
    request = job.request
    return cache.CallRecord(
        call_key=job.key, provider=provider.name, model=provider.model, prompt_hash=cache.sha256(job.prompt.text),
        prompt=job.prompt.text, raw_reply="\n--- repair reply ---\n".join(_bounded(t, limit) for t in job.replies),
        ranking=(), rationale="", n_valid=0, input_tokens=job.input_tokens, output_tokens=job.output_tokens,
        usd=job.usd, latency_s=job.latency_s, error=None, simulated=provider.simulated,
        session_id=int(request.session_id), dataset=request.dataset,
        label=None if request.label is None else int(request.label), status=cache.PENDING, attempts=job.attempts,
        mode=mode, cache_read_tokens=job.cache_read_tokens, cache_write_tokens=job.cache_write_tokens,
        reserved_usd=reserved_usd, interrupted_usd=job.interrupted_usd)


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


def _not_asked(guard: Budget) -> str:
    return f"not asked: {guard.stopped}" if guard.stopped else SKIP_USD


def _trusted(provider: "Provider", completion: Completion, max_tokens: int, worst_usd: float,
             batch: bool) -> tuple[Completion, float, str | None]:
    """(completion, its USD, why it is refused or None). Token counts a server did not report are estimates: they
    are bounded by what was asked for, never trusted to stop a run."""
    if not completion.usage_reported:
        completion = Completion(**{**completion.__dict__, "output_tokens": min(completion.output_tokens, max_tokens)})
    usd = pricing.cost(provider.price, completion, batch=batch)
    if not completion.usage_reported:
        return completion, min(usd, worst_usd), None
    return completion, usd, over_limit(completion, max_tokens, usd, worst_usd)


def _refuse(guard: Budget, provider: "Provider", reason: str) -> None:
    """A server broke the bound the cap relies on: no call starts anywhere under the same root budget."""
    guard.root().stop(f"{provider.name}/{provider.model} {reason.removeprefix('refused: ')}")


def _work(provider: "Provider", job: _Job, guard: Budget, breaker: _Breaker, ledger: bool,
          db: Path | str | None) -> None:
    """All attempts of one job, in the calling thread."""
    while (turns := job.next_turns()) is not None:
        if guard.stopped:
            job.skipped = _not_asked(guard)
            return
        worst = _worst(provider, job, turns, batch=False)
        if not guard.reserve(worst):
            job.skipped = _not_asked(guard)
            return
        if ledger and not cache.record(_pending_of(provider, job, "sync", worst), db):
            guard.settle(worst, 0.0)
            job.fail(LEDGER_FAILED)
            breaker.failure(LEDGER_FAILED)
            return
        if guard.stopped and job.attempts == 0:  # stopped while the pending row was written: not sent after all
            guard.settle(worst, 0.0)
            cache.withdraw_pending(_pending_of(provider, job, "sync", 0.0), db)
            job.skipped = _not_asked(guard)
            return
        actual = 0.0
        try:
            start = time.perf_counter()
            completion = provider.generate(job.prompt, turns, job.request, provider.max_output_tokens)
            if completion.latency_s == 0.0 and not provider.instant:
                completion = Completion(**{**completion.__dict__, "latency_s": time.perf_counter() - start})
            completion, actual, refused = _trusted(provider, completion, provider.max_output_tokens, worst, False)
            job.absorb(completion, actual, refused)
            if refused:
                _refuse(guard, provider, refused)
            breaker.success()
        except Exception as error:  # one failing session never fails the run
            job.fail(error)
            breaker.failure(job.error)
        finally:
            guard.settle(worst, actual)


def _run_batch(provider: "Provider", jobs: list[_Job], guard: Budget, poll_interval_s: float,
               max_wait_s: float, ledger: bool, db: Path | str | None) -> None:
    """Rounds through the provider's batch API: the calls, then one round of repairs."""
    for round_ in range(MAX_ATTEMPTS):
        entries, reserved = [], {}
        for job in jobs:
            turns = job.next_turns()
            if turns is None:
                continue
            worst = _worst(provider, job, turns, batch=True)
            if not guard.reserve(worst, wait=False):
                job.skipped = _not_asked(guard)
                continue
            custom_id = f"r{round_}-{job.index}"
            reserved[custom_id] = (job, worst)
            entries.append((custom_id, job.prompt, turns, job.request))
        if not entries:
            return
        if ledger and not cache.record_many([_pending_of(provider, job, "batch", worst)
                                             for job, worst in reserved.values()], db):
            results: dict[str, Completion | str] = {custom_id: LEDGER_FAILED for custom_id in reserved}
        else:
            try:
                results = provider.submit_batch(entries, poll_interval_s=poll_interval_s, max_wait_s=max_wait_s)
            except Exception as error:
                results = {custom_id: describe_error(error) for custom_id in reserved}
        for custom_id, (job, worst) in reserved.items():
            result = results.get(custom_id, "no result for this request in the batch output")
            actual = 0.0
            if isinstance(result, Completion):
                result, actual, refused = _trusted(provider, result, provider.max_output_tokens, worst, True)
                job.absorb(result, actual, refused)
                if refused:
                    _refuse(guard, provider, refused)
            else:
                job.fail(scrub(result))
            guard.settle(worst, actual)


def _check_pending(provider: "Provider", jobs: Sequence[_Job], rows: dict[str, dict[str, Any]], guard: Budget,
                   db: Path | str | None) -> None:
    """Pending rows of a dead process (or of this one, whose runs do not overlap) become "interrupted", their
    possible charge counted against the cap; a live process's pending call is not made again."""
    dead = []
    for job in jobs:
        row = rows.get(job.key)
        if row is None:
            continue
        job.interrupted_usd = float(row.get("interrupted_usd") or 0.0)
        if row["status"] != cache.PENDING:
            continue
        pid = row.get("pid")
        if pid and int(pid) != os.getpid() and store.process_alive(int(pid)):
            job.skipped = f"not asked: process {pid} is making this call now (pending in llm_calls)"
        else:
            dead.append(job)
    if not dead:
        return
    added = cache.mark_interrupted([job.key for job in dead], db)
    for job in dead:
        usd = added.get(job.key, 0.0)
        job.interrupted_usd += usd
        guard.charge_possible(usd)
    if added:
        log.warning("%d call(s) in llm_calls were left pending by a process that ended: up to $%.4f may have been "
                    "billed for them; counted against the cap, asked again", len(added), sum(added.values()))


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

    rows = cache.lookup([j.key for j in jobs], db, reusable_only=False) if provider.records_calls else {}
    cached_rows = {k: r for k, r in rows.items() if r["status"] in cache.REUSABLE} if use_cache else {}
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
    # this call's own stop switch (circuit breaker), under the caller's budget and its parents (caps, cancel)
    guard = Budget(parent=budget)
    breaker = _Breaker(guard)
    ledger = provider.records_calls and not provider.instant
    if ledger:
        _check_pending(provider, todo, rows, guard, db)

    def finish(job: _Job, mode: str) -> RankResponse:
        response = _response(provider, job)
        if job.skipped and response.status == "skipped":
            budget.give_back_session()
        responses[job.index] = response
        return response

    if todo and not guard.stopped:
        provider.prepare([j.request for j in todo if not j.skipped])
    mode = "batch" if batch else "sync"
    pending_records: list[cache.CallRecord] = []
    if batch:
        if not provider.supports_batch:
            raise NotImplementedError(f"provider {provider.name!r} has no batch mode")
        _run_batch(provider, todo, guard, poll_interval_s, max_wait_s, ledger, db)
        for job in todo:
            response = finish(job, mode)
            if provider.records_calls and response.status != "skipped":
                cache.record(_record_of(provider, job, response, mode), db)
            _notify(on_response, response)
    else:
        def one(job: _Job) -> None:
            _work(provider, job, guard, breaker, ledger, db)
            response = finish(job, mode)
            if provider.records_calls and response.status != "skipped":
                record = _record_of(provider, job, response, mode)
                if provider.instant:
                    pending_records.append(record)
                else:
                    cache.record(record, db)
            _notify(on_response, response)

        if provider.instant or concurrency <= 1:
            try:
                for job in todo:
                    one(job)
            finally:
                if pending_records:
                    cache.record_many(pending_records, db)
        else:
            pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"teacher-{provider.name}")
            futures = [pool.submit(one, job) for job in todo]
            try:
                for future in futures:
                    future.result()
            except BaseException:  # cancelled (a signal in this thread) or a bug: start nothing more
                guard.stop("cancelled")
                pool.shutdown(wait=True, cancel_futures=True)  # the calls in flight finish and are recorded
                raise
            pool.shutdown(wait=True)
    for job in followers:
        leader = responses[leaders[job.key].index]
        assert leader is not None
        responses[job.index] = RankResponse(**{**leader.__dict__, "session_id": int(job.request.session_id),
                                               "cached": True})
    return [r for r in responses if r is not None]


def complete(provider: "Provider", prompt: Prompt, *, max_tokens: int, db: Path | str | None = None,
             dataset: str = "", use_cache: bool = True, budget: Budget | None = None) -> Completion:
    """One free-form call through the cache and ledger (no parsing); raises if the call fails or is refused."""
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
        raise RuntimeError(_not_asked(budget))

    def row(status: str, text: str = "", completion: Completion | None = None, usd: float = 0.0,
            error: str | None = None, reserved: float = 0.0) -> cache.CallRecord:
        done = completion or Completion(text="")
        return cache.CallRecord(
            call_key=key, provider=provider.name, model=provider.model, prompt_hash=cache.sha256(prompt.text),
            prompt=prompt.text, raw_reply=_bounded(text, reply_char_limit(max_tokens)), ranking=(), rationale="",
            n_valid=0, input_tokens=done.input_tokens, output_tokens=done.output_tokens, usd=usd,
            latency_s=done.latency_s, error=error, simulated=provider.simulated, dataset=dataset, status=status,
            mode="sync", cache_read_tokens=done.cache_read_tokens, cache_write_tokens=done.cache_write_tokens,
            reserved_usd=reserved)

    ledger = provider.records_calls and not provider.instant
    if ledger and not cache.record(row(cache.PENDING, reserved=worst), db):
        budget.settle(worst, 0.0)
        raise RuntimeError(f"{provider.name}/{provider.model}: {LEDGER_FAILED}")
    actual = 0.0
    try:
        completion = provider.generate(prompt, [], None, max_tokens)
        completion, actual, refused = _trusted(provider, completion, max_tokens, worst, False)
    except Exception as error:
        if provider.records_calls:
            cache.record(row("error", error=describe_error(error)), db)
        raise RuntimeError(f"{provider.name}/{provider.model} call failed: {describe_error(error)}") from None
    finally:
        budget.settle(worst, actual)
    if refused:
        _refuse(budget, provider, refused)
        if provider.records_calls:
            cache.record(row("error", completion.text, completion, actual, refused), db)
        raise RuntimeError(f"{provider.name}/{provider.model}: {refused}")
    if provider.records_calls:
        cache.record(row("ok", completion.text, completion, actual), db)
    return completion
