"""Serving the sub-calls that model code makes: ``llm_query``, ``llm_batch``, ``rlm_query``,
``rlm_batch`` and host tools.

One ``SubCallRouter`` per RLM. The REPL hands it each call (``await router(kind, payload, cell_id)``);
it records the call in the trace, runs it — a model call through the run's ``ModelCaller`` (budget,
concurrency, trace), a child RLM through the engine's ``ChildSolver``, a tool in a thread — and
returns the value or raises with a message for the model. The kinds are those of
``repl.subcall_kinds.SUBCALLS``; ``ROUTES`` and ``SUMMARIES`` below cover exactly them.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from .assembly import ModelSet
from .errors import BatchOverBudget, BudgetExceeded
from .models.base import LMBase, Message
from .runstate import Node, RunState
from .styles import truncate_middle


class ChildSolver(Protocol):
    """Runs a child RLM (the engine supplies it) and returns its answer or an error string."""

    async def __call__(self, run: RunState, parent: Node, question: str, context: Any, parent_event: str) -> str: ...


class SubCallRouter:
    """The sub-calls of one RLM's code."""

    def __init__(
        self,
        run: RunState,
        node: Node,
        models: ModelSet,
        *,
        options: Mapping[str, Any],
        strict: bool,
        max_depth: int,
        tools: Mapping[str, Callable[..., Any]],
        solve_child: ChildSolver,
    ) -> None:
        self.run = run
        self.node = node
        self.models = models
        self.options = dict(options)
        self.strict = strict
        self.max_depth = max_depth
        self.tools = tools
        self.solve_child = solve_child

    async def __call__(self, kind: str, payload: dict[str, Any], cell_id: str | None) -> Any:
        parent = cell_id or self.node.id
        self.run.subcalls += 1
        tracer = self.run.tracer
        start = tracer.emit("subcall_start", parent=parent, kind=kind, summary=SUMMARIES[kind](payload))
        ok = False
        try:
            value = await ROUTES[kind](self, payload, start.id)
            ok = True
            return value
        finally:
            tracer.emit("subcall_end", id=start.id, parent=parent, kind=kind, ok=ok)

    # -- the kinds ---------------------------------------------------------------------------------
    async def llm_query(self, payload: dict[str, Any], parent: str) -> str:
        schema = payload.get("schema")
        return await self.ask(str(payload.get("prompt", "")), payload.get("model"), parent, schema=schema)

    async def llm_batch(self, payload: dict[str, Any], parent: str) -> list[str]:
        prompts = payload.get("prompts") or []
        model = payload.get("model")
        self.models.pick(model)  # an unknown model fails the whole batch at once
        self._fits_budget(len(prompts))

        async def one(prompt: str) -> str:
            async with self.run.batch_sem:
                try:
                    return await self.ask(str(prompt), model, parent)
                except Exception as exc:  # each item fails alone, as a marked string
                    return f"[error: {exc}]"

        return list(await asyncio.gather(*(one(p) for p in prompts)))

    def _fits_budget(self, n: int) -> None:
        """Refuse, before any of it runs, a batch the call budget cannot finish with a call to spare for the
        root's next turn: started, it would spend every call left on part of the list and end the run
        with no answer. Refused, it leaves the calls for a narrower batch."""
        left = self.run.ledger.calls_left()
        if left is None or n < left or self.strict:
            return
        room = max(0, left - 1)
        raise BatchOverBudget(
            f"llm_batch of {n} prompts needs {n} model calls, and this run has {left} left "
            f"(max_llm_calls={self.run.ledger.budget.max_llm_calls}, one kept for your next turn); nothing "
            f"was asked. Narrow the list first (a stricter filter), or ask about at most {room} at a time"
        )

    async def rlm_query(self, payload: dict[str, Any], parent: str) -> str:
        return await self.recurse(str(payload.get("question", "")), payload.get("context"), parent)

    async def rlm_batch(self, payload: dict[str, Any], parent: str) -> list[str]:
        async def one(pair: list[Any]) -> str:
            async with self.run.batch_sem:
                try:
                    return await self.recurse(str(pair[0]), pair[1], parent)
                except Exception as exc:
                    return f"[error: {exc}]"

        return list(await asyncio.gather(*(one(p) for p in payload.get("pairs") or [])))

    async def tool(self, payload: dict[str, Any], parent: str) -> Any:
        name = str(payload.get("name"))
        fn = self.tools.get(name)
        if fn is None:
            raise KeyError(f"no tool named {name!r}")
        args, kwargs = payload.get("args") or [], payload.get("kwargs") or {}
        if inspect.iscoroutinefunction(fn):
            return await fn(*args, **kwargs)
        value = await asyncio.to_thread(fn, *args, **kwargs)
        if inspect.isawaitable(value):
            value = await value
        return value

    # -- shared ------------------------------------------------------------------------------------
    async def ask(self, prompt: str, model: str | None, parent: str, *, schema: dict[str, Any] | None = None) -> str:
        """One plain sub-model call (asking for JSON of ``schema``'s shape when one is given)."""
        lm = self.models.pick(model)
        opts = {**self.options, "schema": schema} if schema is not None else self.options
        try:
            completion = await self.run.caller.complete(lm, [Message("user", prompt)], purpose="sub", parent=parent, **opts)
        except BudgetExceeded as exc:
            if self.strict:
                raise
            raise BudgetExceeded(exc.limit, f"{exc} — no more sub-calls can be made") from None
        return completion.text

    async def recurse(self, question: str, context: Any, parent: str) -> str:
        """A child RLM at depth + 1; at the depth limit, a plain sub-call over the (cut) context."""
        if context is None:
            context = self.node.context
        if self.node.depth + 1 > self.max_depth:
            text = context if isinstance(context, str) else _as_text(context)
            prompt = f"{truncate_middle(text, sub_prompt_chars(self.models.sub))}\n\n{question}"
            return await self.ask(prompt, None, parent)
        return await self.solve_child(self.run, self.node, question, context, parent)


Route = Callable[[SubCallRouter, dict[str, Any], str], Awaitable[Any]]

ROUTES: dict[str, Route] = {
    "llm_query": SubCallRouter.llm_query,
    "llm_batch": SubCallRouter.llm_batch,
    "rlm_query": SubCallRouter.rlm_query,
    "rlm_batch": SubCallRouter.rlm_batch,
    "tool": SubCallRouter.tool,
}


def _n(payload: dict[str, Any], key: str) -> int:
    value = payload.get(key)
    return len(value) if isinstance(value, list) else 0


#: What the trace records of each kind of call (sizes, not the data).
SUMMARIES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "llm_query": lambda p: {"prompt_chars": len(str(p.get("prompt", ""))), "model": p.get("model")},
    "llm_batch": lambda p: {"n": _n(p, "prompts"), "model": p.get("model")},
    "rlm_query": lambda p: {"question": str(p.get("question", ""))[:200]},
    "rlm_batch": lambda p: {"n": _n(p, "pairs")},
    "tool": lambda p: {"name": p.get("name")},
}


def sub_prompt_chars(lm: LMBase) -> int:
    """How much text fits one sub-call to ``lm`` (about 3 characters a token, room for the reply)."""
    if lm.context_window:
        return max(2_000, int(lm.context_window * 3) - 4_000)
    return 400_000


def _as_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, indent=0)
    except (TypeError, ValueError):
        return str(value)

