"""Turning a task context (str, list or dict) into prompt text and into retrieval chunks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..tasks.base import Context


def render_context(context: Context) -> str:
    """One text for methods that read the context linearly; dict keys and list indices become headers."""
    if isinstance(context, str):
        return context
    if isinstance(context, dict):
        return "\n\n".join(f"=== {key} ===\n{value}" for key, value in context.items())
    return "\n\n".join(f"=== item {i} ===\n{value}" for i, value in enumerate(context))


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable piece of the context. ``source`` is the dict key or list index it came from."""

    index: int
    text: str
    source: str | None = None


def _units(text: str, max_chars: int) -> Iterator[str]:
    """Lines of ``text``; a line longer than ``max_chars`` is split at spaces."""
    for line in text.split("\n"):
        while len(line) > max_chars:
            cut = line.rfind(" ", max_chars // 2, max_chars)
            if cut <= 0:
                cut = max_chars
            yield line[:cut]
            line = line[cut:].lstrip(" ")
        yield line


def _pack(text: str, max_chars: int) -> Iterator[str]:
    """Consecutive lines grouped into pieces of at most ``max_chars`` characters."""
    buf: list[str] = []
    size = 0
    for unit in _units(text, max_chars):
        if buf and size + len(unit) + 1 > max_chars:
            piece = "\n".join(buf).strip("\n")
            if piece:
                yield piece
            buf, size = [], 0
        buf.append(unit)
        size += len(unit) + 1
    piece = "\n".join(buf).strip("\n")
    if piece:
        yield piece


def chunk_context(context: Context, max_chars: int) -> list[Chunk]:
    """Chunks of whole lines (records, paragraphs) of about ``max_chars``; keyed items never mix."""
    chunks: list[Chunk] = []
    if isinstance(context, str):
        for piece in _pack(context, max_chars):
            chunks.append(Chunk(len(chunks), piece))
        return chunks
    pairs = context.items() if isinstance(context, dict) else ((f"item {i}", v) for i, v in enumerate(context))
    for key, value in pairs:
        header = f"=== {key} ===\n"
        for piece in _pack(value, max(max_chars - len(header), 100)):
            chunks.append(Chunk(len(chunks), header + piece, str(key)))
    return chunks
