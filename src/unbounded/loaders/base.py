"""What every loader shares: the source it reads, what one load produced, and the errors a caller handles.

A loader turns one :class:`Source` (a file on disk, or bytes: an archive member, decompressed data,
standard input) into a :class:`LoadResult`: the REPL value plus one :class:`DocumentInfo` per
document. Loaders raise ``ContextError`` with a reason that names no path (the caller knows it): a
single file's reason becomes the error, a folder's goes into the skip list and the rest still loads.
"""

from __future__ import annotations

import io
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import ContextError
from .options import LoadOptions, format_bytes


class MissingExtraError(ContextError):
    """A format needs an optional dependency that is not installed; the message names the pip extra."""

    def __init__(self, package: str, extra: str, what: str) -> None:
        super().__init__(f"{what} need {package}: pip install 'unbounded[{extra}]'")
        self.package = package
        self.extra = extra


class InputTooLargeError(ContextError):
    """A cap was reached (file size, decompressed size, rows, total size); the message names the option."""


class TotalCapError(InputTooLargeError):
    """The load as a whole passed ``max_total_bytes``: nothing more is read."""


@dataclass(slots=True)
class SkippedFile:
    """A file left out of the context, with why (unreadable, too big, unsupported, a missing extra)."""

    path: str
    reason: str

    @property
    def category(self) -> str:
        """The reason's gist, for counts: ``binary file``, ``encrypted PDF``, ``too big``…"""
        cut = min((i for i in (self.reason.find(c) for c in ":(;") if i > 0), default=len(self.reason))
        return self.reason[:cut].strip() or self.reason


@dataclass(slots=True)
class TableInfo:
    """One table of a file that holds several (a SQLite table, an XLSX sheet)."""

    name: str
    rows: int
    columns: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows, "columns": self.columns}


@dataclass(slots=True)
class DocumentInfo:
    """What is known about one loaded document. ``path`` is its key in the context ("" when the
    document is the whole context); ``chars`` counts the text of its value (page marks included)."""

    path: str
    kind: str
    chars: int = 0
    size: int | None = None
    pages: int | None = None
    rows: int | None = None
    columns: list[str] | None = None
    tables: list[TableInfo] | None = None
    title: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def extension(self) -> str:
        """The file's extension (of the inner file for ``app.log.gz``), lower case, or ""."""
        from .detect import strip_compression

        name = strip_compression(self.path.rsplit("/", 1)[-1])
        return "." + name.rsplit(".", 1)[-1].lower() if "." in name.lstrip(".") else ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind, "chars": self.chars}
        for key in ("size", "pages", "rows", "columns", "title", "error"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.tables is not None:
            out["tables"] = [t.to_dict() for t in self.tables]
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass(slots=True)
class LoadResult:
    """The value of one load and what it holds. ``tree`` marks a ``{relative path: value}`` dict (a
    folder or an archive) whose keys are paths, to be merged under a prefix when nested."""

    value: Any
    documents: list[DocumentInfo] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    excluded: Counter[str] = field(default_factory=Counter)
    tree: bool = False

    def merge(self, part: LoadResult, prefix: str) -> None:
        """Add ``part`` to this tree under ``prefix``: its keys become ``prefix/key`` when it is a tree."""
        if part.tree:
            for key, value in part.value.items():
                self.value[f"{prefix}/{key}"] = value
            for doc in part.documents:
                doc.path = f"{prefix}/{doc.path}" if doc.path else prefix
        else:
            self.value[prefix] = part.value
            for doc in part.documents:
                doc.path = prefix
        self.documents.extend(part.documents)
        self.skipped.extend(SkippedFile(f"{prefix}/{s.path}" if s.path else prefix, s.reason) for s in part.skipped)
        self.excluded.update(part.excluded)


def single(value: Any, doc: DocumentInfo) -> LoadResult:
    return LoadResult(value, [doc])


@dataclass(slots=True)
class Source:
    """One input to a loader: a file on disk (``path``) or bytes in memory (``data``). ``name`` is the
    path shown and the one whose extension picks the format."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    size: int = 0

    @classmethod
    def of_bytes(cls, name: str, data: bytes) -> Source:
        return cls(name, data=data, size=len(data))

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        with self.open() as fh:
            try:
                return fh.read()
            except OSError as exc:
                raise ContextError(f"unreadable: {exc.strerror or exc}") from exc

    def open(self) -> IO[bytes]:
        """A seekable binary stream of the source (the caller closes it). A file is opened without
        blocking and checked to be regular, so one swapped for a FIFO after the walk cannot hang."""
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise ContextError(f"unreadable: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ContextError("not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def head(self, n: int = 4096) -> bytes:
        if self.data is not None:
            return self.data[:n]
        with self.open() as fh:
            return fh.read(n)


@dataclass(slots=True)
class Totals:
    """Bytes read or decompressed so far by one load (shared by every nested load)."""

    read: int = 0


@dataclass(slots=True)
class LoadState:
    """One load's options and running totals, shared by every file, archive member and nested load.

    ``strict`` is true for a single file the caller named (its errors are raised); inside a folder
    or an archive errors go into the skip list instead. ``depth`` counts nested archives and
    compressed layers."""

    options: LoadOptions
    strict: bool = False
    depth: int = 0
    totals: Totals = field(default_factory=Totals)

    def charge(self, n: int) -> None:
        """Count ``n`` more bytes read or decompressed; refuse past ``max_total_bytes``."""
        self.totals.read += n
        cap = self.options.max_total_bytes
        if self.totals.read > cap:
            self.totals.read -= n
            raise TotalCapError(
                f"not loaded: the input would pass the total cap of {format_bytes(cap)}; "
                "raise max_total_bytes (--max-total-size), or load less (exclude=...)"
            )

    def with_strict(self, strict: bool) -> LoadState:
        """The same load (options, totals, depth) with errors raised (``strict``) or listed."""
        return LoadState(self.options, strict=strict, depth=self.depth, totals=self.totals)

    def nested(self) -> LoadState:
        """The state for a member of an archive or the inside of a compressed file."""
        if self.depth + 1 > self.options.max_depth:
            raise ContextError(
                f"nested more than {self.options.max_depth} archives or compressed layers deep; "
                "unpack it first, or raise max_depth"
            )
        return LoadState(self.options, strict=False, depth=self.depth + 1, totals=self.totals)
