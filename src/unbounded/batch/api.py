"""``run_batch``: load the jobs, skip what is done, run the rest locally or on Ray, record every result."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import BatchUsageError
from .jobs import Job, JobDefaults, JobFile, load_jobs
from .progress import BatchProgress
from .results import BatchOutput, JobResult
from .summary import BatchSummary, summarize

JobSource = str | os.PathLike[str] | Iterable[Job | Mapping[str, Any]]


class BatchRun(Iterator[JobResult]):
    """The iterator ``run_batch`` returns: results as jobs finish (invalid lines first).

    ``summary`` is complete once the iterator is exhausted (or closed); ``job_file`` is what was
    loaded, ``skipped`` the jobs already finished in the output folder. ``close()`` stops the batch:
    jobs not yet started are dropped, jobs in flight are abandoned (Ray cancels its tasks; a local
    worker finishes its current job) and their results are not recorded, so a later run redoes them.
    """

    def __init__(
        self,
        job_file: JobFile,
        todo: list[Job],
        prior: dict[str, JobResult],
        runner: Any,
        *,
        output: BatchOutput | None,
        progress: bool,
        cleanup: Any = None,
    ) -> None:
        self.job_file = job_file
        self.todo = todo
        self.skipped = len(job_file.jobs) - len(todo)
        self.summary: BatchSummary | None = None
        self._prior = prior
        self._runner = runner
        self._output = output
        self._progress = progress
        self._cleanup = cleanup
        self._latest: dict[str, JobResult] = {}
        self._gen = self._generate()

    def __iter__(self) -> BatchRun:
        return self

    def __next__(self) -> JobResult:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()

    def __enter__(self) -> BatchRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _generate(self) -> Iterator[JobResult]:
        started = time.perf_counter()
        ran = 0
        output = self._output
        bar = BatchProgress(len(self.todo) + len(self.job_file.invalid), enabled=self._progress, skipped=self.skipped)
        try:
            if output is not None:
                output.open()
                output.write_invalid(self.job_file.invalid)
            with bar:
                for bad in self.job_file.invalid:
                    result = JobResult.invalid(bad)
                    self._latest[result.id] = result
                    bar.advance(result)
                    if self._progress:
                        bar.print(f"invalid: {bad.error}")
                    yield result
                if not self.todo:
                    return
                for result in self._runner():
                    if output is not None:
                        if result.trace_text is not None:
                            result.trace = output.relative(output.write_trace(result.id, result.trace_text))
                        output.append(result)
                    result.trace_text = None
                    self._latest[result.id] = result
                    ran += 1
                    bar.advance(result)
                    if self._progress and result.failed:
                        bar.print(f"{result.id}: {result.status}: {(result.error or '')[:300]}")
                    yield result
        finally:
            try:
                if self._cleanup is not None:
                    self._cleanup()
            finally:
                rows = [self._latest.get(j.id) or self._prior.get(j.id) for j in self.job_file.jobs]
                rows += [r for r in self._latest.values() if r.status == "invalid"]
                self.summary = summarize(
                    [r for r in rows if r is not None],
                    ran=ran,
                    skipped=self.skipped,
                    wall_seconds=time.perf_counter() - started,
                )
                if output is not None:
                    output.write_summary(self.summary.to_dict())
                    output.close()


def run_batch(
    jobs: JobSource,
    *,
    out: str | os.PathLike[str] | None = None,
    ray: str | bool | None = None,
    workers: int | None = None,
    defaults: JobDefaults | None = None,
    model: str | None = None,
    sub_model: str | None = None,
    sub_pool: Any = None,
    cpus_per_job: float | None = None,
    retry_failed: bool = False,
    progress: bool = False,
    base_dir: str | os.PathLike[str] | None = None,
) -> BatchRun:
    """Run a batch of jobs; return an iterator of ``JobResult``s as they finish.

    ``jobs``: a JSONL job file (a path) or an iterable of ``Job``s / job dicts (see the package
    docstring for the format). ``out``: the output folder (results, traces, summary); a rerun with
    the same folder skips jobs already finished there (``retry_failed``: except failed ones).
    ``ray``: None runs on a local process pool of ``workers`` processes; ``"auto"`` (or True), an
    address such as ``"host:6379"``, or ``"local"`` runs each job as a Ray task. ``defaults`` (or
    the ``model`` / ``sub_model`` shortcuts) fill what jobs leave out. ``sub_pool``: ``"ray"``, a
    ``PoolOptions`` or a started ``RayModelPool`` answers the sub-calls of jobs whose sub-model is
    the batch's default one (Ray only). ``cpus_per_job``: Ray CPUs per job (default 1; 0 with a
    pool). ``progress``: a progress bar on stderr.

    Raises ``JobFileError`` (missing or empty file, duplicate ids), ``RayUnavailableError`` (Ray not
    installed or unreachable), ``BatchUsageError`` (options that do not go together). A job's own
    failure never raises: it is a result with an ``error:...`` status.
    """
    defaults = defaults or JobDefaults()
    if model is not None:
        defaults = dataclasses.replace(defaults, model=model)
    if sub_model is not None:
        defaults = dataclasses.replace(defaults, sub_model=sub_model)
    if workers is not None and workers < 1:
        raise BatchUsageError("workers must be at least 1")
    address = _ray_address(ray)
    if sub_pool is not None and address is None:
        raise BatchUsageError(
            "a Ray model pool (sub_pool / --sub-pool ray) needs the Ray runner: add ray='auto' (--ray) "
            "so the jobs run in the cluster that holds the pool"
        )
    if address is not None:
        from .ray_support import import_ray

        import_ray()  # fail now, with the install command, rather than at the first result
    job_file = load_jobs(jobs, base_dir=Path(base_dir) if base_dir else None)
    output = BatchOutput(out) if out is not None else None
    prior = output.read_results() if output is not None else {}
    todo = [j for j in job_file.jobs if not _done(prior.get(j.id), retry_failed)]

    if address is None:
        from .local_runner import run_local

        return BatchRun(
            job_file,
            todo,
            prior,
            lambda: run_local(todo, defaults, workers=workers, output=output),
            output=output,
            progress=progress,
        )

    state: dict[str, Any] = {}

    def runner() -> Iterator[JobResult]:
        from .ray_runner import run_ray
        from .ray_support import connect

        state["owns"] = connect(address)
        pool = _start_pool(sub_pool, defaults, state)
        return run_ray(
            todo,
            defaults,
            address=address,
            workers=workers,
            cpus_per_job=cpus_per_job,
            pool=pool,
            traces=output is not None,
        )

    def cleanup() -> None:
        from .ray_support import import_ray

        pool = state.get("owned_pool")
        try:
            if pool is not None:
                pool.shutdown()
        finally:
            if state.get("owns"):
                import_ray().shutdown()

    return BatchRun(job_file, todo, prior, runner, output=output, progress=progress, cleanup=cleanup)


def _ray_address(ray: str | bool | None) -> str | None:
    if ray is None or ray is False:
        return None
    if ray is True:
        return "auto"
    if not isinstance(ray, str) or not ray.strip():
        raise BatchUsageError("ray must be 'auto', 'local' or a cluster address such as 'host:6379'")
    return ray.strip()


def _done(previous: JobResult | None, retry_failed: bool) -> bool:
    return previous is not None and not (retry_failed and previous.failed)


def _start_pool(sub_pool: Any, defaults: JobDefaults, state: dict[str, Any]) -> Any:
    """The pool for the batch's default sub-model: started here for ``"ray"``/``PoolOptions``."""
    from .pool import PoolOptions, RayModelPool

    if sub_pool is None:
        return None
    if isinstance(sub_pool, RayModelPool):
        return sub_pool
    if sub_pool == "ray":
        sub_pool = PoolOptions()
    if not isinstance(sub_pool, PoolOptions):
        raise BatchUsageError(f"sub_pool must be 'ray', a PoolOptions or a RayModelPool, not {sub_pool!r}")
    if defaults.sub_model:
        spec, options = defaults.sub_model, defaults.sub_model_options
    else:
        spec, options = defaults.model, defaults.model_options
    pool = sub_pool.start(spec, options)
    state["owned_pool"] = pool
    return pool
