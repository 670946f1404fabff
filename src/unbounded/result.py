"""The value an RLM run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .models.base import Usage
from .status import RunStatus, StatusKind


@dataclass(slots=True)
class RLMResult:
    """How a run ended.

    ``status`` (a ``RunStatus``, which is also its string): ``final`` (the model gave an answer),
    ``max_iterations`` (turns ran out; the answer is the model's best guess when asked once more),
    ``budget:<limit>`` (a budget limit was reached; the answer is the best so far, possibly None),
    ``error:<kind>`` (a model or REPL failure), or ``interrupted``. ``status.kind`` and
    ``status.detail`` say the same without parsing. ``usage`` is per model name, exact over the
    whole recursion tree.
    """

    answer: str | None
    status: RunStatus
    usage: dict[str, Usage]
    iterations: int
    trace_path: Path | None
    elapsed: float
    error: str | None = None
    subcalls: int = 0
    #: The validated value of a typed answer (``output=``), else None.
    value: Any = None
    depth: int = 0
    #: How often a history neared its window and older turns were summarised, and the input tokens
    #: (estimated at 4 characters each) the summaries kept out of the root calls that followed.
    compactions: int = 0
    compaction_tokens_saved: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.status, RunStatus):
            self.status = RunStatus.parse(self.status)

    @property
    def ok(self) -> bool:
        return self.status.kind is StatusKind.FINAL

    @property
    def total_usage(self) -> Usage:
        return Usage.sum(self.usage.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "status": str(self.status),
            "usage": {k: v.to_dict() for k, v in self.usage.items()},
            "total_usage": self.total_usage.to_dict(),
            "iterations": self.iterations,
            "subcalls": self.subcalls,
            "trace_path": str(self.trace_path) if self.trace_path else None,
            "elapsed": round(self.elapsed, 4),
            "error": self.error,
            "value": _plain(self.value),
        }

    def __str__(self) -> str:
        return self.answer or ""


def _plain(value: Any) -> Any:
    """A typed answer's value as JSON data (pydantic models and dataclasses included)."""
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    try:
        from pydantic import TypeAdapter

        return TypeAdapter(type(value)).dump_python(value, mode="json")
    except Exception:
        return str(value)
