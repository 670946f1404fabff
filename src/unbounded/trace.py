"""Typed trace events, appended to JSONL as they happen.

Every event has an ``id``, the ``parent`` it hangs under (a tree: run → rlm → lm call / cell →
sub-call → child rlm …) and a wall-clock ``ts``. The file is written line by line and flushed, so
a crashed run still leaves its story. ``read_trace`` and ``render_tree`` rebuild the tree.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: 2: ids carry a per-run prefix; ``rlm_start`` has the starting ``prompt`` and ``style``;
#: ``lm_request.last_message`` is whole; ``cell`` has ``shown`` (what the model saw) and ``cut``.
SCHEMA_VERSION = 2

_SECRET_KEY = re.compile(r"(api_?key|secret|password|authorization|credential|(^|_)token$)", re.IGNORECASE)


@dataclass(slots=True)
class Event:
    """One trace record. ``type`` names the kind; ``data`` holds kind-specific fields."""

    type: str
    id: str
    parent: str | None
    ts: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "parent": self.parent, "ts": self.ts, "data": self.data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, default=_json_default)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return repr(obj)


def redact(config: dict[str, Any]) -> dict[str, Any]:
    """Drop values whose key looks like a secret."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if _SECRET_KEY.search(k):
            out[k] = "***"
        elif isinstance(v, dict):
            out[k] = redact(v)
        else:
            out[k] = v
    return out


Listener = Callable[[Event], None]


class Tracer:
    """Creates ids, writes events to an optional JSONL file and fans them out to listeners.

    Thread-safe: the in-process REPL may emit from worker threads.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, listeners: list[Listener] | None = None):
        self.path = Path(path) if path else None
        self._fh = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._listeners: list[Listener] = list(listeners or [])
        #: Listeners for the current run only (a session's tracer outlives its questions' streams).
        self.extra_listeners: list[Listener] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        #: Starts every id this tracer makes, so runs appended to one file never share an id.
        self.prefix = os.urandom(4).hex()

    def new_id(self, kind: str) -> str:
        return f"{self.prefix}-{kind}-{next(self._counter)}"

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, type: str, *, id: str | None = None, parent: str | None = None, **data: Any) -> Event:
        event = Event(type=type, id=id or self.new_id(type), parent=parent, ts=time.time(), data=data)
        if self._fh is not None:
            line = event.to_json()
            with self._lock:
                if not self._fh.closed:
                    self._fh.write(line + "\n")
        self.notify(event)
        return event

    def notify(self, event: Event) -> None:
        """Hand an event to the listeners only (tokens: too many, and too small, to write to the file)."""
        for listener in (*self._listeners, *self.extra_listeners):
            try:
                listener(event)
            except Exception:  # a broken progress display must never break a run
                pass

    def close(self) -> None:
        with self._lock:
            if self._fh is not None and not self._fh.closed:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()


def read_trace(path: str | os.PathLike[str]) -> list[Event]:
    """Load a trace; a truncated last line (crash mid-write) is skipped."""
    events: list[Event] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue
            events.append(Event(d["type"], d["id"], d.get("parent"), d.get("ts", 0.0), d.get("data", {})))
    return events


@dataclass
class TraceNode:
    event: Event
    children: list[TraceNode] = field(default_factory=list)
    end: Event | None = None

    def walk(self) -> Iterator[TraceNode]:
        yield self
        for c in self.children:
            yield from c.walk()


_END_OF = {
    "run_end": "run_start",
    "rlm_end": "rlm_start",
    "subcall_end": "subcall_start",
    "lm_response": "lm_request",
}


def build_tree(events: list[Event]) -> list[TraceNode]:
    """Turn events into a forest. End events attach to their start (same id)."""
    nodes: dict[str, TraceNode] = {}
    roots: list[TraceNode] = []
    for ev in events:
        if ev.type in _END_OF and ev.id in nodes:
            nodes[ev.id].end = ev
            continue
        node = TraceNode(ev)
        nodes[ev.id] = node
        parent = nodes.get(ev.parent) if ev.parent else None
        if parent is None:
            roots.append(node)
        else:
            parent.children.append(node)
    return roots
