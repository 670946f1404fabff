"""Length-prefixed JSON frames between the host and a REPL worker.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON (an object with
an ``op`` field). The reader enforces a maximum size so a hostile worker cannot make the host
allocate without bound.
"""

from __future__ import annotations

import json
import os
import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 256 * 1024 * 1024


class FrameError(Exception):
    """A frame that breaks the protocol: too large, not JSON, not an object with an op."""


def encode_frame(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_default).encode("utf-8", "surrogatepass")
    return HEADER.pack(len(body)) + body


def _default(obj: Any) -> Any:
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if hasattr(obj, "_asdict"):
        return obj._asdict()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def decode_body(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body.decode("utf-8", "surrogatepass"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FrameError(f"frame is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("op"), str):
        raise FrameError("frame is not an object with a string 'op'")
    return obj


# -- blocking side (the worker) --------------------------------------------------------------


def read_frame_fd(fd: int, max_size: int = DEFAULT_MAX_FRAME) -> dict[str, Any] | None:
    """Read one frame from a file descriptor; None at end of file."""
    header = _read_exact_fd(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > max_size:
        raise FrameError(f"frame of {size} bytes exceeds the limit of {max_size}")
    body = _read_exact_fd(fd, size)
    if body is None:
        raise FrameError("connection closed inside a frame")
    return decode_body(body)


def _read_exact_fd(fd: int, n: int) -> bytes | None:
    if n == 0:
        return b""
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            if not buf:
                return None
            raise FrameError("connection closed inside a frame")
        buf += chunk
    return bytes(buf)


def write_frame_fd(fd: int, obj: dict[str, Any]) -> None:
    data = memoryview(encode_frame(obj))
    while data:
        n = os.write(fd, data)
        data = data[n:]


# -- asyncio side (the host) -----------------------------------------------------------------


async def read_frame_async(reader: asyncio.StreamReader, max_size: int = DEFAULT_MAX_FRAME) -> dict[str, Any] | None:
    try:
        header = await reader.readexactly(HEADER.size)
    except EOFError as exc:  # asyncio.IncompleteReadError
        if getattr(exc, "partial", b""):
            raise FrameError("connection closed inside a frame header") from exc
        return None
    (size,) = HEADER.unpack(header)
    if size > max_size:
        raise FrameError(f"worker sent a frame of {size:,} bytes, over the limit of {max_size:,}")
    try:
        body = await reader.readexactly(size)
    except EOFError as exc:
        raise FrameError("connection closed inside a frame") from exc
    return decode_body(body)
