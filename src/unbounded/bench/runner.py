"""``bench run``: every (task, size, item, method) on one model, resumable, with traces and a cache.

    config = BenchConfig(tasks=["niah"], sizes=[8192], methods=["direct", "rlm"], model="local/...",
                         out=Path("runs/a"), n=5)
    summary = run_bench(config)

Layout of ``out``:

* ``results.jsonl`` — one ``ResultRecord`` per finished item, appended as it finishes. A rerun
  skips every key (task, size, method, item id, model) already there, so an interrupted run resumes.
* ``traces/<task>-<size>-<method>-<item>.jsonl`` — the engine's event trace for RLM methods; for
  the baselines, one line per model call (messages, answer, usage).
* ``cache.sqlite`` — the response cache (on by default; identical calls are answered from disk).
* ``runs.jsonl`` — one line per invocation: the configuration, versions and what it did.

Work units are ordered size → task → item → method, so a partial run always holds complete
method comparisons for its first items. Items of a (task, size) group are generated when the group
is first needed and dropped when its last unit finishes.
"""

from __future__ import annotations

import asyncio
import json
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..models import LM, resolve_model
from .metered import BenchCache, ItemLM
from .methods import METHODS, RLM_METHODS, MethodConfig, MethodResult, split_method, styled_config
from .results import (
    ANSWER_CHARS,
    RESULTS_FILE,
    Key,
    ResultRecord,
    ResultsFile,
    compaction_line,
    gold_value,
    latest,
    read_results,
    size_label,
    truncate,
)
from .tasks import TASKS, TaskItem, generate, score

#: Methods outside ``METHODS`` that the runner knows how to start (imported lazily).
EXTRA_METHODS = ("rlms",)
CACHE_FILE = "cache.sqlite"
TRACES_DIR = "traces"


def known_methods() -> list[str]:
    return [*METHODS, *EXTRA_METHODS]


def is_known_method(name: str) -> bool:
    """A method by name, or an RLM method with a prompt style (``rlm:compact``)."""
    try:
        base, _ = split_method(name)
    except ValueError:
        return False
    return base in known_methods()


@dataclass(slots=True)
class BenchConfig:
    """What ``bench run`` does. ``model``/``sub_model`` are spec strings (or LM instances in tests).

    ``jobs`` bounds how many items run at once (None: 1 for ``local/`` models, which run one call
    at a time anyway, else 8; with ``ray``, the number of Ray workers, by default the cluster's
    CPUs / ``ray_cpus_per_worker``). ``model_options`` go to ``resolve_model`` (e.g. ``n_ctx`` for local
    models, ``base_url`` for OpenAI-compatible servers). ``rlms_options`` configure the ``rlms``
    comparison method (see ``unbounded.bench.rlms_method``). ``ray`` (``"auto"``, ``"local"`` or
    a cluster address) runs the units on Ray workers (see ``unbounded.bench.ray_bench``).
    """

    tasks: list[str]
    sizes: list[int]
    methods: list[str]
    model: Any
    out: Path
    n: int = 5
    seed: int = 0
    jobs: int | None = None
    cache: bool = True
    repl: str = "process"
    max_iterations: int = 20
    max_depth: int = 1
    max_llm_calls: int = 200
    sub_model: Any = None
    timeout_per_item: float | None = None
    context_window: int = 32_768
    model_options: dict[str, Any] = field(default_factory=dict)
    rlms_options: dict[str, Any] = field(default_factory=dict)
    retry_errors: bool = False
    progress: bool = True
    verbose: bool = True
    ray: str | None = None
    ray_cpus_per_worker: float = 1.0

    def validate(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")
        unknown = [m for m in self.methods if not is_known_method(m)]
        if unknown:
            raise ValueError(
                f"unknown method(s) {', '.join(unknown)}; known: {', '.join(known_methods())}"
                " (an RLM method may add a prompt style: rlm:compact, rlm:guided, rlm:full)"
            )
        if not self.tasks or not self.sizes or not self.methods:
            raise ValueError("give at least one task, one size and one method")
        if self.n < 1:
            raise ValueError("n must be at least 1")
        if self.jobs is not None and self.jobs < 1:
            raise ValueError("jobs must be at least 1")
        if self.timeout_per_item is not None and self.timeout_per_item <= 0:
            raise ValueError("timeout per item must be positive")
        if self.ray is not None:
            self._validate_ray()

    def _validate_ray(self) -> None:
        if not isinstance(self.model, str) or not (self.sub_model is None or isinstance(self.sub_model, str)):
            raise ValueError("with --ray the model and sub-model must be spec strings (workers build their own)")
        if any(split_method(m)[0] in EXTRA_METHODS for m in self.methods):
            raise ValueError(
                "the rlms method starts its own model server next to the bench process; run it without --ray"
            )
        if self.ray_cpus_per_worker < 0:
            raise ValueError("CPUs per Ray worker must be >= 0")

    @property
    def model_name(self) -> str:
        """The model as results record it: the spec, plus any backend options in brackets.

        Options that change answers (a smaller ``n_ctx``) must not share result keys, or cached
        answers, with the default configuration; ``api_key`` and ``base_url`` are left out.
        """
        name = self.model if isinstance(self.model, str) else str(getattr(self.model, "name", "model"))
        shown = {k: v for k, v in sorted(self.model_options.items()) if k not in ("api_key", "base_url")}
        if shown:
            name += "[" + ",".join(f"{k}={v}" for k, v in shown.items()) + "]"
        return name

    @property
    def model_spec(self) -> str:
        return self.model if isinstance(self.model, str) else str(getattr(self.model, "name", "model"))

    def default_jobs(self) -> int:
        if self.jobs is not None:
            return self.jobs
        return 1 if self.model_spec.startswith("local/") else 8

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model"] = self.model_name
        data["sub_model"] = (
            None
            if self.sub_model is None
            else (self.sub_model if isinstance(self.sub_model, str) else getattr(self.sub_model, "name", "lm"))
        )
        data["out"] = str(self.out)
        for key in ("model_options", "rlms_options"):  # runs.jsonl must not keep secrets
            data[key] = {k: ("***" if "key" in k.lower() else v) for k, v in data[key].items()}
        data["jobs"] = self.default_jobs()
        return data


@dataclass(frozen=True, slots=True)
class Unit:
    """One method on one item: the grain of work, of resuming and of a result line."""

    task: str
    size_tokens: int
    index: int
    method: str


@dataclass(slots=True)
class RunSummary:
    planned: int
    skipped: int
    done: int
    errors: int
    seconds: float
    out: Path
    records: list[ResultRecord] = field(default_factory=list)


class _Groups:
    """Items per (task, size), generated on first use (in a thread) and freed after the last unit."""

    def __init__(
        self, config: BenchConfig, pending: dict[tuple[str, int], int], put: Callable[[Any], Any] | None = None
    ) -> None:
        self.config = config
        self.pending = dict(pending)
        self.items: dict[tuple[str, int], list[TaskItem]] = {}
        self.refs: dict[tuple[str, int], list[Any]] = {}  # with ``put``: each item in the object store, once
        self.locks: dict[tuple[str, int], asyncio.Lock] = {}
        self.put = put

    async def get(self, task: str, size: int) -> list[TaskItem]:
        key = (task, size)
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self.items:
                items = await asyncio.to_thread(generate, task, size, self.config.n, self.config.seed)
                expected = item_ids(self.config)[key]
                if [i.id for i in items] != expected:  # resuming relies on ids known before generating
                    raise RuntimeError(f"{task} generated ids {[i.id for i in items]}, expected {expected}")
                self.items[key] = items
                if self.put is not None:
                    self.refs[key] = [self.put(i) for i in items]
            return self.items[key]

    def release(self, task: str, size: int) -> None:
        key = (task, size)
        self.pending[key] -= 1
        if self.pending[key] <= 0:
            self.items.pop(key, None)
            self.refs.pop(key, None)


def item_ids(config: BenchConfig) -> dict[tuple[str, int], list[str]]:
    """The ids the generators will give, without generating (they are a pure function of the arguments)."""
    from .tasks.base import item_id

    return {
        (t, s): [item_id(t, s, config.seed, i) for i in range(config.n)] for s in config.sizes for t in config.tasks
    }


def plan(config: BenchConfig, done: set[Key]) -> tuple[list[Unit], int]:
    """The units still to run (size → task → item → method) and how many were skipped as done."""
    ids = item_ids(config)
    units: list[Unit] = []
    skipped = 0
    for size in config.sizes:
        for task in config.tasks:
            for index, iid in enumerate(ids[(task, size)]):
                for method in config.methods:
                    if (task, size, method, iid, config.model_name) in done:
                        skipped += 1
                    else:
                        units.append(Unit(task, size, index, method))
    return units, skipped


def trace_name(unit: Unit, seed: int) -> str:
    """``<task>-<size>-<method>-s<seed>-<index>.jsonl``, e.g. ``niah-8K-rlm-s0-3.jsonl``."""
    method = unit.method.replace(":", "_")  # rlm:compact -> rlm_compact
    return f"{unit.task}-{size_label(unit.size_tokens)}-{method}-s{seed}-{unit.index}.jsonl"


class _Models:
    """The shared model (and sub-model) behind the cache, built once per run."""

    def __init__(self, config: BenchConfig, *, cache_path: Path | None = None) -> None:
        self.config = config
        raw = resolve_model(config.model, **config.model_options)
        self.raw = raw
        cache_path = cache_path or config.out / CACHE_FILE
        self.root: Any = BenchCache(raw, cache_path) if config.cache else raw
        sub_raw: Any = None
        if config.sub_model is not None:
            sub_raw = resolve_model(config.sub_model)
        else:
            # Local models answer sub-calls on a second context so the root keeps its KV cache.
            fork = getattr(raw, "fork_for_subcalls", None)
            sub_raw = fork() if callable(fork) else None
        self.sub_raw = sub_raw
        self.sub: Any = None
        if sub_raw is not None:
            self.sub = BenchCache(sub_raw, cache_path) if config.cache else sub_raw

    async def aclose(self) -> None:
        for lm in (self.sub, self.root):
            close = getattr(lm, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    pass


MethodRunner = Callable[[LM, TaskItem, MethodConfig], Awaitable[MethodResult]]


def _method_runner(name: str, config: BenchConfig, models: _Models) -> MethodRunner:
    base, style = split_method(name)
    if base in METHODS:
        method = METHODS[base]
        return lambda lm, item, cfg: method(lm, item, styled_config(cfg, style))
    if name == "rlms":
        from .rlms_method import make_rlms_runner

        return make_rlms_runner(
            config.model_spec,
            models.raw,
            config.model_options,
            config.rlms_options,
            log_dir=config.out,
            timeout_per_item=config.timeout_per_item,
        )
    raise ValueError(f"unknown method {name!r}")


async def run_unit(
    unit: Unit, item: TaskItem, config: BenchConfig, models: _Models, runner: MethodRunner
) -> ResultRecord:
    """Run one method on one item and turn what happened (answer, crash or timeout) into a record."""
    traces = config.out / TRACES_DIR
    traces.mkdir(parents=True, exist_ok=True)
    trace_path = traces / trace_name(unit, config.seed)
    trace_path.unlink(missing_ok=True)  # a retried item starts a fresh story
    is_rlm = split_method(unit.method)[0] in RLM_METHODS
    label = f"{unit.method} {item.id}"
    root = ItemLM(models.root, None if is_rlm else trace_path, label=label)
    sub = ItemLM(models.sub, None, label=label) if (is_rlm and models.sub is not None) else None
    method_config = MethodConfig(
        context_window=config.context_window,
        max_depth=config.max_depth,
        max_iterations=config.max_iterations,
        max_llm_calls=config.max_llm_calls,
        repl=config.repl,
        sub_model=sub,
        trace_file=str(trace_path) if is_rlm or unit.method == "rlms" else None,
    )
    base = base_record(unit, item, config)
    started = time.perf_counter()
    try:
        coro = runner(root, item, method_config)
        if config.timeout_per_item:
            result = await asyncio.wait_for(coro, config.timeout_per_item)
        else:
            result = await coro
    except TimeoutError:
        base.status = "timeout"
        base.error = f"no answer within {config.timeout_per_item:g} s"
    except Exception as exc:
        base.status = "error"
        base.error = f"{type(exc).__name__}: {exc}"[:2_000]
    else:
        base.answer = truncate(result.answer, ANSWER_CHARS)
        base.score = float(score(item, result.answer))
        base.status = result.status
        base.calls = result.calls
        base.input_tokens = result.usage.input_tokens
        base.output_tokens = result.usage.output_tokens
        base.cached_input_tokens = result.usage.cached_input_tokens
        base.cost_usd = result.usage.cost_usd
        base.notes = _clean_notes(result.notes)
        base.seconds = round(result.seconds, 3)
        if result.notes.get("error"):
            base.error = str(result.notes["error"])[:2_000]
    if base.status in ("error", "timeout"):
        base.seconds = round(time.perf_counter() - started, 3)
        base.calls = root.calls + (sub.calls if sub else 0)
    hits = root.cache_hits + (sub.cache_hits if sub else 0)
    if hits:
        base.notes["cache_hits"] = hits
    if not trace_path.exists():
        base.trace = None
    base.finished_at = time.time()
    return base


def base_record(unit: Unit, item: TaskItem, config: BenchConfig) -> ResultRecord:
    """The record of ``unit`` before it ran: what it is, the gold answer, status ``error``."""
    return ResultRecord(
        task=unit.task,
        size_tokens=unit.size_tokens,
        method=unit.method,
        item_id=item.id,
        model=config.model_name,
        score=0.0,
        answer=None,
        gold=gold_value(item.answer),
        status="error",
        seconds=0.0,
        context_tokens=item.size_tokens,
        seed=config.seed,
        trace=f"{TRACES_DIR}/{trace_name(unit, config.seed)}",
    )


def _clean_notes(notes: dict[str, Any]) -> dict[str, Any]:
    """Notes as JSON-safe values, without what the record already holds elsewhere."""
    out = {k: v for k, v in notes.items() if k not in ("trace_path", "error")}
    return json.loads(json.dumps(out, default=str))


def _describe(record: ResultRecord) -> str:
    extra = f" ({record.error})" if record.error and record.failed else ""
    compacted = record.notes.get("compactions")
    if compacted:
        saved = record.notes.get("compaction_tokens_saved", 0)
        extra += f"  compacted {compacted}x, ~{saved:,} input tok saved"
    return (
        f"{record.task} {size_label(record.size_tokens)} {record.method:<10} {record.item_id}: "
        f"score {record.score:.2f}  {record.status}  {record.seconds:.1f}s  "
        f"{record.calls} calls  {record.input_tokens + record.output_tokens:,} tok{extra}"
    )


async def arun_bench(config: BenchConfig) -> RunSummary:
    """Run what is not done yet; return counts and the records written by this invocation."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    config.validate()
    if config.ray is not None:
        from ..batch.ray_support import import_ray

        import_ray()  # fail now, naming the install command, before anything is written
    config.out.mkdir(parents=True, exist_ok=True)
    results = ResultsFile(config.out / RESULTS_FILE)
    existing = latest(read_results(results.path))
    done = {r.key for r in existing if not (config.retry_errors and r.failed)}
    units, skipped = plan(config, done)
    started = time.perf_counter()
    console = Console(stderr=True)
    summary = RunSummary(planned=len(units) + skipped, skipped=skipped, done=0, errors=0, seconds=0.0, out=config.out)
    _log_invocation(config, len(units), skipped)
    if not units:
        if config.verbose:
            console.print(f"bench: nothing to do, all {skipped} results are in {results.path}")
        return summary

    models: _Models | None = None
    workers: Any = None
    runners: dict[str, MethodRunner] = {}
    if config.ray is not None:
        from .ray_bench import RayWorkers

        workers = RayWorkers(config, config.jobs, config.ray_cpus_per_worker)
    else:
        models = _Models(config)
        try:
            runners = {m: _method_runner(m, config, models) for m in config.methods}
        except BaseException:
            await models.aclose()
            raise
    pending: dict[tuple[str, int], int] = {}
    for u in units:
        pending[(u.task, u.size_tokens)] = pending.get((u.task, u.size_tokens), 0) + 1
    groups = _Groups(config, pending, put=workers.put if workers is not None else None)
    queue: asyncio.Queue[Unit] = asyncio.Queue()
    for u in units:
        queue.put_nowait(u)
    jobs = min(workers.count if workers is not None else config.default_jobs(), len(units))
    if config.verbose and skipped:
        console.print(f"bench: resuming, {skipped} of {summary.planned} results already in {results.path}")

    progress = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not config.progress,
        transient=False,
    )

    lost: dict[Unit, int] = {}  # with Ray: how often each unit's worker died under it

    async def run_one(slot: int, unit: Unit) -> tuple[ResultRecord | None, bool]:
        """The unit's record (None when it went back in the queue) and whether its Ray worker was lost."""
        items = await groups.get(unit.task, unit.size_tokens)
        item = items[unit.index]
        if workers is None:
            assert models is not None
            return await run_unit(unit, item, config, models, runners[unit.method]), False
        from .ray_bench import MAX_RETRIES, WorkerLost, lost_record

        try:
            outcome = await workers.run(slot, unit, groups.refs[(unit.task, unit.size_tokens)][unit.index])
        except WorkerLost as exc:
            lost[unit] = lost.get(unit, 0) + 1
            if lost[unit] <= MAX_RETRIES:
                queue.put_nowait(unit)
                return None, True
            reason = f"its Ray worker died {lost[unit]} times: {exc}"
            return lost_record(base_record(unit, item, config), reason), True
        if outcome.trace_text is not None and outcome.record.trace is not None:
            path = config.out / outcome.record.trace
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(outcome.trace_text, encoding="utf-8")
        if unit in lost:
            outcome.record.notes["worker_lost"] = lost[unit]
        return outcome.record, False

    async def worker(slot: int, bar: Any) -> None:
        while True:
            try:
                unit = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            record: ResultRecord | None = None
            worker_lost = False
            try:
                record, worker_lost = await run_one(slot, unit)
            finally:
                if record is not None or not worker_lost:  # a requeued unit still needs its item
                    groups.release(unit.task, unit.size_tokens)
            if record is not None:
                _finish(record, unit, bar)
            if worker_lost and not await workers.replace(slot, lambda: not queue.empty()):
                return

    def _finish(record: ResultRecord, unit: Unit, bar: Any) -> None:
        results.append(record)
        summary.records.append(record)
        summary.done += 1
        summary.errors += record.failed
        progress.update(bar, advance=1, description=f"{unit.task} {size_label(unit.size_tokens)} {unit.method}")
        if config.verbose:
            progress.console.print(_describe(record), highlight=False, markup=False, soft_wrap=True)

    try:
        with progress:
            where = f"on {jobs} Ray workers" if workers is not None else f"{jobs} at a time"
            bar = progress.add_task(f"bench ({where})", total=len(units))
            if workers is not None:
                await workers.started()
            await asyncio.gather(*(worker(slot, bar) for slot in range(jobs)))
        if not queue.empty():  # every Ray worker was lost and none could be placed again
            left = queue.qsize()
            summary.errors += left
            console.print(f"bench: {left} items not run: no Ray worker could start again; run again to resume")
    finally:
        for r in runners.values():
            close = getattr(r, "aclose", None)
            if close is not None:
                await close()
        if models is not None:
            await models.aclose()
        if workers is not None:
            await workers.aclose()
        summary.seconds = time.perf_counter() - started
    if config.verbose:
        console.print(
            f"bench: {summary.done} results written to {results.path} "
            f"({summary.errors} failed, {skipped} skipped) in {summary.seconds:.0f} s"
        )
        line = compaction_line(summary.records)
        if line:
            console.print(f"bench: {line}", highlight=False, markup=False)
    return summary


def run_bench(config: BenchConfig) -> RunSummary:
    return asyncio.run(arun_bench(config))


def source_fingerprint() -> dict[str, Any]:
    """What code produced the results: the git commit (if any), whether the tree was dirty, and a
    digest of the package's Python files, so that runs made while the engine or prompts changed
    can be told apart."""
    import hashlib
    import subprocess

    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    out: dict[str, Any] = {"package_sha256": digest.hexdigest()[:16]}
    try:
        git = ["git", "-C", str(package)]
        out["commit"] = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run([*git, "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10)
        out["dirty"] = bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _log_invocation(config: BenchConfig, todo: int, skipped: int) -> None:
    from .. import __version__

    entry = {
        "started_at": time.time(),
        "argv": sys.argv,
        "config": config.to_dict(),
        "todo": todo,
        "skipped": skipped,
        "unbounded": __version__,
        "source": source_fingerprint(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    with (config.out / "runs.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, default=str) + "\n")
