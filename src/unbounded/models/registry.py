"""Resolve model spec strings (``local/...``, ``openai/...``) to backend instances."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ..errors import UnknownModelError
from .base import LM

Factory = Callable[[str, dict[str, Any]], LM]

# prefix -> "module:function" (imported lazily so optional SDKs stay optional) or a callable.
_BACKENDS: dict[str, str | Factory] = {
    "local": "unbounded.models.local:create",
    "scripted": "unbounded.models.scripted:create",
    "openai": "unbounded.models.openai_backend:create_openai",
    "openai-compatible": "unbounded.models.openai_backend:create_compatible",
    "ollama": "unbounded.models.openai_backend:create_ollama",
    "vllm": "unbounded.models.openai_backend:create_vllm",
    "llamacpp": "unbounded.models.openai_backend:create_llamacpp",
    "lmstudio": "unbounded.models.openai_backend:create_lmstudio",
    "openrouter": "unbounded.models.openai_backend:create_openrouter",
    "together": "unbounded.models.openai_backend:create_together",
    "anthropic": "unbounded.models.anthropic_backend:create",
    "gemini": "unbounded.models.gemini_backend:create",
    "litellm": "unbounded.models.litellm_backend:create",
}

DEFAULT_MODEL = "local/qwen2.5-coder-1.5b"


def register_backend(prefix: str, factory: Factory | str) -> None:
    """Register a backend factory ``factory(rest_of_spec, options) -> LM`` for ``prefix/...``."""
    _BACKENDS[prefix] = factory


def known_prefixes() -> list[str]:
    return sorted(_BACKENDS)


def _load_factory(prefix: str) -> Factory:
    target = _BACKENDS[prefix]
    if callable(target):
        return target
    module_name, _, func = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("unbounded"):
            raise UnknownModelError(f"backend {prefix!r} is not available in this build of unbounded") from exc
        raise
    return getattr(module, func)


def resolve_model(spec: str | LM, **options: Any) -> LM:
    """Turn a spec string (or an LM instance, returned as is) into an LM.

    ``openai-compatible`` takes ``base_url`` in options or in the spec as
    ``openai-compatible/<model>@<base_url>``.
    """
    if not isinstance(spec, str):
        if isinstance(spec, LM):
            return spec
        raise UnknownModelError(f"model must be a spec string or an LM instance, got {type(spec).__name__}")
    spec = spec.strip()
    prefix, sep, rest = spec.partition("/")
    if not sep or prefix not in _BACKENDS or not rest:
        raise UnknownModelError(
            f"unknown model {spec!r}: expected '<backend>/<model>' with backend one of "
            f"{', '.join(known_prefixes())} (e.g. {DEFAULT_MODEL!r}, 'openai/gpt-5-mini')"
        )
    return _load_factory(prefix)(rest, dict(options))
