"""The traces a viewer may open, by number, and the bench folder that lists them.

URLs name traces by their number in the library, never by path, so the viewer reads only the
files it was given: one trace, or the traces a bench folder's results point to (resolved inside
that folder). Indexes are built on first use and kept.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import TraceFileError, UnknownNodeError
from .index import TraceIndex

#: How deep a folder without ``results.jsonl`` is searched for trace files.
MAX_DEPTH = 3
MAX_TRACES = 5000


@dataclass(slots=True)
class TraceEntry:
    path: Path
    name: str
    index: TraceIndex | None = None


class TraceLibrary:
    """Trace files by number; each indexed the first time it is asked for."""

    def __init__(self) -> None:
        self._entries: list[TraceEntry] = []
        self._by_path: dict[Path, int] = {}
        self._lock = threading.Lock()

    def add(self, path: Path, name: str | None = None) -> int:
        """The number of ``path`` in the library (added once, however many results point to it)."""
        with self._lock:
            if path not in self._by_path:
                self._by_path[path] = len(self._entries)
                self._entries.append(TraceEntry(path, name or path.name))
            return self._by_path[path]

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, tid: int) -> TraceEntry:
        if not 0 <= tid < len(self._entries):
            raise UnknownNodeError(f"no trace number {tid}")
        return self._entries[tid]

    def index(self, tid: int) -> TraceIndex:
        entry = self.entry(tid)
        with self._lock:
            if entry.index is None:
                entry.index = TraceIndex(entry.path)
            return entry.index

    def listing(self) -> list[dict[str, Any]]:
        return [{"tid": i, "name": e.name} for i, e in enumerate(self._entries)]


@dataclass(slots=True)
class BenchFolder:
    """``unbounded bench run``'s output folder: one row per result, with its trace's number.

    A folder without ``results.jsonl`` lists the ``*.jsonl`` trace files under it instead.
    """

    root: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    has_results: bool = False

    @classmethod
    def load(cls, root: Path, library: TraceLibrary) -> BenchFolder:
        from ..bench.results import RESULTS_FILE, latest, read_results, size_label

        root = root.resolve()
        if not root.is_dir():
            raise TraceFileError(f"{root}: not a folder")
        if not os.access(root, os.R_OK | os.X_OK):
            raise TraceFileError(f"{root}: cannot read the folder")
        folder = cls(root)
        results = root / RESULTS_FILE
        if results.is_file():
            folder.has_results = True
            try:
                records = latest(read_results(results))
            except OSError as exc:
                raise TraceFileError(f"{results}: cannot read ({exc.strerror})") from exc
            for rec in sorted(records, key=lambda r: (r.task, r.size_tokens, r.item_id, r.method, r.model)):
                row = rec.to_dict()
                row["size_label"] = size_label(rec.size_tokens)
                row["tid"] = None
                trace = _inside(root, rec.trace)
                if trace is not None:
                    row["tid"] = library.add(trace, rec.trace)
                folder.rows.append(row)
            return folder
        for path in _trace_files(root):
            rel = str(path.relative_to(root))
            folder.rows.append({"name": rel, "bytes": path.stat().st_size, "tid": library.add(path, rel)})
        return folder

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root.name, "results": self.has_results, "rows": self.rows}


def _inside(root: Path, relative: str | None) -> Path | None:
    """``root / relative`` when it is a file inside ``root`` (no ``..`` or links out of it)."""
    if not relative:
        return None
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _trace_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        if depth >= MAX_DEPTH:
            dirnames.clear()
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".jsonl"):
                path = (Path(dirpath) / name).resolve()
                if path.is_relative_to(root) and path.is_file():
                    found.append(path)
                    if len(found) >= MAX_TRACES:
                        return found
    return found
