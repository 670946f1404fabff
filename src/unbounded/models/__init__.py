"""Model backends behind one small protocol: ``async complete(messages, **opts) -> Completion``, and
``astream`` (deltas of text, the last one carrying the ``Completion``) on every ``LMBase``."""

from .base import (
    LM,
    Abilities,
    Completion,
    Delta,
    LMBase,
    Message,
    Usage,
    WrappedLM,
    as_messages,
    full_lm,
    upper_bound_input_tokens,
)
from .registry import DEFAULT_MODEL, known_prefixes, register_backend, resolve_model
from .scripted import ScriptedLM, ScriptExhausted

__all__ = [
    "DEFAULT_MODEL",
    "LM",
    "Abilities",
    "Completion",
    "Delta",
    "LMBase",
    "Message",
    "ScriptExhausted",
    "ScriptedLM",
    "Usage",
    "WrappedLM",
    "as_messages",
    "full_lm",
    "known_prefixes",
    "register_backend",
    "resolve_model",
    "upper_bound_input_tokens",
]
