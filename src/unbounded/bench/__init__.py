"""Benchmark RLMs against the same model used directly, a summary agent and a retrieval agent.

Tasks (``unbounded.bench.tasks``) are seeded generators with scorers; methods
(``unbounded.bench.methods``) run one item on one model and report answer, usage and time.
"""

from .methods import METHODS, MethodConfig, MethodResult, method_names, run_method
from .tasks import TASKS, TaskItem, generate, score, task_names

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
