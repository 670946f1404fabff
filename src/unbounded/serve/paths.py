"""Server-side paths: only inside the ``--allow-path`` folders, whatever a request writes.

A path is relative to an allowed folder (tried in the order given) or absolute inside one. It is
resolved — symlinks followed, ``..`` collapsed — before the check, so neither traversal nor a link
that points out gets past it; a folder is then loaded with symlinks leading outside it skipped (the
loaders' default). Nothing is read for a path that is refused, and the refusal does not say whether
the path exists.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .errors import BadRequest, NotFound, PathNotAllowed

MAX_PATHS = 256
MAX_PATH_CHARS = 4096


class PathGuard:
    def __init__(self, roots: Sequence[str | os.PathLike[str]]) -> None:
        self.roots = [Path(r).resolve(strict=True) for r in roots]

    def resolve(self, name: object) -> Path:
        """The real path ``name`` stands for, inside an allowed folder; ``PathNotAllowed`` otherwise."""
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("each path must be a non-empty string", param="paths")
        if len(name) > MAX_PATH_CHARS or "\x00" in name:
            raise BadRequest("a path is too long or holds a NUL character", param="paths")
        if not self.roots:
            raise PathNotAllowed(
                "this server reads no files: start it with --allow-path DIR to let requests name files in DIR",
                param="paths",
            )
        given = Path(name)
        candidates = [given] if given.is_absolute() else [root / given for root in self.roots]
        inside_but_missing = False
        for candidate in candidates:
            try:
                real = candidate.resolve(strict=True)
            except (OSError, RuntimeError):  # missing, a dangling link, a loop
                if self._inside(Path(os.path.normpath(candidate))):
                    inside_but_missing = True
                continue
            if self._inside(real):
                return real
        if inside_but_missing:
            raise NotFound(f"no such file or folder in the allowed folders: {name}", param="paths", code="path_not_found")
        raise PathNotAllowed(
            f"{name!r} is outside the folders this server may read (--allow-path); name a path inside one of them",
            param="paths",
        )

    def resolve_all(self, names: object) -> list[Path]:
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names:
            raise BadRequest("paths must be a non-empty list of strings", param="paths")
        if len(names) > MAX_PATHS:
            raise BadRequest(f"at most {MAX_PATHS} paths per request", param="paths")
        return [self.resolve(n) for n in names]

    def _inside(self, path: Path) -> bool:
        return any(path == root or path.is_relative_to(root) for root in self.roots)

    def relative_name(self, path: Path) -> str:
        """How a resolved path is shown to the model and in listings: relative to its allowed folder."""
        for root in self.roots:
            if path == root:
                return root.name or "."
            if path.is_relative_to(root):
                return str(path.relative_to(root))
        return path.name
