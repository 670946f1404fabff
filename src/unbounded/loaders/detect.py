"""Which loader reads a source: by its name's extension, or by its first bytes when it has no name.

Files in a folder are told apart by extension only (an unknown extension is text or binary), so a
``.jar`` in a repository stays one skipped binary file instead of hundreds of class files. Bytes
without a name (standard input, ``load_context(b"...")``) are recognised by magic numbers.
"""

from __future__ import annotations

import importlib
import io

from .base import MissingExtraError

#: Extension → kind. Text kinds are the default for anything else that decodes.
EXTENSIONS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".ipynb": "notebook",
    ".epub": "epub",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
    ".db": "sqlite",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".zip": "zip",
}
#: Single compressed files: extension → method.
COMPRESSED = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".lzma": "xz", ".zst": "zstd", ".zstd": "zstd"}
_TAR_SUFFIXES = (".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".tzst")

MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"%PDF-", "pdf"),
    (b"SQLite format 3\x00", "sqlite"),
    (b"PAR1", "parquet"),
    (b"ARROW1", "arrow"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
)


def kind_by_name(name: str) -> str | None:
    """The kind a file name announces: a format, ``tar``, ``compressed:<method>``, or None (text or binary)."""
    lower = name.rsplit("/", 1)[-1].lower()
    if lower.endswith(_TAR_SUFFIXES) or any(lower.endswith(".tar" + ext) for ext in COMPRESSED):
        return "tar"
    for ext, method in COMPRESSED.items():
        if lower.endswith(ext):
            return f"compressed:{method}"
    dot = lower.rfind(".")
    return EXTENSIONS.get(lower[dot:]) if dot > 0 else None


def strip_compression(name: str) -> str:
    """``app.log.gz`` → ``app.log``."""
    lower = name.lower()
    for ext in COMPRESSED:
        if lower.endswith(ext):
            return name[: -len(ext)]
    return name


def kind_by_magic(data: bytes) -> str | None:
    """The kind of nameless bytes by their magic number, or None (text or binary)."""
    for magic, kind in MAGIC:
        if data.startswith(magic):
            if kind in ("gzip", "bzip2", "xz", "zstd"):
                return f"compressed:{kind}"
            if kind == "zip":
                return _zip_flavour(data)
            return kind
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data[257:262] == b"ustar":
        return "tar"
    return None


def _zip_flavour(data: bytes) -> str:
    """Office files and EPUB are zip archives: tell them apart by the members they must have."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if "word/document.xml" in names:
                return "docx"
            if "xl/workbook.xml" in names:
                return "xlsx"
            if "mimetype" in names:
                with zf.open("mimetype") as fh:
                    if fh.read(64).strip() == b"application/epub+zip":
                        return "epub"
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        pass
    return "zip"


def require(module: str, package: str, extra: str, what: str) -> object:
    """Import an optional dependency, or raise MissingExtraError naming the pip extra that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(package, extra, what) from exc
