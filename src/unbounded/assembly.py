"""The models of one RLM, put together once: root, sub-model, named extras and per-depth slots.

Used by ``RLM`` and by the bench runner, so both build models the same way: spec strings resolved,
any ``LM`` seen through ``LMBase`` (declared abilities, no probing), the sub-model on its own slot
where the backend has slots (sub-calls never evict the root's KV cache), each model optionally
behind a wrapper (the response cache, the bench's meter).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UnknownModelError, UnknownPriceError
from .models.base import LM, LMBase, full_lm
from .models.registry import resolve_model

Wrapper = Callable[[LMBase], LMBase]


@dataclass
class ModelSet:
    """The models an RLM uses. ``for_depth(d)`` is the model that drives an RLM at depth ``d``."""

    root: LMBase
    sub: LMBase
    named: dict[str, LMBase] = field(default_factory=dict)
    _by_depth: dict[int, LMBase] = field(default_factory=dict)
    _users: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def for_depth(self, depth: int) -> LMBase:
        """Depth 0 is the root; deeper RLMs get their own slot (``depth1``…) where the model has slots,
        so a child's turns never evict the context its parent's next turn reuses."""
        if depth == 0:
            return self.root
        lm = self._by_depth.get(depth)
        if lm is None:
            lm = self._by_depth[depth] = self.root.with_slot(f"depth{depth}")
        return lm

    def pick(self, model: str | None) -> LMBase:
        """The model a sub-call names: None for the sub-model, an alias, or a configured model's name."""
        if model is None:
            return self.sub
        if model in self.named:
            return self.named[model]
        for lm in (self.sub, self.root, *self.named.values()):
            if lm.name == model:
                return lm
        known = sorted({self.sub.name, self.root.name, *self.named})
        raise UnknownModelError(f"llm_query: unknown model {model!r}; configured models: {', '.join(known)}")

    def distinct(self) -> list[LMBase]:
        """Every model once (the root and sub-model may be one object)."""
        seen: dict[int, LMBase] = {}
        for lm in (self.root, self.sub, *self.named.values(), *self._by_depth.values()):
            seen.setdefault(id(lm), lm)
        return list(seen.values())

    def check_prices(self) -> None:
        """Refuse a cost limit that cannot be enforced: every model must declare its price."""
        for lm in self.distinct():
            if lm.price() is None:
                raise UnknownPriceError(
                    f"max_cost_usd is set but the price of {lm.name!r} is unknown, so the limit cannot be "
                    "enforced; give the model's price (price=(input, output, cached) per million tokens) "
                    "or drop the cost limit"
                )

    def acquire(self) -> None:
        """A run (or a session) starts using the models on the running loop."""
        loop = asyncio.get_running_loop()
        self._users[loop] = self._users.get(loop, 0) + 1

    async def release(self) -> None:
        """A run ends; the last one on its loop releases the per-loop clients (``aclose``). Runs that
        overlap on one loop share the clients: closing them under a run still using them would fail it."""
        loop = asyncio.get_running_loop()
        left = self._users.get(loop, 1) - 1
        if left > 0:
            self._users[loop] = left
            return
        self._users.pop(loop, None)
        await self.aclose()

    async def aclose(self) -> None:
        """Release per-event-loop clients; the models stay usable for another run."""
        for lm in self.distinct():
            try:
                await lm.aclose()
            except Exception:  # closing must never turn a finished run into a failure
                pass


def build_models(
    model: str | LM,
    sub_model: str | LM | None = None,
    models: Mapping[str, str | LM] | None = None,
    *,
    cache: bool | str | Path | None = False,
    wrap: Wrapper | None = None,
) -> ModelSet:
    """Resolve specs and instances into a ``ModelSet``.

    ``cache`` puts every model behind the on-disk response cache (a path picks the file); ``wrap``
    (instead) wraps each with a caller's own layer. Without ``sub_model`` the root answers sub-calls,
    on its ``sub`` slot where it has slots.
    """
    if wrap is not None:
        layer: Wrapper = wrap
    elif cache:
        from .models.cache import maybe_cached  # sqlite3 only when a cache is asked for

        def layer(lm: LMBase) -> LMBase:
            return maybe_cached(lm, cache)
    else:
        def layer(lm: LMBase) -> LMBase:
            return lm
    root_raw = full_lm(resolve_model(model))
    sub_raw = root_raw.fork_for_subcalls() if sub_model is None else full_lm(resolve_model(sub_model))
    root = layer(root_raw)
    sub = root if sub_raw is root_raw else layer(sub_raw)
    named = {alias: layer(full_lm(resolve_model(spec))) for alias, spec in (models or {}).items()}
    return ModelSet(root, sub, named)
