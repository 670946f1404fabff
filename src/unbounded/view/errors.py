"""Failures of the trace viewer that a caller (the CLI, a server mounting the viewer) handles."""

from __future__ import annotations

from ..errors import UnboundedError


class ViewError(UnboundedError):
    """Base class for trace viewer errors."""


class TraceFileError(ViewError):
    """A trace file or bench folder is missing or cannot be read."""


class EmptyTraceError(ViewError):
    """A trace file holds no events (nothing to show or export)."""


class UnknownNodeError(ViewError):
    """A node key or trace id that the index does not hold (a stale link, a typo in a URL)."""
