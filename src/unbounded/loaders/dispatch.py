"""Route a source to its format's loader, and keep one file's failure from failing a whole folder."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..errors import ContextError
from .base import LoadResult, LoadState, SkippedFile, Source
from .detect import kind_by_magic, kind_by_name

Loader = Callable[[Source, LoadState], LoadResult]


def _loader(kind: str) -> Loader:
    """The loader of ``kind``; imported on use, so a folder of text never imports pypdf or pyarrow."""
    if kind.startswith("compressed:"):
        from .compression import load_compressed

        return partial(load_compressed, method=kind.split(":", 1)[1])
    if kind == "pdf":
        from .pdf import load_pdf

        return load_pdf
    if kind == "docx":
        from .office import load_docx

        return load_docx
    if kind in ("html", "epub"):
        from . import html

        return html.load_html if kind == "html" else html.load_epub
    if kind == "notebook":
        from .notebook import load_notebook

        return load_notebook
    if kind in ("csv", "tsv", "parquet", "arrow", "sqlite", "xlsx"):
        from . import tabular

        return {
            "csv": tabular.load_csv,
            "tsv": partial(tabular.load_csv, tab=True),
            "parquet": tabular.load_parquet,
            "arrow": tabular.load_arrow,
            "sqlite": tabular.load_sqlite,
            "xlsx": tabular.load_xlsx,
        }[kind]
    if kind in ("zip", "tar"):
        from .archives import load_tar, load_zip

        return load_zip if kind == "zip" else load_tar
    from . import text

    return {"json": text.load_json, "jsonl": text.load_jsonl}.get(kind, text.load_text)


def detect_kind(src: Source, nameless: bool = False) -> str:
    """The kind of ``src``: by name, or (for nameless bytes) by magic number; ``text`` otherwise."""
    kind = None if nameless else kind_by_name(src.name)
    if kind is None and (nameless or (src.data is not None and "." not in src.name.rsplit("/", 1)[-1])):
        # The whole blob when there is one: a zip's member list (DOCX? XLSX? EPUB?) sits at its end.
        kind = kind_by_magic(src.data if src.data is not None else src.head(4096))
    return kind or "text"


def load_source(src: Source, state: LoadState, *, nameless: bool = False) -> LoadResult:
    """Load one file or blob with its format's loader. Raises ContextError with a reason (no path)."""
    kind = detect_kind(src, nameless)
    loader = _loader(kind)
    if src.data is None:
        state.charge(src.size)
    try:
        return loader(src, state)
    except ContextError:
        raise
    except MemoryError as exc:
        raise ContextError(f"out of memory while reading this {kind} file; exclude it, or lower the caps") from exc
    except Exception as exc:  # a parser library's own failure on a malformed file
        raise ContextError(f"damaged {kind} file ({type(exc).__name__}: {exc})") from exc


def load_guarded(src: Source, state: LoadState, skipped: list[SkippedFile], key: str) -> LoadResult | None:
    """``load_source`` inside a folder or an archive: a failure becomes a skip-list entry, never fatal."""
    try:
        return load_source(src, state)
    except ContextError as exc:
        skipped.append(SkippedFile(key, str(exc)))
    return None
