"""The two hard caps of a labelling run: instances (LLM-labelled sessions) and USD.

Thread-safe. Before a call starts, its worst-case cost is reserved; if spent + reserved + worst would pass the cap,
the caller waits while other calls are in flight (they may release unused reservation) and gives up when none is.
After the call the reservation is settled to the actual cost. So spending never passes `max_usd`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class BudgetState:
    sessions: int
    spent_usd: float
    reserved_usd: float
    in_flight: int


class Budget:
    """max_sessions: the instance budget (None = no cap); max_usd: the USD cap (None = no cap).

    A session counts once it is labelled in this run (fresh or from the cache); only fresh calls spend USD.
    """

    def __init__(self, max_sessions: int | None = None, max_usd: float | None = None) -> None:
        if max_sessions is not None and max_sessions < 0:
            raise ValueError("max_sessions must be >= 0")
        if max_usd is not None and max_usd < 0:
            raise ValueError("max_usd must be >= 0")
        self.max_sessions = max_sessions
        self.max_usd = max_usd
        self._sessions = 0
        self._spent = 0.0
        self._reserved = 0.0
        self._in_flight = 0
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

    def state(self) -> BudgetState:
        with self._cond:
            return BudgetState(self._sessions, self._spent, self._reserved, self._in_flight)

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

    def reserve(self, usd: float, wait: bool = True) -> bool:
        """Reserve `usd` (a call's worst case) before starting it; False if it cannot fit under the cap.

        With wait=True a call that does not fit now waits while others are in flight (their unused reservations
        come back when they settle); wait=False answers at once (batch mode holds all reservations together).
        """
        with self._cond:
            while True:
                if self.max_usd is None or self._spent + self._reserved + usd <= self.max_usd + 1e-12:
                    self._reserved += usd
                    self._in_flight += 1
                    return True
                if not wait or self._in_flight == 0 or self._spent + usd > self.max_usd + 1e-12:
                    return False
                self._cond.wait()

    def settle(self, reserved: float, actual: float) -> None:
        """Replace a reservation by the actual cost (USD) and wake waiting callers."""
        with self._cond:
            self._reserved = max(0.0, self._reserved - reserved)
            self._spent += actual
            self._in_flight = max(0, self._in_flight - 1)
            self._cond.notify_all()
