"""The end-of-batch summary: status counts, tokens, cost and p50/p95 job time."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .results import JobResult


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(slots=True)
class BatchSummary:
    """Over every job of the file (earlier runs' results included); ``ran`` counts this run's jobs.

    ``cost_usd`` is None when any job used a model whose price is unknown. ``p50``/``p95`` are job
    times in seconds, as measured where the job ran.
    """

    jobs: int
    ran: int
    skipped: int
    invalid: int
    statuses: dict[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    model_calls: int = 0
    cost_usd: float | None = 0.0
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    wall_seconds: float = 0.0
    nodes: int = 0

    @property
    def answered(self) -> int:
        return self.statuses.get("final", 0) + self.statuses.get("max_iterations", 0)

    @property
    def failed(self) -> int:
        return sum(self.statuses.values()) - self.answered

    def to_dict(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "ran": self.ran,
            "skipped": self.skipped,
            "invalid": self.invalid,
            "answered": self.answered,
            "failed": self.failed,
            "statuses": dict(sorted(self.statuses.items())),
            "model_calls": self.model_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cost_usd": self.cost_usd,
            "p50_seconds": self.p50_seconds,
            "p95_seconds": self.p95_seconds,
            "wall_seconds": round(self.wall_seconds, 3),
            "nodes": self.nodes,
        }

    def render(self) -> str:
        """A few lines for a terminal."""
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items(), key=lambda kv: (-kv[1], kv[0])))
        cost = "unknown" if self.cost_usd is None else f"${self.cost_usd:.4f}"

        def secs(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}s"

        return "\n".join(
            [
                f"batch: {self.jobs} jobs · {self.answered} answered · {self.failed} failed · "
                f"ran {self.ran} now, {self.skipped} done before · {self.wall_seconds:.1f}s wall",
                f"status: {statuses or '-'}",
                f"usage: {self.model_calls:,} model calls · {self.input_tokens:,} in / {self.output_tokens:,} out "
                f"tokens · cost {cost}",
                f"job time: p50 {secs(self.p50_seconds)} · p95 {secs(self.p95_seconds)}"
                + (f" · {self.nodes} node(s)" if self.nodes else ""),
            ]
        )


def summarize(results: Iterable[JobResult], *, ran: int, skipped: int, wall_seconds: float) -> BatchSummary:
    """Fold the latest result of every job (invalid lines included) into a summary."""
    rows = list(results)
    statuses = Counter(r.status for r in rows)
    summary = BatchSummary(
        jobs=len(rows),
        ran=ran,
        skipped=skipped,
        invalid=statuses.get("invalid", 0),
        statuses=dict(statuses),
        wall_seconds=wall_seconds,
    )
    times: list[float] = []
    nodes: set[str] = set()
    for r in rows:
        if r.status == "invalid":
            continue
        total = r.total_usage
        summary.model_calls += total.calls
        summary.input_tokens += total.input_tokens
        summary.output_tokens += total.output_tokens
        summary.cached_input_tokens += total.cached_input_tokens
        if summary.cost_usd is not None:
            summary.cost_usd = None if total.cost_usd is None else summary.cost_usd + total.cost_usd
        times.append(r.elapsed)
        if r.node is not None:
            nodes.add(r.node.node_id or f"{r.node.hostname}")
    summary.p50_seconds = percentile(times, 50)
    summary.p95_seconds = percentile(times, 95)
    summary.nodes = len(nodes)
    return summary
