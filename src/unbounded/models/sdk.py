"""What every remote backend needs of its SDK: an optional import, and one client per event loop."""

from __future__ import annotations

import asyncio
import importlib
import ssl
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..errors import MissingExtraError


def require_sdk(module: str, extra: str, provider: str) -> Any:
    """Import an optional SDK, or raise ConfigError naming the pip extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{provider} models need the {module.split('.')[0]!r} package: pip install 'unbounded[{extra}]'"
        ) from exc


C = TypeVar("C")


class PerLoop(Generic[C]):
    """One SDK client per running event loop.

    An HTTP client's pooled connections belong to the loop that opened them; reusing the client
    from a later ``asyncio.run`` (as a sync facade does on every call) fails with "Event loop is
    closed". Keeping one client per loop avoids that without making callers manage clients.
    """

    def __init__(self, make: Callable[[], C]) -> None:
        self._make = make
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, C] = weakref.WeakKeyDictionary()

    def get(self) -> C:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._make()
            self._clients[loop] = client
        return client

    def pop_current(self) -> C | None:
        """Forget and return the current loop's client (for closing), if any."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return self._clients.pop(loop, None)


_SSL_CONTEXT: ssl.SSLContext | None = None
_SSL_LOCK = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext | None:
    """One verifying TLS context for every SDK client of the process (None: let the SDK make its own).

    Each event loop gets its own client (``PerLoop``), and a client built without one reads the CA
    bundle again: ~30 ms, which the sync facade would pay on every run. A context is safe to share.
    Built the way the SDKs' HTTP library builds its default (certifi's bundle, ``SSL_CERT_FILE``).
    """
    global _SSL_CONTEXT
    with _SSL_LOCK:
        if _SSL_CONTEXT is None:
            for name in ("httpx2", "httpx"):  # what the openai/anthropic SDKs sit on, newest first
                try:
                    _SSL_CONTEXT = importlib.import_module(name).create_ssl_context()
                    break
                except (ImportError, AttributeError):
                    continue
        return _SSL_CONTEXT


def http_client(sdk: Any) -> Any:
    """The SDK's own default async HTTP client class, on the shared TLS context (None: SDK default)."""
    context = shared_ssl_context()
    return None if context is None else sdk.DefaultAsyncHttpxClient(verify=context)
