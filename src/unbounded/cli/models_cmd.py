"""``unbounded models``: the backends and embedded models this install knows."""

from __future__ import annotations

import argparse
from typing import Any

from .exitcodes import EXIT_OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser("models", help="list model backends", description="List model backends and embedded models.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.registry import DEFAULT_MODEL, known_prefixes
    from ..models.weights import CATALOGUE

    print(f"default: {DEFAULT_MODEL}")
    print("backends: " + ", ".join(f"{p}/…" for p in known_prefixes()))
    print("embedded local models: " + ", ".join(f"local/{n}" for n in CATALOGUE))
    return EXIT_OK
