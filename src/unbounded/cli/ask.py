"""``unbounded ask``: one question about files, folders or standard input."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

from ..errors import BudgetExceeded, ConfigError, ContextError, EmptyContextError, UnknownModelError
from ..loaders.arguments import add_load_arguments
from ..models.registry import DEFAULT_MODEL
from .exitcodes import (
    EXIT_BUDGET,
    EXIT_CONTEXT,
    EXIT_EMPTY,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_USAGE,
    fail,
)


def run(args: argparse.Namespace) -> int:
    from ..budget import Budget
    from ..context import load_inputs
    from ..engine import RLM
    from ..loaders.arguments import load_options
    from ..repl.base import Limits
    from ..status import StatusKind

    if not args.paths and sys.stdin.isatty():
        return fail(EXIT_CONTEXT, "no input: give one or more paths, or '-' to read standard input")
    try:
        stdin = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer
        context = load_inputs(args.paths or ["-"], stdin=stdin, **load_options(args))
    except EmptyContextError as exc:
        return fail(EXIT_EMPTY, str(exc))
    except ContextError as exc:
        return fail(EXIT_CONTEXT, str(exc))
    except ConfigError as exc:
        return fail(EXIT_MODEL, str(exc))
    try:
        budget = Budget(
            max_iterations=args.max_iterations,
            max_llm_calls=args.max_calls,
            max_total_tokens=args.max_total_tokens,
            max_cost_usd=args.max_cost,
            max_seconds=args.max_seconds,
        )
        limits = Limits(cell_timeout=args.cell_timeout, allow_network=args.allow_network, sandbox=args.sandbox)
        from ..view.live import LiveTree

        progress = LiveTree.for_stderr(enabled=not args.quiet)
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
        return fail(EXIT_MODEL, str(exc))
    except ValueError as exc:
        return fail(EXIT_USAGE, str(exc))

    started = time.monotonic()
    try:
        result = asyncio.run(_ask_with_signals(rlm, args.question, context))
    except EmptyContextError as exc:
        progress.stop()
        return fail(EXIT_EMPTY, str(exc))
    except ContextError as exc:
        progress.stop()
        return fail(EXIT_CONTEXT, str(exc))
    except (KeyboardInterrupt, asyncio.CancelledError):
        progress.stop()
        where = f"; trace kept in {args.trace}" if args.trace else ""
        return fail(EXIT_INTERRUPTED, f"interrupted{where}")
    except (UnknownModelError, ConfigError) as exc:
        progress.stop()
        return fail(EXIT_MODEL, str(exc))
    except BudgetExceeded as exc:
        progress.stop()
        return fail(EXIT_BUDGET, str(exc))
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
    kind = result.status.kind
    if kind is StatusKind.FINAL:
        return EXIT_OK
    if kind is StatusKind.MAX_ITERATIONS:
        print("unbounded: turns ran out; the answer is the model's best guess", file=sys.stderr)
        return EXIT_OK
    if kind is StatusKind.BUDGET:
        return fail(EXIT_BUDGET, f"budget exhausted ({result.status.detail}): {result.error}")
    if kind is StatusKind.INTERRUPTED:
        return EXIT_INTERRUPTED
    return fail(EXIT_ERROR, f"{result.status}: {result.error}")


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


class _Deprecated(argparse.Action):
    """An old option name that still works, with a warning naming the new one."""

    def __init__(self, *args: Any, new: str, **kwargs: Any) -> None:
        self.new = new
        super().__init__(*args, **kwargs)

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option: str | None = None) -> None:
        print(f"unbounded: {option} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_parser(sub: Any) -> None:
    ask = sub.add_parser(
        "ask",
        help="answer a question about files, folders or stdin",
        description="Answer QUESTION about the given files, folders or standard input ('-'). The answer goes to "
        "stdout; progress and a summary to stderr.",
    )
    ask.add_argument("question")
    ask.add_argument("paths", nargs="*", help="files, folders, or - for standard input")
    add_load_arguments(ask)
    ask.add_argument("--model", default=os.environ.get("UNBOUNDED_MODEL", DEFAULT_MODEL))
    ask.add_argument("--sub-model", default=os.environ.get("UNBOUNDED_SUB_MODEL"))
    ask.add_argument("--depth", type=int, default=1, help="maximum recursion depth (default 1)")
    ask.add_argument("--max-iterations", type=int, default=20, help="root turns per RLM (default 20)")
    ask.add_argument("--max-calls", type=int, default=200, help="maximum model calls in the whole run")
    ask.add_argument("--max-total-tokens", type=int, default=None, help="maximum tokens in the whole run")
    ask.add_argument(
        "--max-tokens",
        dest="max_total_tokens",
        type=int,
        action=_Deprecated,
        new="--max-total-tokens",
        help=argparse.SUPPRESS,
    )
    ask.add_argument("--max-cost", type=float, default=None, help="maximum cost in USD")
    ask.add_argument("--max-seconds", type=float, default=None, help="wall-clock limit for the whole run, seconds")
    ask.add_argument(
        "--timeout", dest="max_seconds", type=float, action=_Deprecated, new="--max-seconds", help=argparse.SUPPRESS
    )
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
    ask.set_defaults(func=run)
