"""The default runner: a pool of worker processes on this machine (no Ray needed).

Each worker runs one job at a time (a job is one ``RLM.arun``) and writes the job's trace straight
into the output folder. The pool is ``pebble.ProcessPool``: when a worker dies (killed, out of
memory, a crash in native code) only the job it was running fails, with ``ProcessExpired``, and the
pool starts a fresh worker — the other jobs in flight are untouched (a stdlib
``ProcessPoolExecutor`` would break as a whole and leave no way to tell which job killed it). The
job whose worker died runs again, up to ``max_attempts`` times, then is recorded as ``error:lost``.
Workers start from a fork server, so they never inherit the driver's threads. Results come back in
the order jobs finish.

A ``local/`` model is loaded once per worker process (each worker holds its own copy of the weights
and KV cache), so on a small machine run such batches with ``workers=1`` or a Ray model pool.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path

from pebble import ProcessExpired, ProcessPool

from .execute import execute_job
from .jobs import Job, JobDefaults
from .results import BatchOutput, JobResult

MAX_ATTEMPTS = 3


def default_workers() -> int:
    """The CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _run_in_worker(job: Job, defaults: JobDefaults, trace_path: Path | None) -> JobResult:
    return execute_job(job, defaults, trace_path=trace_path)


def _exit_with_driver(driver_pid: int) -> None:
    """Worker initializer: leave when the driver dies. A driver killed with ``kill -9`` cannot stop
    its pool, and its workers would otherwise wait for work forever (they are the fork server's
    children, not the driver's, so no parent-death signal reaches them)."""

    def watch() -> None:
        try:
            fd = os.pidfd_open(driver_pid)
        except OSError:  # no pidfd here (or the driver is already gone): poll instead
            while True:
                try:
                    os.kill(driver_pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
                time.sleep(1.0)
        else:
            select.select([fd], [], [])  # readable once the driver has exited
        os._exit(1)

    threading.Thread(target=watch, name="unbounded-driver-watch", daemon=True).start()


def run_local(
    jobs: Iterable[Job],
    defaults: JobDefaults,
    *,
    workers: int | None = None,
    output: BatchOutput | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> Iterator[JobResult]:
    """Run ``jobs`` on ``workers`` processes; yield each result as it finishes."""
    n = workers or default_workers()
    if n < 1:
        raise ValueError("workers must be at least 1")
    queue: deque[tuple[Job, int]] = deque((job, 1) for job in jobs)
    if not queue:
        return
    pool = ProcessPool(
        max_workers=min(n, len(queue)),
        initializer=_exit_with_driver,
        initargs=(os.getpid(),),
        context=multiprocessing.get_context("forkserver"),
    )
    inflight: dict[Future[JobResult], tuple[Job, int]] = {}
    try:
        while queue or inflight:
            while queue and len(inflight) < n:
                job, attempt = queue.popleft()
                trace = output.trace_path(job.id) if output is not None else None
                inflight[pool.schedule(_run_in_worker, args=(job, defaults, trace))] = (job, attempt)
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in done:
                job, attempt = inflight.pop(future)
                try:
                    result = future.result()
                except ProcessExpired as exc:  # this job's worker died; the pool has replaced it
                    if attempt < max_attempts:
                        queue.appendleft((job, attempt + 1))
                        continue
                    result = _failed(
                        job,
                        "error:lost",
                        f"the worker process running this job died {attempt} times "
                        f"(last exit code {exc.exitcode}: killed, out of memory or crashed)",
                    )
                except Exception as exc:  # the job or its result could not cross the process boundary
                    result = _failed(job, "error:internal", f"{type(exc).__name__}: {exc}")
                result.attempts = attempt
                if output is not None and result.trace:
                    result.trace = output.relative(Path(result.trace))
                yield result
    finally:
        pool.stop()  # jobs still running are abandoned (the caller stopped early); nothing is recorded
        pool.join()


def _failed(job: Job, status: str, error: str) -> JobResult:
    return JobResult(id=job.id, status=status, error=error, line=job.line, metadata=dict(job.metadata))
