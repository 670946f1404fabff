"""Model backends behind one small protocol: ``async complete(messages, **opts) -> Completion``."""

from .base import LM, Completion, LMBase, Message, Usage, as_messages, upper_bound_input_tokens
from .registry import DEFAULT_MODEL, known_prefixes, register_backend, resolve_model
from .scripted import ScriptedLM, ScriptExhausted

__all__ = [
    "DEFAULT_MODEL",
    "LM",
    "Completion",
    "LMBase",
    "Message",
    "ScriptExhausted",
    "ScriptedLM",
    "Usage",
    "as_messages",
    "known_prefixes",
    "register_backend",
    "resolve_model",
    "upper_bound_input_tokens",
]
