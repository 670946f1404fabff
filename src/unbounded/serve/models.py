"""The server's models: resolved once, shared by every run, closed when the server stops.

A run closes its models' per-loop clients when it ends (``ModelSet.aclose``); on a server many runs
share one model on one event loop, so that would pull the client from under the others. Each model is
therefore held behind ``Shared``, whose ``aclose`` does nothing, and the pool closes them at shutdown.
Model ids: ``rlm`` is the default root model, ``rlm/<spec>`` names an allowed one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..models.base import LM, LMBase, WrappedLM, full_lm
from ..models.registry import resolve_model
from .errors import NotFound

PREFIX = "rlm"


class Shared(WrappedLM):
    """A model many runs use at once: closing it is the pool's job, not a run's."""

    async def aclose(self) -> None:
        return None

    async def release(self) -> None:
        await self.inner.aclose()


def spec_name(spec: str | LM) -> str:
    return spec if isinstance(spec, str) else spec.name


class ModelPool:
    """``get(model_id)`` → the shared root model for ``rlm`` or ``rlm/<spec>``; ``NotFound`` otherwise."""

    def __init__(self, default: str | LM, allowed: Sequence[str | LM] = (), sub_model: str | LM | None = None) -> None:
        self.default = spec_name(default)
        self._given: dict[str, str | LM] = {self.default: default}
        for spec in allowed:
            self._given.setdefault(spec_name(spec), spec)
        self._sub_spec = sub_model
        self._resolved: dict[str, Shared] = {}
        self._sub: Shared | None = None

    @property
    def specs(self) -> list[str]:
        return list(self._given)

    def ids(self) -> list[str]:
        return [PREFIX, *(f"{PREFIX}/{s}" for s in self._given)]

    def spec_for(self, model_id: Any) -> str:
        """The root spec a request's ``model`` names (``NotFound`` for one this server does not serve)."""
        if not isinstance(model_id, str) or not model_id.strip():
            raise NotFound("model must be 'rlm' or 'rlm/<spec>' (GET /v1/models lists them)", param="model",
                           code="model_not_found")  # fmt: skip
        model_id = model_id.strip()
        if model_id == PREFIX:
            return self.default
        head, sep, spec = model_id.partition("/")
        if head == PREFIX and sep and spec in self._given:
            return spec
        raise NotFound(
            f"the model {model_id!r} is not served here: use 'rlm' (the default, {self.default}) or one of "
            f"{', '.join(self.ids()[1:])}",
            param="model",
            code="model_not_found",
        )

    def root(self, spec: str) -> Shared:
        lm = self._resolved.get(spec)
        if lm is None:
            lm = self._resolved[spec] = Shared(_as_base(resolve_model(self._given[spec])))
        return lm

    def sub(self) -> Shared | None:
        """The server's ``--sub-model`` (None: each root model answers its own sub-calls)."""
        if self._sub_spec is None:
            return None
        if self._sub is None:
            self._sub = Shared(_as_base(resolve_model(self._sub_spec)))
        return self._sub

    async def aclose(self) -> None:
        for lm in [*self._resolved.values(), *([self._sub] if self._sub else [])]:
            try:
                await lm.release()
            except Exception:
                pass


def _as_base(lm: LM) -> LMBase:
    return full_lm(lm)
