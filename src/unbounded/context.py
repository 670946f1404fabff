"""Turn what the caller passes into the REPL's ``context`` variable and the metadata the root sees.

Accepted: str; list/tuple of str (documents); dict (e.g. {path: text}); a ``pathlib.Path`` to a file or
a folder (a folder becomes {relative path: text}; binary and undecodable files are skipped and listed);
``-``-style stdin text is passed as str by the CLI; any other iterable of documents becomes a list.

Bad input gets a ``ContextError`` that says what to do, or is skipped and listed in the metadata:
binary or non-UTF-8 files, unreadable files and folders, FIFOs, sockets and devices (never opened: a
FIFO would block), dangling symlinks and symlink loops; nesting deeper than ``MAX_NESTING`` (or a
reference cycle) is refused before it can exhaust the stack.
"""

from __future__ import annotations

import json
import os
import reprlib
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ContextError, EmptyContextError

PREVIEW_CHARS = 600
MAX_ITEM_SIZES = 20
BINARY_SNIFF_BYTES = 8192
#: Deepest nesting of lists/dicts accepted (JSON and the REPL worker recurse on it).
MAX_NESTING = 500
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
    try:
        st = path.stat()
    except OSError as exc:
        if path.is_symlink():
            raise ContextError(f"cannot read {path}: a dangling symlink or a symlink loop ({exc.strerror})") from exc
        if isinstance(exc, FileNotFoundError):
            raise ContextError(f"no such file or folder: {path}") from exc
        raise ContextError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        return _load_folder(path, skipped)
    if not stat.S_ISREG(st.st_mode):
        raise ContextError(f"cannot read {path}: {_kind(st.st_mode)}, not a regular file")
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


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _load_folder(root: Path, skipped: list[SkippedFile]) -> dict[str, str]:
    files: dict[str, str] = {}
    seen_dirs: set[tuple[int, int]] = set()

    def on_error(exc: OSError) -> None:
        rel = os.path.relpath(exc.filename, root) if exc.filename else "?"
        skipped.append(SkippedFile(rel, f"unreadable folder: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=on_error):
        try:
            st = os.stat(dirpath)
        except OSError as exc:
            skipped.append(SkippedFile(os.path.relpath(dirpath, root), f"unreadable folder: {exc.strerror}"))
            dirnames[:] = []
            continue
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
                fst = os.stat(full)
            except OSError as exc:  # a dangling symlink, a symlink loop, a permission error
                skipped.append(SkippedFile(rel, f"unreadable: {exc.strerror or exc}"))
                continue
            if not stat.S_ISREG(fst.st_mode):  # a FIFO would block the read forever
                skipped.append(SkippedFile(rel, _kind(fst.st_mode)))
                continue
            try:
                files[rel] = _read_text_file(full)
            except ContextError as exc:
                skipped.append(SkippedFile(rel, str(exc)))
    return files


def _size(v: Any) -> int:
    """Characters of text in ``v``, walked without recursion; refuses nesting past ``MAX_NESTING``."""
    total = 0
    stack: list[tuple[Any, int]] = [(v, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, Mapping | list | tuple):
            if depth >= MAX_NESTING:
                raise ContextError(
                    f"context nests deeper than {MAX_NESTING} levels (or holds a reference cycle); "
                    "flatten it, or pass it as text"
                )
            values = item.values() if isinstance(item, Mapping) else item
            stack.extend((x, depth + 1) for x in values)
        else:
            total += len(_safe_str(item))
    return total


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
                keys.append(_safe_str(k))
        first = next(iter(value.items()), None)
        preview = "" if first is None else f"{_safe_str(first[0])[:200]}: {_preview(first[1])}"
    elif isinstance(value, list | tuple):
        type_name = "list"
        n = len(value)
        total = 0
        for i, v in enumerate(value):
            s = _size(v)
            total += s
            if i < MAX_ITEM_SIZES:
                sizes.append(s)
        preview = _preview(value[0]) if value else ""
    else:
        type_name = type(value).__name__
        try:
            text = repr(value)
        except Exception:  # a hostile or broken __repr__
            text = object.__repr__(value)
        total, n, preview = len(text), 1, text[:PREVIEW_CHARS]
    return ContextInfo(type_name, total, n, sizes, keys, preview, list(skipped or []), source)
