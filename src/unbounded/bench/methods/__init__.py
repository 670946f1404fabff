"""The methods a benchmark compares, all on the same model and the same answer-format instruction.

    result = await run_method("retrieval", lm, item)          # MethodResult

``direct``, ``summarize``, ``retrieval`` and ``codeact`` (a code agent with BM25 search) are the
paper's non-RLM baselines; ``rlm`` and ``rlm-nosub`` call the engine (imported only when used).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ...models import LM
from ..tasks.base import TaskItem
from .base import SYSTEM_PROMPT, Caller, MethodConfig, MethodResult
from .codeact import run_codeact
from .direct import run_direct
from .render import Chunk, chunk_context, render_context
from .retrieval import rank_chunks, run_retrieval
from .rlm import run_rlm, run_rlm_nosub
from .summarize import run_summarize

Method = Callable[[LM, TaskItem, MethodConfig | None], Awaitable[MethodResult]]

METHODS: dict[str, Method] = {
    "direct": run_direct,
    "summarize": run_summarize,
    "retrieval": run_retrieval,
    "codeact": run_codeact,
    "rlm": run_rlm,
    "rlm-nosub": run_rlm_nosub,
}
BASELINES = ("direct", "summarize", "retrieval", "codeact")


def method_names() -> list[str]:
    return list(METHODS)


async def run_method(name: str, lm: LM, item: TaskItem, config: MethodConfig | None = None) -> MethodResult:
    try:
        method = METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None
    return await method(lm, item, config)


__all__ = [
    "BASELINES",
    "METHODS",
    "SYSTEM_PROMPT",
    "Caller",
    "Chunk",
    "MethodConfig",
    "MethodResult",
    "chunk_context",
    "method_names",
    "rank_chunks",
    "render_context",
    "run_codeact",
    "run_direct",
    "run_method",
    "run_retrieval",
    "run_rlm",
    "run_rlm_nosub",
    "run_summarize",
]
