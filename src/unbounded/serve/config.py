"""What a server allows: its models, keys, folders, limits and caps (``ServeConfig``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..budget import Budget
from ..errors import ConfigError
from ..models.base import LM
from ..models.registry import DEFAULT_MODEL
from ..repl.base import Limits

MIB = 1024 * 1024
#: The per-run wall clock when none is given: a run never holds a slot for ever.
DEFAULT_MAX_SECONDS = 900.0


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, ``localhost``)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


@dataclass
class ServeConfig:
    """The server's settings. ``budget`` holds the caps: a request may ask for less, never more.

    ``model`` is the default root model (``rlm``); ``allow_models`` the other root specs a request may
    name as ``rlm/<spec>``. A spec may be an ``LM`` instance (tests, embedding), named by its ``name``.
    ``allow_paths``: folders whose files requests may name; nothing else on disk is ever read.
    ``api_keys``: bearer keys; required when ``host`` is not loopback. ``max_concurrent`` runs at once,
    ``max_queue`` more waiting; beyond that a request gets 429. ``inline_chars``: the size up to which
    a part of the last user message is the question (see the package docs). ``context_memory_chars``
    and ``max_contexts`` bound the registered contexts (least recently used idle ones are evicted).
    ``trace_dir`` keeps every run's trace (default: a private temporary folder, newest ``max_traces``
    kept). ``grace_seconds``: how long past ``budget.max_seconds`` a run may take to end by itself
    before it is cancelled. ``ui`` serves the trace viewer over the traces folder at ``/ui``; it shows
    every run's trace to whoever opens it, so it is refused on a server with API keys.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    model: str | LM = DEFAULT_MODEL
    sub_model: str | LM | None = None
    allow_models: Sequence[str | LM] = ()
    api_keys: Sequence[str] = ()
    allow_paths: Sequence[Path] = ()
    max_concurrent: int = 4
    max_queue: int = 16
    max_body_bytes: int = 128 * MIB
    max_upload_bytes: int = 1024 * MIB
    budget: Budget = field(default_factory=lambda: Budget(max_seconds=DEFAULT_MAX_SECONDS))
    max_depth: int = 1
    repl: str = "process"
    limits: Limits = field(default_factory=Limits)
    inline_chars: int = 8192
    context_memory_chars: int = 2048 * MIB
    max_contexts: int = 32
    trace_dir: Path | None = None
    max_traces: int = 1000
    mcp: bool = False
    ui: bool = False
    grace_seconds: float = 10.0
    keepalive_seconds: float = 15.0

    def check(self) -> None:
        """Refuse settings that would be unsafe or cannot work (``ConfigError`` says which and what to do)."""
        if not is_loopback(self.host) and not self.api_keys:
            raise ConfigError(
                f"refusing to listen on {self.host} without an API key: anyone who can reach it could run models "
                "and read the allowed folders. Give --api-key KEY (or UNBOUNDED_API_KEY), or bind 127.0.0.1"
            )
        if self.ui and self.api_keys:
            raise ConfigError(
                "--ui shows every run's trace to whoever opens it, so it runs only on a loopback server without "
                "API keys; with keys, each client reads its own traces with GET /v1/traces/<id>"
            )
        for key in self.api_keys:
            if len(key) < 8 or any(c.isspace() for c in key):
                raise ConfigError("an API key must be at least 8 characters with no spaces")
        for name, value in (("max_concurrent", self.max_concurrent), ("max_contexts", self.max_contexts),
                            ("inline_chars", self.inline_chars), ("max_traces", self.max_traces)):  # fmt: skip
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, not {value}")
        if self.max_queue < 0:
            raise ConfigError(f"max_queue must be 0 or more, not {self.max_queue}")
        if self.max_body_bytes < 1024 or self.max_upload_bytes < 1024:
            raise ConfigError("the body limits must be at least 1 KiB")
        if self.budget.max_seconds is None:
            raise ConfigError("the server needs a per-run wall clock: set budget.max_seconds (--max-seconds)")
        for folder in self.allow_paths:
            if not Path(folder).is_dir():
                raise ConfigError(f"--allow-path {folder}: not a folder (give folders whose files requests may read)")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, not {self.port}")
