"""``unbounded batch JOBS.jsonl --out DIR [--ray auto|ADDRESS] [--workers N]``.

Exit codes: 0 every job answered; 1 some jobs failed or some lines are invalid (see results.jsonl,
invalid.jsonl and the summary); 2 bad usage (duplicate ids, options that do not go together);
3 the job file is missing or unreadable; 4 the job file holds no job; 5 Ray not installed or not
reachable, a model pool that cannot start, or a bad default configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..cli.options import add_run_arguments, budget_from_args, limits_from_args
from ..errors import ConfigError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MISSING = 3
EXIT_EMPTY = 4
EXIT_CONFIG = 5

DESCRIPTION = (
    "Run many questions, one JSON object per line of JOBS (id, question, and a context as 'text', "
    "'records' or 'paths'; optional model, sub_model, budget, output schema). Locally on a process "
    "pool, or on a Ray cluster with --ray. Resumable: jobs already finished in --out are skipped. "
    "Each job writes one line to DIR/results.jsonl and its trace to DIR/traces/; a failing job is "
    "recorded and never stops the batch."
)


def add_parser(subparsers: Any) -> None:
    """Add ``batch`` to an argparse sub-command tree."""
    parser = subparsers.add_parser(
        "batch", help="run a JSONL file of questions (locally or on Ray)", description=DESCRIPTION
    )
    configure(parser)
    parser.set_defaults(func=handle)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jobs", help="JSONL job file, one job per line")
    parser.add_argument("--out", required=True, help="output folder (results.jsonl, traces/, summary.json)")
    parser.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        default=None,
        metavar="ADDRESS",
        help="run on Ray: 'auto' (the default when given alone: the cluster of this machine), a cluster "
        "address (host:6379, ray://host:10001) or 'local' (a private one-node Ray)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="jobs at once (default: the CPUs, locally or of the cluster)"
    )
    parser.add_argument(
        "--cpus-per-job", type=float, default=None, help="Ray CPUs each job holds (default 1; 0 with --sub-pool)"
    )
    parser.add_argument(
        "--sub-pool",
        choices=["none", "ray"],
        default="none",
        help="'ray': the sub-calls of the default sub-model go to model actors on every node (needs --ray)",
    )
    parser.add_argument(
        "--pool-actors-per-node",
        type=int,
        default=None,
        help="model actors per node (default: 1 for local models, else CPUs / --pool-cpus-per-actor)",
    )
    parser.add_argument(
        "--pool-cpus-per-actor",
        type=float,
        default=None,
        help="CPUs (llama.cpp threads) per model actor (default: the whole node for local models, else 1)",
    )
    parser.add_argument(
        "--pool-slots",
        type=int,
        default=None,
        help="calls one actor runs at once (default: 1 for local models, else 8)",
    )
    add_run_arguments(parser, scope="job")
    parser.add_argument("--retry-failed", action="store_true", help="run again the jobs that failed in an earlier run")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary on stderr")


def handle(args: argparse.Namespace) -> int:
    """Run the batch described by ``args``; return the exit code."""
    from .api import run_batch
    from .errors import (
        BatchUsageError,
        DuplicateJobIdError,
        EmptyJobFileError,
        MissingJobFileError,
    )
    from .jobs import JobDefaults
    from .pool import PoolOptions

    try:
        defaults = JobDefaults(
            model=args.model,
            sub_model=args.sub_model,
            max_depth=args.depth,
            budget=budget_from_args(args),
            repl=args.repl,
            limits=limits_from_args(args),
        )
        pool = None
        if args.sub_pool == "ray":
            pool = PoolOptions(
                actors_per_node=args.pool_actors_per_node,
                cpus_per_actor=args.pool_cpus_per_actor,
                slots_per_actor=args.pool_slots,
            )
            spec = args.sub_model or args.model
            if not spec.startswith("local/") and not args.quiet:
                print(
                    f"unbounded batch: note: sub-calls to {spec} are served by its provider, which already runs "
                    "them in parallel; a Ray pool adds nothing there (it is meant for local models)",
                    file=sys.stderr,
                )
        run = run_batch(
            args.jobs,
            out=args.out,
            ray=args.ray,
            workers=args.workers,
            defaults=defaults,
            sub_pool=pool,
            cpus_per_job=args.cpus_per_job,
            retry_failed=args.retry_failed,
            progress=not args.quiet,
        )
    except MissingJobFileError as exc:
        return _fail(EXIT_MISSING, str(exc))
    except EmptyJobFileError as exc:
        return _fail(EXIT_EMPTY, str(exc))
    except (DuplicateJobIdError, BatchUsageError, ValueError) as exc:
        return _fail(EXIT_USAGE, str(exc))
    except ConfigError as exc:
        return _fail(EXIT_CONFIG, str(exc))
    try:
        for _ in run:
            pass
    except ConfigError as exc:  # Ray unreachable, a pool that cannot start
        run.close()
        return _fail(EXIT_CONFIG, str(exc))
    except ValueError as exc:
        run.close()
        return _fail(EXIT_USAGE, str(exc))
    except KeyboardInterrupt:
        run.close()
        return _fail(130, f"interrupted; finished jobs are in {args.out}, rerun the same command to resume")
    summary = run.summary
    assert summary is not None
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    if not args.quiet:
        print(summary.render(), file=sys.stderr)
        print(f"results: {os.path.join(args.out, 'results.jsonl')}", file=sys.stderr)
    return EXIT_OK if summary.failed == 0 else EXIT_FAILED


def _fail(code: int, message: str) -> int:
    print(f"unbounded batch: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """``python -m unbounded.batch``: the same command on its own."""
    parser = argparse.ArgumentParser(prog="python -m unbounded.batch", description=DESCRIPTION)
    configure(parser)
    args = parser.parse_args(argv)
    return handle(args)
