"""Turn what the caller passes into the REPL's ``context`` variable and the metadata the root sees.

Accepted: str; list/tuple of documents; dict (e.g. {path: text}); bytes (text, or a compressed file,
an archive, a PDF… recognised by magic number); a ``pathlib.Path`` to a file or a folder; any other
iterable of documents (a list); an already loaded ``LoadedContext`` (returned as it is).

Files load by format (``unbounded.loaders``): text and code as str, PDF/DOCX/HTML/EPUB/notebooks as
readable text (pages marked ``=== page N ===``), CSV/TSV/JSON arrays/JSONL/Parquet/Arrow as lists of
records, SQLite/XLSX as ``{table: records}``, ``.gz``/``.bz2``/``.xz``/``.zst`` as their inner file,
zip and tar archives like folders. A folder becomes ``{relative path: value}`` with ``.gitignore``,
include/exclude globs and the usual vendored/build folders honoured; what it could not load is
listed in the metadata (``ContextInfo.skipped``) with a reason, never fatal.

Bad input gets a ``ContextError`` that says what to do, or is skipped and listed: see the loaders.
Nesting deeper than ``MAX_NESTING`` (or a reference cycle) is refused before it can exhaust the stack.
"""

from __future__ import annotations

import os
import reprlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import ContextError, EmptyContextError
from .loaders import DocumentInfo, LoadOptions, LoadResult, LoadState, SkippedFile, load_blob, load_path, read_stream
from .loaders.outline import compact_outline, full_outline, kind_counts
from .loaders.records import MAX_NESTING, records_chars
from .loaders.text import BINARY_SNIFF_BYTES

PREVIEW_CHARS = 600
MAX_ITEM_SIZES = 20
#: How many documents and skipped files ``to_dict`` (the trace) keeps; the counts are always whole.
MAX_LISTED = 200
STDIN_KEY = "<stdin>"

__all__ = [
    "BINARY_SNIFF_BYTES",
    "MAX_NESTING",
    "PREVIEW_CHARS",
    "ContextInfo",
    "DocumentInfo",
    "LoadOptions",
    "LoadedContext",
    "SkippedFile",
    "describe_context",
    "load_context",
    "load_inputs",
]


@dataclass(slots=True)
class ContextInfo:
    """What the root model is told about the context (never the context itself).

    ``documents`` describes each loaded file (kind, size, pages, rows, columns, tables, problems);
    ``skipped`` the files that could not be loaded and why; ``excluded`` counts what was left out
    on purpose (``.gitignore``, exclude/include globs). Plain data passed in has no documents."""

    type: str
    total_chars: int
    num_items: int
    item_sizes: list[int]
    item_keys: list[str]
    preview: str
    skipped: list[SkippedFile] = field(default_factory=list)
    source: str | None = None
    documents: list[DocumentInfo] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def kinds(self) -> dict[str, int]:
        """Documents by kind (``pdf``, ``text``, ``csv``…), most common first."""
        return dict(kind_counts(self.documents).most_common())

    def outline(self, compact: bool = False) -> str:
        """The table of contents: one plain paragraph (``compact``, for small models) or labelled lines.
        Bounded in size whatever the number of files; "" for plain data."""
        return compact_outline(self) if compact else "\n".join(full_outline(self))

    def describe(self) -> str:
        lines = [f"type: {self.type}", f"total characters: {self.total_chars:,}"]
        if self.type != "str":
            lines.append(f"items: {self.num_items:,}")
            if self.item_sizes:
                shown = len(self.item_sizes)
                label = "first item sizes (chars)" if shown < self.num_items else "item sizes (chars)"
                if self.item_keys:
                    pairs = ", ".join(f"{k!r}: {s:,}" for k, s in zip(self.item_keys, self.item_sizes, strict=False))
                    lines.append(f"{label}: {{{pairs}}}" + (" …" if shown < self.num_items else ""))
                else:
                    lines.append(f"{label}: {self.item_sizes}" + (" …" if shown < self.num_items else ""))
        if self.source:
            lines.append(f"loaded from: {_cut(self.source, 300)}")
        lines.extend(full_outline(self))
        if self.skipped:
            # Files that failed first; folders skipped by default (.git, node_modules…) after them.
            shown = sorted(self.skipped[:1000], key=lambda s: s.reason.startswith("vendored or build folder"))[:10]
            few = "; ".join(f"{s.path} ({_cut(s.reason, 200)})" for s in shown)
            more = f" and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
            lines.append(f"skipped files ({len(self.skipped)}): {few}{more}")
        lines.append(f"preview: {self.preview!r}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "total_chars": self.total_chars,
            "num_items": self.num_items,
            "item_sizes": self.item_sizes,
            "item_keys": self.item_keys,
            "preview": self.preview,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped[:MAX_LISTED]],
            "source": self.source,
            "num_skipped": len(self.skipped),
            "documents": [d.to_dict() for d in self.documents[:MAX_LISTED]],
            "num_documents": len(self.documents),
            "kinds": self.kinds,
            "excluded": dict(self.excluded),
        }


@dataclass(slots=True)
class LoadedContext:
    value: Any
    info: ContextInfo


def load_context(
    obj: Any, *, allow_empty: bool = False, options: LoadOptions | None = None, **overrides: Any
) -> LoadedContext:
    """Normalise ``obj`` into a REPL value plus metadata. Raises ContextError with a clear reason.

    Keyword options (``include``, ``exclude``, ``max_file_bytes``, ``max_decompressed_bytes``,
    ``max_rows``, ``follow_symlinks``… see ``LoadOptions``) shape how files and folders load;
    ``options`` passes them all at once. A ``LoadedContext`` comes back unchanged."""
    if isinstance(obj, LoadedContext):
        return obj
    opts = LoadOptions.build(options, **overrides)
    result: LoadResult | None = None
    source: str | None = None
    if isinstance(obj, os.PathLike):
        path = Path(obj)
        source = str(path)
        result = load_path(path, LoadState(opts))
        value = result.value
    elif isinstance(obj, bytes | bytearray | memoryview):
        result = load_blob("context bytes", bytes(obj), LoadState(opts))
        value = result.value
    elif isinstance(obj, str | Mapping):
        value = obj
    elif isinstance(obj, list | tuple):
        value = list(obj)
    elif isinstance(obj, Iterable):
        value = [d if isinstance(d, str) else _doc_to_str(d) for d in obj]
    elif obj is None:
        raise EmptyContextError("context is None: pass a string, a list of documents, a dict or a path")
    else:
        value = obj
    return _finish(value, result, source, allow_empty)


def load_inputs(
    paths: Sequence[str | os.PathLike[str]],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    stdin: IO[bytes] | None = None,
    allow_empty: bool = False,
    options: LoadOptions | None = None,
    **overrides: Any,
) -> LoadedContext:
    """The context for the command line's inputs: one path → that path's context; several → one dict
    keyed by path prefix (a folder's files as ``folder/relative/path``, a file by its path as given,
    standard input as ``<stdin>``), every input's documents and skip list kept in the metadata.

    ``-`` reads ``stdin`` (default: the process's standard input) as bytes: text, or gzip/zip/PDF/…
    recognised by magic number. With no paths at all, ``stdin`` is read if one is given."""
    if include:
        overrides["include"] = include
    if exclude:
        overrides["exclude"] = exclude
    opts = LoadOptions.build(options, **overrides)
    names = list(dict.fromkeys(os.fspath(p) for p in paths))
    if not names:
        if stdin is None:
            raise ContextError("no input: give one or more paths, or '-' to read standard input")
        names = ["-"]
    state = LoadState(opts)
    parts: list[tuple[str, LoadResult]] = []
    for name in names:
        if name == "-":
            stream = stdin if stdin is not None else sys.stdin.buffer
            data = read_stream(stream, "standard input", opts.max_file_bytes)
            parts.append((STDIN_KEY, load_blob("standard input", data, state)))
        else:
            parts.append((name.rstrip("/") or name, load_path(Path(name), state)))
    if len(parts) == 1:
        key, result = parts[0]
        return _finish(result.value, result, key, allow_empty)
    merged = LoadResult({}, tree=True)
    for key, result in parts:
        merged.merge(result, key)
    return _finish(merged.value, merged, ", ".join(names), allow_empty)


def _finish(value: Any, result: LoadResult | None, source: str | None, allow_empty: bool) -> LoadedContext:
    known = None
    if result is not None:
        # The loaders counted each document's characters already: a big folder is not walked twice.
        known = {d.path: d.chars for d in result.documents}
    info = describe_context(
        value,
        skipped=result.skipped if result else None,
        source=source,
        documents=result.documents if result else None,
        excluded=dict(result.excluded) if result else None,
        sizes=known,
    )
    if info.total_chars == 0 and not allow_empty:
        raise EmptyContextError(f"context is empty{_empty_hint(info)}: nothing to answer a question about")
    return LoadedContext(value, info)


def _empty_hint(info: ContextInfo) -> str:
    for doc in info.documents:
        if doc.error:
            return f" ({doc.path or info.source}: {doc.error})"
    hints = []
    if info.excluded:
        left = ", ".join(f"{n} {why}" for why, n in info.excluded.items())
        hints.append(f"files left out: {left}; check include/exclude")
    if info.skipped:
        first = info.skipped[0]
        hints.append(f"{len(info.skipped)} file(s) skipped: {first.path}: {first.reason}")
    return f" ({'; '.join(hints)})" if hints else ""


def _doc_to_str(d: Any) -> Any:
    return d if isinstance(d, str | dict | list) else str(d)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _size(v: Any) -> int:
    """Characters of text in ``v``, walked without recursion; refuses nesting past ``MAX_NESTING``."""
    return records_chars(v)


def _safe_str(v: Any) -> str:
    try:
        return str(v)
    except Exception:  # a hostile or broken __str__
        return object.__repr__(v)


_PREVIEW_REPR = reprlib.Repr()
_PREVIEW_REPR.maxlevel = 4
_PREVIEW_REPR.maxstring = PREVIEW_CHARS
_PREVIEW_REPR.maxother = PREVIEW_CHARS
_PREVIEW_REPR.maxlist = _PREVIEW_REPR.maxdict = _PREVIEW_REPR.maxtuple = 20


def _preview(v: Any) -> str:
    """Text as is; anything else as a bounded repr (never the str() of a whole 100 MB structure)."""
    if isinstance(v, str):
        return v[:PREVIEW_CHARS]
    try:
        return _PREVIEW_REPR.repr(v)[:PREVIEW_CHARS]
    except Exception:
        return object.__repr__(v)[:PREVIEW_CHARS]


def describe_context(
    value: Any,
    *,
    skipped: list[SkippedFile] | None = None,
    source: str | None = None,
    documents: list[DocumentInfo] | None = None,
    excluded: dict[str, int] | None = None,
    sizes: Mapping[str, int] | None = None,
) -> ContextInfo:
    """Metadata without copying the data: sizes, first keys, a short preview, and what was loaded.
    ``sizes`` gives the characters of items already counted (by key; "" for the whole value)."""
    known = sizes or {}
    sizes_: list[int] = []
    keys: list[str] = []
    if isinstance(value, str):
        total, n, preview = len(value), 1, value[:PREVIEW_CHARS]
        type_name = "str"
    elif isinstance(value, Mapping):
        type_name = "dict"
        n = len(value)
        total = 0
        for i, (k, v) in enumerate(value.items()):
            s = known[k] if isinstance(k, str) and k in known else _size(v)
            total += s
            if i < MAX_ITEM_SIZES:
                sizes_.append(s)
                keys.append(_safe_str(k))
        first = next(iter(value.items()), None)
        preview = "" if first is None else f"{_safe_str(first[0])[:200]}: {_preview(first[1])}"
    elif isinstance(value, list | tuple):
        type_name = "list"
        n = len(value)
        total = 0
        if "" in known and len(documents or ()) == 1:  # one loaded table: sizes per row still help
            total = known[""]
            sizes_ = [_size(v) for v in value[:MAX_ITEM_SIZES]]
        else:
            for i, v in enumerate(value):
                s = _size(v)
                total += s
                if i < MAX_ITEM_SIZES:
                    sizes_.append(s)
        preview = _preview(value[0]) if value else ""
    else:
        type_name = type(value).__name__
        try:
            text = repr(value)
        except Exception:  # a hostile or broken __repr__
            text = object.__repr__(value)
        total, n, preview = len(text), 1, text[:PREVIEW_CHARS]
    return ContextInfo(
        type_name,
        total,
        n,
        sizes_,
        keys,
        preview,
        list(skipped or []),
        source,
        list(documents or []),
        dict(excluded or {}),
    )
