"""The server's core, shared by the OpenAI routes and the MCP tools: one place that checks what a
request may do (model, budget, paths, contexts), admits it to the gate and starts its run.

Validation happens before a run is admitted, so a bad request gets its 4xx before any response
starts; loading, the run and its cleanup happen on the run's own task (``RunHandle``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from ..budget import Budget
from ..context import LoadedContext, load_context, load_inputs
from ..engine import RLM
from ..loaders import LoadOptions
from ..trace import Event
from .auth import Keys
from .budgets import request_budget
from .config import ServeConfig
from .errors import BadRequest
from .gate import RunGate
from .metrics import Metrics
from .models import ModelPool
from .paths import PathGuard
from .registry import ContextEntry, ContextRegistry
from .runs import RunHandle, as_serve_error
from .traces import TraceStore, TraceWriter

Loader = Callable[[], LoadedContext]
#: A conversation context up to this many characters is described on the event loop; a larger one,
#: and any files, on a worker thread (the hop costs more than describing a small text).
INLINE_LOAD_CHARS = 1 << 18


@dataclass
class PreparedRun:
    """A checked request, ready to run: what to ask, of which context, with which RLM."""

    owner: str
    question: str
    model: str  # the root spec
    budget: Budget
    output: dict[str, Any] | None
    trace_id: str
    rlm: RLM | None = None  # a one-shot run's RLM
    load: Loader | None = None  # a one-shot run's context, loaded on the run's task
    load_inline: bool = False  # small enough to load without a thread
    context_id: str | None = None  # or a registered context's id
    writer: TraceWriter | None = None  # a one-shot run's trace
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return f"rlm/{self.model}"


@dataclass
class ContextSource:
    """A context to register: how to load it (on a worker thread), and for which model and budget."""

    load: Loader
    model: Any = "rlm"
    budget: Any = None
    name: str | None = None
    cleanup: Callable[[], None] | None = None


class Service:
    def __init__(self, config: ServeConfig) -> None:
        config.check()
        self.config = config
        self.keys = Keys(config.api_keys)
        self.paths = PathGuard(config.allow_paths)
        self.models = ModelPool(config.model, config.allow_models, config.sub_model)
        for spec in self.models.specs:  # an unknown spec or a missing key fails at start, not on a request
            self.models.root(spec)
        self.models.sub()
        self.gate = RunGate(config.max_concurrent, config.max_queue)
        self.metrics = Metrics()
        self.metrics.bind_gate(lambda: self.gate.running, lambda: self.gate.queued)
        self.traces = TraceStore(config.trace_dir, config.max_traces)
        self.registry = ContextRegistry(config.context_memory_chars, config.max_contexts)
        self.metrics.bind_contexts(lambda: self.registry.count, lambda: self.registry.chars)
        self.handles: set[RunHandle] = set()
        self.started = int(time.time())
        self.load_options = LoadOptions(max_total_bytes=config.context_memory_chars)
        _preload(config.repl)

    # -- building runs --------------------------------------------------------------------
    def new_rlm(self, spec: str, budget: Budget, trace: TraceWriter) -> RLM:
        try:
            return RLM(
                model=self.models.root(spec),
                sub_model=self.models.sub(),
                max_depth=self.config.max_depth,
                budget=budget,
                repl=self.config.repl,
                limits=self.config.limits,
                on_event=trace,
            )
        except Exception as exc:
            raise as_serve_error(exc) from exc

    def loader_for_paths(self, names: Any, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> Loader:
        """A loader of the files ``names`` stands for, checked now against ``--allow-path``."""
        real = self.paths.resolve_all(names)
        options = self.load_options

        def load() -> LoadedContext:
            return load_inputs([str(p) for p in real], include=include, exclude=exclude, options=options)

        return load

    def prepare(
        self,
        owner: str,
        *,
        question: str,
        model_id: Any,
        context: Any = None,
        paths: Any = None,
        include: tuple[str, ...] = (),
        exclude: tuple[str, ...] = (),
        context_id: str | None = None,
        budget: Any = None,
        output: dict[str, Any] | None = None,
    ) -> PreparedRun:
        """Check one question: of a registered context (``context_id``), of files (``paths``), or of a value."""
        if not isinstance(question, str) or not question.strip():
            raise BadRequest("the question is empty", param="messages")
        if context_id is not None:
            entry = self.registry.get(owner, context_id)
            if model_id not in (None, "rlm") and self.models.spec_for(model_id) != entry.model:
                raise BadRequest(
                    f"context {context_id} was loaded for model rlm/{entry.model}: ask it with that model (or 'rlm'), "
                    "or register the context again for this one",
                    param="model",
                )
            if budget is not None:
                raise BadRequest(
                    "a registered context runs with the budget it was registered with: give budget when you "
                    "POST /v1/contexts, or leave it out here",
                    param="budget",
                )
            return PreparedRun(owner, question, entry.model, entry.session.rlm.budget, output, entry.trace_id,
                               context_id=entry.id)  # fmt: skip
        spec = self.models.spec_for(model_id)
        run_budget = request_budget(self.config.budget, budget)
        if paths is not None:
            load = self.loader_for_paths(paths, include, exclude)
        else:
            if context is None:
                raise BadRequest("there is no context to answer about", param="messages")
            value = context

            def load() -> LoadedContext:
                return load_context(value, options=self.load_options)

        inline = paths is None and _chars(context) <= INLINE_LOAD_CHARS
        trace_id = self.traces.new_id("run")
        writer = TraceWriter(self.traces.add(trace_id, owner))
        rlm = self.new_rlm(spec, run_budget, writer)
        return PreparedRun(owner, question, spec, run_budget, output, trace_id, rlm=rlm, load=load, writer=writer,
                           load_inline=inline)  # fmt: skip

    def launch(self, prepared: PreparedRun, *, collect_events: bool = True) -> RunHandle:
        """Admit the run (``Overloaded`` when the gate is full) and start it on its own task."""
        ticket = self.gate.admit()
        wall = float(prepared.budget.max_seconds or self.config.budget.max_seconds or 0) + self.config.grace_seconds
        handle = RunHandle(
            lambda: self._events(prepared, collect_events),
            gate=self.gate,
            ticket=ticket,
            metrics=self.metrics,
            wall_clock=wall,
            collect_events=collect_events,
            trace_id=prepared.trace_id,
        )
        self.handles.add(handle)
        handle.task.add_done_callback(lambda _t: self.handles.discard(handle))
        return handle

    async def _events(self, prepared: PreparedRun, collect: bool) -> AsyncIterator[Event]:
        """The run's events (``collect``), or only its ``result`` event: a run nobody watches is awaited
        directly, without the task and queue a stream of events needs."""
        if prepared.context_id is not None:
            async with self.registry.use(prepared.owner, prepared.context_id) as entry:
                if not collect:
                    yield _result_event(await entry.session.aask(prepared.question, output=prepared.output))
                    return
                stream = entry.session.astream(prepared.question, output=prepared.output)
                async with contextlib.aclosing(stream) as events:
                    async for event in events:
                        yield event
            return
        assert prepared.rlm is not None and prepared.load is not None
        try:
            loaded = prepared.load() if prepared.load_inline else await asyncio.to_thread(prepared.load)
            if not collect:
                yield _result_event(await prepared.rlm.arun(prepared.question, loaded, output=prepared.output))
                return
            stream = prepared.rlm.astream(prepared.question, loaded, output=prepared.output)
            async with contextlib.aclosing(stream) as events:
                async for event in events:
                    yield event
        finally:
            if prepared.writer is not None:
                prepared.writer.close()

    # -- registered contexts --------------------------------------------------------------
    async def register(self, owner: str, source: ContextSource) -> ContextEntry:
        """Load a context once into a warm session owned by ``owner`` (a run slot is held meanwhile)."""
        spec = self.models.spec_for(source.model if source.model is not None else "rlm")
        budget = request_budget(self.config.budget, source.budget)
        if source.name is not None and (not isinstance(source.name, str) or len(source.name) > 200):
            raise BadRequest("name must be a string of at most 200 characters", param="name")
        ticket = self.gate.admit()
        try:
            await ticket.wait()
            try:
                loaded = await asyncio.to_thread(source.load)
            except Exception as exc:
                raise as_serve_error(exc) from exc
            finally:
                if source.cleanup is not None:
                    source.cleanup()
            chars = loaded.info.total_chars
            for victim in self.registry.make_room(chars):
                await victim.close()
                self.traces.release(victim.trace_id)
                self.metrics.evictions.inc()
            try:
                context_id = "ctx_" + os.urandom(12).hex()
                trace_id = self.traces.new_id("ctx")
                writer = TraceWriter(self.traces.add(trace_id, owner, keep=True))
                rlm = self.new_rlm(spec, budget, writer)
                session = rlm.asession(loaded)
                try:
                    await session.astart()
                except BaseException:
                    await session.aclose()
                    writer.close()
                    raise
            except BaseException as exc:
                self.registry.release_room(chars)
                if isinstance(exc, Exception):
                    raise as_serve_error(exc) from exc
                raise
            info = loaded.info
            entry = ContextEntry(
                id=context_id,
                owner=owner,
                session=session,
                model=spec,
                chars=chars,
                summary={
                    "type": info.type,
                    "documents": len(info.documents),
                    "items": info.num_items,
                    "skipped": len(info.skipped),
                    "kinds": info.kinds,
                },
                trace_id=trace_id,
                name=source.name,
                writer=writer,
            )
            self.registry.add(entry)
            return entry
        finally:
            ticket.release()

    async def delete_context(self, owner: str, context_id: str) -> ContextEntry:
        entry = await self.registry.delete(owner, context_id)
        self.traces.release(entry.trace_id)
        return entry

    # -- life -----------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Stop every run (their traces close ``interrupted``), close every session and model."""
        handles = list(self.handles)
        for handle in handles:
            handle.cancel()
        if handles:
            await asyncio.wait([h.task for h in handles], timeout=10)
        await self.registry.aclose()
        await self.models.aclose()
        self.traces.close()


def _result_event(result: Any) -> Event:
    return Event("result", f"result-{id(result):x}", None, time.time(), {"result": result})


def _chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sum(len(v) for v in value)
    return INLINE_LOAD_CHARS + 1  # anything else: a thread


def _preload(repl: str) -> None:
    """Import what the first run would, so the first request does not pay for it."""
    import importlib

    for name in ("unbounded.repl.cell", "unbounded.repl.inprocess" if repl == "inprocess" else "unbounded.repl.process"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
