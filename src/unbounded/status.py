"""How a run (or one RLM of it) ended, as a typed value that still reads as its familiar string.

``RunStatus`` is a ``str``: ``"final"``, ``"max_iterations"``, ``"budget:max_tokens"``,
``"error:context_length"``, ``"interrupted"``. Code that compared strings keeps working, and new
code asks the value instead of parsing it: ``status.kind is StatusKind.BUDGET``,
``status.detail == "max_tokens"``.
"""

from __future__ import annotations

from enum import StrEnum


class StatusKind(StrEnum):
    """The five ways a run ends."""

    FINAL = "final"
    MAX_ITERATIONS = "max_iterations"
    BUDGET = "budget"
    ERROR = "error"
    INTERRUPTED = "interrupted"


_WITH_DETAIL = (StatusKind.BUDGET, StatusKind.ERROR)


class RunStatus(str):
    """A run's status. Build one with the class methods; ``RunStatus.parse`` reads a string back."""

    kind: StatusKind
    detail: str | None

    def __new__(cls, kind: StatusKind, detail: str | None = None) -> RunStatus:
        if (kind in _WITH_DETAIL) != bool(detail):
            raise ValueError(f"status {kind.value!r} {'needs' if kind in _WITH_DETAIL else 'takes no'} detail")
        self = super().__new__(cls, f"{kind.value}:{detail}" if detail else kind.value)
        self.kind = kind
        self.detail = detail
        return self

    @classmethod
    def final(cls) -> RunStatus:
        return cls(StatusKind.FINAL)

    @classmethod
    def max_iterations(cls) -> RunStatus:
        return cls(StatusKind.MAX_ITERATIONS)

    @classmethod
    def budget(cls, limit: str) -> RunStatus:
        """A budget limit was reached (``limit`` names it: ``max_tokens``, ``max_seconds``…)."""
        return cls(StatusKind.BUDGET, limit)

    @classmethod
    def error(cls, kind: str) -> RunStatus:
        """A failure (``kind``: a model error's kind, ``repl``, or an exception's class name)."""
        return cls(StatusKind.ERROR, kind)

    @classmethod
    def interrupted(cls) -> RunStatus:
        return cls(StatusKind.INTERRUPTED)

    @classmethod
    def parse(cls, text: str) -> RunStatus:
        """The status a string names (as traces and JSON results store it)."""
        if isinstance(text, RunStatus):
            return text
        head, _, detail = str(text).partition(":")
        try:
            kind = StatusKind(head)
        except ValueError:
            raise ValueError(f"not a run status: {text!r}") from None
        return cls(kind, detail or None)

    @property
    def answered(self) -> bool:
        """The model gave an answer of its own (``final``) or a last guess (``max_iterations``)."""
        return self.kind in (StatusKind.FINAL, StatusKind.MAX_ITERATIONS)

    def __reduce__(self) -> tuple[object, ...]:
        return (RunStatus, (self.kind, self.detail))

    def __repr__(self) -> str:
        return f"RunStatus({str(self)!r})"
