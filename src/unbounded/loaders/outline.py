"""The short table of contents the root model reads about a loaded context, bounded whatever its size.

Two forms: ``full_outline`` (a few labelled lines: counts by kind, the largest documents, the
tables and their columns, how pages and tables are addressed, documents with problems, what was left
out) and ``compact_outline`` (one plain paragraph for small models, which copy what they see: no
labels to misread). Both cut every list and the whole text at fixed sizes, so a million files cost
the prompt no more than ten.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..repl.doc_helpers import part_mark
from .base import DocumentInfo, SkippedFile

if TYPE_CHECKING:
    from ..context import ContextInfo

FULL_LIMIT = 2500
COMPACT_LIMIT = 400
LINE_LIMIT = 500
PAGED = ("pdf", "epub")
TABLES = ("csv", "tsv", "parquet", "arrow", "json", "jsonl", "sqlite", "xlsx")
MULTI_TABLE = ("sqlite", "xlsx")


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def kind_counts(documents: Sequence[DocumentInfo]) -> Counter[str]:
    return Counter(d.kind for d in documents)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _join(items: Sequence[str], limit: int, total: int | None = None) -> str:
    """``a, b, c … and N more`` within ``limit`` characters."""
    out: list[str] = []
    used = 0
    for item in items:
        if used + len(item) + 2 > limit and out:
            break
        out.append(item)
        used += len(item) + 2
    rest = (total if total is not None else len(items)) - len(out)
    return "; ".join(out) + (f"; … and {rest:,} more" if rest > 0 else "")


def _is_table(doc: DocumentInfo) -> bool:
    return doc.rows is not None or doc.tables is not None


def _name(doc: DocumentInfo, source: str | None) -> str:
    return repr(doc.path) if doc.path else repr(source.rsplit("/", 1)[-1]) if source else "the context"


def _kind_summary(documents: Sequence[DocumentInfo]) -> list[str]:
    """``pdf 3 (41 pages)``, ``text 250 (.py 120, .md 80, …)``, ``csv 2 (1,200 rows)``… most common first."""
    by_kind: dict[str, list[DocumentInfo]] = {}
    for doc in documents:
        by_kind.setdefault(doc.kind, []).append(doc)
    parts = []
    for kind, docs in sorted(by_kind.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        extra = []
        if kind in PAGED:
            extra.append(plural(sum(d.pages or 0 for d in docs), "page" if kind == "pdf" else "section"))
        if kind in MULTI_TABLE:
            extra.append(plural(sum(len(d.tables or ()) for d in docs), "table"))
        if any(d.rows is not None for d in docs):
            extra.append(plural(sum(d.rows or 0 for d in docs), "row"))
        if kind == "text":
            exts = Counter(d.extension or "no extension" for d in docs)
            common = sorted(exts.items(), key=lambda kv: (-kv[1], kv[0]))[:6]
            shown = ", ".join(f"{e} {n:,}" for e, n in common)
            extra.append(shown + (", …" if len(exts) > 6 else ""))
        parts.append(f"{kind} {len(docs):,}" + (f" ({', '.join(extra)})" if extra else ""))
    return parts


def _doc_facts(doc: DocumentInfo) -> list[str]:
    facts = [doc.kind]
    if doc.pages is not None:
        facts.append(plural(doc.pages, "section" if doc.kind == "epub" else "page"))
    if doc.tables is not None:
        facts.append(plural(len(doc.tables), "table"))
    if doc.rows is not None:
        facts.append(plural(doc.rows, "row"))
    facts.append(plural(doc.chars, "char"))
    return facts


def _table_entry(doc: DocumentInfo, source: str | None, columns: int = 8) -> str:
    def cols(names: Sequence[str]) -> str:
        return ", ".join(names[:columns]) + (", …" if len(names) > columns else "")

    if doc.tables is not None:
        inner = ", ".join(f"{t.name!r} ({plural(t.rows, 'row')}: {cols(t.columns)})" for t in doc.tables[:6])
        more = f", … {len(doc.tables) - 6} more" if len(doc.tables) > 6 else ""
        return f"{_name(doc, source)} tables {inner}{more}"
    return f"{_name(doc, source)} ({plural(doc.rows or 0, 'row')}: {cols(doc.columns or [])})"


def _skip_summary(skipped: Sequence[SkippedFile], limit: int = 4) -> str:
    counts = Counter(s.category for s in skipped)
    shown = ", ".join(f"{n:,} {why}" for why, n in counts.most_common(limit))
    return shown + (", …" if len(counts) > limit else "")


def help_lines(documents: Sequence[DocumentInfo]) -> list[str]:
    kinds = {d.kind for d in documents}
    lines = []
    if kinds & set(PAGED):
        unit = f"'{part_mark('N')}'" + (f" ('{part_mark('N', 'section')}' in epub)" if "epub" in kinds else "")
        lines.append(
            f"pages: each page of a paged document starts with a line {unit}; "
            "page(key, n), pages(key) and page_of(key, offset) address them"
        )
    if any(_is_table(d) for d in documents):
        lines.append(
            "records: tables are lists of dicts, one per row (a SQLite/XLSX file: {table: rows}); table(key) or table(key, name) returns one, tables() lists them"
        )
    if "notebook" in kinds:
        lines.append(
            "notebooks: each cell starts with a line '# %% [code] cell N' (or [markdown]); outputs follow under '# %% [output] cell N'"
        )
    return lines


def full_outline(info: ContextInfo) -> list[str]:
    """The labelled lines of the full description (empty for plain data with no documents)."""
    docs = info.documents
    lines: list[str] = []
    if not docs and not info.excluded:
        return lines
    if len(docs) == 1 and not docs[0].path:
        doc = docs[0]
        facts = _doc_facts(doc)
        if doc.title:
            facts.append(f"title {doc.title!r}")
        facts.extend(doc.notes[:3])
        lines.append("document: " + ", ".join(facts))
    elif docs:
        lines.append(f"contents: {len(docs):,} documents: " + ", ".join(_kind_summary(docs)))
        largest = sorted(docs, key=lambda d: -d.chars)[:5]
        if len(docs) > 1:
            lines.append(
                "largest: "
                + _join([f"{_name(d, info.source)} ({', '.join(_doc_facts(d))})" for d in largest], LINE_LIMIT)
            )
    tables = [d for d in docs if _is_table(d)]
    if tables:
        lines.append(
            "tables: " + _join([_table_entry(d, info.source) for d in tables[:20]], LINE_LIMIT - 60, len(tables))
        )
    lines.extend(help_lines(docs))
    problems = [d for d in docs if d.error]
    if problems:
        lines.append(
            "problems: "
            + _join([f"{_name(d, info.source)}: {d.error}" for d in problems[:20]], LINE_LIMIT - 60, len(problems))
        )
    if info.excluded:
        lines.append("left out on purpose: " + ", ".join(f"{n:,} {why}" for why, n in sorted(info.excluded.items())))
    out, used = [], 0
    for line in lines:
        line = _cut(line, LINE_LIMIT)
        if used + len(line) > FULL_LIMIT:
            out.append("…")
            break
        out.append(line)
        used += len(line) + 1
    return out


def compact_outline(info: ContextInfo) -> str:
    """One plain paragraph of at most ``COMPACT_LIMIT`` characters; "" for plain data."""
    docs = info.documents
    sentences: list[str] = []
    if len(docs) == 1 and not docs[0].path:
        doc = docs[0]
        if doc.tables is not None:
            tables = ", ".join(f"{t.name} ({plural(t.rows, 'row')})" for t in doc.tables[:5])
            sentences.append(f"A {doc.kind} file with tables {tables}" + (" …" if len(doc.tables) > 5 else ""))
        elif doc.rows is not None:
            cols = ", ".join((doc.columns or [])[:6])
            sentences.append(f"A {doc.kind} table of {plural(doc.rows, 'row')} with columns {cols}")
        elif doc.pages is not None:
            sentences.append(f"A {doc.kind} of {plural(doc.pages, 'page' if doc.kind == 'pdf' else 'section')}")
        elif doc.kind != "text":
            name = doc.kind.upper() if doc.kind in ("html", "docx") else doc.kind
            article = "An" if name[0].lower() in "aeiou" or name == "HTML" else "A"
            sentences.append(f"{article} {name} document" + (f" titled {doc.title!r}" if doc.title else ""))
    elif docs:
        sentences.append("Files: " + ", ".join(_kind_summary(docs)[:5]))
        biggest = max(docs, key=lambda d: d.chars)
        sentences.append(f"Biggest: {biggest.path!r}")
    kinds = {d.kind for d in docs}
    if kinds & set(PAGED):
        sentences.append(f"Each page starts with a line '{part_mark('N', 'page' if 'pdf' in kinds else 'section')}'")
    if any(d.error for d in docs):
        first = next(d for d in docs if d.error)
        sentences.append(f"Problem: {(first.path + ': ') if first.path else ''}{first.error}")
    if info.skipped:
        sentences.append(f"{len(info.skipped):,} skipped ({_skip_summary(info.skipped, 3)})")
    if not sentences:
        return ""
    return _cut(". ".join(s.rstrip(".") for s in sentences) + ".", COMPACT_LIMIT)
