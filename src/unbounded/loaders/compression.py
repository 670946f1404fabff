"""Single compressed files (``.gz``, ``.bz2``, ``.xz``, ``.zst``): streamed, capped, then loaded by their inner name.

Decompression runs in 1 MiB pieces and stops the moment the output passes
``max_decompressed_bytes`` (or the load's total cap), so a decompression bomb costs at most the cap
in memory and is refused with a clear error. ``app.log.gz`` loads as the text of ``app.log``,
``sales.csv.gz`` as its records, and nameless data (standard input) is recognised by magic again.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from typing import IO, Any

from ..errors import ContextError
from .base import InputTooLargeError, LoadResult, LoadState, Source
from .detect import require, strip_compression
from .options import format_bytes

PIECE = 1024 * 1024


def open_decompressed(method: str, raw: IO[bytes]) -> IO[bytes]:
    """A stream of the decompressed bytes of ``raw``."""
    if method == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if method == "bzip2":
        return bz2.BZ2File(raw, mode="rb")
    if method == "xz":
        return lzma.LZMAFile(raw, mode="rb")
    if method == "zstd":
        zstd: Any = require("zstandard", "zstandard", "zstd", "Zstandard (.zst) files")
        return zstd.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    raise ValueError(f"unknown compression {method!r}")


def _errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (OSError, EOFError, lzma.LZMAError, gzip.BadGzipFile, ValueError)
    try:
        import zstandard

        errors += (zstandard.ZstdError,)
    except ImportError:
        pass
    return errors


def read_capped(stream: IO[bytes], cap: int, state: LoadState, what: str) -> bytes:
    """Read ``stream`` to its end, refusing more than ``cap`` bytes; charged to the load's total."""
    pieces: list[bytes] = []
    size = 0
    while True:
        piece = stream.read(min(PIECE, cap + 1 - size))
        if not piece:
            break
        size += len(piece)
        if size > cap:
            raise InputTooLargeError(
                f"{what} expands past the cap of {format_bytes(cap)} (a decompression bomb?); "
                "refused: if it is genuine, raise max_decompressed_bytes (--max-decompressed)"
            )
        state.charge(len(piece))
        pieces.append(piece)
    return b"".join(pieces)


def decompress(src: Source, method: str, state: LoadState) -> bytes:
    cap = state.options.max_decompressed_bytes
    with src.open() as raw:
        try:
            with open_decompressed(method, raw) as stream:
                return read_capped(stream, cap, state, f"{method} data")
        except InputTooLargeError:
            raise
        except _errors() as exc:
            raise ContextError(f"damaged or truncated {method} data ({exc}); check it with the {method} tool") from exc


def load_compressed(src: Source, state: LoadState, method: str) -> LoadResult:
    from .dispatch import load_source

    inner_state = state.nested()
    data = decompress(src, method, inner_state)
    inner_name = strip_compression(src.name)
    inner = Source.of_bytes(inner_name, data)
    result = load_source(
        inner,
        inner_state.with_strict(state.strict),
        nameless=inner_name == src.name or "." not in inner_name.rsplit("/", 1)[-1],
    )
    for doc in result.documents:
        if not result.tree:
            doc.path = src.name
            doc.size = src.size
        doc.notes.append(f"decompressed from {method} ({format_bytes(len(data))})")
    return result
