"""The Ray runner: each job is one Ray task, spread over the cluster's nodes.

* An inline context is put in the object store once per job and handed to its task, which keeps
  it for the whole run (every turn and sub-call of the job reads it there, on the worker).
* Paths are read by the task, on its node: they must be on a file system every node sees.
* A task whose worker or node dies is retried by Ray on another node (``max_retries``); a job whose
  retries run out is recorded as ``error:lost``. The driver alone writes results, so a retried job
  still gets exactly one result line.
* Traces are written on the worker to a private temp file and come back with the result.
* With a model pool, the pool's actors hold the CPUs and jobs take ``cpus_per_job=0`` by default
  (they mostly wait on model calls); ``workers`` caps how many run at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from .execute import execute_job
from .jobs import Job, JobDefaults
from .ray_support import cluster_cpus, connect, error_reason, import_ray
from .results import JobResult

#: How often Ray starts a job again after its worker or node died.
MAX_RETRIES = 3


def _ray_job(job: Job, defaults: JobDefaults, context: Any, pool: Any, traces: bool) -> JobResult:
    """The task body (Ray resolves the object-store arguments before calling it)."""
    sub_lm = None
    if pool is not None and job.effective_sub_model_spec(defaults) == pool_spec(pool):
        sub_lm = pool
    kwargs: dict[str, Any] = {"return_trace": traces, "sub_lm": sub_lm}
    if not job.paths:  # an inline context, resolved from the object store
        kwargs["context"] = context
    return execute_job(job, defaults, **kwargs)


def pool_spec(pool: Any) -> str:
    """The model spec a pool serves (what a job's sub-model must name to use it)."""
    return str(getattr(pool, "spec", None) or pool.name)


def run_ray(
    jobs: Iterable[Job],
    defaults: JobDefaults,
    *,
    address: str | None = "auto",
    workers: int | None = None,
    cpus_per_job: float | None = None,
    pool: Any = None,
    max_retries: int = MAX_RETRIES,
    traces: bool = True,
) -> Iterator[JobResult]:
    """Run ``jobs`` as Ray tasks; yield each result as it finishes (in finishing order).

    ``pool`` (a ``RayModelPool``) answers the sub-calls of jobs whose sub-model is the pool's model.
    ``workers`` bounds the jobs in flight (default: the cluster's CPUs / ``cpus_per_job``).
    ``traces``: bring each job's trace back in ``JobResult.trace_text`` (for the driver to store).
    """
    ray = import_ray()
    queue: deque[Job] = deque(jobs)
    if not queue:
        return
    owns = connect(address)
    inflight: dict[Any, Job] = {}
    try:
        cpus = (0.0 if pool is not None else 1.0) if cpus_per_job is None else float(cpus_per_job)
        if cpus < 0:
            raise ValueError("cpus_per_job must be >= 0")
        total = cluster_cpus()
        limit = workers or max(1, int(total // cpus) if cpus > 0 else int(total) or 1)
        task = ray.remote(_ray_job).options(
            num_cpus=cpus, max_retries=max_retries, retry_exceptions=False, scheduling_strategy="SPREAD"
        )
        defaults_ref = ray.put(defaults)
        pool_ref = ray.put(pool) if pool is not None else None
        while queue or inflight:
            while queue and len(inflight) < limit:
                job = queue.popleft()
                context_ref = ray.put(job.inline_context()) if job.has_inline_context else None
                light = job.without_inline_context() if job.has_inline_context else job
                inflight[task.remote(light, defaults_ref, context_ref, pool_ref, traces)] = job
            ready, _ = ray.wait(list(inflight), num_returns=1)
            rest = [r for r in inflight if r not in ready]
            if rest:  # collect whatever else finished meanwhile, without waiting
                more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                ready = [*ready, *more]
            for ref in ready:
                job = inflight.pop(ref)
                try:
                    result: JobResult = ray.get(ref)
                except Exception as exc:  # retries ran out: the worker or node kept dying
                    result = JobResult(
                        id=job.id,
                        status="error:lost",
                        error=f"the Ray task running this job was lost: {type(exc).__name__}: {error_reason(exc)}",
                        line=job.line,
                        metadata=dict(job.metadata),
                    )
                yield result
    finally:
        for ref in inflight:
            try:
                ray.cancel(ref)
            except Exception:
                pass
        if owns:
            ray.shutdown()
