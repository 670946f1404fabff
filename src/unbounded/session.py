"""Several questions over one loaded context: ``rlm.session(context)``.

The context is loaded once, into one live REPL; each question is a run of its own (its own
``run_start``/``run_end`` in the session's trace, its own budget unless ``budget="session"``) whose
root RLM works in that REPL, so variables from earlier questions persist. The model sees the session
so far: the REPL variable ``history`` (a list of ``{"question", "answer", "status"}``) and a short
note before the question. ``save(path)`` keeps the questions, answers and the namespace's picklable
variables (the others are listed as dropped); ``rlm.restore(path)`` brings a session back.

    with rlm.session(Path("src/")) as s:
        s.ask("Which modules talk to the database?")
        s.ask("Of those, which ones open a transaction?")
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .budget import Ledger
from .context import LoadedContext, load_context
from .errors import ContextError, REPLError, UnboundedError
from .result import RLMResult
from .streaming import iterate_in_thread, stream_events
from .trace import Event, Tracer
from .typed import OutputSpec

if TYPE_CHECKING:
    from .engine import RLM
    from .repl import REPL

SAVE_FORMAT = 1
#: How many earlier questions the note before a new question names (all stay in ``history``).
NOTE_QUESTIONS = 5
NOTE_ANSWER_CHARS = 200


class SessionError(UnboundedError):
    """A session used after it was closed, or a saved session that cannot be restored."""


@dataclass
class Turn:
    """One answered question of a session."""

    question: str
    answer: str | None
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "status": self.status}


@dataclass
class Attachment:
    """What a session lends one question's run: its REPL (routed to that run), trace, ledger, history."""

    session_id: str
    repl: REPL
    tracer: Tracer
    ledger: Ledger | None
    turns: list[Turn]
    route_to: Callable[[Any], None]
    history_note: str = ""

    def history(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.turns]


@dataclass
class _Router:
    """The handler the session's REPL was started with: it serves each question's sub-calls with the
    router of the run that is asking (the REPL outlives every run)."""

    target: Any = None

    async def __call__(self, kind: str, payload: dict[str, Any], cell_id: str | None) -> Any:
        if self.target is None:
            raise RuntimeError("no question is running in this session")
        return await self.target(kind, payload, cell_id)


@dataclass
class Session:
    """A live REPL over one context, for question after question. Use it as a (async) context manager,
    or call ``close()`` / ``aclose()``. One question at a time; ``ask``/``stream`` are sync facades."""

    rlm: RLM
    context: Any
    budget_scope: str = "question"
    turns: list[Turn] = field(default_factory=list)
    id: str = field(default_factory=lambda: os.urandom(4).hex())

    def __post_init__(self) -> None:
        if self.budget_scope not in ("question", "session"):
            raise ValueError("budget must be 'question' or 'session'")
        self._loaded: LoadedContext | None = None
        self._repl: REPL | None = None
        self._tracer: Tracer | None = None
        self._ledger: Ledger | None = None
        self._router = _Router()
        self._lock = asyncio.Lock()
        self._closed = False
        self._loop_thread: _LoopThread | None = None
        self._saved_namespace: str | None = None
        #: Variables the last save (or the saved session restored) could not keep: not picklable.
        self.dropped: list[str] = []

    # -- lifecycle --------------------------------------------------------------------------
    async def astart(self) -> Session:
        """Load the context and start the REPL (the first question does it if you don't)."""
        if self._closed:
            raise SessionError("this session is closed; start a new one with rlm.session(context)")
        if self._repl is not None:
            return self
        ctx = self.context
        self._loaded = ctx if isinstance(ctx, LoadedContext) else await asyncio.to_thread(load_context, ctx)
        repl = self.rlm._new_repl()
        await repl.start(self._loaded.value, self._router, self.rlm.tool_specs, sub_calls=self.rlm.sub_calls)
        self._repl = repl
        self.rlm.models.acquire()
        self._tracer = self.rlm._tracer()
        for warning in repl.warnings:
            self._tracer.emit("warning", parent=None, source="repl", message=warning)
        if self.budget_scope == "session":
            self._ledger = Ledger(self.rlm.budget)
        if self._saved_namespace:
            await repl.restore(self._saved_namespace)
            self._saved_namespace = None
        return self

    async def aclose(self) -> None:
        """Stop the REPL (its variables are gone) and close the trace."""
        if self._closed:
            return
        self._closed = True
        if self._repl is not None:
            await self._repl.close()
            self._repl = None
        if self._tracer is not None:
            await asyncio.to_thread(self._tracer.close)
            await self.rlm.models.release()

    async def __aenter__(self) -> Session:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Session:
        self._sync().call(self.astart())
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop_thread is not None:
            self._loop_thread.call(self.aclose())
            self._loop_thread.stop()
            self._loop_thread = None

    # -- questions --------------------------------------------------------------------------
    async def aask(self, question: str, *, output: Any = None) -> RLMResult:
        """Answer one more question about the session's context (``output``: a typed answer, see ``RLM.arun``)."""
        spec = OutputSpec.of(output) if output is not None else None
        async with self._lock:
            attached = await self._attach()
            result = await self.rlm._answer(question, self._loaded_context(), attached=attached, output=spec)
            self.turns.append(Turn(question, result.answer, str(result.status)))
            return result

    async def astream(self, question: str, *, output: Any = None) -> AsyncIterator[Event]:
        """``aask`` that yields the run's events as they happen, then a ``result`` event."""
        spec = OutputSpec.of(output) if output is not None else None
        async with self._lock:
            attached = await self._attach()

            async def start(listener: Any) -> RLMResult:
                return await self.rlm._answer(
                    question, self._loaded_context(), listeners=[listener], attached=attached, output=spec
                )

            async for event in stream_events(start):
                if event.type == "result":
                    result = event.data["result"]
                    self.turns.append(Turn(question, result.answer, str(result.status)))
                yield event

    def ask(self, question: str, *, output: Any = None) -> RLMResult:
        return self._sync().call(self.aask(question, output=output))

    def stream(self, question: str, *, output: Any = None) -> Iterator[Event]:
        return iterate_in_thread(lambda: self.astream(question, output=output))

    @property
    def history(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.turns]

    async def _attach(self) -> Attachment:
        await self.astart()
        assert self._repl is not None and self._tracer is not None
        return Attachment(
            session_id=self.id,
            repl=self._repl,
            tracer=self._tracer,
            ledger=self._ledger,
            turns=list(self.turns),
            route_to=self._route,
            history_note=history_note(self.turns),
        )

    def _route(self, router: Any) -> None:
        self._router.target = router

    def _loaded_context(self) -> LoadedContext:
        assert self._loaded is not None
        return self._loaded

    def _sync(self) -> _LoopThread:
        """The sync facade keeps one event loop for the session's life: the REPL's pipes belong to it."""
        if self._loop_thread is None:
            self._loop_thread = _LoopThread()
        return self._loop_thread

    # -- save and restore -------------------------------------------------------------------
    async def asave(self, path: str | os.PathLike[str]) -> list[str]:
        """Write the questions, answers and picklable variables to ``path``; returns the names dropped."""
        await self.astart()
        assert self._repl is not None
        snapshot = await self._repl.snapshot()
        self.dropped = snapshot.dropped
        source = self.context if isinstance(self.context, str | os.PathLike) and _is_path(self.context) else None
        data = {
            "format": SAVE_FORMAT,
            "id": self.id,
            "budget": self.budget_scope,
            "turns": [t.to_dict() for t in self.turns],
            "context_source": str(source) if source is not None else None,
            "variables": snapshot.data,
            "dropped": snapshot.dropped,
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(target)
        return snapshot.dropped

    def save(self, path: str | os.PathLike[str]) -> list[str]:
        return self._sync().call(self.asave(path))

    @classmethod
    def restore(cls, rlm: RLM, path: str | os.PathLike[str], context: Any = None) -> Session:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SessionError(f"cannot read a saved session from {path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != SAVE_FORMAT:
            raise SessionError(f"{path} is not a saved session of this version (format {SAVE_FORMAT})")
        if context is None:
            source = data.get("context_source")
            if not source:
                raise SessionError(
                    "this session's context was not a file or folder, so it was not saved: "
                    "pass it again, rlm.restore(path, context)"
                )
            context = Path(source)
        session = cls(rlm, context, budget_scope=data.get("budget", "question"), id=str(data.get("id", "")) or os.urandom(4).hex())
        session.turns = [Turn(t["question"], t.get("answer"), t.get("status", "")) for t in data.get("turns", [])]
        session._saved_namespace = data.get("variables") or None
        session.dropped = list(data.get("dropped", []))
        return session


def history_note(turns: list[Turn]) -> str:
    """The few lines about earlier questions that go before a new one."""
    if not turns:
        return ""
    shown = turns[-NOTE_QUESTIONS:]
    lines = [f"Earlier in this session ({len(turns)} question(s); all are in the variable `history`):"]
    for t in shown:
        answer = (t.answer or "(no answer)").replace("\n", " ")
        if len(answer) > NOTE_ANSWER_CHARS:
            answer = answer[:NOTE_ANSWER_CHARS] + "…"
        lines.append(f"- Q: {t.question[:200]} -> A: {answer}")
    lines.append("Variables you made for them are still defined (SHOW_VARS() lists them).")
    return "\n".join(lines)


def _is_path(value: Any) -> bool:
    return isinstance(value, os.PathLike) or (isinstance(value, str) and os.path.exists(value) and len(value) < 4096)


class _LoopThread:
    """An event loop on a thread of its own, running the coroutines handed to ``call``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="unbounded-session", daemon=True)
        self.thread.start()

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


__all__ = ["Attachment", "ContextError", "REPLError", "Session", "SessionError", "Turn", "history_note"]
