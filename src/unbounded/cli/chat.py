"""``unbounded chat PATH…``: load the inputs once, then ask question after question at a prompt.

Readline history (kept in the cache dir), Ctrl-C cancels the question that is running and keeps the
session, Ctrl-D (or ``/quit``) ends it. ``/save FILE`` saves the session (questions, answers and the
variables that pickle); ``--restore FILE`` starts from a saved one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ContextError, EmptyContextError, UnboundedError
from .exitcodes import EXIT_CONTEXT, EXIT_EMPTY, EXIT_MODEL, EXIT_OK, EXIT_USAGE, fail
from .options import add_run_arguments, budget_from_args, limits_from_args


def add_parser(sub: Any) -> None:
    from ..loaders.arguments import add_load_arguments

    p = sub.add_parser(
        "chat",
        help="load files once, then ask question after question",
        description="Load the given files, folders or standard input once, then answer question after question "
        "at a prompt; variables persist between questions. Ctrl-C cancels the running question, Ctrl-D ends.",
    )
    p.add_argument("paths", nargs="*", help="files, folders, or - for standard input")
    add_load_arguments(p)
    add_run_arguments(p, scope="question")
    p.add_argument("--session-budget", action="store_true", help="one budget for the whole session, not per question")
    p.add_argument("--trace", default=None, help="append the session's events to this JSONL file")
    p.add_argument("--restore", default=None, metavar="FILE", help="start from a session saved with /save")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..context import load_inputs
    from ..engine import RLM
    from ..loaders.arguments import load_options

    if args.paths == ["-"] or (not args.paths and not sys.stdin.isatty()):
        return fail(EXIT_USAGE, "chat reads questions from the terminal: give files or folders, not standard input")
    if not args.paths and not args.restore:
        return fail(EXIT_CONTEXT, "no input: give one or more files or folders")
    try:
        context = load_inputs(args.paths, **load_options(args)) if args.paths else None
    except EmptyContextError as exc:
        return fail(EXIT_EMPTY, str(exc))
    except ContextError as exc:
        return fail(EXIT_CONTEXT, str(exc))
    try:
        rlm = RLM(
            model=args.model,
            sub_model=args.sub_model,
            max_depth=args.depth,
            budget=budget_from_args(args),
            repl=args.repl,
            trace=args.trace,
            limits=limits_from_args(args),
        )
        scope = "session" if args.session_budget else "question"
        session = rlm.restore(args.restore, context) if args.restore else rlm.session(context, budget=scope)
    except (ConfigError, UnboundedError) as exc:
        return fail(EXIT_MODEL, str(exc))
    return asyncio.run(_loop(session, quiet=args.quiet))


async def _loop(session: Any, *, quiet: bool) -> int:
    _readline()
    try:
        await session.astart()
    except UnboundedError as exc:
        return fail(EXIT_CONTEXT, str(exc))
    print(f"unbounded: context loaded; {len(session.turns)} earlier question(s). Ask away (Ctrl-D ends).",
          file=sys.stderr)  # fmt: skip
    try:
        while True:
            try:
                question = await asyncio.to_thread(input, "? ")
            except EOFError:
                print(file=sys.stderr)
                return EXIT_OK
            except KeyboardInterrupt:
                print(file=sys.stderr)
                continue
            question = question.strip()
            if not question:
                continue
            if question in ("/quit", "/exit"):
                return EXIT_OK
            if question.startswith("/save"):
                target = question[len("/save") :].strip() or "session.json"
                dropped = await session.asave(target)
                note = f" (not picklable, not kept: {', '.join(dropped)})" if dropped else ""
                print(f"unbounded: saved to {target}{note}", file=sys.stderr)
                continue
            await _ask_one(session, question, quiet=quiet)
    finally:
        await session.aclose()


async def _ask_one(session: Any, question: str, *, quiet: bool) -> None:
    task = asyncio.ensure_future(session.aask(question))
    loop = asyncio.get_running_loop()
    import signal

    try:
        loop.add_signal_handler(signal.SIGINT, task.cancel)
    except (NotImplementedError, RuntimeError):
        pass
    try:
        result = await task
    except asyncio.CancelledError:
        print("unbounded: cancelled; the session goes on", file=sys.stderr)
        return
    finally:
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):
            pass
    print(result.answer if result.answer is not None else "(no answer)")
    if not quiet:
        total = result.total_usage
        print(f"[{result.status}] {result.iterations} turns · {total.calls} model calls · "
              f"{total.total_tokens:,} tokens · {result.elapsed:.1f}s", file=sys.stderr)  # fmt: skip


def _readline() -> None:
    """Line editing and a history file, where the platform has readline."""
    try:
        import atexit
        import readline
    except ImportError:
        return
    import platformdirs

    path = Path(os.environ.get("UNBOUNDED_CACHE_DIR") or platformdirs.user_cache_dir("unbounded")) / "chat_history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            readline.read_history_file(path)
    except OSError:
        return
    readline.set_history_length(1000)
    atexit.register(_save_history, readline, path)


def _save_history(readline: Any, path: Path) -> None:
    try:
        readline.write_history_file(path)
    except OSError:
        pass
