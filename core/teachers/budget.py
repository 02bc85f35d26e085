"""The hard caps of a labelling run: instances (LLM-labelled sessions) and USD, per run and per launch.

Thread-safe. Before a call starts, its worst-case cost is reserved; if spent + reserved + worst would pass the cap
(of this budget or of any parent: a launch's cap over its runs, a run's cap over LLMD4Rec's re-ask rounds), the
caller waits while other calls are in flight (they may release unused reservation) and gives up when none is. After
the call the reservation is settled to the cost the server reported. A server that reports more than the worst case
(it ignored max_tokens) can push spending past the cap: the runner then stops the budget (no call starts after that)
and `report()` says by how much the cap was exceeded.

`stop(reason)` (also from a signal handler: it takes no lock) makes every later `reserve` fail, here and in every
child budget; the runner cancels its queued calls and records the finished ones.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass

EPS_USD = 1e-12


@dataclass
class BudgetState:
    sessions: int
    spent_usd: float
    reserved_usd: float
    in_flight: int


@dataclass(frozen=True)
class CapReport:
    """What a budget spent against its cap (USD). spent_usd includes possible_usd: the worst case of calls a killed
    process had in flight (they may have been billed). cap_reached: a call was refused by the cap or spending reached
    it; exceeded_by_usd: spent beyond the cap (> 0 only when a server reported more than the worst case). stopped:
    why calls stopped early (cancelled, circuit breaker, a server over its max_tokens), "" if they did not."""

    cap_usd: float | None
    spent_usd: float
    possible_usd: float
    cap_reached: bool
    exceeded_by_usd: float
    refused_calls: int
    stopped: str

    @property
    def message(self) -> str:
        """One line for the console and the Runs page; "" when the cap played no part."""
        parts = []
        if self.cap_usd is not None and self.exceeded_by_usd > 0:
            parts.append(f"USD cap ${self.cap_usd:.4f} EXCEEDED by ${self.exceeded_by_usd:.4f} "
                         f"(spent ${self.spent_usd:.4f}): a server reported more than the worst case")
        elif self.cap_usd is not None and self.cap_reached:
            parts.append(f"USD cap ${self.cap_usd:.4f} reached: spent ${self.spent_usd:.4f}, "
                         f"{self.refused_calls} call(s) not started")
        if self.possible_usd > 0:
            parts.append(f"${self.possible_usd:.4f} counted for calls a killed process left in flight "
                         "(they may have been billed)")
        if self.stopped:
            parts.append(f"stopped: {self.stopped}")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"message": self.message}


def _check_usd(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (USD), got {value!r}")
    return float(value)


class Budget:
    """max_sessions: the instance budget (None = no cap); max_usd: the USD cap (None = no cap); parent: a budget
    whose caps and stop also bind this one (the launch over a run, the run over a re-ask round).

    A session counts once it is labelled in this run (fresh or from the cache); only fresh calls spend USD.
    """

    def __init__(self, max_sessions: int | None = None, max_usd: float | None = None, *,
                 parent: "Budget | None" = None) -> None:
        if max_sessions is not None and max_sessions < 0:
            raise ValueError("max_sessions must be >= 0")
        self.max_sessions = max_sessions
        self.max_usd = _check_usd(max_usd, "max_usd")
        self.parent = parent
        self._sessions = 0
        self._spent = 0.0
        self._possible = 0.0
        self._reserved = 0.0
        self._in_flight = 0
        self._refused = 0
        self._stop_reason = ""
        self._stopped = threading.Event()
        self._cond = threading.Condition()

    def __repr__(self) -> str:
        return (f"Budget(max_sessions={self.max_sessions}, max_usd={self.max_usd}, sessions={self._sessions}, "
                f"spent_usd={self._spent:.6f})")

    @property
    def sessions(self) -> int:
        return self._sessions

    @property
    def spent_usd(self) -> float:
        return self._spent

    @property
    def possible_usd(self) -> float:
        return self._possible

    @property
    def stopped(self) -> str:
        """Why this budget (or a parent) stopped; "" while calls may still start."""
        budget: Budget | None = self
        while budget is not None:
            if budget._stopped.is_set():
                return budget._stop_reason or "stopped"
            budget = budget.parent
        return ""

    def stop(self, reason: str) -> None:
        """No call starts after this, here or in a child budget. Lock-free, so a signal handler may call it."""
        if not self._stopped.is_set():
            self._stop_reason = reason
            self._stopped.set()

    def root(self) -> "Budget":
        budget = self
        while budget.parent is not None:
            budget = budget.parent
        return budget

    def state(self) -> BudgetState:
        with self._cond:
            return BudgetState(self._sessions, self._spent, self._reserved, self._in_flight)

    def report(self) -> CapReport:
        with self._cond:
            exceeded = 0.0 if self.max_usd is None else max(0.0, self._spent - self.max_usd)
            reached = self.max_usd is not None and (self._refused > 0 or self._spent >= self.max_usd - EPS_USD)
            return CapReport(self.max_usd, self._spent, self._possible, reached, exceeded if exceeded > 1e-9 else 0.0,
                             self._refused, self.stopped)

    def take_session(self) -> bool:
        """Count one more labelled session; False when the instance budget is used up."""
        with self._cond:
            if self.max_sessions is not None and self._sessions >= self.max_sessions:
                return False
            self._sessions += 1
            return True

    def give_back_session(self) -> None:
        """Undo a take_session (for a session that was skipped before any call)."""
        with self._cond:
            self._sessions = max(0, self._sessions - 1)

    def _fits(self, usd: float) -> bool:
        return self.max_usd is None or self._spent + self._reserved + usd <= self.max_usd + EPS_USD

    def _take(self, usd: float) -> bool:
        """Reserve here and in every parent at once, without waiting; False (nothing reserved) if one cannot."""
        with self._cond:
            if self._stopped.is_set() or not self._fits(usd):
                return False
            if self.parent is not None and not self.parent._take(usd):
                return False
            self._reserved += usd
            self._in_flight += 1
            return True

    def reserve(self, usd: float, wait: bool = True) -> bool:
        """Reserve `usd` (a call's worst case) before starting it; False if it cannot fit under a cap or the budget
        is stopped.

        With wait=True a call that does not fit now waits while others are in flight (their unused reservations
        come back when they settle); wait=False answers at once (batch mode holds all reservations together).
        """
        with self._cond:
            while True:
                if self.stopped:
                    return False
                if self._take(usd):
                    return True
                hopeless = self.max_usd is not None and self._spent + usd > self.max_usd + EPS_USD
                if not wait or self._in_flight == 0 or hopeless:
                    self._count_refusal(usd)
                    return False
                self._cond.wait(timeout=0.5)  # a timeout, since stop() does not notify

    def _count_refusal(self, usd: float) -> None:
        """A call refused for money: counted by every budget in the chain whose cap it does not fit."""
        budget: Budget | None = self
        while budget is not None:
            with budget._cond:
                if not budget._fits(usd):
                    budget._refused += 1
            budget = budget.parent

    def settle(self, reserved: float, actual: float) -> None:
        """Replace a reservation by the actual cost (USD), here and in every parent, and wake waiting callers."""
        with self._cond:
            self._reserved = max(0.0, self._reserved - reserved)
            self._spent += actual
            self._in_flight = max(0, self._in_flight - 1)
            if self.parent is not None:
                self.parent.settle(reserved, actual)
            self._cond.notify_all()

    def charge_possible(self, usd: float) -> None:
        """Count `usd` that may have been billed (a killed process's in-flight call) as spent, here and above."""
        with self._cond:
            self._spent += usd
            self._possible += usd
            if self.parent is not None:
                self.parent.charge_possible(usd)
            self._cond.notify_all()
