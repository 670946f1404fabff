"""An optional on-disk response cache: ``CachedLM(inner)`` answers repeated calls from SQLite.

Off by default; turn it on by wrapping a backend (``CachedLM(resolve_model("openai/gpt-5-mini"))``)
or with the factories' ``cache=True`` (or ``cache="/path/to/file.sqlite"``) option.

* The key is a SHA-256 of the model name, the messages and the parameters that change the
  answer (``temperature``, ``max_tokens``, ``stop``, ``seed``, and ``schema`` when one is given). A
  cached answer to a sampled call (temperature > 0) is the same sample every time: that is the
  point of a cache.
* Streams (``astream``): a hit is served as one delta; a miss streams from the model as usual and
  is stored when its last delta (the completion) arrives. A stream closed before its end stores
  nothing.
* A hit returns ``Completion(cached=True)`` with ``usage.calls == 1`` and no tokens or cost
  (nothing was spent); the original counts are kept in ``extra["cached_usage"]``.
* Only successful, non-empty completions are stored; errors propagate and are not cached.
* Safe under concurrent asyncio use: SQLite runs in worker threads behind a lock, in WAL mode
  (so several processes can share one file), and identical calls in flight at the same time
  share a single request to the model.
* Default file: ``$UNBOUNDED_CACHE_DIR/responses.sqlite``, else
  ``platformdirs.user_cache_dir("unbounded")/responses.sqlite``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from .base import Completion, Delta, LMBase, Message, Usage, WrappedLM, as_messages, changes_complete_only
from .schema import check_schema

log = logging.getLogger("unbounded.models")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT,
    usage TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    """Where the cache lives unless a path is given."""
    env = os.environ.get("UNBOUNDED_CACHE_DIR", "").strip()
    if env:
        return Path(env).expanduser() / "responses.sqlite"
    import platformdirs

    return Path(platformdirs.user_cache_dir("unbounded")) / "responses.sqlite"


def cache_key(model: str, messages: Sequence[Message], opts: dict[str, Any]) -> str:
    """SHA-256 over the model, the messages and the answer-changing parameters."""
    stop = opts.get("stop")
    params: dict[str, Any] = {
        "temperature": opts.get("temperature"),
        "max_tokens": opts.get("max_tokens"),
        "stop": [stop] if isinstance(stop, str) else (list(stop) if stop else None),
        "seed": opts.get("seed"),
    }
    if opts.get("schema") is not None:  # only when given, so keys stored before schemas existed still hit
        params["schema"] = check_schema(opts["schema"])
    payload = {
        "model": model,
        "messages": [[m.role, m.content] for m in messages],
        "params": params,
    }
    data = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


class ResponseStore:
    """The SQLite file: one connection, used from worker threads under a lock."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
            self._conn.commit()

    def get(self, key: str) -> tuple[str, str, str | None, dict[str, Any]] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT model, text, finish_reason, usage FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return row[0], row[1], row[2], json.loads(row[3])

    def put(self, key: str, completion: Completion) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, model, text, finish_reason, usage, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    completion.model,
                    completion.text,
                    completion.finish_reason,
                    json.dumps(completion.usage.to_dict()),
                    time.time(),
                ),
            )
            self._conn.commit()

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def clear(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM responses")
            self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CachedLM(WrappedLM):
    """Wrap any LM so that identical calls are answered from disk.

    Every attribute and ability is the wrapped model's (``WrappedLM``); slot twins share the store.
    """

    def __init__(self, inner: LMBase, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(inner)
        self.store = ResponseStore(path)
        self._in_flight: dict[str, asyncio.Future[Completion]] = {}
        self.hits = 0
        self.misses = 0

    # -- calls ----------------------------------------------------------------------------------------
    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        msgs = as_messages(messages)
        key = cache_key(self.name, msgs, opts)
        answer = await self._answer_for(key)
        if answer is not None:
            return answer
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            completion = await self.inner.complete(msgs, **opts)
            await self._finished(key, completion)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            _fail(future, exc)
            raise
        else:
            future.set_result(completion)
            return completion
        finally:
            self._in_flight.pop(key, None)

    async def astream(self, messages: Sequence[Message], **opts: Any) -> AsyncIterator[Delta]:
        if changes_complete_only(self, CachedLM):
            completion = await self.complete(messages, **opts)
            yield Delta(completion.text, completion)
            return
        msgs = as_messages(messages)
        key = cache_key(self.name, msgs, opts)
        answer = await self._answer_for(key)
        if answer is not None:
            yield Delta(answer.text, answer)
            return
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            async with contextlib.aclosing(self.inner.astream(msgs, **opts)) as stream:
                async for delta in stream:
                    if delta.completion is not None:
                        await self._finished(key, delta.completion)
                        future.set_result(delta.completion)
                    yield delta
        except (asyncio.CancelledError, GeneratorExit):
            if not future.done():
                future.cancel()
            raise
        except BaseException as exc:
            if not future.done():
                _fail(future, exc)
            raise
        finally:
            self._in_flight.pop(key, None)
            if not future.done():  # the stream ended without its completion: nothing to share
                future.cancel()

    async def _answer_for(self, key: str) -> Completion | None:
        """The stored answer (a hit), or the answer of the same call in flight; None: make the call.

        A call in flight is waited for and its stored answer read; if it failed, its error is ours
        too; if it was cancelled or stored nothing, the caller makes the call itself.
        """
        while True:
            row = await asyncio.to_thread(self.store.get, key)
            if row is not None:
                self.hits += 1
                return _hit(row)
            pending = self._in_flight.get(key)
            if pending is None:
                return None
            try:
                await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise
            if not pending.cancelled() and not pending.result().text.strip():
                return pending.result()  # an empty answer is not stored; share it as is

    async def _finished(self, key: str, completion: Completion) -> None:
        self.misses += 1
        if completion.text.strip() and not completion.cached:
            await self._store(key, completion)

    async def _store(self, key: str, completion: Completion) -> None:
        try:
            await asyncio.to_thread(self.store.put, key, completion)
        except sqlite3.Error as exc:  # a full disk must not turn a good answer into an error
            log.warning("response cache %s: could not store an answer: %s", self.store.path, exc)

    def close(self) -> None:
        """Close the SQLite store (the wrapper is not usable afterwards)."""
        self.store.close()

    def rewrap(self, inner: LMBase) -> CachedLM:
        """A slot twin: the same store, its own in-flight table."""
        twin = copy.copy(self)
        twin.inner = inner
        twin._in_flight = {}
        return twin


def maybe_cached(lm: LMBase, cache: bool | str | os.PathLike[str] | None) -> LMBase:
    """``lm`` behind a response cache when ``cache`` is True (default file) or a path; else ``lm``."""
    if not cache:
        return lm
    return CachedLM(lm, path=None if cache is True else cache)


def _fail(future: asyncio.Future[Completion], exc: BaseException) -> None:
    future.set_exception(exc)
    future.exception()  # mark retrieved: waiters re-raise it, nobody else has to


def _hit(row: tuple[str, str, str | None, dict[str, Any]]) -> Completion:
    model, text, finish_reason, usage = row
    return Completion(
        text=text,
        usage=Usage(calls=1, cost_usd=0.0),
        model=model,
        finish_reason=finish_reason,
        cached=True,
        extra={"cached_usage": usage},
    )
