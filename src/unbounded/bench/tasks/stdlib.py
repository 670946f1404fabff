"""Text that every Python installation carries: the standard library's source and its prose.

The benchmark must build real-looking haystacks and codebases without downloading anything, so it
reads them from the running interpreter's standard library. The result is deterministic for a
given Python version (recorded in item metadata), which is what reproducibility needs.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import sys
import sysconfig
from dataclasses import dataclass

_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}
_TEST_DIRS = {"test", "tests", "idle_test"}


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One ``.py`` file of the standard library; ``path`` is relative to the stdlib root, with '/'."""

    path: str
    abspath: str
    size: int
    is_test: bool


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"


def stdlib_root() -> str:
    return sysconfig.get_paths()["stdlib"]


@functools.cache
def source_files() -> tuple[SourceFile, ...]:
    """Every ``.py`` file under the stdlib root, sorted by path (the order is part of determinism)."""
    root = stdlib_root()
    found: list[SourceFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        rel_dir = os.path.relpath(dirpath, root)
        parts = [] if rel_dir == "." else rel_dir.split(os.sep)
        is_test = any(p in _TEST_DIRS for p in parts)
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            abspath = os.path.join(dirpath, name)
            try:
                size = os.path.getsize(abspath)
            except OSError:
                continue
            found.append(SourceFile("/".join([*parts, name]), abspath, size, is_test))
    found.sort(key=lambda f: f.path)
    return tuple(found)


def read_source(file: SourceFile) -> str | None:
    """The file's text, or None when it is not UTF-8 (a few test fixtures use other encodings)."""
    try:
        with open(file.abspath, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError):
        return None


_PROSE_MIN_CHARS = 80
_BAD_PROSE = re.compile(r">>>|::|\bmagic\b|^\s*[:@]|\.\.\. |[{}]|\w+\(\w*\)\s*->", re.IGNORECASE)


def _is_prose(paragraph: str) -> bool:
    """Keep paragraphs that read as English sentences, not code, tables or parameter lists."""
    if len(paragraph) < _PROSE_MIN_CHARS or _BAD_PROSE.search(paragraph):
        return False
    letters = sum(c.isalpha() or c == " " for c in paragraph)
    if letters < 0.85 * len(paragraph):
        return False
    return paragraph[0].isupper() and paragraph.rstrip()[-1] in ".!?"


def _paragraphs(text: str) -> list[str]:
    out = []
    for block in re.split(r"\n\s*\n", text):
        para = " ".join(block.split())
        if _is_prose(para):
            out.append(para)
    return out


@functools.cache
def prose_paragraphs() -> tuple[str, ...]:
    """English paragraphs from stdlib docstrings and ``pydoc_data`` help topics, in a fixed order.

    The harvest parses the non-test stdlib once per process (a few seconds) and is cached.
    Paragraphs mentioning "magic" are dropped so that no haystack text resembles a needle.
    """
    seen: set[str] = set()
    out: list[str] = []

    def add(paras: list[str]) -> None:
        for p in paras:
            if p not in seen:
                seen.add(p)
                out.append(p)

    try:
        from pydoc_data.topics import topics

        for key in sorted(topics):
            add(_paragraphs(topics[key]))
    except ImportError:  # pragma: no cover - some distributions strip pydoc_data
        pass
    for file in source_files():
        if file.is_test:
            continue
        text = read_source(file)
        if text is None:
            continue
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    add(_paragraphs(doc))
    if not out:  # pragma: no cover - a stripped interpreter; the noise haystack still works
        raise RuntimeError("no prose found in this Python's standard library")
    return tuple(out)
