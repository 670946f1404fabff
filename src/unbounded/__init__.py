"""unbounded: Recursive Language Models.

An RLM answers a question about a context of any size: the context lives in a Python REPL as a
variable, and the model writes code to inspect it and call models on its pieces, recursively.

    from unbounded import RLM
    result = RLM().run("What is the magic number?", open("haystack.txt").read())
    print(result.answer)

Exports are loaded lazily so the REPL worker, which imports ``unbounded.repl``, stays light.
"""

from __future__ import annotations

from ._lazy import TYPE_CHECKING, lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "RLM": "unbounded.engine",
    "RLMResult": "unbounded.result",
    "Budget": "unbounded.budget",
    "Limits": "unbounded.repl.base",
    "ScriptedLM": "unbounded.models.scripted",
    "resolve_model": "unbounded.models.registry",
    "UnboundedError": "unbounded.errors",
    "BudgetExceeded": "unbounded.errors",
    "ContextError": "unbounded.errors",
    "ModelError": "unbounded.errors",
    "ConfigError": "unbounded.errors",
    "ContextLengthError": "unbounded.errors",
    "RateLimitError": "unbounded.errors",
    "RunStatus": "unbounded.status",
    "batch": "unbounded.batch",
    "StatusKind": "unbounded.status",
}

if TYPE_CHECKING:
    from . import batch
    from .budget import Budget
    from .engine import RLM
    from .errors import (
        BudgetExceeded,
        ConfigError,
        ContextError,
        ContextLengthError,
        ModelError,
        RateLimitError,
        UnboundedError,
    )
    from .models.registry import resolve_model
    from .models.scripted import ScriptedLM
    from .repl.base import Limits
    from .result import RLMResult
    from .status import RunStatus, StatusKind


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "RLM",
    "Budget",
    "BudgetExceeded",
    "ConfigError",
    "ContextError",
    "ContextLengthError",
    "Limits",
    "ModelError",
    "RLMResult",
    "RateLimitError",
    "RunStatus",
    "ScriptedLM",
    "StatusKind",
    "UnboundedError",
    "batch",
    "resolve_model",
]
