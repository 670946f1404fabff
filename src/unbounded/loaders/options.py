"""How a load is bounded and filtered: globs, folders skipped by default, and the caps on memory."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import ConfigError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

#: Vendored, cache and build folders: skipped wherever they appear unless an include glob names them.
DEFAULT_SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        "node_modules",
        ".venv",
        "venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        "dist",
        "build",
    }
)


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """Options of one load. Globs are gitignore-style and relative to the folder (or archive) loaded:
    ``*.py`` matches at any depth, ``docs/`` a folder, ``/notes.md`` only at the top, ``**`` any depth.

    - ``include``: when given, only files matching one of these load (folders are still walked);
      naming a skipped-by-default folder (``node_modules/**``) brings it back.
    - ``exclude``: files and folders matching one of these are left out.
    - ``gitignore``: honour ``.gitignore`` files (at every level) and ``.git/info/exclude``.
    - ``skip_dirs``: folder names skipped by default (``DEFAULT_SKIP_DIRS``).
    - ``follow_symlinks``: load what a symlink points to outside the folder (never by default:
      such links are listed as skipped; links inside the folder are followed, loops refused).
    - ``notebook_outputs``: keep the text outputs of Jupyter cells.
    - ``fallback_encoding``: decode text that is not UTF-8 with this codec instead of skipping it.
    - ``max_file_bytes``: a file larger than this on disk (or as an archive member) is skipped.
    - ``max_decompressed_bytes``: a compressed file or an archive that expands past this is refused
      (what stands between a decompression bomb and memory).
    - ``max_total_bytes``: all the files of one load together; past it the rest is skipped.
    - ``max_rows``: rows of one table file (all tables of a SQLite or XLSX file together). A CSV or
      JSONL past it loads as text; a Parquet, Arrow, SQLite or XLSX file is refused.
    - ``max_members``: members of one archive.
    - ``max_depth``: archives and compressed layers nested inside each other.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    gitignore: bool = True
    skip_dirs: frozenset[str] = DEFAULT_SKIP_DIRS
    follow_symlinks: bool = False
    notebook_outputs: bool = True
    fallback_encoding: str | None = None
    max_file_bytes: int = 1 * GIB
    max_decompressed_bytes: int = 1 * GIB
    max_total_bytes: int = 8 * GIB
    max_rows: int = 1_000_000
    max_members: int = 100_000
    max_depth: int = 3

    @classmethod
    def build(cls, options: LoadOptions | None = None, **overrides: Any) -> LoadOptions:
        """``options`` (or the defaults) with ``overrides`` applied, checked. Raises ConfigError."""
        base = options if options is not None else cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown load option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for key in ("include", "exclude"):
            if key in overrides:
                overrides[key] = _globs(key, overrides[key])
        if "skip_dirs" in overrides:
            overrides["skip_dirs"] = frozenset(overrides["skip_dirs"] or ())
        built = replace(base, **overrides)
        built.check()
        return built

    def check(self) -> None:
        for name in ("max_file_bytes", "max_decompressed_bytes", "max_total_bytes", "max_rows", "max_members"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.max_depth, int) or self.max_depth < 0:
            raise ConfigError(f"max_depth must be a non-negative integer, got {self.max_depth!r}")
        if self.fallback_encoding is not None:
            import codecs

            try:
                codecs.lookup(self.fallback_encoding)
            except LookupError as exc:
                raise ConfigError(
                    f"unknown fallback_encoding {self.fallback_encoding!r}: use e.g. 'cp1252' or 'latin-1'"
                ) from exc


def _globs(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise ConfigError(f"{name} takes glob patterns (a list of str), got {type(value).__name__}")
    out = tuple(value)
    bad = [v for v in out if not isinstance(v, str) or not v.strip()]
    if bad:
        raise ConfigError(f"{name}: each pattern must be a non-empty string, got {bad[0]!r}")
    return out


def format_bytes(n: int) -> str:
    """``1.5 GB``-style sizes for messages (binary units, short names)."""
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    return f"{n} bytes"


def parse_size(text: str) -> int:
    """``512M``, ``2G``, ``100k`` or a plain number of bytes (for the command line). Raises ValueError."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = 1
    if value and value[-1] in "KMGT":
        scale = {"K": KIB, "M": MIB, "G": GIB, "T": 1024 * GIB}[value[-1]]
        value = value[:-1]
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (use e.g. 512M, 2G or a number of bytes)") from None
    if number <= 0:
        raise ValueError(f"a size must be positive, got {text!r}")
    return int(number * scale)
