"""``unbounded ask``: one question about files, folders or standard input."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import BudgetExceeded, ConfigError, ContextError, EmptyContextError, UnknownModelError
from ..loaders.arguments import add_load_arguments
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
from .options import add_run_arguments, budget_from_args, limits_from_args


def run(args: argparse.Namespace) -> int:
    from ..context import load_inputs
    from ..loaders.arguments import load_options

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
    schema = None
    if args.schema:
        try:
            schema = json.loads(Path(args.schema).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return fail(EXIT_USAGE, f"--schema: cannot read a JSON schema from {args.schema}: {exc}")
    args.output_schema = schema
    pool = None
    try:
        budget = budget_from_args(args)
        limits = limits_from_args(args)
        if args.sub_pool == "ray":
            from ..batch import RayModelPool

            pool = RayModelPool(args.sub_model or args.model, address=args.ray)
        from ..engine import RLM
        from ..view.live import LiveTree

        progress = LiveTree.for_stderr(enabled=not args.quiet)
        rlm = RLM(
            model=args.model,
            sub_model=pool or args.sub_model,
            max_depth=args.depth,
            budget=budget,
            repl=args.repl,
            trace=args.trace,
            limits=limits,
            on_event=progress,
            cache=args.cache,
        )
    except (UnknownModelError, ConfigError) as exc:
        if pool is not None:
            pool.shutdown()
        return fail(EXIT_MODEL, str(exc))
    except ValueError as exc:
        return fail(EXIT_USAGE, str(exc))
    try:
        return _ask(args, rlm, context, progress)
    finally:
        if pool is not None:
            pool.shutdown()


def _ask(args: argparse.Namespace, rlm: Any, context: Any, progress: Any) -> int:
    from ..status import StatusKind

    started = time.monotonic()
    try:
        result = asyncio.run(_ask_with_signals(rlm, args.question, context, args.output_schema))
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


async def _ask_with_signals(rlm: Any, question: str, context: Any, output: Any = None) -> Any:
    """Run the RLM; SIGTERM cancels it like Ctrl-C so the trace is closed with status=interrupted."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        try:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        except (NotImplementedError, RuntimeError):
            pass
    return await rlm.arun(question, context, output=output)


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
    add_run_arguments(ask)
    ask.add_argument(
        "--sub-pool",
        choices=["none", "ray"],
        default="none",
        help="'ray': sub-calls of a local model go to model actors on every node of a Ray cluster "
        "(pip install 'unbounded[ray]')",
    )
    ask.add_argument(
        "--ray", default=None, metavar="ADDRESS", help="the Ray cluster for --sub-pool ray (default: this machine's)"
    )
    ask.add_argument(
        "--schema", default=None, metavar="FILE.json", help="a JSON schema the answer must follow (printed as JSON)"
    )
    ask.add_argument("--trace", default=None, help="append the run's events to this JSONL file")
    ask.add_argument("--cache", action="store_true", help="cache model responses on disk")
    ask.add_argument("--json", action="store_true", help="print the whole result as JSON")
    ask.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    ask.set_defaults(func=run)
