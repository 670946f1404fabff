"""Records as plain data: every table loader's rows end up as dicts of str, int, float, bool and None.

The REPL worker receives the context as JSON-able data, so values a library hands back as richer
types are written out without loss where possible: dates and times as ISO 8601 strings, decimals as
their exact digits, binary values as UTF-8 text when they are text (no control characters) and
as ``0x…`` hex otherwise.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ContextError

#: Deepest nesting of lists/dicts accepted (JSON and the REPL worker recurse on it).
MAX_NESTING = 500
_COLUMNS_SAMPLE = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def plain(value: Any) -> Any:
    """``value`` as JSON-able plain data (see the module docstring)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value  # NaN and infinities too: the worker's JSON reads them back
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + raw.hex()
        return "0x" + raw.hex() if _CONTROL.search(text) else text
    # Dates and decimals come only from libraries that imported those modules: look, don't import.
    dt, dec = sys.modules.get("datetime"), sys.modules.get("decimal")
    if dt is not None and isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if dt is not None and isinstance(value, dt.timedelta):
        return str(value)
    if dec is not None and isinstance(value, dec.Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return str(value)


def columns_of(records: Iterable[Any]) -> list[str]:
    """The keys of the first records, in first-seen order (a sample: rows may differ)."""
    seen: dict[str, None] = {}
    for i, row in enumerate(records):
        if i >= _COLUMNS_SAMPLE:
            break
        if isinstance(row, Mapping):
            for key in row:
                seen.setdefault(str(key), None)
    return list(seen)


def records_chars(value: Any) -> int:
    """Characters of text in ``value`` (str leaves by length, other leaves by ``str()``), walked without
    recursion. Refuses nesting past ``MAX_NESTING`` (or a reference cycle) with a ContextError.

    A list of flat records (every loaded table) takes a fast path: one pass over the values."""
    if type(value) is not list:
        return _walk(value, 0)
    total = 0
    for row in value:
        if type(row) is not dict:
            total += _walk(row, 1)
            continue
        for v in row.values():
            t = type(v)
            if t is str:
                total += len(v)
            elif v is None or t is int or t is float or t is bool:
                total += len(str(v))
            else:
                total += _walk(v, 2)
    return total


def _walk(value: Any, depth: int) -> int:
    total = 0
    stack: list[tuple[Any, int]] = [(value, depth)]
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
        elif item is None or isinstance(item, bool | int | float):
            total += len(str(item))
        else:
            total += len(_safe_str(item))
    return total


def _safe_str(v: Any) -> str:
    try:
        return str(v)
    except Exception:  # a hostile or broken __str__
        return object.__repr__(v)


def unique_names(names: Iterable[Any]) -> list[str]:
    """Column names made usable as dict keys: blanks named ``column_N``, repeats suffixed ``_2``, ``_3``…"""
    out: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(names, 1):
        name = str(raw).strip() if raw is not None else ""
        name = name or f"column_{i}"
        candidate, n = name, 2
        while candidate in seen:
            candidate, n = f"{name}_{n}", n + 1
        seen.add(candidate)
        out.append(candidate)
    return out
