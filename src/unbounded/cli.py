"""The ``unbounded`` command line: ``ask``, ``trace``, ``bench``, ``models``.

The answer alone goes to stdout, so the command composes in pipes; progress and errors go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__
from .errors import BudgetExceeded, ConfigError, ContextError, EmptyContextError, UnknownModelError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONTEXT = 3
EXIT_EMPTY = 4
EXIT_MODEL = 5
EXIT_BUDGET = 6
EXIT_INTERRUPTED = 130


def _fail(code: int, message: str) -> int:
    print(f"unbounded: {message}", file=sys.stderr)
    return code


def _load_inputs(paths: list[str]) -> Any:
    """One path → its content as loaded by the context module; several → {name: text} merged."""
    from .context import load_context

    if not paths:
        if sys.stdin.isatty():
            raise ContextError("no input: give one or more paths, or '-' to read standard input")
        paths = ["-"]
    values: dict[str, Any] = {}
    for p in paths:
        if p == "-":
            data = sys.stdin.buffer.read()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ContextError(f"standard input is not UTF-8 text (byte {exc.start})") from exc
            if len(paths) == 1:
                return text
            values["<stdin>"] = text
            continue
        path = Path(p)
        if not path.exists():
            raise ContextError(f"no such file or folder: {p}")
        if len(paths) == 1:
            return path
        loaded = load_context(path, allow_empty=True).value
        if isinstance(loaded, dict):
            for k, v in loaded.items():
                values[f"{p.rstrip('/')}/{k}"] = v
        else:
            values[p] = loaded
    return values


class Progress:
    """Live status on stderr from trace events: turn, sub-calls in flight, tokens, cost."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.turn = 0
        self.depth_turns: dict[str, int] = {}
        self.in_flight = 0
        self.subcalls = 0
        self.tokens = 0
        self.cost: float | None = 0.0
        self.started = time.monotonic()
        self._status = None
        if self.enabled:
            from rich.console import Console

            self._console = Console(stderr=True)
            self._status = self._console.status("starting…")
            self._status.start()

    def __call__(self, event: Any) -> None:
        t, d = event.type, event.data
        if t == "lm_request" and d.get("purpose") == "root":
            self.turn += 1
        elif t == "subcall_start":
            self.in_flight += 1
            self.subcalls += 1
        elif t == "subcall_end":
            self.in_flight -= 1
        elif t == "lm_response" and "usage" in d:
            u = d["usage"]
            self.tokens += int(u.get("input_tokens", 0)) + int(u.get("output_tokens", 0))
            c = u.get("cost_usd")
            self.cost = None if c is None or self.cost is None else self.cost + c
        self._render()

    def _render(self) -> None:
        if self._status is None:
            return
        cost = "?" if self.cost is None else f"${self.cost:.4f}"
        self._status.update(
            f"turn {self.turn} · sub-calls {self.subcalls} ({self.in_flight} in flight) · "
            f"{self.tokens:,} tokens · {cost} · {time.monotonic() - self.started:.1f}s"
        )

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def cmd_ask(args: argparse.Namespace) -> int:
    from .budget import Budget
    from .engine import RLM
    from .repl.base import Limits

    try:
        context = _load_inputs(args.paths)
    except EmptyContextError as exc:
        return _fail(EXIT_EMPTY, str(exc))
    except ContextError as exc:
        return _fail(EXIT_CONTEXT, str(exc))
    try:
        budget = Budget(
            max_iterations=args.max_iterations,
            max_llm_calls=args.max_calls,
            max_tokens=args.max_tokens,
            max_cost_usd=args.max_cost,
            max_seconds=args.timeout,
        )
        limits = Limits(cell_timeout=args.cell_timeout, allow_network=args.allow_network, sandbox=args.sandbox)
        progress = Progress(not args.quiet)
        rlm = RLM(
            model=args.model,
            sub_model=args.sub_model,
            max_depth=args.depth,
            budget=budget,
            repl=args.repl,
            trace=args.trace,
            limits=limits,
            on_event=progress,
            cache=args.cache,
        )
    except (UnknownModelError, ConfigError) as exc:
        return _fail(EXIT_MODEL, str(exc))
    except ValueError as exc:
        return _fail(EXIT_USAGE, str(exc))

    started = time.monotonic()
    try:
        result = asyncio.run(_ask_with_signals(rlm, args.question, context))
    except EmptyContextError as exc:
        progress.stop()
        return _fail(EXIT_EMPTY, str(exc))
    except ContextError as exc:
        progress.stop()
        return _fail(EXIT_CONTEXT, str(exc))
    except (KeyboardInterrupt, asyncio.CancelledError):
        progress.stop()
        where = f"; trace kept in {args.trace}" if args.trace else ""
        return _fail(EXIT_INTERRUPTED, f"interrupted{where}")
    except (UnknownModelError, ConfigError) as exc:
        progress.stop()
        return _fail(EXIT_MODEL, str(exc))
    except BudgetExceeded as exc:
        progress.stop()
        return _fail(EXIT_BUDGET, str(exc))
    progress.stop()

    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    elif result.answer is not None:
        print(result.answer)
    total = result.total_usage
    if not args.quiet:
        cost = "unknown" if total.cost_usd is None else f"${total.cost_usd:.4f}"
        print(
            f"[{result.status}] {result.iterations} turns · {result.subcalls} sub-calls · {total.calls} model calls · "
            f"{total.input_tokens:,} in / {total.output_tokens:,} out tokens · cost {cost} · "
            f"{time.monotonic() - started:.1f}s" + (f" · trace: {args.trace}" if args.trace else ""),
            file=sys.stderr,
        )
    if result.status == "final":
        return EXIT_OK
    if result.status == "max_iterations":
        print("unbounded: turns ran out; the answer is the model's best guess", file=sys.stderr)
        return EXIT_OK
    if result.status.startswith("budget:"):
        return _fail(EXIT_BUDGET, f"budget exhausted ({result.status[7:]}): {result.error}")
    if result.status == "interrupted":
        return EXIT_INTERRUPTED
    return _fail(EXIT_ERROR, f"{result.status}: {result.error}")


async def _ask_with_signals(rlm: Any, question: str, context: Any) -> Any:
    """Run the RLM; SIGTERM cancels it like Ctrl-C so the trace is closed with status=interrupted."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        try:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        except (NotImplementedError, RuntimeError):
            pass
    return await rlm.arun(question, context)


def cmd_trace(args: argparse.Namespace) -> int:
    from .trace_view import render_trace

    path = Path(args.file)
    if not path.exists():
        return _fail(EXIT_CONTEXT, f"no such trace file: {path}")
    render_trace(path, max_children=args.max_children)
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from .models.registry import DEFAULT_MODEL, known_prefixes

    print(f"default: {DEFAULT_MODEL}")
    print("backends: " + ", ".join(f"{p}/…" for p in known_prefixes()))
    try:
        from .models.weights import CATALOGUE

        print("embedded local models: " + ", ".join(f"local/{n}" for n in CATALOGUE))
    except Exception:
        pass
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    if args.bench_cmd == "overhead":
        from .bench.overhead import main as overhead_main

        return overhead_main(args.rest)
    try:
        from .bench.cli import main as bench_main
    except ImportError as exc:
        return _fail(EXIT_USAGE, f"bench {args.bench_cmd}: not available ({exc})")
    return bench_main([args.bench_cmd, *args.rest])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="unbounded", description="Recursive Language Models: ask questions of inputs of any size."
    )
    p.add_argument("--version", action="version", version=f"unbounded {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer a question about files, folders or stdin")
    ask.add_argument("question")
    ask.add_argument("paths", nargs="*", help="files, folders, or - for standard input")
    ask.add_argument("--model", default=os.environ.get("UNBOUNDED_MODEL", "local/qwen2.5-coder-1.5b"))
    ask.add_argument("--sub-model", default=os.environ.get("UNBOUNDED_SUB_MODEL"))
    ask.add_argument("--depth", type=int, default=1, help="maximum recursion depth (default 1)")
    ask.add_argument("--max-iterations", type=int, default=20)
    ask.add_argument("--max-calls", type=int, default=200, help="maximum model calls in the whole run")
    ask.add_argument("--max-tokens", type=int, default=None, help="maximum tokens in the whole run")
    ask.add_argument("--max-cost", type=float, default=None, help="maximum cost in USD")
    ask.add_argument("--timeout", type=float, default=None, help="wall-clock limit for the run, seconds")
    ask.add_argument("--cell-timeout", type=float, default=120.0, help="wall-clock limit per code cell, seconds")
    ask.add_argument("--repl", choices=["process", "inprocess"], default="process")
    ask.add_argument(
        "--sandbox",
        choices=["auto", "bwrap", "unshare", "none"],
        default="auto",
        help="confinement of the process REPL (default: bubblewrap where it works; see docs/security.md)",
    )
    ask.add_argument("--allow-network", action="store_true", help="let model-written code use the network")
    ask.add_argument("--trace", default=None, help="append the run's events to this JSONL file")
    ask.add_argument("--cache", action="store_true", help="cache model responses on disk")
    ask.add_argument("--json", action="store_true", help="print the whole result as JSON")
    ask.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    ask.set_defaults(func=cmd_ask)

    tr = sub.add_parser("trace", help="show a trace file as a tree with per-node usage")
    tr.add_argument("file")
    tr.add_argument("--max-children", type=int, default=8)
    tr.set_defaults(func=cmd_trace)

    models = sub.add_parser("models", help="list model backends")
    models.set_defaults(func=cmd_models)

    bench = sub.add_parser("bench", help="benchmarks: overhead, run, report")
    bench.add_argument("bench_cmd", choices=["overhead", "run", "report", "local"])
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted")
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
