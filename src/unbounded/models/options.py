"""Options every remote factory shares: the API key, concurrency, and a check for typos."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError, MissingAPIKeyError
from .retry import POLICY_OPTIONS

#: Options every remote backend accepts, besides its own.
BACKEND_OPTIONS = (
    *POLICY_OPTIONS,
    "api_key",
    "base_url",
    "max_concurrency",
    "context_window",
    "default_max_tokens",
    "price",
)


def api_key_from(options: dict[str, Any], env_vars: Sequence[str], provider: str) -> str:
    """The ``api_key`` option, else the first set environment variable; else MissingAPIKeyError.

    Called in factories, so a missing key is reported before any work starts.
    """
    key = options.pop("api_key", None)
    if key:
        return str(key)
    for var in env_vars:
        value = os.environ.get(var, "").strip()
        if value:
            return value
    names = " or ".join(env_vars)
    raise MissingAPIKeyError(
        f"{provider} needs an API key: set {names} in the environment "
        f"(e.g. export {env_vars[0]}=...) or pass api_key=... when creating the model."
    )


def pop_max_concurrency(options: dict[str, Any], default: int = 32) -> int:
    value = int(options.pop("max_concurrency", default))
    if value < 1:
        raise ConfigError(f"max_concurrency must be at least 1, got {value}")
    return value


def reject_unknown(options: Mapping[str, Any], provider: str, accepted: Sequence[str]) -> None:
    """Fail fast on options nobody consumed (usually a typo), listing the accepted ones."""
    if options:
        raise ConfigError(
            f"unknown option(s) for {provider} models: {', '.join(sorted(options))}; "
            f"accepted: {', '.join(sorted(set(accepted)))}"
        )
