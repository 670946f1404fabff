"""Loaders: what people point an RLM at — documents, data files, archives, folders — as plain data.

One module per format family, each imported only when a file of its kind turns up:

| module | formats | value |
|---|---|---|
| ``text`` | text, code, Markdown, reStructuredText, logs; JSON; JSONL | str; a JSON array or JSONL: list of records |
| ``pdf`` | PDF (pypdf, extra ``docs``) | str, each page starting ``=== page N ===`` |
| ``office`` | DOCX (python-docx, extra ``docs``) | str (headings ``#``, lists ``-``, tables ``a | b``) |
| ``html`` | HTML, EPUB (selectolax, extra ``docs``) | str; EPUB chapters ``=== section N ===`` |
| ``notebook`` | Jupyter ``.ipynb`` | str in the percent format, never executed |
| ``tabular`` | CSV/TSV; Parquet, Arrow (pyarrow, extra ``data``); SQLite; XLSX (openpyxl, ``data``) | list of records; SQLite/XLSX: {table: records} |
| ``compression`` | ``.gz``, ``.bz2``, ``.xz``, ``.zst`` (zstandard, extra ``zstd``) | the inner file's value |
| ``archives`` | ``.zip``, ``.tar*`` | {member path: value}, like a folder |
| ``folder`` | folders (``filters``: .gitignore, include/exclude, skipped folders) | {relative path: value} |

``inputs`` holds the entry points, ``dispatch`` routes a source to its loader, ``outline`` renders
the table of contents the root model reads, ``options`` the caps and filters. The paged-text and
records layout is documented once, in ``unbounded.repl.doc_helpers`` (the REPL side that reads it).
"""

from __future__ import annotations

from .base import (
    DocumentInfo,
    InputTooLargeError,
    LoadResult,
    LoadState,
    MissingExtraError,
    SkippedFile,
    Source,
    TableInfo,
)
from .inputs import load_blob, load_path, read_stream
from .options import DEFAULT_SKIP_DIRS, LoadOptions, parse_size

__all__ = [
    "DEFAULT_SKIP_DIRS",
    "DocumentInfo",
    "InputTooLargeError",
    "LoadOptions",
    "LoadResult",
    "LoadState",
    "MissingExtraError",
    "SkippedFile",
    "Source",
    "TableInfo",
    "load_blob",
    "load_path",
    "parse_size",
    "read_stream",
]
