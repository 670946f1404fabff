"""The entry points: a path (a file or a folder), a blob of bytes, a stream such as standard input.

A file named on its own is loaded strictly: what would be a skip-list entry inside a folder is raised
as a ContextError that names the file. Bytes without a name are recognised by their magic number
(gzip, bzip2, xz, zstd, zip, tar, PDF, SQLite, Parquet, Arrow, DOCX, XLSX, EPUB), else read as text.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import IO

from ..errors import ContextError
from .base import InputTooLargeError, LoadResult, LoadState, Source
from .dispatch import load_source
from .folder import file_kind, load_folder
from .options import format_bytes


def _named(exc: ContextError, where: str) -> ContextError:
    """``exc`` (its class and attributes kept) with ``where`` in front of its message."""
    exc.args = (f"{where}: {exc}",)
    return exc


def load_path(path: Path, state: LoadState) -> LoadResult:
    try:
        st = path.stat()
    except OSError as exc:
        if path.is_symlink():
            raise ContextError(f"cannot read {path}: a dangling symlink or a symlink loop ({exc.strerror})") from exc
        if isinstance(exc, FileNotFoundError):
            raise ContextError(f"no such file or folder: {path}") from exc
        raise ContextError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        return load_folder(path, state.with_strict(False))
    if not stat.S_ISREG(st.st_mode):
        raise ContextError(f"cannot read {path}: {file_kind(st.st_mode)}, not a regular file")
    cap = state.options.max_file_bytes
    if st.st_size > cap:
        raise InputTooLargeError(
            f"cannot read {path}: too big: {format_bytes(st.st_size)} (the max_file_bytes cap is "
            f"{format_bytes(cap)}; raise it with max_file_bytes / --max-file-size)"
        )
    try:
        result = load_source(Source(path.name, path=path, size=st.st_size), state.with_strict(True))
    except ContextError as exc:
        raise _named(exc, f"cannot read {path}") from exc.__cause__
    _as_whole(result, path.name)
    return result


def load_blob(name: str, data: bytes, state: LoadState) -> LoadResult:
    """Load bytes that have no file name (``name`` is only shown): the format comes from magic numbers."""
    state.charge(len(data))
    try:
        result = load_source(Source.of_bytes(name, data), state.with_strict(True), nameless=True)
    except ContextError as exc:
        raise _named(exc, name) from exc.__cause__
    _as_whole(result, name)
    return result


def read_stream(stream: IO[bytes], name: str, cap: int) -> bytes:
    """All of ``stream``, refusing more than ``cap`` bytes (read in pieces, so a pipe never ends up twice in memory)."""
    pieces: list[bytes] = []
    size = 0
    while True:
        try:
            piece = stream.read(min(1024 * 1024, cap + 1 - size))
        except OSError as exc:
            raise ContextError(f"cannot read {name}: {exc.strerror or exc}") from exc
        if not piece:
            return b"".join(pieces)
        size += len(piece)
        if size > cap:
            raise InputTooLargeError(
                f"{name} is larger than the max_file_bytes cap of {format_bytes(cap)}: save it to a file "
                "and pass the path, or raise max_file_bytes (--max-file-size)"
            )
        pieces.append(piece)


def _as_whole(result: LoadResult, name: str) -> None:
    """A single document's path is "" (it is the whole context); an archive's notes about itself
    (path "") take its name."""
    if not result.tree:
        for doc in result.documents:
            doc.path = ""
    for skipped in result.skipped:
        if not skipped.path:
            skipped.path = name
