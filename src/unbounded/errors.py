"""Exceptions raised across the package.

Every error a user can meet carries a message that says what went wrong and what to do. Callers
handle failures by class: a model whose window is full raises ``ContextLengthError`` whichever
backend it is, a throttled provider ``RateLimitError``, and so on. ``ModelError.kind`` keeps the
short name of the class's failure (``"context_length"``, ``"rate_limit"``…) for messages and
run statuses.

This module imports nothing, so the REPL worker can use it without growing.
"""

from __future__ import annotations


class UnboundedError(Exception):
    """Base class for all errors raised by unbounded."""


class ConfigError(UnboundedError):
    """Bad configuration: unknown model spec, missing API key, invalid option."""


class UnknownModelError(ConfigError):
    """A model spec string that no registered backend understands."""


class UnknownPriceError(UnknownModelError):
    """A cost limit was set for a model whose price is unknown, so it could not be enforced."""


class MissingAPIKeyError(ConfigError):
    """A remote backend was asked for without its key."""


class MissingExtraError(ConfigError):
    """An optional dependency is not installed; the message names the pip extra that brings it."""


class ContextError(UnboundedError):
    """The context cannot be loaded: missing path, empty, unreadable, not serialisable."""


class EmptyContextError(ContextError):
    """The context holds no text at all."""


class ModelError(UnboundedError):
    """A model call failed after retries (HTTP error, timeout, malformed reply).

    Subclasses name the failure; ``kind`` is its short name. ``retryable`` says whether the same call
    could succeed later; ``attempts``, ``status`` and ``request_id`` describe the last attempt;
    ``billed`` is the usage the provider charged for failed attempts (empty completions), or None.
    """

    #: The short name of this class's failure; instances may carry a more specific one.
    KIND = "model"

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        retryable: bool = False,
        attempts: int | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind or self.KIND
        self.retryable = retryable
        self.attempts = attempts
        self.status = status
        self.request_id = request_id
        self.billed: object | None = None


class ContextLengthError(ModelError):
    """The prompt is longer than the model's window. The engine trims the history and tries again."""

    KIND = "context_length"


class RateLimitError(ModelError):
    """The provider throttled the key (HTTP 429) and retries did not get through."""

    KIND = "rate_limit"


class QuotaError(ModelError):
    """The account has no quota or credit left."""

    KIND = "quota"


class ModelTimeoutError(ModelError):
    """No reply in time."""

    KIND = "timeout"


class ModelConnectionError(ModelError):
    """The model server could not be reached."""

    KIND = "connection"


class ServerError(ModelError):
    """The provider failed on its side (HTTP 5xx)."""

    KIND = "server"


class BadRequestError(ModelError):
    """The provider rejected the request as invalid; sending it again will not help."""

    KIND = "bad_request"


class AuthenticationError(ModelError):
    """The API key was refused."""

    KIND = "auth"


class ModelNotFoundError(ModelError):
    """The model or endpoint does not exist."""

    KIND = "not_found"


class MalformedResponseError(ModelError):
    """The server's reply was not what the protocol requires."""

    KIND = "malformed"


class EmptyResponseError(ModelError):
    """The model returned no text."""

    KIND = "empty"


class ModelLoadError(ModelError):
    """An embedded model could not be loaded."""

    KIND = "load"


_BY_KIND: dict[str, type[ModelError]] = {
    cls.KIND: cls
    for cls in (
        ContextLengthError,
        RateLimitError,
        QuotaError,
        ModelTimeoutError,
        ModelConnectionError,
        ServerError,
        BadRequestError,
        AuthenticationError,
        ModelNotFoundError,
        MalformedResponseError,
        EmptyResponseError,
        ModelLoadError,
    )
}


def model_error_class(kind: str) -> type[ModelError]:
    """The ``ModelError`` subclass for a failure kind (``ModelError`` itself for an unknown kind)."""
    return _BY_KIND.get(kind, ModelError)


class BudgetExceeded(UnboundedError):
    """A budget limit would be exceeded. Raised to callers only with ``Budget(strict=True)``."""

    def __init__(self, limit: str, message: str | None = None) -> None:
        super().__init__(message or f"budget exhausted: {limit}")
        self.limit = limit


class BatchOverBudget(UnboundedError):
    """A batch of sub-calls asks for more model calls than the run has left. Nothing of it is asked, so
    the calls left stay for a narrower batch and the root's answer; the model's code sees the message."""


class REPLError(UnboundedError):
    """The REPL worker failed in a way the model cannot fix (crash, protocol violation)."""


class WorkerProtocolError(REPLError):
    """A frame on the worker's pipe was malformed, oversized or out of protocol."""


class VariableError(UnboundedError, LookupError):
    """The REPL namespace holds no variable of that name."""
