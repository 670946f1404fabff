"""Which paths of a folder or an archive load: include/exclude globs, skipped-by-default folders, .gitignore.

Patterns are gitignore-style (``pathspec``): ``*.py`` at any depth, ``docs/`` a folder, ``/x`` at the
top only, ``**`` any depth. ``.gitignore`` files apply below the folder that holds them, deeper ones
overriding shallower ones, and a folder they ignore is not entered (as git does).
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ContextError
from .options import LoadOptions

if TYPE_CHECKING:
    import pathspec

IGNORED = "ignored by .gitignore"
EXCLUDED = "excluded by a pattern"
NOT_INCLUDED = "not matching include"


def _spec(lines: Any) -> pathspec.GitIgnoreSpec:
    try:
        import pathspec  # imported on first use: a context that is not a folder never needs it
    except ImportError as exc:
        raise ContextError("loading a folder needs pathspec, a dependency of unbounded: pip install pathspec") from exc
    return pathspec.GitIgnoreSpec.from_lines(lines)


def compile_globs(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec | None:
    return _spec(patterns) if patterns else None


class PathFilter:
    """The include/exclude/skip-dirs part, shared by folders and archives. Counts what it leaves out."""

    def __init__(self, options: LoadOptions, excluded: Counter[str]) -> None:
        self.options = options
        self.include = compile_globs(options.include)
        self.exclude = compile_globs(options.exclude)
        self.excluded = excluded
        self._named = {part for pattern in options.include for part in pattern.strip("/").split("/")}

    def skip_dir_reason(self, rel: str) -> str | None:
        """Why the folder ``rel`` is not entered (a skip-list reason), or None. Exclusions are counted."""
        name = rel.rsplit("/", 1)[-1]
        if name in self.options.skip_dirs and name not in self._named:
            return "vendored or build folder, skipped by default (include it with include=[" + repr(name + "/**") + "])"
        if self.exclude is not None and self.exclude.match_file(rel + "/"):
            self.excluded[EXCLUDED] += 1
            return ""
        return None

    def keep_file(self, rel: str) -> bool:
        """Whether the file ``rel`` loads (its folders already passed); counts the ones left out."""
        if self.exclude is not None and self.exclude.match_file(rel):
            self.excluded[EXCLUDED] += 1
            return False
        if self.include is not None and not self.include.match_file(rel):
            self.excluded[NOT_INCLUDED] += 1
            return False
        return True

    def keep_member(self, rel: str) -> tuple[str, str] | None:
        """For an archive member: None to load it, else ``(path, reason)`` — the folder or member left
        out, and a skip-list reason ("" when it is left out quietly, and counted)."""
        parts = rel.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            reason = self.skip_dir_reason(folder)
            if reason is not None:
                return folder, reason
        return None if self.keep_file(rel) else (rel, "")


class GitIgnores:
    """The ``.gitignore`` files met on the way down a folder: (folder relative to the root, spec)."""

    def __init__(self, chain: tuple[tuple[str, pathspec.GitIgnoreSpec], ...] = ()) -> None:
        self.chain = chain

    @classmethod
    def at_root(cls, root: Path) -> GitIgnores:
        lines = _read_lines(root / ".git" / "info" / "exclude")
        return cls((("", _spec(lines)),)) if lines else cls()

    def enter(self, folder: Path, rel: str) -> GitIgnores:
        lines = _read_lines(folder / ".gitignore")
        if not lines:
            return self
        return GitIgnores((*self.chain, (rel, _spec(lines))))

    def ignored(self, rel: str, is_dir: bool) -> bool:
        verdict = False
        for base, spec in self.chain:
            if base and not rel.startswith(base + "/"):
                continue
            sub = rel[len(base) + 1 :] if base else rel
            result = spec.check_file(sub + "/" if is_dir else sub)
            if result.include is not None:
                verdict = bool(result.include)
        return verdict


def _read_lines(path: Path) -> list[str]:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO named .gitignore would block the read
            return []
        with open(path, encoding="utf-8", errors="replace") as fh:
            return [line for line in fh.read(1024 * 1024).splitlines() if line.strip()]
    except OSError:
        return []
