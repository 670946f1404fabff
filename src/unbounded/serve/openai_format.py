"""Results and events in OpenAI's chat completion shapes, plus the documented ``unbounded`` field.

``usage`` is the whole recursion tree's (every model of the run, root and sub-calls, added up);
``unbounded`` carries what OpenAI's shape has no place for: the run's status, turns, sub-calls,
time, usage and cost per model, and the trace id. Plain clients ignore it.
"""

from __future__ import annotations

from typing import Any

from ..result import RLMResult
from ..status import StatusKind
from ..trace import Event
from .errors import RunFailed
from .runs import RunHandle

#: Characters of a string field an SSE progress event carries (the trace has the whole of it).
PROGRESS_CHARS = 300
#: Small dict fields kept whole in progress events.
PROGRESS_DICTS = frozenset({"usage"})


def completion_id(handle: RunHandle) -> str:
    return f"chatcmpl-{handle.id}"


def finish_reason(result: RLMResult) -> str:
    """``stop`` for an answer (also the model's last guess when its turns ran out), ``length`` when a
    budget limit ended the run first."""
    return "length" if result.status.kind is StatusKind.BUDGET else "stop"


def failure_of(result: RLMResult) -> RunFailed | None:
    """A run that ended in error (or was interrupted): an error for the client, not an answer."""
    if result.status.kind in (StatusKind.ERROR, StatusKind.INTERRUPTED):
        detail = result.status.detail or result.status.kind.value
        return RunFailed(f"the run ended with {result.status}: {result.error or 'no answer'}", code=f"run_{detail}")
    return None


def usage(result: RLMResult) -> dict[str, Any]:
    total = result.total_usage
    return {
        "prompt_tokens": total.input_tokens,
        "completion_tokens": total.output_tokens,
        "total_tokens": total.total_tokens,
        "prompt_tokens_details": {"cached_tokens": total.cached_input_tokens},
    }


def extension(handle: RunHandle, result: RLMResult | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "trace_id": handle.trace_id,
        "queue_seconds": round(handle.queued_seconds, 4),
        "run_seconds": round(handle.run_seconds, 4),
    }
    if result is not None:
        total = result.total_usage
        out.update(
            status=str(result.status),
            iterations=result.iterations,
            subcalls=result.subcalls,
            elapsed=round(result.elapsed, 4),
            error=result.error,
            usage={k: v.to_dict() for k, v in result.usage.items()},
            calls=total.calls,
            cost_usd=total.cost_usd,
        )
    return out


def completion(handle: RunHandle, model: str, result: RLMResult) -> dict[str, Any]:
    return {
        "id": completion_id(handle),
        "object": "chat.completion",
        "created": handle.created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.answer or "", "refusal": None},
                "finish_reason": finish_reason(result),
                "logprobs": None,
            }
        ],
        "usage": usage(result),
        "system_fingerprint": None,
        "unbounded": extension(handle, result),
    }


def chunk(
    handle: RunHandle, model: str, delta: dict[str, Any], *, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": completion_id(handle),
        "object": "chat.completion.chunk",
        "created": handle.created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        **extra,
    }


def usage_chunk(handle: RunHandle, model: str, result: RLMResult) -> dict[str, Any]:
    """The last chunk under ``stream_options.include_usage``: no choices, the run's usage."""
    return {
        "id": completion_id(handle),
        "object": "chat.completion.chunk",
        "created": handle.created,
        "model": model,
        "choices": [],
        "usage": usage(result),
    }


def progress(event: Event) -> dict[str, Any]:
    """A run event as the ``unbounded.progress`` field of a chunk: its type, ids and small fields."""
    data: dict[str, Any] = {}
    for key, value in event.data.items():
        if value is None or isinstance(value, bool | int | float):
            data[key] = value
        elif isinstance(value, str):
            data[key] = value if len(value) <= PROGRESS_CHARS else value[:PROGRESS_CHARS] + "…"
        elif key in PROGRESS_DICTS and isinstance(value, dict):
            data[key] = value
    return {"type": event.type, "id": event.id, "parent": event.parent, "ts": round(event.ts, 4), "data": data}
