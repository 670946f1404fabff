"""Failures of a request, each with its HTTP status and OpenAI's JSON error shape.

``{"error": {"message", "type", "param", "code"}}`` is what every OpenAI SDK parses into its own
exception classes (``BadRequestError``, ``AuthenticationError``, ``NotFoundError``,
``RateLimitError``…), so a client sees our failures as it would see OpenAI's.
"""

from __future__ import annotations

from typing import Any

from ..errors import UnboundedError


class ServeError(UnboundedError):
    """A request the server refuses or cannot serve. ``status`` is the HTTP status; ``type`` and
    ``code`` are OpenAI's error fields; ``param`` names the request field at fault, if one is."""

    status = 500
    type = "server_error"
    code: str | None = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        """Headers the response carries (``Retry-After``; ``x-should-retry`` tells OpenAI SDKs not to resend)."""
        return {} if self.status in (408, 409, 429) or self.status < 500 else {"x-should-retry": "false"}


class BadRequest(ServeError):
    """The request is malformed or asks for something the server does not offer (400)."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class Unauthorized(ServeError):
    """No bearer key, or a wrong one (401)."""

    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="unbounded"'}


class PathNotAllowed(ServeError):
    """A server-side path outside every ``--allow-path`` folder, or none allowed at all (403)."""

    status = 403
    type = "permission_error"
    code = "path_not_allowed"


class NotFound(ServeError):
    """An unknown model, context, trace or route (404)."""

    status = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowed(ServeError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLarge(ServeError):
    """A body over the server's limit, or a context over its memory cap (413)."""

    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class UnsupportedMediaType(ServeError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class Overloaded(ServeError):
    """Every run slot and queue place is taken (429); ``retry_after`` says when to try again."""

    status = 429
    type = "rate_limit_error"
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, int(retry_after))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RunFailed(ServeError):
    """The run ended with an error status (a model or REPL failure) and no answer to give (500)."""

    status = 500
    type = "server_error"
    code = "run_failed"


class RunTimeout(ServeError):
    """The run passed the server's wall clock and was stopped (504)."""

    status = 504
    type = "server_error"
    code = "run_timeout"


class Internal(ServeError):
    """An unexpected failure; the message carries an id to find it in the server's log, never a traceback."""

    status = 500
    type = "server_error"
    code = "internal_error"
