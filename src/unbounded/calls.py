"""Every model call of a run goes through here: budget reservation, per-backend concurrency, trace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from .budget import Ledger
from .errors import BudgetExceeded, MalformedResponseError, ModelError, ModelTimeoutError
from .models.base import Completion, LMBase, Message, Usage, upper_bound_input_tokens
from .trace import Tracer


class ModelCaller:
    """Shared by all RLMs of one run (one event loop)."""

    def __init__(self, ledger: Ledger, tracer: Tracer, options: dict[str, Any] | None = None):
        self.ledger = ledger
        self.tracer = tracer
        self.options = dict(options or {})
        self._sems: dict[int, asyncio.Semaphore] = {}
        self.in_flight = 0

    def _sem(self, lm: LMBase) -> asyncio.Semaphore:
        key = id(lm)
        sem = self._sems.get(key)
        if sem is None:
            sem = asyncio.Semaphore(max(1, int(lm.max_concurrency or 1)))
            self._sems[key] = sem
        return sem

    def _bounds(self, lm: LMBase, messages: Sequence[Message], max_tokens: int) -> tuple[int, float | None]:
        """Upper bounds of what the call may use: tokens (exact input where the model has a tokenizer,
        else a byte-level bound) and cost (None where the price is unknown)."""
        counted = None
        if lm.abilities.tokenizer:
            try:
                counted = lm.count_tokens(messages)
            except Exception:  # a tokenizer failure must not fail the call: fall back to the bound
                counted = None
        tokens_in = counted if counted is not None else upper_bound_input_tokens(messages)
        cost = lm.cost(Usage(calls=1, input_tokens=tokens_in, output_tokens=max_tokens))
        return tokens_in + max_tokens, cost

    async def complete(
        self,
        lm: LMBase,
        messages: Sequence[Message],
        *,
        purpose: str,
        parent: str | None,
        on_text: Callable[[str], None] | None = None,
        **opts: Any,
    ) -> Completion:
        """One model call. Raises BudgetExceeded before calling if it would not fit; ModelError on failure.

        With ``on_text`` the reply is streamed (``lm.astream``) and each new piece of text handed to it
        as it comes; the budget, the trace and the returned ``Completion`` are the same either way.
        """
        merged = {**self.options, **opts}
        max_tokens = int(merged.get("max_tokens") or lm.default_max_tokens or 1024)
        merged["max_tokens"] = max_tokens
        if lm.abilities.lazy_load and not lm.loaded:
            # Load off the event loop: counting tokens below would otherwise load the weights on
            # the loop's thread and stall every other task.
            await lm.aload()
        tokens_upper, cost_upper = self._bounds(lm, messages, max_tokens)
        reservation = self.ledger.reserve(tokens_upper, cost_upper)
        req = self.tracer.emit(
            "lm_request",
            parent=parent,
            model=lm.name,
            purpose=purpose,
            messages=len(messages),
            input_chars=sum(len(m.content) for m in messages),
            last_message=messages[-1].content if messages else "",
        )
        started = time.perf_counter()
        try:
            self.in_flight += 1
            try:
                async with self._sem(lm):
                    completion = await self._call_with_deadline(lm, messages, merged, on_text)
            finally:
                self.in_flight -= 1
        except BaseException as exc:
            # A failed call may still have been billed (empty completions): count those tokens, not a call.
            billed = exc.billed if isinstance(exc, ModelError) else None
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

    async def _call_with_deadline(
        self, lm: LMBase, messages: Sequence[Message], opts: dict[str, Any], on_text: Callable[[str], None] | None
    ) -> Completion:
        call = _streamed(lm, messages, opts, on_text) if on_text is not None else lm.complete(messages, **opts)
        left = self.ledger.seconds_left()
        if left is None:
            return await call
        if left <= 0:
            call.close()
            self.ledger.check_time()
        try:
            return await asyncio.wait_for(call, left)
        except TimeoutError:
            try:
                self.ledger.check_time()
            except BudgetExceeded:
                raise
            raise ModelTimeoutError("model call timed out: the run's wall-clock limit is near") from None


async def _streamed(
    lm: LMBase, messages: Sequence[Message], opts: dict[str, Any], on_text: Callable[[str], None]
) -> Completion:
    """The reply of ``lm.astream``, its new text handed to ``on_text`` piece by piece."""
    stream = lm.astream(messages, **opts)
    completion: Completion | None = None
    try:
        async for delta in stream:
            if delta.text:
                on_text(delta.text)
            if delta.completion is not None:
                completion = delta.completion
    finally:
        await stream.aclose()
    if completion is None:
        raise MalformedResponseError(f"{lm.name}: the stream ended without its final completion")
    return completion
