"""What users import: every public name exists and is the object it says it is (as httpx's test does)."""

from __future__ import annotations

import importlib

import pytest

import unbounded

PUBLIC = {
    "unbounded": [
        "RLM",
        "RLMResult",
        "Budget",
        "Limits",
        "RunStatus",
        "StatusKind",
        "ScriptedLM",
        "resolve_model",
        "UnboundedError",
        "BudgetExceeded",
        "ConfigError",
        "ContextError",
        "ModelError",
        "ContextLengthError",
        "RateLimitError",
        "batch",
    ],
    "unbounded.models": [
        "LM",
        "LMBase",
        "WrappedLM",
        "Abilities",
        "Completion",
        "Message",
        "Usage",
        "ScriptedLM",
        "resolve_model",
        "register_backend",
        "DEFAULT_MODEL",
    ],
    "unbounded.errors": [
        "UnboundedError",
        "ConfigError",
        "UnknownModelError",
        "UnknownPriceError",
        "MissingAPIKeyError",
        "MissingExtraError",
        "ContextError",
        "EmptyContextError",
        "ModelError",
        "ContextLengthError",
        "RateLimitError",
        "QuotaError",
        "ModelTimeoutError",
        "ModelConnectionError",
        "ServerError",
        "BadRequestError",
        "AuthenticationError",
        "ModelNotFoundError",
        "MalformedResponseError",
        "EmptyResponseError",
        "ModelLoadError",
        "BudgetExceeded",
        "REPLError",
        "WorkerProtocolError",
        "VariableError",
    ],
    "unbounded.repl": ["REPL", "CellResult", "Limits", "ToolSpec", "VariableError", "make_repl", "repl_factory"],
    "unbounded.styles": ["PromptStyle", "FullStyle", "CompactStyle", "register_style", "resolve_style"],
}


@pytest.mark.parametrize("module,names", PUBLIC.items())
def test_public_names_exist(module: str, names: list[str]) -> None:
    mod = importlib.import_module(module)
    for name in names:
        assert getattr(mod, name) is not None, f"{module}.{name}"


def test_the_package_all_is_exactly_what_it_exports() -> None:
    assert sorted(unbounded.__all__) == sorted(PUBLIC["unbounded"])
    for name in unbounded.__all__:
        value = getattr(unbounded, name)
        assert getattr(value, "__module__", None) or value.__name__.startswith("unbounded")


def test_every_error_is_an_unbounded_error() -> None:
    import unbounded.errors as errors

    for name in PUBLIC["unbounded.errors"]:
        assert issubclass(getattr(errors, name), errors.UnboundedError), name
    from unbounded.models.retry import AttemptError
    from unbounded.repl.protocol import FrameError

    assert issubclass(FrameError, errors.WorkerProtocolError)
    assert issubclass(AttemptError, errors.UnboundedError)
