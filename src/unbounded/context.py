"""Turn what the caller passes into the REPL's ``context`` variable and the metadata the root sees.

Accepted: str; list/tuple of str (documents); dict (e.g. {path: text}); a ``pathlib.Path`` to a file or
a folder (a folder becomes {relative path: text}; binary and undecodable files are skipped and listed);
``-``-style stdin text is passed as str by the CLI; any other iterable of documents becomes a list.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ContextError, EmptyContextError

PREVIEW_CHARS = 600
MAX_ITEM_SIZES = 20
BINARY_SNIFF_BYTES = 8192
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", ".mypy_cache", ".tox"}


@dataclass(slots=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(slots=True)
class ContextInfo:
    """What the root model is told about the context (never the context itself)."""

    type: str
    total_chars: int
    num_items: int
    item_sizes: list[int]
    item_keys: list[str]
    preview: str
    skipped: list[SkippedFile] = field(default_factory=list)
    source: str | None = None

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
            lines.append(f"loaded from: {self.source}")
        if self.skipped:
            few = "; ".join(f"{s.path} ({s.reason})" for s in self.skipped[:10])
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
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "source": self.source,
        }


@dataclass(slots=True)
class LoadedContext:
    value: Any
    info: ContextInfo


def load_context(obj: Any, *, allow_empty: bool = False) -> LoadedContext:
    """Normalise ``obj`` into a REPL value plus metadata. Raises ContextError with a clear reason."""
    skipped: list[SkippedFile] = []
    source: str | None = None
    if isinstance(obj, os.PathLike):
        path = Path(obj)
        source = str(path)
        value = _load_path(path, skipped)
    elif isinstance(obj, bytes | bytearray | memoryview):
        value = _decode_bytes(bytes(obj), "context bytes")
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
    info = describe_context(value, skipped=skipped, source=source)
    if info.total_chars == 0 and not allow_empty:
        hint = ""
        if skipped:
            hint = f" ({len(skipped)} file(s) skipped: {skipped[0].path}: {skipped[0].reason})"
        raise EmptyContextError(f"context is empty{hint}: nothing to answer a question about")
    return LoadedContext(value, info)


def _doc_to_str(d: Any) -> Any:
    return d if isinstance(d, str | dict | list) else str(d)


def _decode_bytes(data: bytes, where: str) -> str:
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise ContextError(f"{where} looks binary (NUL bytes); pass text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContextError(f"{where} is not valid UTF-8 (byte {exc.start}); convert it to UTF-8 text") from exc


def _read_text_file(path: Path) -> str:
    """Read a file as UTF-8 text; raises ContextError('binary'|'not UTF-8'|'unreadable')."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(BINARY_SNIFF_BYTES)
            if b"\x00" in head:
                raise ContextError("binary")
            rest = fh.read()
    except OSError as exc:
        raise ContextError(f"unreadable: {exc.strerror or exc}") from exc
    data = head + rest
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContextError(f"not UTF-8 (byte {exc.start})") from exc


def _load_path(path: Path, skipped: list[SkippedFile]) -> Any:
    if not path.exists():
        raise ContextError(f"no such file or folder: {path}")
    if path.is_dir():
        return _load_folder(path, skipped)
    suffix = path.suffix.lower()
    try:
        text = _read_text_file(path)
    except ContextError as exc:
        raise ContextError(f"cannot read {path}: {exc}") from exc
    if suffix == ".jsonl":
        return _parse_jsonl(text, path)
    return text


def _parse_jsonl(text: str, path: Path) -> list[Any]:
    docs: list[Any] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            docs.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ContextError(f"{path}:{n}: invalid JSON line ({exc.msg}); fix it or pass the file as text") from exc
    return docs


def _load_folder(root: Path, skipped: list[SkippedFile]) -> dict[str, str]:
    files: dict[str, str] = {}
    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=None):
        st = os.stat(dirpath)
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:  # symlink loop
            skipped.append(SkippedFile(os.path.relpath(dirpath, root), "symlink loop"))
            dirnames[:] = []
            continue
        seen_dirs.add(key)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            try:
                files[rel] = _read_text_file(full)
            except ContextError as exc:
                skipped.append(SkippedFile(rel, str(exc)))
    return files


def _size(v: Any) -> int:
    if isinstance(v, str):
        return len(v)
    if isinstance(v, Mapping):
        return sum(_size(x) for x in v.values())
    if isinstance(v, list | tuple):
        return sum(_size(x) for x in v)
    return len(str(v))


def describe_context(value: Any, *, skipped: list[SkippedFile] | None = None, source: str | None = None) -> ContextInfo:
    """Metadata without copying the data: sizes, first keys, a short preview."""
    sizes: list[int] = []
    keys: list[str] = []
    if isinstance(value, str):
        total, n, preview = len(value), 1, value[:PREVIEW_CHARS]
        type_name = "str"
    elif isinstance(value, Mapping):
        type_name = "dict"
        n = len(value)
        total = 0
        for i, (k, v) in enumerate(value.items()):
            s = _size(v)
            total += s
            if i < MAX_ITEM_SIZES:
                sizes.append(s)
                keys.append(str(k))
        first = next(iter(value.items()), None)
        preview = "" if first is None else f"{first[0]!s}: {str(first[1])[:PREVIEW_CHARS]}"
    elif isinstance(value, list | tuple):
        type_name = "list"
        n = len(value)
        total = 0
        for i, v in enumerate(value):
            s = _size(v)
            total += s
            if i < MAX_ITEM_SIZES:
                sizes.append(s)
        preview = str(value[0])[:PREVIEW_CHARS] if value else ""
    else:
        type_name = type(value).__name__
        text = repr(value)
        total, n, preview = len(text), 1, text[:PREVIEW_CHARS]
    return ContextInfo(type_name, total, n, sizes, keys, preview, list(skipped or []), source)
