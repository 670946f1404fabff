"""Benchmark RLMs against the same model used directly, a summary agent and a retrieval agent.

Tasks (``unbounded.bench.tasks``) are seeded generators with scorers; methods
(``unbounded.bench.methods``) run one item on one model and report answer, usage and time.
Exports load lazily, so ``python -m unbounded.bench.overhead`` measures the engine's memory, not
the benchmark suite's.
"""

from __future__ import annotations

from .._lazy import TYPE_CHECKING, lazy_exports

_EXPORTS = {
    "METHODS": ".methods",
    "MethodConfig": ".methods",
    "MethodResult": ".methods",
    "method_names": ".methods",
    "run_method": ".methods",
    "TASKS": ".tasks",
    "TaskItem": ".tasks",
    "generate": ".tasks",
    "score": ".tasks",
    "task_names": ".tasks",
}

if TYPE_CHECKING:
    from .methods import METHODS, MethodConfig, MethodResult, method_names, run_method
    from .tasks import TASKS, TaskItem, generate, score, task_names


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = [
    "METHODS",
    "TASKS",
    "MethodConfig",
    "MethodResult",
    "TaskItem",
    "generate",
    "method_names",
    "run_method",
    "score",
    "task_names",
]
