"""Where runs write their traces, and who may read them back (the key that ran them).

Trace ids are random and name files in one folder; a request never gives a path. In a folder the
server made for itself (no ``--trace-dir``), only the newest ``max_traces`` are kept and the folder
is removed when the server stops.

Runs write through ``TraceWriter`` (the RLM's ``on_event`` listener) rather than the engine's own
trace file: the same JSON lines, flushed at each run's end, but never ``fsync``-ed. The engine's
tracer syncs its file when a run ends, on the event loop, which on a server stalls every other
request for milliseconds per run; a server's traces are for reading back, not for surviving a
power cut.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ..trace import Event
from .errors import NotFound

#: With a caller's --trace-dir every file is kept, and this many times max_traces stay readable.
INDEX_PER_TRACE = 100
_ID = re.compile(r"^[a-z]+_[0-9a-f]{8,32}$")


@dataclass
class TraceEntry:
    id: str
    owner: str
    path: Path
    keep: bool = False  # a registered context's trace lives as long as the context


class TraceStore:
    def __init__(self, folder: Path | None, max_traces: int) -> None:
        self.own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="unbounded-serve-")) if folder is None else Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_traces = max_traces
        self._entries: OrderedDict[str, TraceEntry] = OrderedDict()

    @staticmethod
    def new_id(kind: str) -> str:
        return f"{kind}_{os.urandom(12).hex()}"

    def add(self, trace_id: str, owner: str, *, keep: bool = False) -> Path:
        if not _ID.match(trace_id):
            raise ValueError(f"not a trace id: {trace_id!r}")
        path = self.folder / f"{trace_id}.jsonl"
        self._entries[trace_id] = TraceEntry(trace_id, owner, path, keep)
        self._trim()
        return path

    def release(self, trace_id: str) -> None:
        """A registered context was deleted: its trace becomes an ordinary one (trimmed in turn)."""
        entry = self._entries.get(trace_id)
        if entry is not None:
            entry.keep = False
            self._trim()

    def get(self, trace_id: str, owner: str) -> TraceEntry:
        entry = self._entries.get(trace_id)
        if entry is None or entry.owner != owner or not entry.path.exists():
            raise NotFound(f"no trace {trace_id!r} for this key", code="trace_not_found")
        return entry

    def owned(self, owner: str) -> list[TraceEntry]:
        return [e for e in self._entries.values() if e.owner == owner and e.path.exists()]

    def _trim(self) -> None:
        if not self.own_folder:  # the files are the caller's to keep; only the index is bounded
            while len(self._entries) > INDEX_PER_TRACE * self.max_traces:
                self._entries.popitem(last=False)
            return
        removable = [e for e in self._entries.values() if not e.keep]
        for entry in removable[: max(0, len(removable) - self.max_traces)]:
            self._entries.pop(entry.id, None)
            try:
                entry.path.unlink()
            except OSError:
                pass

    def close(self) -> None:
        if self.own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)


class TraceWriter:
    """Appends a run's events (not token deltas) to its trace file as JSON lines; thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = None
        self._lock = threading.Lock()
        self._closed = False

    def __call__(self, event: Event) -> None:
        if event.type == "token":
            return
        line = event.to_json() + "\n"
        with self._lock:
            if self._closed:
                return
            if self._fh is None:
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            self._fh.write(line)
            if event.type in ("run_end", "rlm_end", "cell"):
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fh is not None:
                self._fh.close()
                self._fh = None
