"""The flags every command that runs RLMs shares (``ask``, ``batch``, …): models, depth, budget, REPL."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..models.registry import DEFAULT_MODEL


class Deprecated(argparse.Action):
    """An old option name that still works, with a warning naming the new one."""

    def __init__(self, *args: Any, new: str, **kwargs: Any) -> None:
        self.new = new
        super().__init__(*args, **kwargs)

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option: str | None = None) -> None:
        print(f"unbounded: {option} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_run_arguments(parser: argparse.ArgumentParser, *, scope: str = "run") -> None:
    """``--model``, ``--sub-model``, ``--depth``, the budget flags, ``--cell-timeout``, ``--repl``,
    ``--sandbox``, ``--allow-network``. ``scope`` says what the totals are per ("run", "job"…)."""
    p = parser
    p.add_argument("--model", default=os.environ.get("UNBOUNDED_MODEL", DEFAULT_MODEL), help="root model spec")
    p.add_argument("--sub-model", default=os.environ.get("UNBOUNDED_SUB_MODEL"), help="model for llm_query")
    p.add_argument("--depth", type=int, default=1, help="maximum recursion depth (default 1)")
    p.add_argument("--max-iterations", type=int, default=20, help="root turns per RLM (default 20)")
    p.add_argument("--max-calls", type=int, default=200, help=f"maximum model calls per {scope}")
    p.add_argument("--max-total-tokens", type=int, default=None, help=f"maximum tokens (input + output) per {scope}")
    p.add_argument("--max-tokens", dest="max_total_tokens", type=int, action=Deprecated, new="--max-total-tokens",
                   help=argparse.SUPPRESS)  # fmt: skip
    p.add_argument("--max-cost", type=float, default=None, help=f"maximum cost per {scope}, USD")
    p.add_argument("--max-seconds", type=float, default=None, help=f"wall-clock limit per {scope}, seconds")
    p.add_argument("--timeout", dest="max_seconds", type=float, action=Deprecated, new="--max-seconds",
                   help=argparse.SUPPRESS)  # fmt: skip
    p.add_argument("--cell-timeout", type=float, default=120.0, help="wall-clock limit per code cell, seconds")
    p.add_argument("--repl", choices=["process", "inprocess"], default="process")
    p.add_argument(
        "--sandbox",
        choices=["auto", "bwrap", "unshare", "none"],
        default="auto",
        help="confinement of the process REPL (default: bubblewrap where it works; see docs/security.md)",
    )
    p.add_argument("--allow-network", action="store_true", help="let model-written code use the network")


def budget_from_args(args: argparse.Namespace) -> Any:
    from ..budget import Budget

    return Budget(
        max_iterations=args.max_iterations,
        max_llm_calls=args.max_calls,
        max_total_tokens=args.max_total_tokens,
        max_cost_usd=args.max_cost,
        max_seconds=args.max_seconds,
    )


def limits_from_args(args: argparse.Namespace) -> Any:
    from ..repl.base import Limits

    return Limits(cell_timeout=args.cell_timeout, allow_network=args.allow_network, sandbox=args.sandbox)
