"""An RLM's settings as one typed value: what the trace records at the start of every run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .budget import Budget
from .repl.base import Limits
from .trace import redact


@dataclass(frozen=True)
class RLMConfig:
    """Everything that shapes a run, by name: models, budget, REPL and sandbox, prompt style."""

    model: str
    sub_model: str
    models: dict[str, str]
    max_depth: int
    budget: Budget
    repl: str
    limits: Limits
    sub_calls: bool
    prompt_style: str
    shown_output_chars: int
    batch_concurrency: int
    tools: list[str] = field(default_factory=list)
    model_options: dict[str, Any] = field(default_factory=dict)
    sub_model_options: dict[str, Any] = field(default_factory=dict)
    cache: bool | str = False
    compaction: float | None = None

    def to_trace(self) -> dict[str, Any]:
        """The config as plain JSON data, secrets replaced by ``***``."""
        return redact(asdict(self))
