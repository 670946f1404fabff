"""One ledger for the whole recursion tree.

A call *reserves* an upper bound of what it may use before it runs and *settles* the real
figures after, so limits hold under any concurrency: the sum of settled usage plus open
reservations never exceeds a limit. Running out marks the ledger exhausted with the limit's
name; the engine ends the run gracefully (or raises, with ``strict=True``).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

from .errors import BudgetExceeded
from .models.base import Usage


@dataclass(frozen=True, slots=True, init=False)
class Budget:
    """Limits for one run, shared by every RLM in its recursion tree.

    ``max_iterations`` is per RLM (each child has its own turn count); the others are totals over
    the run: model calls, tokens (input + output), cost in USD, wall-clock seconds. ``None`` means
    unlimited. ``strict=True`` raises ``BudgetExceeded`` instead of ending with the best answer so far.
    (``max_tokens=`` is the old name of ``max_total_tokens``: it still works, with a warning, but
    says "per call" to anyone who knows model APIs.)
    """

    max_iterations: int
    max_llm_calls: int | None
    max_total_tokens: int | None
    max_cost_usd: float | None
    max_seconds: float | None
    strict: bool

    def __init__(
        self,
        max_iterations: int = 20,
        max_llm_calls: int | None = 200,
        max_total_tokens: int | None = None,
        max_cost_usd: float | None = None,
        max_seconds: float | None = None,
        strict: bool = False,
        *,
        max_tokens: int | None = None,
    ) -> None:
        if max_tokens is not None:
            warnings.warn(
                "Budget(max_tokens=...) is deprecated: use max_total_tokens (a limit for the whole run)",
                DeprecationWarning,
                stacklevel=2,
            )
            if max_total_tokens is None:
                max_total_tokens = max_tokens
        for name, value in (
            ("max_iterations", max_iterations),
            ("max_llm_calls", max_llm_calls),
            ("max_total_tokens", max_total_tokens),
            ("max_cost_usd", max_cost_usd),
            ("max_seconds", max_seconds),
            ("strict", strict),
        ):
            object.__setattr__(self, name, value)
        if self.max_iterations < 1:
            raise ValueError("Budget.max_iterations must be at least 1")
        for name in ("max_llm_calls", "max_total_tokens", "max_cost_usd", "max_seconds"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Budget.{name} must be >= 0 or None")

    @property
    def max_tokens(self) -> int | None:
        """Deprecated name of ``max_total_tokens``."""
        warnings.warn("Budget.max_tokens is deprecated: use max_total_tokens", DeprecationWarning, stacklevel=2)
        return self.max_total_tokens


@dataclass(slots=True)
class Reservation:
    """What one in-flight call holds against the limits."""

    tokens: int
    cost_usd: float
    settled: bool = False


@dataclass
class Ledger:
    """The shared account. Single event loop, so plain arithmetic is race-free between awaits."""

    budget: Budget
    started: float = field(default_factory=time.monotonic)
    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True
    reserved_calls: int = 0
    reserved_tokens: int = 0
    reserved_cost: float = 0.0
    exhausted: str | None = None
    by_model: dict[str, Usage] = field(default_factory=dict)

    # -- time -------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def seconds_left(self) -> float | None:
        if self.budget.max_seconds is None:
            return None
        return self.budget.max_seconds - self.elapsed()

    def check_time(self) -> None:
        left = self.seconds_left()
        if left is not None and left <= 0:
            self._exhaust("max_seconds", f"wall-clock limit of {self.budget.max_seconds:g}s reached")

    # -- calls ------------------------------------------------------------------------
    def calls_left(self) -> int | None:
        """Model calls the run may still start (None: no call limit)."""
        if self.budget.max_llm_calls is None:
            return None
        return max(0, self.budget.max_llm_calls - self.calls - self.reserved_calls)

    def reserve(self, tokens_upper: int, cost_upper: float | None) -> Reservation:
        """Reserve one call. Raises BudgetExceeded (after marking the ledger) if it would not fit."""
        b = self.budget
        if self.exhausted:
            raise BudgetExceeded(self.exhausted, f"budget exhausted: {self.exhausted}")
        self.check_time()
        if b.max_llm_calls is not None and self.calls + self.reserved_calls + 1 > b.max_llm_calls:
            self._exhaust("max_llm_calls", f"limit of {b.max_llm_calls} model calls reached")
        if b.max_total_tokens is not None and self.tokens + self.reserved_tokens + tokens_upper > b.max_total_tokens:
            self._exhaust(
                "max_total_tokens",
                f"token limit of {b.max_total_tokens} would be exceeded "
                f"(used {self.tokens}, in flight {self.reserved_tokens}, this call up to {tokens_upper})",
            )
        cost = 0.0
        if b.max_cost_usd is not None:
            if cost_upper is None:
                self._exhaust("max_cost_usd", "model price unknown, so a cost limit cannot be enforced")
            cost = float(cost_upper or 0.0)
            if self.cost_usd + self.reserved_cost + cost > b.max_cost_usd:
                self._exhaust(
                    "max_cost_usd",
                    f"cost limit of ${b.max_cost_usd:g} would be exceeded "
                    f"(spent ${self.cost_usd:.4f}, in flight ${self.reserved_cost:.4f}, this call up to ${cost:.4f})",
                )
        self.reserved_calls += 1
        self.reserved_tokens += tokens_upper
        self.reserved_cost += cost
        return Reservation(tokens=tokens_upper, cost_usd=cost)

    def settle(self, reservation: Reservation, model: str, usage: Usage | None) -> None:
        """Replace a reservation by what the call really used (``None``: the call failed, nothing billed;
        it still counts as a call)."""
        if reservation.settled:
            return
        reservation.settled = True
        self.reserved_calls -= 1
        self.reserved_tokens -= reservation.tokens
        self.reserved_cost -= reservation.cost_usd
        self.calls += 1  # attempts count against max_llm_calls, billed or not
        if usage is None:
            return
        self.tokens += usage.input_tokens + usage.output_tokens
        if usage.cost_usd is None:
            self.cost_known = False
        else:
            self.cost_usd += usage.cost_usd
        acc = self.by_model.setdefault(model, Usage(cost_usd=0.0))
        one = Usage(
            calls=usage.calls,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            cost_usd=usage.cost_usd,
        )
        acc.add(one)

    def _exhaust(self, limit: str, message: str) -> None:
        if self.exhausted is None:
            self.exhausted = limit
        raise BudgetExceeded(limit, f"budget exhausted: {limit} ({message})")

    def total_usage(self) -> Usage:
        return Usage.sum(self.by_model.values())

    def snapshot(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd if self.cost_known else None,
            "in_flight": self.reserved_calls,
            "elapsed": round(self.elapsed(), 3),
            "exhausted": self.exhausted,
        }
