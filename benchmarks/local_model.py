"""Figures for the embedded model on this machine: load time, speed, the README demo's wall time
without and with a saved prompt prefix, warm vs cold root turns, and needle-in-a-haystack accuracy of
a full RLM run.

    .venv/bin/python benchmarks/local_model.py                    # 20 needle tasks, 100K to 4M characters
    .venv/bin/python benchmarks/local_model.py --tasks 6          # fewer tasks (sizes still span the range)
    .venv/bin/python benchmarks/local_model.py --warm-start-only  # only the demo, cold and warm
    .venv/bin/python benchmarks/local_model.py --json out/local.json --traces out/local-traces

What is measured:

- load: seconds to load the GGUF into a fresh llama.cpp context (the first call of a process pays it);
- warm start: the README demo (``scripts/demo.sh``: ``unbounded ask`` on a seeded 1.2M-character
  haystack), run twice as new processes with a fresh folder of saved states: cold (nothing saved:
  the first root call evaluates the system prompt and worked examples, and saves them) and warm (the
  second process loads that prefix instead). Wall time of the whole command, time to the first root
  call, and how long that call took, from the run's trace;
- prompt processing and generation speed: one ~1,000-token prompt on an empty KV cache, then 128
  generated tokens;
- root turns: every root turn after the first of the first ``--cold-tasks`` needle runs is timed
  again, back to back, with the KV cache the run had (warm: only the new suffix is evaluated) and
  after ``clear_cache()`` (cold), in wall-clock and in CPU seconds (the fair measure when other jobs
  share the cores);
- accuracy: ``--tasks`` seeded needle tasks (``unbounded.bench.tasks.niah``) with sizes spaced
  geometrically from ``--min-chars`` to ``--max-chars``, cycling noise and prose haystacks and
  7-digit numbers and UUIDs, each answered by ``RLM(model, repl="process")`` at temperature 0.

Targets: at least 90% of the needle tasks right, a warm root turn costing at most 40% of a cold one,
and the demo in at most 10 s when its prompt prefix was saved by an earlier run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from unbounded import RLM, Budget
from unbounded.bench.tasks import niah
from unbounded.models import resolve_model
from unbounded.models.base import Completion, Delta, LMBase, Message, WrappedLM
from unbounded.models.local import LocalLM

TARGET_ACCURACY = 0.90
TARGET_WARM_RATIO = 0.40
TARGET_WARM_DEMO_S = 10.0
DEMO_SEED = 1  # scripts/demo.sh's default UNBOUNDED_DEMO_SEED
VARIANTS = (("noise", "number"), ("prose", "number"), ("prose", "uuid"), ("noise", "uuid"))
SPEED_PROMPT = "You summarise Python documentation.\n\n" + "\n".join(
    f"def helper_{i}(x):\n    '''Return x plus {i}, as an int.'''\n    return x + {i}\n" for i in range(45)
)


@dataclass
class Speed:
    load_s: float
    prompt_tokens: int
    prompt_tok_per_s: float
    gen_tokens: int
    gen_tok_per_s: float


@dataclass
class DemoRun:
    """One ``unbounded ask`` of the README demo, as a process of its own."""

    label: str
    wall_s: float
    cpu_s: float  # user + system seconds of the command and its REPL worker: the work, whatever the load
    first_root_call_at_s: float | None  # from the run's start (its first trace event)
    first_root_call_s: float | None
    first_root_input_tokens: int | None
    first_root_cached_tokens: int | None
    turns: int
    status: str
    correct: bool


@dataclass
class RootTurn:
    """One root call as the run made it."""

    messages: list[Message]
    opts: dict[str, Any]
    text: str
    seconds: float
    input_tokens: int
    cached_tokens: int


@dataclass
class TaskResult:
    index: int
    chars: int
    haystack: str
    value_type: str
    depth: float
    answer: str
    prediction: str | None
    correct: bool
    status: str
    turns: int
    seconds: float
    root_turns: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Replay:
    """One root turn timed twice, back to back: with the KV cache its run had, and with none."""

    task: int
    turn: int
    input_tokens: int
    warm_cached: int
    warm_s: float
    warm_cpu_s: float
    cold_s: float
    cold_cpu_s: float
    same_text: bool


class Recording(WrappedLM):
    """A model that passes calls through to ``inner`` and keeps each root call's messages and timing.

    A ``WrappedLM``, so everything else (abilities, slots, ``aload``, ``count_tokens``...) is the inner
    model's and the engine treats it exactly like the bare ``LocalLM`` (guided prompt, sub slot, depth
    slots). A slot twin (the sub-call context) records into a list of its own, so ``turns`` holds only
    the root's calls.
    """

    def __init__(self, inner: LocalLM) -> None:
        super().__init__(inner)
        self.turns: list[RootTurn] = []

    def rewrap(self, inner: LMBase) -> WrappedLM:
        twin = super().rewrap(inner)
        assert isinstance(twin, Recording)
        twin.turns = []
        return twin

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        started = time.perf_counter()
        c = await self.inner.complete(messages, **opts)
        self.turns.append(
            RootTurn(
                list(messages),
                dict(opts),
                c.text,
                time.perf_counter() - started,
                c.usage.input_tokens,
                c.usage.cached_input_tokens,
            )
        )
        return c

    async def astream(self, messages: Sequence[Message], **opts: Any) -> AsyncIterator[Delta]:
        """A streamed call is recorded too: through ``complete``, as one delta."""
        c = await self.complete(messages, **opts)
        yield Delta(c.text, c)


def measure_speed(spec: str) -> Speed:
    """Load time and raw speeds on a context of its own (freed afterwards), without a warm start."""
    lm = resolve_model(spec, slot="bench-speed", n_ctx=4096, warm_start=False)
    assert isinstance(lm, LocalLM)
    try:
        load_s = lm.load()
        c = lm.complete_sync([Message("system", SPEED_PROMPT), Message("user", "Which helper adds 7?")], max_tokens=1)
        prompt_tokens = c.usage.input_tokens
        prompt_rate = prompt_tokens / max(c.extra["prompt_eval_s"], 1e-9)
        g = lm.complete_sync(
            "Count from 1 to 300, one number per line, nothing else.", max_tokens=128, repeat_penalty=1.0
        )
        gen_rate = g.usage.output_tokens / max(g.extra["gen_s"], 1e-9)
        return Speed(load_s, prompt_tokens, prompt_rate, g.usage.output_tokens, gen_rate)
    finally:
        lm.unload()


def measure_warm_start(spec: str, seed: int = DEMO_SEED) -> tuple[DemoRun, DemoRun]:
    """The README demo twice, each a new process sharing a fresh folder of saved states: cold, warm."""
    item = niah.generate(300_000, 1, seed, haystack="prose", value_type="number")[0]
    with tempfile.TemporaryDirectory(prefix="unbounded-demo-") as tmp:
        work = Path(tmp)
        haystack = work / "haystack.txt"
        haystack.write_text(item.context, encoding="utf-8")
        states = work / "states"
        runs = [_demo_run(spec, item, haystack, states, work, label) for label in ("cold", "warm")]
    return runs[0], runs[1]


def _demo_run(spec: str, item: Any, haystack: Path, states: Path, work: Path, label: str) -> DemoRun:
    trace = work / f"demo-{label}.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "unbounded",
        "ask",
        item.question,
        str(haystack),
        "--trace",
        str(trace),
        "--json",
        "-q",
    ]
    cmd += ["--model", spec]
    env = {**os.environ, "UNBOUNDED_STATE_DIR": str(states)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        print(proc.stderr[-2000:], file=sys.stderr)
        result = {}
    events = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines() if line.strip()]
    t0 = events[0]["ts"] if events else None
    requests = [e for e in events if e["type"] == "lm_request" and e["data"].get("purpose") == "root"]
    first_at = first_s = first_in = first_cached = None
    if requests and t0 is not None:
        first_at = requests[0]["ts"] - t0
        response = next((e for e in events if e["type"] == "lm_response" and e["id"] == requests[0]["id"]), None)
        if response is not None:
            first_s = response["data"].get("duration")
            usage = response["data"].get("usage") or {}
            first_in, first_cached = usage.get("input_tokens"), usage.get("cached_input_tokens")
    answer = str(result.get("answer") or "")
    return DemoRun(
        label=label,
        wall_s=wall,
        cpu_s=cpu,
        first_root_call_at_s=first_at,
        first_root_call_s=first_s,
        first_root_input_tokens=first_in,
        first_root_cached_tokens=first_cached,
        turns=len(requests),
        status=str(result.get("status") or f"exit {proc.returncode}"),
        correct=proc.returncode == 0 and niah.score(item, answer) == 1.0,
    )


def task_sizes(n: int, min_chars: int, max_chars: int) -> list[int]:
    """``n`` context sizes in characters, spaced geometrically from ``min_chars`` to ``max_chars``."""
    if n == 1:
        return [min_chars]
    ratio = (max_chars / min_chars) ** (1 / (n - 1))
    return [round(min_chars * ratio**i) for i in range(n)]


def run_task(
    root: Recording, index: int, chars: int, seed: int, max_iterations: int, traces: Path | None
) -> TaskResult:
    haystack, value_type = VARIANTS[index % len(VARIANTS)]
    item = niah.generate(
        max(chars // niah.CHARS_PER_TOKEN, 100), 1, seed + index, haystack=haystack, value_type=value_type
    )[0]
    trace = None
    if traces is not None:
        traces.mkdir(parents=True, exist_ok=True)
        trace = traces / f"task{index:02d}.jsonl"
        trace.unlink(missing_ok=True)
    root.turns.clear()
    rlm = RLM(model=root, repl="process", trace=trace, budget=Budget(max_iterations=max_iterations))
    started = time.perf_counter()
    result = rlm.run(item.question, item.context)
    seconds = time.perf_counter() - started
    return TaskResult(
        index=index,
        chars=len(item.context),
        haystack=haystack,
        value_type=value_type,
        depth=round(float(item.metadata["depth"]), 3),
        answer=str(item.answer),
        prediction=result.answer,
        correct=niah.score(item, result.answer or "") == 1.0,
        status=result.status,
        turns=result.iterations,
        seconds=seconds,
        root_turns=[
            {"seconds": round(t.seconds, 3), "input_tokens": t.input_tokens, "cached_tokens": t.cached_tokens}
            for t in root.turns
        ],
    )


def _timed(lm: LocalLM, turn: RootTurn) -> tuple[float, float, Completion]:
    """Wall and CPU seconds of one call. CPU time counts every thread of this process (llama.cpp's
    workers included), so it measures the work done even when other jobs share the cores."""
    wall, cpu = time.perf_counter(), time.process_time()
    c = lm.complete_sync(turn.messages, **turn.opts)
    return time.perf_counter() - wall, time.process_time() - cpu, c


def replay_turns(root: Recording, task: int) -> list[Replay]:
    """Time each later root turn of the task warm and cold, back to back.

    Warm: the previous turn is replayed first, which leaves the KV cache as the run had it (its
    prompt and reply); cold: the same turn after ``clear_cache()``. Greedy decoding makes the
    replies identical to the run's, so both sides do the same generation.
    """
    out = []
    turns = list(root.turns)
    for number in range(2, len(turns) + 1):
        previous, turn = turns[number - 2], turns[number - 1]
        if turn.cached_tokens == 0:
            continue
        root.inner.clear_cache()
        root.inner.complete_sync(previous.messages, **previous.opts)
        warm_s, warm_cpu, warm = _timed(root.inner, turn)
        root.inner.clear_cache()
        cold_s, cold_cpu, cold = _timed(root.inner, turn)
        out.append(
            Replay(
                task,
                number,
                turn.input_tokens,
                warm.usage.cached_input_tokens,
                warm_s,
                warm_cpu,
                cold_s,
                cold_cpu,
                warm.text == cold.text == turn.text,
            )
        )
    return out


def report(
    speed: Speed | None,
    tasks: list[TaskResult],
    replays: list[Replay],
    model: str,
    demo: tuple[DemoRun, DemoRun] | None = None,
) -> list[dict[str, Any]]:
    """Print the per-task table and the summary with targets; return the summary rows."""
    if demo is not None:
        print(f"\nREADME demo, unbounded ask as a new process ({model})")
        print(
            f"{'run':<5} {'wall s':>7} {'CPU s':>7} {'1st root call at':>17} {'1st call s':>10} {'prompt tok':>10} "
            f"{'loaded':>7} {'turns':>5}  ok"
        )
        for r in demo:
            print(
                f"{r.label:<5} {r.wall_s:>7.1f} {r.cpu_s:>7.1f} {_s(r.first_root_call_at_s):>17} "
                f"{_s(r.first_root_call_s):>10} "
                f"{r.first_root_input_tokens or 0:>10} {r.first_root_cached_tokens or 0:>7} {r.turns:>5}  "
                f"{'yes' if r.correct else 'NO'} ({r.status})"
            )
    if tasks:
        print(f"\nneedle tasks ({model})")
        print(
            f"{'#':>3} {'chars':>10} {'haystack':<8} {'value':<6} {'depth':>5} {'turns':>5} {'time s':>7}  ok  answer"
        )
    for t in tasks:
        shown = (t.prediction or "").replace("\n", " ")[:40]
        mark = "yes" if t.correct else "NO"
        print(
            f"{t.index:>3} {t.chars:>10,} {t.haystack:<8} {t.value_type:<6} {t.depth:>5.2f} {t.turns:>5} "
            f"{t.seconds:>7.1f}  {mark:<3} {shown!r} (gold {t.answer}, {t.status})"
        )
    rows: list[dict[str, Any]] = []

    def row(metric: str, value: str, target: str = "", ok: bool | None = None) -> None:
        rows.append({"metric": metric, "value": value, "target": target, "result": "" if ok is None else ok})

    if demo is not None:
        cold, warm = demo
        row("demo wall time, cold (nothing saved)", f"{cold.wall_s:.1f} s ({cold.cpu_s:.1f} s CPU)")
        row(
            "demo wall time, warm (saved prefix)",
            f"{warm.wall_s:.1f} s ({warm.cpu_s:.1f} s CPU; {warm.first_root_cached_tokens or 0} prompt tokens loaded)",
            f"<= {TARGET_WARM_DEMO_S:g} s",
            warm.wall_s <= TARGET_WARM_DEMO_S,
        )
        if cold.first_root_call_s and warm.first_root_call_s:
            row(
                "demo first root call, cold -> warm",
                f"{cold.first_root_call_s:.1f} s -> {warm.first_root_call_s:.1f} s",
            )
        row(
            "demo answered right, cold / warm", f"{'yes' if cold.correct else 'no'} / {'yes' if warm.correct else 'no'}"
        )
    if speed is not None:
        row("load time (fresh context)", f"{speed.load_s:.2f} s")
        row("prompt processing", f"{speed.prompt_tok_per_s:.0f} tok/s ({speed.prompt_tokens} tokens, cold)")
        row("generation", f"{speed.gen_tok_per_s:.1f} tok/s ({speed.gen_tokens} tokens)")
    if replays:
        n = len(replays)
        row("root turn, cold cache (median)", f"{statistics.median(r.cold_s for r in replays):.2f} s")
        row("root turn, warm cache (median)", f"{statistics.median(r.warm_s for r in replays):.2f} s")
        for label, warm, cold in (
            ("wall", sum(r.warm_s for r in replays), sum(r.cold_s for r in replays)),
            ("CPU", sum(r.warm_cpu_s for r in replays), sum(r.cold_cpu_s for r in replays)),
        ):
            ratio = warm / cold if cold else math.inf
            row(
                f"warm / cold turn cost, {label} time ({n} turns)",
                f"{ratio:.0%} ({warm:.1f} s / {cold:.1f} s)",
                f"<= {TARGET_WARM_RATIO:.0%}",
                ratio <= TARGET_WARM_RATIO,
            )
        cached = statistics.median(r.warm_cached / r.input_tokens for r in replays)
        row("prompt tokens from cache (warm, median)", f"{cached:.0%}")
        if not all(r.same_text for r in replays):
            row("replays with a different reply", str(sum(not r.same_text for r in replays)))
    if tasks:
        right = sum(t.correct for t in tasks)
        acc = right / len(tasks)
        lo, hi = min(t.chars for t in tasks), max(t.chars for t in tasks)
        row(
            f"needle accuracy ({lo:,}-{hi:,} chars)",
            f"{right}/{len(tasks)} ({acc:.0%})",
            f">= {TARGET_ACCURACY:.0%}",
            acc >= TARGET_ACCURACY,
        )
        answered = sum(t.status == "final" for t in tasks)
        row("answer rate (ended with FINAL)", f"{answered}/{len(tasks)} ({answered / len(tasks):.0%})")
        row("median time per task", f"{statistics.median(t.seconds for t in tasks):.1f} s")
        row("median root turns per task", f"{statistics.median(t.turns for t in tasks):g}")
    print(f"\nsummary ({model})")
    print(f"{'metric':<44} {'value':<34} {'target':<8} result")
    for r in rows:
        result = "" if r["result"] == "" else ("PASS" if r["result"] else "MISS")
        print(f"{r['metric']:<44} {r['value']:<34} {r['target']:<8} {result}")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="local/qwen2.5-coder-1.5b")
    p.add_argument("--tasks", type=int, default=20, help="needle tasks (default 20)")
    p.add_argument("--min-chars", type=int, default=100_000)
    p.add_argument("--max-chars", type=int, default=4_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-iterations", type=int, default=8, help="root turns per task")
    p.add_argument("--cold-tasks", type=int, default=5, help="tasks whose root turns are replayed cold")
    p.add_argument("--only", default="", help="run only these task numbers (0-based, comma-separated)")
    p.add_argument("--skip-speed", action="store_true", help="skip the load and raw speed measurement")
    p.add_argument("--skip-warm-start", action="store_true", help="skip the demo's cold/warm wall time")
    p.add_argument(
        "--warm-start-only", action="store_true", help="only the demo's cold/warm wall time (no speed, no needle tasks)"
    )
    p.add_argument("--traces", type=Path, default=None, help="write one trace per task into this folder")
    p.add_argument("--json", type=Path, default=None, help="write every figure to this JSON file")
    args = p.parse_args(argv)
    if args.tasks < 1 or args.min_chars < 1_000 or args.max_chars < args.min_chars:
        p.error("need --tasks >= 1 and 1000 <= --min-chars <= --max-chars")

    load_before = os.getloadavg()[0]
    demo = None
    if not args.skip_warm_start:
        print("running the README demo twice (cold, then warm)...", file=sys.stderr, flush=True)
        demo = measure_warm_start(args.model)
        print(f"demo: cold {demo[0].wall_s:.1f} s, warm {demo[1].wall_s:.1f} s", file=sys.stderr, flush=True)
    if args.warm_start_only:
        rows = report(None, [], [], args.model, demo)
        _print_load(load_before)
        _write_json(args.json, args.model, None, [], [], rows, load_before, demo)
        return 0 if all(r["result"] is not False for r in rows) else 1
    speed = None
    if not args.skip_speed:
        print("measuring load time and speed...", file=sys.stderr, flush=True)
        speed = measure_speed(args.model)
        print(
            f"load {speed.load_s:.2f} s · prompt {speed.prompt_tok_per_s:.0f} tok/s · "
            f"generation {speed.gen_tok_per_s:.1f} tok/s",
            file=sys.stderr,
            flush=True,
        )
    inner = resolve_model(args.model)
    if not isinstance(inner, LocalLM):
        p.error(f"{args.model} is not an embedded (local/...) model")
    root = Recording(inner)
    tasks: list[TaskResult] = []
    replays: list[Replay] = []
    only = {int(x) for x in args.only.split(",") if x.strip()}
    for i, chars in enumerate(task_sizes(args.tasks, args.min_chars, args.max_chars)):
        if only and i not in only:
            continue
        t = run_task(root, i, chars, args.seed, args.max_iterations, args.traces)
        tasks.append(t)
        print(
            f"task {i}/{args.tasks}: {t.chars:,} chars {t.haystack}/{t.value_type} → "
            f"{'right' if t.correct else 'WRONG'} in {t.turns} turns, {t.seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        if i < args.cold_tasks:
            replays += replay_turns(root, i)
    rows = report(speed, tasks, replays, args.model, demo)
    _print_load(load_before)
    _write_json(args.json, args.model, speed, tasks, replays, rows, load_before, demo)
    ok = all(r["result"] is not False for r in rows)
    return 0 if ok else 1


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}"


def _print_load(load_before: float) -> None:
    print(
        f"machine load (1-minute average): {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
        f"on {os.cpu_count()} cores"
    )


def _write_json(
    path: Path | None,
    model: str,
    speed: Speed | None,
    tasks: list[TaskResult],
    replays: list[Replay],
    rows: list[dict[str, Any]],
    load_before: float,
    demo: tuple[DemoRun, DemoRun] | None,
) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "model": model,
                "speed": asdict(speed) if speed else None,
                "demo": [asdict(r) for r in demo] if demo else None,
                "tasks": [asdict(t) for t in tasks],
                "replays": [asdict(r) for r in replays],
                "summary": rows,
                "load_average": [load_before, os.getloadavg()[0]],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
