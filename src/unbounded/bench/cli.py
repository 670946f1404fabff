"""``unbounded bench run ...``, ``unbounded bench report DIR`` and ``unbounded bench export DIR``.

    unbounded bench run --task oolong --sizes 8k,32k,128k,1m --methods direct,retrieval,rlm \\
        --model local/qwen2.5-coder-1.5b -n 20 --out runs/oolong
    unbounded bench report runs/oolong
    unbounded bench export runs/oolong --out oolong-sft.jsonl --methods rlm

``main(argv)`` takes ``argv[0]`` = ``run``, ``report`` or ``export``; it returns the process exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..models.registry import DEFAULT_MODEL
from .results import parse_size

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_MODEL = 5
EXIT_INTERRUPTED = 130


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _sizes(text: str) -> list[int]:
    try:
        return [parse_size(p) for p in _csv(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE``; the value is read as JSON when it parses (numbers, booleans), else kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def run_parser() -> argparse.ArgumentParser:
    from .runner import known_methods
    from .tasks import task_names

    p = argparse.ArgumentParser(
        prog="unbounded bench run",
        description="Run long-context tasks with several methods on one model; resumable.",
    )
    p.add_argument(
        "--task", "--tasks", dest="tasks", type=_csv, required=True, help=f"comma list of {', '.join(task_names())}"
    )
    p.add_argument("--sizes", type=_sizes, default=[8192], help="comma list of context sizes in tokens: 8k,32k,128k,1m")
    p.add_argument(
        "--methods",
        type=_csv,
        default=["direct", "retrieval", "rlm"],
        help=f"comma list of {', '.join(known_methods())}; rlm:STYLE picks a prompt style (rlm:compact)",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL})")
    p.add_argument("--sub-model", default=None, help="model for llm_query in RLM methods (default: the model)")
    p.add_argument(
        "--model-option",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="backend option, e.g. n_ctx=8192 or base_url=http://...; repeatable",
    )
    p.add_argument("-n", type=int, default=5, help="items per task and size (default 5)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.add_argument("--out", type=Path, required=True, help="results folder (created; reused to resume)")
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="items at once (default 1 for local/ models, else 8; with --ray, the number of Ray workers, "
        "by default the cluster's CPUs / --ray-cpus-per-worker)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        default=None,
        metavar="ADDRESS",
        help="run the items on Ray workers: auto (the cluster this machine is in; the default when the "
        "flag has no value), local (a private one-node Ray) or a cluster address host:6379",
    )
    p.add_argument(
        "--ray-cpus-per-worker",
        type=float,
        default=1.0,
        metavar="N",
        help="CPUs each Ray worker holds (default 1; a local model wants a node's cores)",
    )
    p.add_argument(
        "--no-cache", dest="cache", action="store_false", help="do not cache model responses in OUT/cache.sqlite"
    )
    p.add_argument("--repl", choices=["process", "inprocess"], default="process", help="REPL for RLM methods")
    p.add_argument("--max-iterations", type=int, default=20, help="root turns per RLM item (default 20)")
    p.add_argument("--max-depth", type=int, default=1, help="recursion depth for rlm_query (default 1)")
    p.add_argument("--max-calls", type=int, default=200, help="model calls per RLM item (default 200)")
    p.add_argument(
        "--timeout-per-item",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up on an item after this long (status timeout, score 0)",
    )
    p.add_argument(
        "--context-window", type=int, default=32_768, help="window assumed for baselines when the model reports none"
    )
    p.add_argument(
        "--rlms-option",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="options for the rlms method: base_url, model, api_key, api_key_env, max_tokens, max_timeout; repeatable",
    )
    p.add_argument("--retry-errors", action="store_true", help="run again items recorded as error or timeout")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("-q", "--quiet", dest="verbose", action="store_false", help="no line per finished item")
    return p


def report_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="unbounded bench report", description="Tables and plots from a bench run folder.")
    p.add_argument("dirs", nargs="+", type=Path, help="results folder(s) of bench run; several are merged")
    p.add_argument("--out", type=Path, default=None, help="where report.md and the PNGs go (default: the first folder)")
    p.add_argument("--no-plots", dest="plots", action="store_false", help="Markdown only")
    p.add_argument("--title", default=None, help="title of report.md")
    return p


def export_parser() -> argparse.ArgumentParser:
    from .export import add_arguments

    p = argparse.ArgumentParser(
        prog="unbounded bench export",
        description="Write the successful trajectories of a bench run folder as chat-format JSONL for fine-tuning.",
    )
    add_arguments(p)
    return p


def cmd_run(argv: list[str]) -> int:
    return run_args(run_parser().parse_args(argv))


def run_args(args: argparse.Namespace) -> int:
    from ..errors import ConfigError, UnknownModelError
    from .runner import BenchConfig, run_bench

    config = BenchConfig(
        tasks=args.tasks,
        sizes=args.sizes,
        methods=args.methods,
        model=args.model,
        out=args.out,
        n=args.n,
        seed=args.seed,
        jobs=args.jobs,
        cache=args.cache,
        repl=args.repl,
        max_iterations=args.max_iterations,
        max_depth=args.max_depth,
        max_llm_calls=args.max_calls,
        sub_model=args.sub_model,
        timeout_per_item=args.timeout_per_item,
        context_window=args.context_window,
        model_options=dict(args.model_option),
        rlms_options=dict(args.rlms_option),
        retry_errors=args.retry_errors,
        progress=args.progress,
        verbose=args.verbose,
        ray=args.ray,
        ray_cpus_per_worker=args.ray_cpus_per_worker,
    )
    try:
        config.validate()
    except ValueError as exc:
        print(f"unbounded bench run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        summary = run_bench(config)
    except (ConfigError, UnknownModelError) as exc:
        print(f"unbounded bench run: {exc}", file=sys.stderr)
        return EXIT_MODEL
    except KeyboardInterrupt:
        print("unbounded bench run: interrupted; finished items are saved, run again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if summary.errors == 0 else EXIT_ERROR


def cmd_report(argv: list[str]) -> int:
    return report_args(report_parser().parse_args(argv))


def report_args(args: argparse.Namespace) -> int:
    from .report import write_report

    missing = [d for d in args.dirs if not d.is_dir()]
    if missing:
        print(f"unbounded bench report: no such folder: {', '.join(map(str, missing))}", file=sys.stderr)
        return EXIT_USAGE
    from ..errors import MissingExtraError

    try:
        report = write_report(args.dirs, out=args.out, plots=args.plots, title=args.title)
    except MissingExtraError as exc:
        print(f"unbounded bench report: {exc}", file=sys.stderr)
        return EXIT_MODEL
    except ValueError as exc:
        print(f"unbounded bench report: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(report.markdown)
    for path in report.files:
        print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK


def cmd_export(argv: list[str]) -> int:
    from .export import handle

    return handle(export_parser().parse_args(argv))


def overhead_args(args: argparse.Namespace) -> int:
    from .overhead import run

    return run(args)


def add_parser(subparsers: Any) -> None:
    """``bench`` in the ``unbounded`` command tree: ``run``, ``report``, ``export`` and ``overhead``.

    Each subcommand takes the arguments of its own parser above (``run_parser`` …), so ``unbounded
    bench run …`` and ``python -m unbounded.bench.cli run …`` accept the same options.
    """
    from .export import handle as export_args

    bench = subparsers.add_parser(
        "bench",
        help="benchmarks: run, report, export, overhead",
        description="Benchmark methods on long-context tasks, report the results, export trajectories.",
    )
    sub = bench.add_subparsers(dest="bench_cmd", required=True, metavar="SUBCOMMAND")
    for name, build, handler, help_text in (
        ("run", run_parser, run_args, "run tasks with several methods on one model; resumable"),
        ("report", report_parser, report_args, "tables and plots from bench run folders"),
        ("export", export_parser, export_args, "successful trajectories of a bench folder as chat JSONL"),
    ):
        parent = build()
        p = sub.add_parser(name, parents=[parent], add_help=False, help=help_text, description=parent.description)
        p.set_defaults(func=handler)
    from .overhead import parser as overhead_parser

    parent = overhead_parser()
    overhead = sub.add_parser(
        "overhead", parents=[parent], add_help=False, help="engine overhead figures", description=parent.description
    )
    overhead.set_defaults(func=overhead_args)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"run": cmd_run, "report": cmd_report, "export": cmd_export}
    if not argv or argv[0] not in commands:
        print("usage: unbounded bench {run,report,export} ...", file=sys.stderr)
        return EXIT_USAGE
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
