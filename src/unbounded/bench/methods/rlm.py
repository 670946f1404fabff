"""The RLM methods: the engine with sub-calls (``rlm``) and without them (``rlm-nosub``).

The engine is imported lazily so that the tasks and baselines work in an install without it.
The question passed to the RLM carries the item's answer format, exactly as the baselines get it.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ...models import LM, Usage
from ..tasks.base import TaskItem
from .base import MethodConfig, MethodResult, user_prompt


def _trace_path(config: MethodConfig, item: TaskItem, method: str) -> str | None:
    if config.trace_file:
        return config.trace_file
    if not config.trace_dir:
        return None
    os.makedirs(config.trace_dir, exist_ok=True)
    return os.path.join(config.trace_dir, f"{item.id}.{method}.jsonl")


async def _run(lm: LM, item: TaskItem, config: MethodConfig, *, sub_calls: bool) -> MethodResult:
    from ... import RLM, Budget  # lazy: the engine is optional for the rest of the bench

    method = "rlm" if sub_calls else "rlm-nosub"
    started = time.perf_counter()
    rlm = RLM(
        model=lm,
        sub_model=config.sub_model,
        max_depth=config.max_depth,
        budget=Budget(max_iterations=config.max_iterations, max_llm_calls=config.max_llm_calls),
        repl=config.repl,
        trace=_trace_path(config, item, method),
        sub_calls=sub_calls,
        prompt_style=config.prompt_style,
    )
    result = await rlm.arun(user_prompt(item.question, item.answer_format), item.context)
    per_model: dict[str, Usage] = dict(result.usage or {})
    usage = Usage.sum(per_model.values())
    notes: dict[str, Any] = {
        "iterations": result.iterations,
        "trace_path": None if result.trace_path is None else str(result.trace_path),
        "usage_by_model": {name: u.to_dict() for name, u in per_model.items()},
        "engine_elapsed": result.elapsed,
        "subcalls": result.subcalls,
        "error": result.error,
    }
    if result.compactions:
        notes["compactions"] = result.compactions
        notes["compaction_tokens_saved"] = result.compaction_tokens_saved
    return MethodResult(
        method=method,
        answer=result.answer,
        usage=usage,
        seconds=time.perf_counter() - started,
        calls=usage.calls,
        status=result.status,
        notes=notes,
    )


async def run_rlm(lm: LM, item: TaskItem, config: MethodConfig | None = None) -> MethodResult:
    """The full RLM: the context lives in a REPL and the model may call sub-models on pieces."""
    return await _run(lm, item, config or MethodConfig(), sub_calls=True)


async def run_rlm_nosub(lm: LM, item: TaskItem, config: MethodConfig | None = None) -> MethodResult:
    """The ablation without ``llm_query``/``rlm_query``: the REPL alone."""
    return await _run(lm, item, config or MethodConfig(), sub_calls=False)
