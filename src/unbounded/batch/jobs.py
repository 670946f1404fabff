"""The job file: one JSON object per line, parsed and validated into ``Job``s.

A line that is not a valid job becomes an ``InvalidLine`` (its number and what is wrong) and the
other lines still run; only what makes the whole file unusable raises (a missing file, no job at
all, two lines with one id). The format is documented in the package docstring.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..budget import Budget
from ..models.registry import DEFAULT_MODEL
from ..repl.base import Limits
from .errors import DuplicateJobIdError, EmptyJobFileError, MissingJobFileError

#: Keys of a job's ``budget`` object (the fields of ``unbounded.Budget`` a job may set).
BUDGET_KEYS = ("max_iterations", "max_llm_calls", "max_total_tokens", "max_cost_usd", "max_seconds")
#: Older names still accepted in job files, and the key each one means.
BUDGET_ALIASES = {"max_tokens": "max_total_tokens"}
CONTEXT_KEYS = ("text", "records", "paths")
JOB_KEYS = frozenset(
    {
        "id",
        "question",
        *CONTEXT_KEYS,
        "model",
        "sub_model",
        "max_depth",
        "budget",
        "model_options",
        "sub_model_options",
        "output",
        "metadata",
    }
)
REPL_KINDS = ("process", "inprocess")


@dataclass(frozen=True, slots=True)
class JobDefaults:
    """What a job gets for the fields it leaves out (the CLI's ``--model``, ``--max-calls``, …).

    A job's ``model_options`` replace ``model_options`` here rather than merging with them: options
    belong to a backend, and a job that names another model should not inherit the default's.
    """

    model: str = DEFAULT_MODEL
    sub_model: str | None = None
    max_depth: int = 1
    budget: Budget = field(default_factory=Budget)
    repl: str = "process"
    model_options: Mapping[str, Any] = field(default_factory=dict)
    sub_model_options: Mapping[str, Any] = field(default_factory=dict)
    limits: Limits | None = None

    def __post_init__(self) -> None:
        if self.repl not in REPL_KINDS:
            raise ValueError(f"repl must be one of {', '.join(REPL_KINDS)}, not {self.repl!r}")
        if self.max_depth < 0:
            raise ValueError("max_depth must be >= 0")


@dataclass(frozen=True, slots=True)
class Job:
    """One question about one context. Exactly one of ``text``, ``records``, ``paths`` is set.

    ``paths`` are absolute (relative ones are resolved against the job file's folder when loaded)
    and are read where the job runs. ``budget`` holds only the limits the job overrides.
    """

    id: str
    question: str
    text: str | None = None
    records: list[Any] | dict[str, Any] | None = None
    paths: tuple[str, ...] = ()
    model: str | None = None
    sub_model: str | None = None
    max_depth: int | None = None
    budget: Mapping[str, Any] = field(default_factory=dict)
    model_options: Mapping[str, Any] | None = None
    sub_model_options: Mapping[str, Any] | None = None
    output: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = None

    @property
    def has_inline_context(self) -> bool:
        return self.text is not None or self.records is not None

    def inline_context(self) -> Any:
        """The inline context (text or records), or None for a job whose context is paths."""
        return self.text if self.text is not None else self.records

    def without_inline_context(self) -> Job:
        """This job minus its inline context, which then travels on its own (the Ray object store)."""
        return dataclasses.replace(self, text=None, records=None)

    # -- what the job runs with ------------------------------------------------------
    def model_spec(self, defaults: JobDefaults) -> str:
        return self.model or defaults.model

    def model_opts(self, defaults: JobDefaults) -> dict[str, Any]:
        return dict(self.model_options if self.model_options is not None else defaults.model_options)

    def sub_model_spec(self, defaults: JobDefaults) -> str | None:
        """The sub-model spec the job names (None: the engine's default, the root model)."""
        return self.sub_model or defaults.sub_model

    def effective_sub_model_spec(self, defaults: JobDefaults) -> str:
        """The model that answers the job's sub-calls, whichever way it is chosen."""
        return self.sub_model_spec(defaults) or self.model_spec(defaults)

    def sub_model_opts(self, defaults: JobDefaults) -> dict[str, Any]:
        return dict(self.sub_model_options if self.sub_model_options is not None else defaults.sub_model_options)

    def budget_for(self, defaults: JobDefaults) -> Budget:
        return dataclasses.replace(defaults.budget, **dict(self.budget)) if self.budget else defaults.budget

    def depth_for(self, defaults: JobDefaults) -> int:
        return defaults.max_depth if self.max_depth is None else self.max_depth


@dataclass(frozen=True, slots=True)
class InvalidLine:
    """A line of the job file that is not a valid job. ``id`` is known when the line parsed far enough."""

    line: int
    error: str
    id: str | None = None


@dataclass(slots=True)
class JobFile:
    """What a job file holds: the valid jobs in order, and the lines that are not."""

    jobs: list[Job]
    invalid: list[InvalidLine]
    source: str | None = None

    @property
    def total(self) -> int:
        return len(self.jobs) + len(self.invalid)


class _Invalid(ValueError):
    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


def load_jobs(
    source: str | os.PathLike[str] | Iterable[Job | Mapping[str, Any]], *, base_dir: Path | None = None
) -> JobFile:
    """Read a JSONL job file (a path) or take an iterable of ``Job``s or dicts.

    Relative ``paths`` resolve against the job file's folder (for an iterable: ``base_dir``, else the
    current folder). Raises ``MissingJobFileError``, ``EmptyJobFileError`` or ``DuplicateJobIdError``;
    every other problem is an ``InvalidLine`` and the rest of the file still counts.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        return _check(_load_file(path), str(path))
    base = (base_dir or Path.cwd()).resolve()
    jobs: list[Job] = []
    invalid: list[InvalidLine] = []
    for n, item in enumerate(source, 1):
        if isinstance(item, Job):
            jobs.append(item if item.line is not None else dataclasses.replace(item, line=n))
            continue
        try:
            jobs.append(parse_job(item, line=n, base_dir=base))
        except _Invalid as exc:
            invalid.append(InvalidLine(n, f"job {n}: {exc}", exc.job_id))
    return _check(JobFile(jobs, invalid), None)


def _load_file(path: Path) -> JobFile:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingJobFileError(f"no such job file: {path}") from None
    except IsADirectoryError:
        raise MissingJobFileError(f"{path} is a folder; give a JSONL file with one job per line") from None
    except OSError as exc:
        raise MissingJobFileError(f"cannot read the job file {path}: {exc.strerror or exc}") from exc
    base = path.resolve().parent
    jobs: list[Job] = []
    invalid: list[InvalidLine] = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        where = f"{path}:{n}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            invalid.append(InvalidLine(n, f"{where}: not UTF-8 (byte {exc.start}); save the file as UTF-8"))
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            invalid.append(
                InvalidLine(
                    n, f"{where}: invalid JSON ({exc.msg} at column {exc.colno}); each line must be one JSON object"
                )
            )
            continue
        try:
            jobs.append(parse_job(obj, line=n, base_dir=base))
        except _Invalid as exc:
            invalid.append(InvalidLine(n, f"{where}: {exc}", exc.job_id))
    return JobFile(jobs, invalid)


def _check(job_file: JobFile, source: str | None) -> JobFile:
    job_file.source = source
    where = source or "the jobs"
    if not job_file.jobs and not job_file.invalid:
        raise EmptyJobFileError(f"{where} holds no job: give one JSON object per line")
    lines: dict[str, list[int]] = {}
    for job in job_file.jobs:
        lines.setdefault(job.id, []).append(job.line or 0)
    for bad in job_file.invalid:
        if bad.id is not None:
            lines.setdefault(bad.id, []).append(bad.line)
    dups = {k: sorted(v) for k, v in lines.items() if len(v) > 1}
    if dups:
        shown = "; ".join(f"{k!r} on lines {', '.join(map(str, v))}" for k, v in list(dups.items())[:10])
        more = f" and {len(dups) - 10} more" if len(dups) > 10 else ""
        raise DuplicateJobIdError(
            f"duplicate job ids in {where}: {shown}{more}; every job needs its own id (results and resuming go by id)"
        )
    return job_file


def parse_job(obj: Any, *, line: int | None = None, base_dir: Path | None = None) -> Job:
    """Validate one job object. Raises ``ValueError`` (a subclass) saying what is wrong."""
    if not isinstance(obj, Mapping):
        raise _Invalid(f"a job must be a JSON object, not {_json_type(obj)}")
    job_id = _parse_id(obj.get("id"))
    unknown = sorted(set(obj) - JOB_KEYS)
    if unknown:
        raise _Invalid(
            f"unknown field(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(JOB_KEYS))}", job_id
        )
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise _Invalid("'question' must be a non-empty string", job_id)
    given = [k for k in CONTEXT_KEYS if obj.get(k) is not None]
    if len(given) != 1:
        what = "none" if not given else " and ".join(map(repr, given))
        raise _Invalid(
            f"give exactly one context: 'text' (a string), 'records' (an array or object) or 'paths' "
            f"(a path or an array of paths); got {what}",
            job_id,
        )
    text = records = None
    paths: tuple[str, ...] = ()
    if given[0] == "text":
        if not isinstance(obj["text"], str):
            raise _Invalid(f"'text' must be a string, not {_json_type(obj['text'])}", job_id)
        text = obj["text"]
    elif given[0] == "records":
        if not isinstance(obj["records"], list | dict):
            raise _Invalid(f"'records' must be an array or an object, not {_json_type(obj['records'])}", job_id)
        records = obj["records"]
    else:
        paths = _parse_paths(obj["paths"], base_dir, job_id)
    model = _optional_str(obj, "model", job_id)
    sub_model = _optional_str(obj, "sub_model", job_id)
    depth = obj.get("max_depth")
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 0):
        raise _Invalid("'max_depth' must be a whole number >= 0", job_id)
    return Job(
        id=job_id,
        question=question,
        text=text,
        records=records,
        paths=paths,
        model=model,
        sub_model=sub_model,
        max_depth=depth,
        budget=_parse_budget(obj.get("budget"), job_id),
        model_options=_optional_object(obj, "model_options", job_id),
        sub_model_options=_optional_object(obj, "sub_model_options", job_id),
        output=_optional_object(obj, "output", job_id),
        metadata=_optional_object(obj, "metadata", job_id) or {},
        line=line,
    )


def _parse_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        got = "missing" if value is None else f"a {_json_type(value)}"
        raise _Invalid(f"'id' must be a string or a whole number ({got})")
    job_id = str(value)
    if not job_id.strip():
        raise _Invalid("'id' must not be empty")
    return job_id


def _parse_paths(value: Any, base_dir: Path | None, job_id: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(p, str) and p for p in items):
        raise _Invalid("'paths' must be a path or a non-empty array of paths (strings)", job_id)
    base = base_dir or Path.cwd()
    return tuple(str(p if Path(p).is_absolute() else base / p) for p in items)


def _parse_budget(value: Any, job_id: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _Invalid(f"'budget' must be an object, not {_json_type(value)}", job_id)
    value = {BUDGET_ALIASES.get(k, k): v for k, v in value.items()}
    unknown = sorted(set(value) - set(BUDGET_KEYS))
    if unknown:
        raise _Invalid(
            f"unknown budget key(s) {', '.join(map(repr, unknown))}; known: {', '.join(BUDGET_KEYS)}", job_id
        )
    for key, v in value.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise _Invalid(f"budget {key!r} must be a number or null, not {_json_type(v)}", job_id)
        if key in ("max_iterations", "max_llm_calls", "max_total_tokens") and isinstance(v, float):
            raise _Invalid(f"budget {key!r} must be a whole number", job_id)
    budget = dict(value)
    if "max_iterations" in budget and budget["max_iterations"] is None:
        raise _Invalid("budget 'max_iterations' must be a whole number >= 1 (it cannot be unlimited)", job_id)
    try:
        Budget(**budget)
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"invalid budget: {exc}", job_id) from None
    return budget


def _optional_str(obj: Mapping[str, Any], key: str, job_id: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"{key!r} must be a model spec string such as 'openai/gpt-5-mini'", job_id)
    return value.strip()


def _optional_object(obj: Mapping[str, Any], key: str, job_id: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        what = "a JSON schema" if key == "output" else "an object"
        raise _Invalid(f"{key!r} must be {what} (a JSON object), not {_json_type(value)}", job_id)
    return dict(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__
