"""What a job leaves behind, and the output folder a batch resumes from.

Layout of ``--out DIR``:

* ``results.jsonl`` — one ``JobResult`` per finished job, appended (and fsynced) as it finishes.
  Only the driver writes it, so a job retried by Ray or by a rebuilt process pool still gets one
  line. A run killed mid-write leaves a partial last line; it is cut off on the next start (that
  job was not finished, so it runs again).
* ``traces/<id>.jsonl`` — each job's engine trace (ids that are not safe file names get a hash).
* ``invalid.jsonl`` — the lines of the job file that are not valid jobs, rewritten on each run.
* ``summary.json`` — the summary of the latest run (over every job of the file).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models.base import Usage
from .jobs import InvalidLine

RESULTS_FILE = "results.jsonl"
TRACES_DIR = "traces"
INVALID_FILE = "invalid.jsonl"
SUMMARY_FILE = "summary.json"

#: Statuses that carry an answer (the engine's ``final``, and its best guess when turns ran out).
ANSWERED = frozenset({"final", "max_iterations"})
#: The status of a job-file line that is not a valid job.
INVALID = "invalid"

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """Where a job ran: the Ray node id (None outside Ray), the host name and the process id."""

    node_id: str | None
    hostname: str
    pid: int

    def to_dict(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "hostname": self.hostname, "pid": self.pid}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NodeInfo:
        return cls(d.get("node_id"), str(d.get("hostname", "")), int(d.get("pid", 0)))


@dataclass(slots=True)
class JobResult:
    """How one job ended.

    ``status`` is the engine's (``final``, ``max_iterations``, ``budget:<limit>``, ``error:<kind>``,
    ``interrupted``) or the batch's own: ``error:context`` (a path missing where the job ran),
    ``error:config`` (unknown model, bad option), ``error:lost`` (the job's worker or node died more
    often than retries allow), ``invalid`` (the job-file line is not a job). ``usage`` is per model,
    as the job's own ledger settled it. ``attempts`` is how often the local pool started the job
    (None on Ray, which retries lost tasks by itself). ``trace`` is relative to the output folder.
    """

    id: str
    status: str
    answer: str | None = None
    #: A typed job's validated answer as JSON data (the job's ``output`` schema), else None.
    value: Any = None
    error: str | None = None
    usage: dict[str, Usage] = field(default_factory=dict)
    elapsed: float = 0.0
    iterations: int = 0
    subcalls: int = 0
    trace: str | None = None
    node: NodeInfo | None = None
    line: int | None = None
    attempts: int | None = None
    finished_at: float = field(default_factory=time.time)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The trace's text while a result travels back from another machine; never written to results.
    trace_text: str | None = field(default=None, repr=False)

    @property
    def answered(self) -> bool:
        return self.status in ANSWERED

    @property
    def failed(self) -> bool:
        return not self.answered

    @property
    def total_usage(self) -> Usage:
        return Usage.sum(self.usage.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "answer": self.answer,
            "value": self.value,
            "error": self.error,
            "usage": {k: v.to_dict() for k, v in self.usage.items()},
            "total_usage": self.total_usage.to_dict(),
            "elapsed": round(self.elapsed, 4),
            "iterations": self.iterations,
            "subcalls": self.subcalls,
            "trace": self.trace,
            "node": self.node.to_dict() if self.node else None,
            "line": self.line,
            "attempts": self.attempts,
            "finished_at": self.finished_at,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JobResult:
        return cls(
            id=str(d["id"]),
            status=str(d["status"]),
            answer=d.get("answer"),
            value=d.get("value"),
            error=d.get("error"),
            usage={k: Usage.from_dict(v) for k, v in (d.get("usage") or {}).items()},
            elapsed=float(d.get("elapsed") or 0.0),
            iterations=int(d.get("iterations") or 0),
            subcalls=int(d.get("subcalls") or 0),
            trace=d.get("trace"),
            node=NodeInfo.from_dict(d["node"]) if d.get("node") else None,
            line=d.get("line"),
            attempts=d.get("attempts"),
            finished_at=float(d.get("finished_at") or 0.0),
            metadata=dict(d.get("metadata") or {}),
        )

    @classmethod
    def invalid(cls, bad: InvalidLine) -> JobResult:
        return cls(id=bad.id or f"<line {bad.line}>", status=INVALID, error=bad.error, line=bad.line)


def trace_name(job_id: str) -> str:
    """A file name for the job's trace: the id itself when it is a safe name, else a slug plus a hash."""
    if _SAFE_ID.fullmatch(job_id):
        return f"{job_id}.jsonl"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", job_id).strip("._-")[:60] or "job"
    digest = hashlib.sha256(job_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{slug}-{digest}.jsonl"


class BatchOutput:
    """The output folder: results, traces, invalid lines and the summary (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.results_path = self.root / RESULTS_FILE
        self.traces_dir = self.root / TRACES_DIR
        self.invalid_path = self.root / INVALID_FILE
        self.summary_path = self.root / SUMMARY_FILE
        self._fh: Any = None

    def open(self) -> None:
        """Create the folder and make ``results.jsonl`` safe to append to (cut a partial last line)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.traces_dir.mkdir(exist_ok=True)
        self._repair()
        self._fh = open(self.results_path, "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        if self._fh is not None and not self._fh.closed:
            self._fh.close()
        self._fh = None

    def __enter__(self) -> BatchOutput:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _repair(self) -> None:
        try:
            size = self.results_path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0:
            return
        with open(self.results_path, "rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return
            # A crash mid-write: drop everything after the last complete line.
            chunk = 1 << 16
            pos = size
            while pos > 0:
                start = max(0, pos - chunk)
                fh.seek(start)
                block = fh.read(pos - start)
                nl = block.rfind(b"\n")
                if nl >= 0:
                    fh.truncate(start + nl + 1)
                    return
                pos = start
            fh.truncate(0)

    # -- results ------------------------------------------------------------------------
    def read_results(self) -> dict[str, JobResult]:
        """The latest result per job id (a later line for an id replaces an earlier one)."""
        latest: dict[str, JobResult] = {}
        try:
            fh = open(self.results_path, encoding="utf-8")  # noqa: SIM115
        except FileNotFoundError:
            return latest
        with fh:
            for line in fh:
                if not line.endswith("\n"):
                    break  # a partial last line: that job did not finish
                try:
                    result = JobResult.from_dict(json.loads(line))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
                latest[result.id] = result
        return latest

    def append(self, result: JobResult) -> None:
        """Write one result line and force it to disk, so a crash right after loses nothing."""
        if self._fh is None:
            raise RuntimeError("BatchOutput.append before open()")
        self._fh.write(json.dumps(result.to_dict(), ensure_ascii=False, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    # -- traces -------------------------------------------------------------------------
    def trace_path(self, job_id: str) -> Path:
        return self.traces_dir / trace_name(job_id)

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def write_trace(self, job_id: str, text: str) -> Path:
        """Store a trace that came back from another machine (atomically: a reader never sees half)."""
        path = self.trace_path(job_id)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        return path

    # -- invalid lines and the summary ----------------------------------------------------
    def write_invalid(self, invalid: Iterable[InvalidLine]) -> None:
        rows = [{"line": b.line, "id": b.id, "error": b.error} for b in invalid]
        if not rows:
            self.invalid_path.unlink(missing_ok=True)
            return
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        tmp = self.invalid_path.with_name(INVALID_FILE + ".part")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.invalid_path)

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        tmp = self.summary_path.with_name(SUMMARY_FILE + ".part")
        tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.summary_path)
