"""Batch runs: many questions over many contexts, on a local process pool or a Ray cluster.

    from unbounded.batch import run_batch
    for result in run_batch("jobs.jsonl", out="runs/nightly", ray="auto"):
        print(result.id, result.status, result.answer)

The job file
------------
One JSON object per line (blank lines are skipped):

    {"id": "q1", "question": "Who signed the lease?", "paths": ["contracts/2024/"]}
    {"id": "q2", "question": "Total of the invoices?", "text": "…inline text…", "budget": {"max_llm_calls": 50}}
    {"id": 3, "question": "Which record is oldest?", "records": [{"date": "…"}, …], "model": "openai/gpt-5-mini"}

* ``id`` (string or whole number, required, unique in the file) and ``question`` (required).
* The context, exactly one of: ``text`` (a string), ``records`` (an array of documents or records,
  or an object such as ``{name: text}``), ``paths`` (a path or an array of paths: files, folders or
  ``.jsonl`` files, loaded as ``unbounded ask`` loads them). Relative paths are resolved against
  the job file's folder. Paths are read where the job runs: on a Ray cluster they must be on a file
  system every node sees (NFS, a mounted bucket); inline contexts travel with the job instead,
  through the Ray object store once per job (not once per turn).
* Optional: ``model`` and ``sub_model`` (spec strings; default: the command's ``--model`` /
  ``--sub-model``), ``model_options`` / ``sub_model_options`` (backend options; they replace the
  defaults' options), ``max_depth``, ``budget`` (any of ``max_iterations``, ``max_llm_calls``,
  ``max_total_tokens`` (``max_tokens`` is read as its older name), ``max_cost_usd``,
  ``max_seconds``; the others keep the command's values),
  ``output`` (a JSON schema object for a typed answer) and ``metadata`` (an object echoed into the
  result).

A line that is not a valid job (bad JSON, a missing field, an unknown key) is reported with its
line number in ``invalid.jsonl`` and as a result with status ``invalid``; the other lines run.
Duplicate ids stop the batch before it starts.

The output folder
-----------------
``results.jsonl`` (one line per finished job: id, status, answer, error, usage, elapsed, node,
trace), ``traces/<id>.jsonl`` (the engine's trace of each job), ``invalid.jsonl`` and
``summary.json``. Rerunning with the same folder skips the jobs already there (``--retry-failed``
also reruns failed ones), so a killed batch resumes where it stopped.

Ray
---
Ray is optional (``pip install 'unbounded[ray]'``) and imported only for ``--ray`` or a pool. Each
job is a Ray task spread over the nodes; a task lost with its node is retried on another. The
nodes need unbounded installed (and the models' extras). ``--sub-pool ray`` (``RayModelPool`` in
Python) sends the sub-calls of local models to model actors on every node, so one ``llm_batch``
uses the whole cluster while the job's own ledger keeps the budget exact; remote providers need no
pool.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from .._lazy import TYPE_CHECKING, lazy_exports

_EXPORTS = {
    "run_batch": ".api",
    "BatchRun": ".api",
    "Job": ".jobs",
    "JobDefaults": ".jobs",
    "JobFile": ".jobs",
    "InvalidLine": ".jobs",
    "load_jobs": ".jobs",
    "parse_job": ".jobs",
    "JobResult": ".results",
    "NodeInfo": ".results",
    "BatchOutput": ".results",
    "BatchSummary": ".summary",
    "summarize": ".summary",
    "RayModelPool": ".pool",
    "PoolOptions": ".pool",
    "execute_job": ".execute",
    "aexecute_job": ".execute",
    "add_parser": ".cli",
    "BatchError": ".errors",
    "JobFileError": ".errors",
    "MissingJobFileError": ".errors",
    "EmptyJobFileError": ".errors",
    "DuplicateJobIdError": ".errors",
    "BatchUsageError": ".errors",
    "RayUnavailableError": ".errors",
    "PoolError": ".errors",
}

if TYPE_CHECKING:
    from .api import BatchRun, run_batch
    from .cli import add_parser
    from .errors import (
        BatchError,
        BatchUsageError,
        DuplicateJobIdError,
        EmptyJobFileError,
        JobFileError,
        MissingJobFileError,
        PoolError,
        RayUnavailableError,
    )
    from .execute import aexecute_job, execute_job
    from .jobs import InvalidLine, Job, JobDefaults, JobFile, load_jobs, parse_job
    from .pool import PoolOptions, RayModelPool
    from .results import BatchOutput, JobResult, NodeInfo
    from .summary import BatchSummary, summarize

_lazy_getattr = lazy_exports(__name__, _EXPORTS, globals())


def __getattr__(name: str) -> Any:
    if name == "batch":  # ``unbounded``'s lazy export of ``batch`` resolves to this package itself
        return sys.modules[__name__]
    return _lazy_getattr(name)


class _CallableModule(types.ModuleType):
    """``unbounded.batch(jobs, ...)`` is ``run_batch(jobs, ...)``.

    ``unbounded.batch`` is both this package and the top-level entry point; the package object is
    callable, so the name means the same whether or not a submodule was imported first.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from .api import run_batch

        return run_batch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "BatchError",
    "BatchOutput",
    "BatchRun",
    "BatchSummary",
    "BatchUsageError",
    "DuplicateJobIdError",
    "EmptyJobFileError",
    "InvalidLine",
    "Job",
    "JobDefaults",
    "JobFile",
    "JobFileError",
    "JobResult",
    "MissingJobFileError",
    "NodeInfo",
    "PoolError",
    "PoolOptions",
    "RayModelPool",
    "RayUnavailableError",
    "add_parser",
    "aexecute_job",
    "execute_job",
    "load_jobs",
    "parse_job",
    "run_batch",
    "summarize",
]
