"""The RLM as an MCP server (the official ``mcp`` SDK): over stdio, or streamable HTTP under ``serve``.

Tools:

- ``ask(question, paths | text, model?)``: one question about files (inside the allowed folders)
  or a text; the answer with its status, usage and trace;
- ``load_context(paths | text, model?)`` → ``context_id``: the context loaded once into a warm session;
- ``ask_context(context_id, question)``: a question about a loaded context, reusing its worker.

While a run works the client gets progress notifications (one per run event, with a short message).
Every run's trace is the resource ``trace://<trace_id>`` (the JSONL the viewer reads). The same checks
as the HTTP API apply: allowed folders, models, the budget caps, the concurrency gate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from pydantic import BaseModel
from starlette.routing import BaseRoute

from ..context import load_context
from . import openai_format as fmt
from .errors import ServeError
from .runs import RunHandle, as_serve_error
from .service import ContextSource, PreparedRun, Service

Owner = Callable[[Mapping[str, str] | None], str]
#: Seconds between checks for events (the run's progress) while waiting.
POLL_SECONDS = 5.0

INSTRUCTIONS = (
    "Answers questions about inputs of any size (whole folders, huge logs, many documents) with a Recursive "
    "Language Model: the input is never put in a prompt; a model writes code that reads it. Use ask for one "
    "question, or load_context once and ask_context for several questions about the same input."
)


class Answer(BaseModel):
    """A run's answer: ``status`` is ``final`` for an answer, ``max_iterations`` for the model's last guess,
    ``budget:<limit>`` when a limit ended it first."""

    answer: str | None
    status: str
    iterations: int
    subcalls: int
    elapsed: float
    usage: dict[str, dict[str, Any]]
    total_tokens: int
    cost_usd: float | None
    trace: str
    error: str | None = None


class LoadedContextInfo(BaseModel):
    context_id: str
    chars: int
    documents: int
    model: str
    trace: str


def build_mcp(service: Service, *, owner: Owner) -> MCPServer:
    mcp = MCPServer("unbounded", instructions=INSTRUCTIONS)

    def who(ctx: Context) -> str:
        try:
            headers = ctx.headers
        except (ValueError, AttributeError):
            headers = None
        try:
            return owner(headers)
        except ServeError as exc:
            raise ToolError(exc.message) from None

    @mcp.tool(description="Answer a question about files or folders (paths, inside the allowed folders) or a text.")
    async def ask(
        question: str,
        ctx: Context,
        paths: list[str] | None = None,
        text: str | None = None,
        model: str | None = None,
    ) -> Answer:
        if (paths is None) == (text is None):
            raise ToolError("give exactly one of paths (files or folders) or text")
        prepared = _checked(lambda: service.prepare(who(ctx), question=question, model_id=model or "rlm",
                                                    context=text, paths=paths))  # fmt: skip
        return await _run(service, prepared, ctx)

    async def load_context_tool(
        ctx: Context,
        paths: list[str] | None = None,
        text: str | None = None,
        model: str | None = None,
    ) -> LoadedContextInfo:
        if (paths is None) == (text is None):
            raise ToolError("give exactly one of paths (files or folders) or text")
        owner_id = who(ctx)
        if paths is not None:
            loader = _checked(lambda: service.loader_for_paths(paths))
        else:
            value = text

            def loader() -> Any:
                return load_context(value, options=service.load_options)

        try:
            entry = await service.register(owner_id, ContextSource(loader, model=model or "rlm"))
        except Exception as exc:
            raise ToolError(as_serve_error(exc).message) from None
        return LoadedContextInfo(context_id=entry.id, chars=entry.chars, documents=entry.summary.get("documents", 0),
                                 model=f"rlm/{entry.model}", trace=f"trace://{entry.trace_id}")  # fmt: skip

    # Registered by name: the function's own name would hide the library's load_context.
    mcp.add_tool(load_context_tool, name="load_context",
                 description="Load files, folders or a text once and return a context_id for ask_context.")  # fmt: skip

    @mcp.tool(description="Answer a question about a context loaded with load_context (its worker is reused).")
    async def ask_context(context_id: str, question: str, ctx: Context) -> Answer:
        prepared = _checked(lambda: service.prepare(who(ctx), question=question, model_id=None, context_id=context_id))
        return await _run(service, prepared, ctx)

    @mcp.resource("trace://{trace_id}", mime_type="application/x-ndjson",
                  description="A run's trace: one JSON event per line (unbounded view reads it)")  # fmt: skip
    def trace(trace_id: str, ctx: Context) -> str:
        try:
            entry = service.traces.get(trace_id, who(ctx))
            return entry.path.read_text(encoding="utf-8")
        except (ServeError, ToolError, OSError) as exc:
            raise ResourceError(f"no trace {trace_id!r} for this client") from exc

    return mcp


def _checked(make: Callable[[], Any]) -> Any:
    try:
        return make()
    except ToolError:
        raise
    except Exception as exc:
        raise ToolError(as_serve_error(exc).message) from None


async def _run(service: Service, prepared: PreparedRun, ctx: Context) -> Answer:
    try:
        handle = service.launch(prepared)
    except ServeError as exc:
        raise ToolError(exc.message) from None
    try:
        count = 0
        while True:
            try:
                event = await handle.next_event(POLL_SECONDS)
            except StopAsyncIteration:
                break
            if event is not None:
                count += 1
                await _progress(ctx, count, describe(event))
    finally:
        handle.cancel()  # the client cancelled or went away: stop the run (a no-op once it is over)
    return _answer(handle)


async def _progress(ctx: Context, count: int, message: str) -> None:
    try:
        await ctx.report_progress(count, None, message)
    except Exception:  # a client that stopped listening must not stop the run
        pass


def _answer(handle: RunHandle) -> Answer:
    if handle.failure is not None:
        raise ToolError(handle.failure.message)
    result = handle.result
    if result is None:
        raise ToolError("the run was stopped before it ended")
    failure = fmt.failure_of(result)
    if failure is not None:
        raise ToolError(failure.message)
    total = result.total_usage
    return Answer(
        answer=result.answer,
        status=str(result.status),
        iterations=result.iterations,
        subcalls=result.subcalls,
        elapsed=round(result.elapsed, 4),
        usage={k: v.to_dict() for k, v in result.usage.items()},
        total_tokens=total.total_tokens,
        cost_usd=total.cost_usd,
        trace=f"trace://{handle.trace_id}",
        error=result.error,
    )


def describe(event: Any) -> str:
    """One short line about a run event, for a progress notification."""
    data = event.data
    kind = event.type
    if kind == "lm_request":
        return f"model call ({data.get('purpose', 'root')}) to {data.get('model', '?')}"
    if kind == "lm_response":
        usage = data.get("usage") or {}
        return f"model replied ({usage.get('output_tokens', '?')} tokens)"
    if kind == "cell":
        state = "error" if data.get("error") else "ok"
        return f"turn {data.get('iteration', '?')}: code ran ({state})"
    if kind == "subcall_start":
        return f"sub-call {data.get('kind', '')} started"
    if kind == "subcall_end":
        return f"sub-call {data.get('kind', '')} done"
    if kind in ("rlm_start", "rlm_end"):
        return f"{'started' if kind == 'rlm_start' else 'finished'} RLM at depth {data.get('depth', 0)}"
    if kind == "token":
        return str(data.get("text", ""))[:200]
    return kind.replace("_", " ")


def http_routes(mcp: MCPServer, *, host: str) -> list[BaseRoute]:
    """The streamable HTTP endpoint at ``/mcp``, to mount in another Starlette app (whose lifespan must
    run ``mcp.session_manager.run()``)."""
    inner = mcp.streamable_http_app(streamable_http_path="/mcp", host=host)
    return list(inner.routes)
