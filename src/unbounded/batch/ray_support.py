"""Ray, imported only when asked for, and the driver's connection to a cluster."""

from __future__ import annotations

import logging
import re
from typing import Any

from .errors import RayUnavailableError

RAY_INSTALL = "pip install 'unbounded[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or ``RayUnavailableError`` naming the install command."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError(
            f"Ray is not installed, so --ray / --sub-pool ray cannot be used: run {RAY_INSTALL} "
            "(or run without --ray: the local process pool needs no Ray)"
        ) from exc
    return ray


def connect(address: str | None) -> bool:
    """Connect this process to Ray unless it already is. Returns True when this call connected
    (so the caller should disconnect when done).

    ``address`` is Ray's own: ``"auto"`` (the cluster this machine belongs to, e.g. after
    ``ray start --head``), ``"ray://host:10001"`` or ``"host:6379"``, ``"local"`` (start a private
    one-node Ray here) or None (an existing cluster if there is one, else a private one).
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address in (None, "local"):
        options["include_dashboard"] = False
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayUnavailableError(
            f"cannot connect to the Ray cluster at {address!r}: {exc}; start one with 'ray start --head' "
            "and pass --ray auto, or give its address (host:6379)"
        ) from exc
    return True


def cluster_cpus() -> float:
    """Logical CPUs of the alive nodes."""
    ray = import_ray()
    return float(sum(n.get("Resources", {}).get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RAISED = re.compile(r"^(?:[A-Za-z_][\w]*\.)*([A-Za-z_]\w*(?:Error|Exception|Exceeded)): (.*)$")


def error_reason(exc: BaseException | None) -> str:
    """The reason in one line: for a Ray error that carries a remote traceback, its last line
    (``UnknownModelError: unknown model …``); otherwise the first line of the message."""
    text = _ANSI.sub("", str(exc or "")).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__ if exc is not None else "unknown error"
    raised = _RAISED.match(lines[-1]) if len(lines) > 1 else None
    if raised:
        return f"{raised.group(1)}: {raised.group(2)}"[:500]
    return lines[0][:300]
