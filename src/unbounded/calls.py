"""Every model call of a run goes through here: budget reservation, per-backend concurrency, trace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from .budget import Ledger
from .errors import BudgetExceeded, ModelError
from .models.base import LM, Completion, Message, Usage, upper_bound_input_tokens
from .trace import Tracer

PREVIEW = 400


class ModelCaller:
    """Shared by all RLMs of one run (one event loop)."""

    def __init__(self, ledger: Ledger, tracer: Tracer, options: dict[str, Any] | None = None):
        self.ledger = ledger
        self.tracer = tracer
        self.options = dict(options or {})
        self._sems: dict[int, asyncio.Semaphore] = {}
        self.in_flight = 0

    def _sem(self, lm: LM) -> asyncio.Semaphore:
        key = id(lm)
        sem = self._sems.get(key)
        if sem is None:
            sem = asyncio.Semaphore(max(1, int(getattr(lm, "max_concurrency", 32) or 1)))
            self._sems[key] = sem
        return sem

    def _bounds(self, lm: LM, messages: Sequence[Message], max_tokens: int) -> tuple[int, float | None]:
        counted = None
        count = getattr(lm, "count_tokens", None)
        if count is not None:
            try:
                counted = count(messages)
            except Exception:
                counted = None
        tokens_in = counted if counted is not None else upper_bound_input_tokens(messages)
        cost_fn = getattr(lm, "cost", None)
        cost = None
        if cost_fn is not None:
            cost = cost_fn(Usage(calls=1, input_tokens=tokens_in, output_tokens=max_tokens))
        return tokens_in + max_tokens, cost

    async def complete(
        self, lm: LM, messages: Sequence[Message], *, purpose: str, parent: str | None, **opts: Any
    ) -> Completion:
        """One model call. Raises BudgetExceeded before calling if it would not fit; ModelError on failure."""
        merged = {**self.options, **opts}
        max_tokens = int(merged.get("max_tokens") or getattr(lm, "default_max_tokens", 1024) or 1024)
        merged["max_tokens"] = max_tokens
        await _ensure_loaded(lm)
        tokens_upper, cost_upper = self._bounds(lm, messages, max_tokens)
        reservation = self.ledger.reserve(tokens_upper, cost_upper)
        req = self.tracer.emit(
            "lm_request",
            parent=parent,
            model=lm.name,
            purpose=purpose,
            messages=len(messages),
            input_chars=sum(len(m.content) for m in messages),
            last_message=messages[-1].content[:PREVIEW] if messages else "",
        )
        started = time.perf_counter()
        try:
            self.in_flight += 1
            try:
                async with self._sem(lm):
                    completion = await self._call_with_deadline(lm, messages, merged)
            finally:
                self.in_flight -= 1
        except BaseException as exc:
            # A failed call may still have been billed (empty completions): count those tokens, not a call.
            billed = getattr(exc, "billed", None) if isinstance(exc, ModelError) else None
            if billed is not None:
                billed = Usage(
                    0, billed.input_tokens, billed.output_tokens, billed.cached_input_tokens, billed.cost_usd
                )
            self.ledger.settle(reservation, lm.name, billed)
            failure: dict[str, Any] = {"usage": billed.to_dict()} if billed is not None else {}
            self.tracer.emit(
                "lm_response",
                id=req.id,
                parent=parent,
                model=lm.name,
                error=f"{type(exc).__name__}: {exc}",
                duration=time.perf_counter() - started,
                **failure,
            )
            raise
        usage = completion.usage
        if usage.calls == 0:
            usage.calls = 1
        self.ledger.settle(reservation, lm.name, usage)
        self.tracer.emit(
            "lm_response",
            id=req.id,
            parent=parent,
            model=lm.name,
            purpose=purpose,
            text=completion.text,
            usage=usage.to_dict(),
            cached=completion.cached,
            attempts=completion.extra.get("attempts"),
            finish_reason=completion.finish_reason,
            duration=time.perf_counter() - started,
        )
        return completion

    async def _call_with_deadline(self, lm: LM, messages: Sequence[Message], opts: dict[str, Any]) -> Completion:
        left = self.ledger.seconds_left()
        if left is None:
            return await lm.complete(messages, **opts)
        if left <= 0:
            self.ledger.check_time()
        try:
            return await asyncio.wait_for(lm.complete(messages, **opts), left)
        except TimeoutError:
            try:
                self.ledger.check_time()
            except BudgetExceeded:
                raise
            raise ModelError("model call timed out", kind="timeout") from None


async def _ensure_loaded(lm: LM) -> None:
    """Load a lazily loaded backend (the embedded model) off the event loop before the first call.

    ``_bounds`` counts tokens synchronously with the backend's tokenizer, which for an unloaded
    local model would load the weights on the event loop thread and stall every other task.
    """
    aload = getattr(lm, "aload", None)
    if callable(aload) and getattr(lm, "loaded", True) is False:
        await aload()
