"""Length-prefixed JSON frames between the host and a REPL worker.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON (an object with
an ``op`` field). The reader enforces a maximum size so a hostile worker cannot make the host
allocate without bound.

The host treats the worker as untrusted (model code runs there and can write to the protocol
descriptors itself), so every frame from it is checked here against what the worker may say:
``ready``/``init_error`` once, ``result``/``value`` for a request the host made, ``call`` for a
sub-call the REPL offers with arguments of the right types. Anything else is a ``FrameError``, and
the host stops that worker.

    worker -> host:  ready | init_error | call | result | value
    host -> worker:  init | exec | get | set | close | reply
"""

from __future__ import annotations

import json
import os
import struct

from .._lazy import TYPE_CHECKING
from ..errors import WorkerProtocolError
from .subcall_kinds import ALL_KINDS, MODEL_KINDS, payload_problem

if TYPE_CHECKING:
    import asyncio
    from typing import Any

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 256 * 1024 * 1024
#: Exit status of a worker whose privilege drop left it unable to read its own Python or package.
EXIT_DROP_UNUSABLE = 86
#: The sub-call kinds a worker may ask for (tools only by a name the host offered).
CALL_KINDS = ALL_KINDS
SUB_CALL_KINDS = MODEL_KINDS
_MAX_ID = 2**53


class FrameError(WorkerProtocolError):
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


# -- what a worker may say (checked on the host) ----------------------------------------------


def check_id(value: Any) -> int:
    """A request id: a positive int (JSON number without fraction; never a bool)."""
    if type(value) is not int or not 0 < value < _MAX_ID:
        raise FrameError(f"bad frame id {value!r}")
    return value


def check_call(frame: dict[str, Any], kinds: Any, tools: Any) -> tuple[int, str, dict[str, Any]]:
    """Validate a ``call`` frame: its id, a kind the REPL offers and the types of its arguments.

    Extra payload keys are allowed (the namespace may grow); the ones the engine reads are typed.
    """
    cid = check_id(frame.get("id"))
    kind = frame.get("kind")
    if not isinstance(kind, str) or kind not in kinds:
        raise FrameError(f"call of a kind the REPL does not offer: {str(kind)[:80]!r}")
    payload = frame.get("payload")
    if not isinstance(payload, dict):
        raise FrameError("call payload is not an object")
    problem = payload_problem(kind, payload)
    if problem is not None:
        raise FrameError(problem)
    if kind == "tool" and payload["name"] not in tools:
        raise FrameError(f"call of a tool the REPL does not offer: {payload['name'][:80]!r}")
    return cid, kind, payload


_RESULT_TYPES: dict[str, tuple[type, ...]] = {
    "stdout": (str,),
    "stdout_total": (int,),
    "error": (str, type(None)),
    "final": (str, type(None)),
    "duration": (int, float),
    "timed_out": (bool,),
    "state_lost": (bool,),
    "notes": (list,),
}


def check_result(frame: dict[str, Any]) -> dict[str, Any]:
    """Validate the fields of a cell ``result`` frame (all optional, each of its type)."""
    for key, types in _RESULT_TYPES.items():
        if key in frame and not isinstance(frame[key], types):
            raise FrameError(f"result field {key!r} has the wrong type ({type(frame[key]).__name__})")
    if isinstance(frame.get("stdout_total"), bool) or frame.get("stdout_total", 0) < 0:
        raise FrameError("result field 'stdout_total' must be a non-negative int")
    if not all(isinstance(n, str) for n in frame.get("notes", [])):
        raise FrameError("result notes must be strings")
    return frame


def check_ready(frame: dict[str, Any]) -> dict[str, Any]:
    if frame["op"] == "init_error":
        if not isinstance(frame.get("error", ""), str):
            raise FrameError("init_error without a string error")
        return frame
    if not isinstance(frame.get("load_seconds", 0.0), int | float) or not isinstance(frame.get("uid", 0), int):
        raise FrameError("malformed ready frame")
    return frame
