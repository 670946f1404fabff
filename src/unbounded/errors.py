"""Exceptions raised across the package.

Every error a user can meet carries a message that says what went wrong and what to do.
"""

from __future__ import annotations


class UnboundedError(Exception):
    """Base class for all errors raised by unbounded."""


class ConfigError(UnboundedError):
    """Bad configuration: unknown model spec, missing API key, invalid option."""


class UnknownModelError(ConfigError):
    """A model spec string that no registered backend understands."""


class MissingAPIKeyError(ConfigError):
    """A remote backend was asked for without its key."""


class ContextError(UnboundedError):
    """The context cannot be loaded: missing path, empty, unreadable, not serialisable."""


class EmptyContextError(ContextError):
    """The context holds no text at all."""


class ModelError(UnboundedError):
    """A model call failed after retries (HTTP error, timeout, malformed reply)."""

    def __init__(
        self,
        message: str,
        *,
        kind: str = "model",
        retryable: bool = False,
        attempts: int | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        #: How many attempts were made (retries included), the last HTTP status and the provider's request id.
        self.attempts = attempts
        self.status = status
        self.request_id = request_id
        #: Usage the provider billed for failed attempts (e.g. empty completions), or None.
        self.billed: object | None = None


class BudgetExceeded(UnboundedError):
    """A budget limit would be exceeded. Raised to callers only with ``Budget(strict=True)``."""

    def __init__(self, limit: str, message: str | None = None) -> None:
        super().__init__(message or f"budget exhausted: {limit}")
        self.limit = limit


class REPLError(UnboundedError):
    """The REPL worker failed in a way the model cannot fix (crash, protocol violation)."""


class WorkerProtocolError(REPLError):
    """The worker sent a malformed, oversized or out-of-protocol frame."""
