"""PDF (pypdf): the text of every page, each page starting with a line ``=== page N ===``.

A PDF encrypted with an empty user password (permissions only) opens as usual; one that needs a
password, a damaged or truncated one, and one without any text layer (a scan) get a reason that
says what to do. A page whose text cannot be extracted is noted and the other pages still load.
pypdf's warnings about damaged files go into the document's notes instead of stderr.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from ..errors import ContextError
from ..repl.doc_helpers import part_mark
from .base import DocumentInfo, LoadResult, LoadState, Source, single
from .detect import require

_notes: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("pdf_notes", default=None)
_MAX_WARNINGS = 5


class _Collect(logging.Handler):
    """Routes pypdf's log records into the notes of the PDF being loaded (when one is)."""

    def emit(self, record: logging.LogRecord) -> None:
        notes = _notes.get()
        if notes is not None and len(notes) < _MAX_WARNINGS:
            notes.append(f"pypdf: {record.getMessage()}")


_handler = _Collect(logging.WARNING)


def _pypdf() -> Any:
    pypdf = require("pypdf", "pypdf", "docs", "PDF files")
    logger = logging.getLogger("pypdf")
    if _handler not in logger.handlers:
        logger.addHandler(_handler)
    return pypdf


def load_pdf(src: Source, state: LoadState) -> LoadResult:
    pypdf = _pypdf()
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    notes: list[str] = []
    token = _notes.set(notes)
    try:
        with src.open() as fh:
            try:
                reader = pypdf.PdfReader(fh, strict=False)
                if reader.is_encrypted:
                    _decrypt(reader, pypdf)
                count = len(reader.pages)
            except DependencyError as exc:
                raise ContextError(
                    f"encrypted PDF that needs the cryptography package ({exc}): pip install 'unbounded[docs]'"
                ) from exc
            except FileNotDecryptedError as exc:
                raise ContextError(
                    "encrypted PDF: it needs a password; decrypt it first (qpdf --password=PW --decrypt in.pdf out.pdf)"
                ) from exc
            except (PdfReadError, OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
                raise ContextError(
                    f"damaged or truncated PDF ({type(exc).__name__}: {exc}); repair it (qpdf in.pdf out.pdf) or export it again"
                ) from exc
            parts: list[str] = []
            empty = 0
            for n in range(1, count + 1):
                try:
                    text = reader.pages[n - 1].extract_text() or ""
                except Exception as exc:  # one bad page must not lose the others
                    notes.append(f"page {n}: text could not be extracted ({type(exc).__name__}: {exc})")
                    text = ""
                if not text.strip():
                    empty += 1
                parts.append(f"{part_mark(n)}\n{text.strip()}")
            title = _title(reader)
    finally:
        _notes.reset(token)
    doc = DocumentInfo(src.name, "pdf", size=src.size, pages=count, title=title, notes=notes)
    if count == 0:
        doc.error = "the PDF has no pages"
        return single("", doc)
    if empty == count:
        doc.error = f"no text layer on any of the {count} page(s) (a scan?): OCR it first (e.g. ocrmypdf)"
        return single("", doc)
    if empty:
        notes.append(f"{empty} of {count} page(s) have no text (scanned or blank)")
    text = "\n\n".join(parts)
    doc.chars = len(text)
    return single(text, doc)


def _decrypt(reader: Any, pypdf: Any) -> None:
    """Open a PDF encrypted with an empty user password (only its permissions are protected)."""
    if reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
        raise pypdf.errors.FileNotDecryptedError("a password is needed")


def _title(reader: Any) -> str | None:
    try:
        meta = reader.metadata
        title = meta.title if meta is not None else None
    except Exception:
        return None
    return str(title).strip() or None if title else None
