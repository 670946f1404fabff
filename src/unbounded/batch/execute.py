"""Run one job where it lands (a process-pool worker or a Ray task) and turn any ending into a result.

Nothing here raises for a job's own failure: a missing path, an unknown model or a crash inside the
engine becomes a ``JobResult`` with an ``error:<kind>`` status, so one bad job never stops a batch.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import BudgetExceeded, ConfigError, ContextError, EmptyContextError
from ..models.base import LM, Usage
from .jobs import Job, JobDefaults
from .results import JobResult, NodeInfo


def node_info() -> NodeInfo:
    """This process: its Ray node id when it runs inside Ray (without importing Ray otherwise)."""
    node_id = None
    ray = sys.modules.get("ray")
    if ray is not None:
        try:
            if ray.is_initialized():
                node_id = ray.get_runtime_context().get_node_id()
        except Exception:
            node_id = None
    return NodeInfo(node_id, socket.gethostname(), os.getpid())


def job_context(job: Job) -> Any:
    """The job's context as the engine takes it. Paths are read here, on the machine running the job.

    One path goes to the engine as a ``Path`` (a file, a folder or a ``.jsonl`` file of records);
    several become one ``{path/name: text}`` dict, as ``unbounded ask`` does with several paths.
    """
    if job.text is not None:
        return job.text
    if job.records is not None:
        return job.records
    missing = [p for p in job.paths if not os.path.exists(p)]
    if missing:
        raise ContextError(
            f"no such file or folder: {', '.join(missing)} (paths are read where the job runs, on "
            f"{socket.gethostname()}; on a cluster they must be on a file system every node sees)"
        )
    if len(job.paths) == 1:
        return Path(job.paths[0])
    from ..context import load_context

    merged: dict[str, Any] = {}
    for p in job.paths:
        value = load_context(Path(p), allow_empty=True).value
        if isinstance(value, dict):
            for k, v in value.items():
                merged[f"{p.rstrip('/')}/{k}"] = v
        else:
            merged[p] = value
    return merged


_FROM_JOB: Any = object()


async def aexecute_job(
    job: Job,
    defaults: JobDefaults,
    *,
    context: Any = _FROM_JOB,
    trace_path: Path | None = None,
    sub_lm: LM | None = None,
) -> JobResult:
    """Run ``job`` to its end. ``context`` replaces the job's own (an inline context fetched from the
    Ray object store); ``sub_lm`` answers the job's sub-calls (a model pool)."""
    from ..engine import RLM
    from ..models.registry import resolve_model

    started = time.perf_counter()
    result = JobResult(id=job.id, status="error:internal", line=job.line, metadata=dict(job.metadata))
    if trace_path is not None:
        trace_path.parent.mkdir(parents=True, exist_ok=True)
        trace_path.unlink(missing_ok=True)  # a rerun starts a fresh story
    try:
        value = job_context(job) if context is _FROM_JOB else context
        root = resolve_model(job.model_spec(defaults), **job.model_opts(defaults))
        sub: LM | None = sub_lm
        if sub is None and job.sub_model_spec(defaults) is not None:
            sub = resolve_model(job.sub_model_spec(defaults) or "", **job.sub_model_opts(defaults))
        rlm = RLM(
            model=root,
            sub_model=sub,
            max_depth=job.depth_for(defaults),
            budget=job.budget_for(defaults),
            repl=defaults.repl,
            trace=trace_path,
            limits=defaults.limits,
        )
        run = await rlm.arun(job.question, value, output=dict(job.output) if job.output is not None else None)
    except EmptyContextError as exc:
        result.status, result.error = "error:empty_context", str(exc)
    except ContextError as exc:
        result.status, result.error = "error:context", str(exc)
    except ConfigError as exc:
        result.status, result.error = "error:config", str(exc)
    except BudgetExceeded as exc:  # Budget(strict=True)
        result.status, result.error = f"budget:{exc.limit}", str(exc)
    except Exception as exc:
        result.status, result.error = f"error:{type(exc).__name__}", f"{type(exc).__name__}: {exc}"
    else:
        result.status = str(run.status)  # a plain string: results are JSON, and batch statuses join them
        result.answer = run.answer
        result.value = run.to_dict()["value"]  # JSON data, as the results file holds it
        result.error = run.error
        result.usage = {
            k: Usage(v.calls, v.input_tokens, v.output_tokens, v.cached_input_tokens, v.cost_usd)
            for k, v in run.usage.items()
        }
        result.iterations = run.iterations
        result.subcalls = run.subcalls
    result.elapsed = time.perf_counter() - started
    result.node = node_info()
    result.finished_at = time.time()
    if trace_path is not None and trace_path.exists():
        result.trace = str(trace_path)
    return result


def execute_job(
    job: Job,
    defaults: JobDefaults,
    *,
    context: Any = _FROM_JOB,
    trace_path: Path | None = None,
    return_trace: bool = False,
    sub_lm: LM | None = None,
) -> JobResult:
    """``aexecute_job`` from sync code (a pool worker, a Ray task).

    ``return_trace``: write the trace to a private temp file and hand its text back in
    ``JobResult.trace_text``, for a driver on another machine to store.
    """
    if not return_trace:
        return asyncio.run(aexecute_job(job, defaults, context=context, trace_path=trace_path, sub_lm=sub_lm))
    with tempfile.TemporaryDirectory(prefix="unbounded-job-") as tmp:
        path = Path(tmp) / "trace.jsonl"
        result = asyncio.run(aexecute_job(job, defaults, context=context, trace_path=path, sub_lm=sub_lm))
        if path.exists():
            result.trace_text = path.read_text(encoding="utf-8", errors="replace")
        result.trace = None
    return result
