"""Plain text (code, Markdown, reStructuredText, logs, …), JSON and JSONL.

Text is UTF-8 (a UTF-8, UTF-16 or UTF-32 byte-order mark is honoured); bytes that are not, and files
with NUL bytes, are refused with a reason unless ``fallback_encoding`` is set. A ``.json`` file whose
top level is an array becomes a list of records; any other JSON stays text (configuration files stay
greppable). JSONL becomes a list of records; a line that is not JSON is an error for a file named on
its own and, inside a folder, the file loads as text with the error in its metadata.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from ..errors import ContextError
from .base import DocumentInfo, InputTooLargeError, LoadResult, LoadState, Source, single
from .records import columns_of, records_chars

BINARY_SNIFF_BYTES = 8192
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(data: bytes, state: LoadState, notes: list[str] | None = None) -> str:
    """``data`` as text; raises ContextError('binary file …' | 'not valid UTF-8 …')."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise ContextError(
                    f"not valid {codec.upper().removesuffix('-SIG')} despite its byte-order mark (byte {exc.start})"
                ) from exc
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise ContextError("binary file (NUL bytes, and no loader for its type)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fallback = state.options.fallback_encoding
        if fallback:
            if notes is not None:
                notes.append(f"not UTF-8 (byte {exc.start}): decoded as {fallback}")
            return data.decode(fallback, errors="replace")
        raise ContextError(
            f"not valid UTF-8 (byte {exc.start}): convert it to UTF-8 (e.g. iconv -f cp1252 -t utf-8), "
            "or set fallback_encoding (--encoding cp1252)"
        ) from exc


def load_text(src: Source, state: LoadState) -> LoadResult:
    notes: list[str] = []
    text = decode_text(src.read(), state, notes)
    return single(text, DocumentInfo(src.name, "text", len(text), src.size, notes=notes))


def load_json(src: Source, state: LoadState) -> LoadResult:
    notes: list[str] = []
    text = decode_text(src.read(), state, notes)
    doc = DocumentInfo(src.name, "json", len(text), src.size, notes=notes)
    if not text.lstrip().startswith("["):
        return single(text, doc)  # an object or a scalar: kept as text
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        notes.append(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}): kept as text")
        return single(text, doc)
    except RecursionError:
        notes.append("JSON nested too deeply to parse: kept as text")
        return single(text, doc)
    if len(records) > state.options.max_rows:
        notes.append(_rows_note(len(records), state))
        return single(text, doc)
    return _records(records, doc, text)


def load_jsonl(src: Source, state: LoadState) -> LoadResult:
    notes: list[str] = []
    text = decode_text(src.read(), state, notes)
    doc = DocumentInfo(src.name, "jsonl", len(text), src.size, notes=notes)
    records: list[Any] = []
    cap = state.options.max_rows
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if len(records) >= cap:
            notes.append(_rows_note(None, state))
            return single(text, doc)
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError) as exc:
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            reason = f"line {n}: invalid JSON ({msg})"
            if state.strict:
                raise ContextError(f"{reason}; fix that line, or give the file a .txt name to read it as text") from exc
            doc.error = f"{reason}: loaded as text"
            return single(text, doc)
    return _records(records, doc, text)


def _records(records: list[Any], doc: DocumentInfo, text: str) -> LoadResult:
    try:
        chars = records_chars(records)
    except ContextError as exc:
        doc.notes.append(f"{exc}: kept as text")
        return single(text, doc)
    doc.rows = len(records)
    doc.columns = columns_of(records)
    doc.chars = chars
    return single(records, doc)


def _rows_note(rows: int | None, state: LoadState) -> str:
    count = f"{rows:,} rows" if rows is not None else "more rows"
    return f"{count} than the max_rows cap of {state.options.max_rows:,}: loaded as text (raise max_rows / --max-rows for records)"


def refuse_rows(rows: int, state: LoadState) -> None:
    """For formats without a text form: refuse a table past ``max_rows``."""
    cap = state.options.max_rows
    if rows > cap:
        raise InputTooLargeError(
            f"too many rows: {rows:,} (the max_rows cap is {cap:,}); raise max_rows (--max-rows), "
            "or export the rows you need"
        )
