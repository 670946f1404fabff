"""A folder as ``{relative path: value}``: walked in sorted order, filtered, every file by its own loader.

Nothing here is fatal to the folder: an unreadable file or folder, a FIFO, socket or device (never
opened: a FIFO would block), a broken link, a symlink loop, a file past a cap, a format whose extra
is missing — each becomes one entry of the skip list with its reason, and the rest still loads.
Symlinks inside the folder are followed (a loop is refused); a symlink that leads outside it is
listed as skipped unless ``follow_symlinks`` is set, and then its documents say where they came from.
Files left out on purpose (``.gitignore``, ``exclude``, ``include``) are counted, not listed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .base import LoadResult, LoadState, SkippedFile, Source
from .dispatch import load_guarded
from .filters import IGNORED, GitIgnores, PathFilter
from .options import format_bytes


@dataclass(slots=True)
class FileEntry:
    rel: str
    path: Path
    size: int
    note: str | None = None


def file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _link_error(exc: OSError) -> str:
    why = exc.strerror or str(exc)
    if exc.errno == errno.ELOOP:
        return f"symlink loop ({why})"
    if exc.errno == errno.ENOENT:
        return f"broken symlink ({why})"
    return f"unreadable: {why}"


def walk_folder(root: Path, state: LoadState, result: LoadResult) -> Iterator[FileEntry]:
    """The files of ``root`` to load, in sorted order (a folder's files before its subfolders).
    Everything left out is recorded in ``result.skipped`` / ``result.excluded`` on the way."""
    options = state.options
    skipped = result.skipped
    paths = PathFilter(options, result.excluded)
    root_real = os.path.realpath(root)
    seen = {_identity(os.stat(root))}
    stack: list[tuple[Path, str, GitIgnores]] = [
        (root, "", GitIgnores.at_root(root) if options.gitignore else GitIgnores())
    ]
    while stack:
        folder, rel_dir, ignores = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            skipped.append(SkippedFile(rel_dir or ".", f"unreadable folder: {exc.strerror or exc}"))
            continue
        if options.gitignore:
            ignores = ignores.enter(folder, rel_dir)
        subfolders: list[tuple[Path, str, GitIgnores]] = []
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            note = None
            try:
                if entry.is_symlink():
                    try:
                        target = os.path.realpath(entry.path, strict=True)
                    except OSError as exc:
                        skipped.append(SkippedFile(rel, _link_error(exc)))
                        continue
                    if target != root_real and not target.startswith(root_real.rstrip(os.sep) + os.sep):
                        if not options.follow_symlinks:
                            skipped.append(
                                SkippedFile(
                                    rel,
                                    f"symlink to outside the folder ({target}): set follow_symlinks=True (--follow-symlinks) to load it",
                                )
                            )
                            continue
                        note = f"via a symlink to {target}, outside the folder"
                    st = os.stat(target)
                else:
                    st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                skipped.append(SkippedFile(rel, f"unreadable: {exc.strerror or exc}"))
                continue
            if stat.S_ISDIR(st.st_mode):
                reason = paths.skip_dir_reason(rel)
                if reason is not None:
                    if reason:
                        skipped.append(SkippedFile(rel, reason))
                    continue
                if ignores.ignored(rel, is_dir=True):
                    result.excluded[IGNORED] += 1
                    continue
                identity = _identity(st)
                if identity in seen:
                    skipped.append(
                        SkippedFile(rel, "symlink loop" if entry.is_symlink() else "the same folder as another path")
                    )
                    continue
                seen.add(identity)
                subfolders.append((Path(entry.path), rel, ignores))
                continue
            if ignores.ignored(rel, is_dir=False):
                result.excluded[IGNORED] += 1
                continue
            if not paths.keep_file(rel):
                continue
            if not stat.S_ISREG(st.st_mode):
                skipped.append(SkippedFile(rel, file_kind(st.st_mode)))
                continue
            if st.st_size > options.max_file_bytes:
                skipped.append(
                    SkippedFile(
                        rel,
                        f"too big: {format_bytes(st.st_size)} (the max_file_bytes cap is {format_bytes(options.max_file_bytes)}; "
                        "raise it with --max-file-size)",
                    )
                )
                continue
            yield FileEntry(rel, Path(entry.path), st.st_size, note)
        stack.extend(reversed(subfolders))


def _identity(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def load_folder(root: Path, state: LoadState) -> LoadResult:
    result = LoadResult({}, tree=True)
    for entry in walk_folder(root, state, result):
        part = load_guarded(Source(entry.rel, path=entry.path, size=entry.size), state, result.skipped, entry.rel)
        if part is None:
            continue
        if entry.note:
            for doc in part.documents:
                doc.notes.append(entry.note)
        result.merge(part, entry.rel)
    return result
