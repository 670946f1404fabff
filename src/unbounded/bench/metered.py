"""Model wrappers the bench runner puts around the backend.

* ``BenchCache`` is the response cache with one change for benchmarks: a cache hit reports the
  usage of the call that was stored, so a resumed or repeated run records what the method *needs*
  (tokens, cost) rather than zero. It still says the answer came from the cache.
* ``ItemLM`` wraps the (cached) model for one item: it counts calls and cache hits, optionally writes
  every call (prompt and answer) as a line of JSONL, and refuses ``aclose`` so that the engine, which
  closes its models after each run, cannot close the shared model under the other items.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..models import Completion, Message, Usage, as_messages
from ..models.base import WrappedLM
from ..models.cache import CachedLM


class BenchCache(CachedLM):
    """``CachedLM`` whose hits carry the stored call's usage (``extra["cache_hit"]`` is True)."""

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        completion = await super().complete(messages, **opts)
        stored = completion.extra.get("cached_usage") if completion.cached else None
        if stored is None:
            return completion
        usage = Usage.from_dict(stored)
        usage.calls = 1
        extra = {**completion.extra, "cache_hit": True}
        return Completion(completion.text, usage, completion.model, completion.finish_reason, True, extra)


class ItemLM(WrappedLM):
    """One item's view of the shared model: counts, optional call log, no closing."""

    def __init__(self, inner: Any, log_path: str | Path | None = None, *, label: str = "") -> None:
        super().__init__(inner)
        self.log_path = Path(log_path) if log_path is not None else None
        self.label = label
        self.calls = 0
        self.cache_hits = 0
        self.errors = 0

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        msgs = as_messages(messages)
        started = time.perf_counter()
        self.calls += 1
        try:
            completion = await self.inner.complete(msgs, **opts)
        except Exception as exc:
            self.errors += 1
            self._log(msgs, opts, None, started, error=f"{type(exc).__name__}: {exc}")
            raise
        if completion.cached:
            self.cache_hits += 1
        self._log(msgs, opts, completion, started)
        return completion

    def _log(
        self,
        msgs: list[Message],
        opts: dict[str, Any],
        completion: Completion | None,
        started: float,
        *,
        error: str | None = None,
    ) -> None:
        if self.log_path is None:
            return
        record: dict[str, Any] = {
            "type": "lm_call",
            "index": self.calls,
            "label": self.label,
            "model": self.name,
            "options": {k: v for k, v in opts.items() if isinstance(v, str | int | float | bool | type(None))},
            "messages": [m.to_dict() for m in msgs],
            "seconds": round(time.perf_counter() - started, 4),
        }
        if completion is not None:
            record.update(
                answer=completion.text,
                usage=completion.usage.to_dict(),
                cached=completion.cached,
                finish_reason=completion.finish_reason,
            )
        if error is not None:
            record["error"] = error
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")

    async def aclose(self) -> None:
        """The shared model outlives the item; the runner closes it once at the end."""
        return None
