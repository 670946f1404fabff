"""The context's one trip from the host to the REPL worker: a file the host writes and the worker reads.

Both sides live here so the format has one home. The aim is memory: the host holds the user's
context and the worker its own copy, and neither should hold a third, however large the context.

- ``str``: UTF-8 on disk, written in 64 KiB slices. The host names the layout CPython gave the str
  (``ascii``, or ``ucs<kind>:<length>``), so the worker allocates the str up front and fills it in
  place, piece by piece, instead of holding the file's bytes and the str at once.
- ``list`` of str and ``dict`` of str to str (folders arrive as ``{relative path: text}``):
  ``doclist`` / ``docdict``, one record per string (a header with its UTF-8 length, layout and
  length in characters, then its bytes), each loaded like a str. JSON would make the worker read
  the whole file as one str before parsing it: twice the context.
- Anything else: JSON, or pickle as a last resort.

The worker imports this module, so it stays free of ``typing`` and ``dataclasses`` (memory).
"""

from __future__ import annotations

import codecs
import json
import mmap
import os
import struct
import sys

from .._lazy import TYPE_CHECKING
from ..errors import ContextError

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, BinaryIO

#: Pieces written and read at a time: below malloc's mmap threshold, so no large block is left behind.
CHUNK = 64 * 1024
#: One string of a ``doclist``/``docdict``: UTF-8 bytes, layout (0 ASCII, 1/2/4 bytes per character,
#: 255 unknown), length in characters.
DOC_HEADER = struct.Struct(">QBQ")
UNKNOWN_KIND = 255
#: The codec whose output is CPython's in-memory layout for each str kind (bytes per character).
_LAYOUT_CODECS = {1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}
_KIND_MAXCHAR = {0: 0x7F, 1: 0xFF, 2: 0xFFFF, 4: 0x10FFFF}


# -- host side -------------------------------------------------------------------------------


def write_context_file(context: Any, folder: Path) -> tuple[Path, str]:
    """Write the context once for the worker; returns the file and its format for ``load_context_file``."""
    if isinstance(context, str):
        path = folder / "context.txt"
        with open(path, "wb", buffering=0) as fh:
            _write_utf8(fh, context)
        return path, text_format(context)
    docs = _as_docs(context)
    if docs is not None:
        fmt, strings = docs
        path = folder / "context.docs"
        with open(path, "wb") as fh:
            for text in strings:
                _write_doc(fh, text)
        return path, fmt
    path = folder / "context.json"
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(context, fh, ensure_ascii=False)
        return path, "json"
    except (TypeError, ValueError, RecursionError):
        path.unlink(missing_ok=True)
    import pickle  # only for contexts JSON cannot carry; kept off the common path (memory)

    path = folder / "context.pickle"
    try:
        with open(path, "wb") as fh:
            pickle.dump(context, fh, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        path.unlink(missing_ok=True)
        raise ContextError(
            f"context of type {type(context).__name__} cannot be sent to the REPL worker ({exc}); "
            "convert it to str, list or dict, or use repl='inprocess'"
        ) from exc
    return path, "pickle"


def text_format(text: str) -> str:
    """``ascii``, ``ucs<kind>:<length>`` (CPython's bytes per character for this str), or ``text``."""
    kind = str_kind(text)
    if kind == 0:
        return "ascii"
    return f"ucs{kind}:{len(text)}" if kind != UNKNOWN_KIND else "text"


def str_kind(text: str) -> int:
    """Bytes per character of a compact CPython str, 0 for ASCII, ``UNKNOWN_KIND`` where unknown. O(1).

    Read off ``sys.getsizeof``: a compact non-ASCII str is a fixed header and ``len + 1`` characters.
    A str subclass or another interpreter lays strings out otherwise.
    """
    if text.isascii():
        return 0
    if sys.implementation.name != "cpython" or type(text) is not str:
        return UNKNOWN_KIND
    kind, rest = divmod(sys.getsizeof(text) - _header(1), len(text) + 1)
    return kind if not rest and kind in (1, 2, 4) else UNKNOWN_KIND


def _as_docs(context: Any) -> tuple[str, list[str]] | None:
    """The strings of a list of str (``doclist``) or of a dict of str to str (``docdict``, key then value)."""
    if type(context) is list and context and all(isinstance(x, str) for x in context):
        return "doclist", context
    if type(context) is dict and context and all(isinstance(k, str) and isinstance(v, str) for k, v in context.items()):
        return "docdict", [s for pair in context.items() for s in pair]
    return None


def _write_utf8(fh: BinaryIO, text: str) -> int:
    """Write ``text`` as UTF-8 in slices (one 64 KiB piece in memory at a time); returns the bytes written."""
    written = 0
    for i in range(0, len(text), CHUNK):
        written += fh.write(text[i : i + CHUNK].encode("utf-8", "surrogatepass"))
    return written


def _write_doc(fh: BinaryIO, text: str) -> None:
    kind = str_kind(text)
    if len(text) <= CHUNK:
        data = text.encode("utf-8", "surrogatepass")
        fh.write(DOC_HEADER.pack(len(data), kind, len(text)))
        fh.write(data)
    elif kind == 0:  # ASCII: as many bytes as characters
        fh.write(DOC_HEADER.pack(len(text), kind, len(text)))
        _write_utf8(fh, text)
    else:  # a long non-ASCII string: its UTF-8 length is known once written; come back for the header
        start = fh.tell()
        fh.write(DOC_HEADER.pack(0, kind, len(text)))
        size = _write_utf8(fh, text)
        end = fh.tell()
        fh.seek(start)
        fh.write(DOC_HEADER.pack(size, kind, len(text)))
        fh.seek(end)


# -- worker side -----------------------------------------------------------------------------


def load_context_file(path: str, fmt: str) -> Any:
    """Load the context the host wrote with ``write_context_file``."""
    if fmt == "ascii" or fmt.startswith("ucs"):
        size = os.path.getsize(path)
        if size == 0:
            return ""
        kind, chars = _parse_layout(fmt, size)
        with open(path, "rb", buffering=0) as fh:
            loaded = fill_str(fh, size, kind, chars)
        if loaded is not None:
            return loaded
        fmt = "text"
    if fmt == "text":
        if os.path.getsize(path) == 0:
            return ""
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return str(mm, "utf-8", "surrogatepass")
    if fmt in ("doclist", "docdict"):
        strings = _read_docs(path)
        if fmt == "doclist":
            return strings
        it = iter(strings)
        return dict(zip(it, it, strict=True))
    if fmt == "json":
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    if fmt == "pickle":
        import pickle

        with open(path, "rb") as fh:
            return pickle.load(fh)
    raise ValueError(f"unknown context format {fmt!r}")


def _parse_layout(fmt: str, size: int) -> tuple[int, int]:
    if fmt == "ascii":
        return 0, size
    try:
        kind, chars = fmt[3:].split(":")
        return int(kind), int(chars)
    except ValueError:
        return UNKNOWN_KIND, 0


def _read_docs(path: str) -> list[str]:
    strings: list[str] = []
    with open(path, "rb") as fh:
        while header := fh.read(DOC_HEADER.size):
            if len(header) != DOC_HEADER.size:
                raise ValueError("context file ends inside a record header")
            size, kind, chars = DOC_HEADER.unpack(header)
            start = fh.tell()
            text = fill_str(fh, size, kind, chars) if size > CHUNK else None
            if text is None:
                fh.seek(start)
                data = fh.read(size)
                if len(data) != size:
                    raise ValueError("context file ends inside a record")
                text = data.decode("utf-8", "surrogatepass")
            strings.append(text)
    return strings


def fill_str(fh: BinaryIO, size: int, kind: int, chars: int) -> str | None:
    """Read ``size`` bytes of UTF-8 from ``fh`` into a new str of ``kind`` (0 = ASCII) and length ``chars``.

    The str is allocated first and filled in place, one piece at a time, so the text is held once.
    ASCII bytes are read straight into it; other text is decoded piece by piece and each piece
    re-encoded in the str's own layout. Returns None, with ``fh`` somewhere inside the text, if the
    bytes do not match what was announced or on another interpreter: the caller decodes plainly.
    """
    if sys.implementation.name != "cpython" or kind not in _KIND_MAXCHAR or chars <= 0:
        return None
    if kind == 0:
        return _fill_ascii(fh, size) if size == chars else None
    text, view = _new_str(chars, kind)
    codec = _LAYOUT_CODECS[kind]
    decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
    pos, end, left, widest = 0, chars * kind, size, 0
    try:
        while True:
            block = fh.read(min(CHUNK, left))
            left -= len(block)
            piece = decoder.decode(block, final=not block)
            widest = max(widest, str_kind(piece))
            raw = piece.encode(codec, "surrogatepass")
            if pos + len(raw) > end:
                return None
            view[pos : pos + len(raw)] = raw
            pos += len(raw)
            if not block:
                break
    except UnicodeError:
        return None
    finally:
        view.release()
    # CPython compares strs by kind first: one stored wider than its widest character would not
    # equal the same text built normally. So the text must really need the announced kind.
    return text if pos == end and left == 0 and widest == kind else None


def _fill_ascii(fh: BinaryIO, size: int) -> str | None:
    text, view = _new_str(size, 0)
    try:
        pos = 0
        while pos < size:
            n = fh.readinto(view[pos : min(pos + CHUNK, size)])
            if not n or not view[pos : pos + n].tobytes().isascii():
                return None
            pos += n
    finally:
        view.release()
    return text


def _header(kind: int) -> int:
    """Bytes before the characters of a compact str: an ASCII str's header is shorter than the others'."""
    return sys.getsizeof("") - 1 if kind == 0 else sys.getsizeof("\xe9") - 2


def _new_str(chars: int, kind: int) -> tuple[str, memoryview]:
    """An uninitialised compact str (``PyUnicode_New``) and a writable view of its characters."""
    import ctypes

    new = ctypes.pythonapi.PyUnicode_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_ssize_t, ctypes.c_uint32]
    text = new(chars, _KIND_MAXCHAR[kind])
    width = max(kind, 1)
    view = memoryview((ctypes.c_char * (chars * width)).from_address(id(text) + _header(kind))).cast("B")
    return text, view
