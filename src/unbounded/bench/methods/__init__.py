"""The methods a benchmark compares, all on the same model and the same answer-format instruction.

    result = await run_method("retrieval", lm, item)          # MethodResult

``direct``, ``summarize``, ``retrieval`` and ``codeact`` (a code agent with BM25 search) are the
paper's non-RLM baselines; ``rlm`` and ``rlm-nosub`` call the engine (imported only when used).
An RLM method may name a prompt style after a colon, ``rlm:compact``, to compare styles on one model
side by side (each variant is a method of its own in results and reports).
"""

from __future__ import annotations

import dataclasses
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


RLM_METHODS = frozenset({"rlm", "rlm-nosub"})


def split_method(name: str) -> tuple[str, str | None]:
    """``"rlm:compact"`` → ``("rlm", "compact")``; a plain name has no style. Raises ValueError for a
    style on a method that has none, or an unknown style."""
    base, sep, style = name.partition(":")
    if not sep:
        return name, None
    if base not in RLM_METHODS:
        raise ValueError(f"method {name!r}: only {', '.join(sorted(RLM_METHODS))} take a prompt style")
    from ...styles import style_names  # the engine's; imported only for a styled method

    if style not in style_names():
        raise ValueError(f"method {name!r}: unknown prompt style {style!r}; known: {', '.join(style_names())}")
    return base, style


def styled_config(config: MethodConfig | None, style: str | None) -> MethodConfig | None:
    if style is None:
        return config
    return dataclasses.replace(config or MethodConfig(), prompt_style=style)


async def run_method(name: str, lm: LM, item: TaskItem, config: MethodConfig | None = None) -> MethodResult:
    base, style = split_method(name)
    try:
        method = METHODS[base]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None
    return await method(lm, item, styled_config(config, style))


__all__ = [
    "BASELINES",
    "METHODS",
    "RLM_METHODS",
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
    "split_method",
    "styled_config",
]
