"""``/metrics``: Prometheus text from the server's own registry (one per app, so apps never share).

Runs by how they ended, in flight, queued, tokens and cost per model, errors by kind, and a
latency histogram; plus the registered contexts and what they hold.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..result import RLMResult

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, float("inf"))

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter("unbounded_runs", "Runs finished, by how they ended", ["status"], registry=r)
        self.in_flight = Gauge("unbounded_runs_in_flight", "Runs holding a slot now", registry=r)
        self.queued = Gauge("unbounded_runs_queued", "Runs waiting for a slot now", registry=r)
        self.tokens = Counter("unbounded_tokens", "Model tokens over whole recursion trees", ["model", "kind"], registry=r)
        self.calls = Counter("unbounded_model_calls", "Model calls over whole recursion trees", ["model"], registry=r)
        self.cost = Counter("unbounded_cost_usd", "Cost of model calls where the price is known", ["model"], registry=r)
        self.errors = Counter("unbounded_errors", "Failed requests and runs, by kind", ["kind"], registry=r)
        self.requests = Counter("unbounded_http_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=r)  # fmt: skip
        self.latency = Histogram("unbounded_run_seconds", "Wall time of a run, from its start to its end",
                                 buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.queue_wait = Histogram("unbounded_queue_seconds", "Time a run waited for a slot",
                                    buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.contexts = Gauge("unbounded_contexts", "Registered contexts held in warm sessions", registry=r)
        self.context_chars = Gauge("unbounded_context_chars", "Characters the registered contexts hold", registry=r)
        self.evictions = Counter("unbounded_context_evictions", "Contexts evicted to stay under the memory cap",
                                 registry=r)  # fmt: skip

    def bind_gate(self, running: Callable[[], int], queued: Callable[[], int]) -> None:
        self.in_flight.set_function(lambda: float(running()))
        self.queued.set_function(lambda: float(queued()))

    def bind_contexts(self, count: Callable[[], int], chars: Callable[[], int]) -> None:
        self.contexts.set_function(lambda: float(count()))
        self.context_chars.set_function(lambda: float(chars()))

    def settle(self, result: RLMResult | None, *, seconds: float, waited: float, failure: str | None = None) -> None:
        """Count one finished run: its status, usage per model, time; ``failure`` names an error kind."""
        self.latency.observe(seconds)
        self.queue_wait.observe(waited)
        if result is None:
            self.runs.labels(status=failure or "interrupted").inc()
            if failure:
                self.errors.labels(kind=failure).inc()
            return
        status = result.status
        self.runs.labels(status=status.kind.value).inc()
        if status.kind.value == "error":
            self.errors.labels(kind=f"run:{status.detail}").inc()
        for model, usage in result.usage.items():
            self.calls.labels(model=model).inc(usage.calls)
            self.tokens.labels(model=model, kind="input").inc(usage.input_tokens)
            self.tokens.labels(model=model, kind="output").inc(usage.output_tokens)
            self.tokens.labels(model=model, kind="cached_input").inc(usage.cached_input_tokens)
            if usage.cost_usd is not None:
                self.cost.labels(model=model).inc(max(0.0, usage.cost_usd))

    def render(self) -> bytes:
        return generate_latest(self.registry)
