"""``.zip`` and ``.tar`` (plain, gz, bz2, xz, zst) archives, read as folders without extracting anything.

Members are read into memory one at a time through the same caps as files: each at most
``max_file_bytes``, all together at most ``max_decompressed_bytes`` (counted on the bytes actually
produced, never on the sizes an archive claims), at most ``max_members`` of them. Links, devices and
encrypted members are listed as skipped; member paths are made relative (no ``/`` or ``..``).
Members load by their own format, so an archive can hold PDFs, CSVs or another archive (up to
``max_depth`` levels).
"""

from __future__ import annotations

import posixpath
import stat
import tarfile
import zipfile
from typing import IO

from ..errors import ContextError
from .base import InputTooLargeError, LoadResult, LoadState, SkippedFile, Source, TotalCapError
from .compression import open_decompressed, read_capped
from .filters import PathFilter
from .options import format_bytes


def member_key(name: str) -> str:
    """A member's path made relative and tidy: no leading ``/``, no ``.`` or ``..`` parts."""
    parts = [p for p in posixpath.normpath(name.replace("\\", "/")).split("/") if p not in ("", ".", "..")]
    return "/".join(parts)


class _Members:
    """The running caps of one archive."""

    def __init__(self, src: Source, state: LoadState) -> None:
        self.src = src
        self.state = state
        self.result = LoadResult({}, tree=True)
        self.filter = PathFilter(state.options, self.result.excluded)
        self.expanded = 0
        self.count = 0
        self.stopped: str | None = None
        self.reported: set[str] = set()  # folders already listed as skipped

    def admit(self, name: str, size: int) -> str | None:
        """The member's key if it should be read, else None (the reason is recorded)."""
        key = member_key(name)
        if not key:
            return None
        if self.stopped is not None:
            return None
        self.count += 1
        if self.count > self.state.options.max_members:
            self.stopped = (
                f"archive has more than {self.state.options.max_members:,} members: the rest were not read "
                "(raise max_members)"
            )
            return None
        left_out = self.filter.keep_member(key)
        if left_out is not None:
            path, reason = left_out
            if reason and path not in self.reported:
                self.reported.add(path)
                self.skip(path, reason)
            return None
        if size > self.state.options.max_file_bytes:
            self.skip(
                key,
                f"too big: {format_bytes(size)} (the max_file_bytes cap is {format_bytes(self.state.options.max_file_bytes)})",
            )
            return None
        return key

    def read(self, key: str, stream: IO[bytes]) -> bytes | None:
        """The member's bytes, or None when a cap refused it (recorded: a skip, or the end of the archive)."""
        opts = self.state.options
        remaining = opts.max_decompressed_bytes - self.expanded
        cap = min(opts.max_file_bytes, remaining)
        try:
            data = read_capped(stream, max(cap, 0), self.state, f"member {key!r}")
        except TotalCapError as exc:
            self.stopped = str(exc)
            return None
        except InputTooLargeError:
            if cap == remaining:
                self.stopped = (
                    f"the archive expands past the cap of {format_bytes(opts.max_decompressed_bytes)} "
                    "(a decompression bomb?): the rest was not read; raise max_decompressed_bytes if it is genuine"
                )
            else:
                self.skip(key, f"too big: expands past the max_file_bytes cap of {format_bytes(opts.max_file_bytes)}")
            return None
        self.expanded += len(data)
        return data

    def load(self, key: str, data: bytes) -> None:
        from .dispatch import load_guarded

        part = load_guarded(Source.of_bytes(key, data), self.state, self.result.skipped, key)
        if part is not None:
            self.result.merge(part, key)

    def skip(self, key: str, reason: str) -> None:
        self.result.skipped.append(SkippedFile(key, reason))

    def finish(self) -> LoadResult:
        if self.stopped:
            self.result.skipped.append(SkippedFile("", self.stopped))
        return self.result


def load_zip(src: Source, state: LoadState) -> LoadResult:
    inner = state.nested()
    members = _Members(src, inner)
    with src.open() as fh:
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ContextError(f"damaged zip archive ({exc}); check it with 'unzip -t'") from exc
        with zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    key = member_key(info.filename)
                    members.skip(key, "a symlink inside the archive (not followed)")
                    continue
                if info.flag_bits & 0x1:
                    members.skip(member_key(info.filename), "encrypted member: a password is needed (unzip it first)")
                    continue
                key = members.admit(info.filename, info.file_size)
                if key is None:
                    if members.stopped:
                        break
                    continue
                try:
                    with zf.open(info) as stream:
                        data = members.read(key, stream)
                except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
                    members.skip(key, f"damaged member ({exc})")
                    continue
                if data is None:
                    if members.stopped:
                        break
                    continue
                members.load(key, data)
    return members.finish()


def load_tar(src: Source, state: LoadState) -> LoadResult:
    inner = state.nested()
    members = _Members(src, inner)
    with src.open() as raw:
        stream: IO[bytes] = raw
        if src.name.lower().endswith((".zst", ".zstd", ".tzst")):
            stream = open_decompressed("zstd", raw)
        try:
            _read_tar(stream, members)
        except tarfile.ReadError as exc:
            if members.count == 0:
                raise ContextError(f"damaged tar archive ({exc}); check it with 'tar -tf'") from exc
            members.skip("", f"the archive is damaged or truncated after {members.count} member(s) ({exc})")
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            members.skip("", f"the archive is damaged or truncated after {members.count} member(s) ({exc})")
        except Exception as exc:  # zstandard's errors are not OSError
            if not type(exc).__module__.startswith("zstandard"):
                raise
            members.skip("", f"damaged zstd data after {members.count} member(s) ({exc})")
    return members.finish()


def _read_tar(stream: IO[bytes], members: _Members) -> None:
    cap = members.state.options.max_decompressed_bytes
    with tarfile.open(fileobj=stream, mode="r|*") as tf:  # forward only: nothing is seeked or extracted
        for info in tf:
            if not info.isreg():
                if not info.isdir():
                    what = "a link" if info.issym() or info.islnk() else "not a regular file"
                    members.skip(member_key(info.name), f"{what} inside the archive (not followed)")
                continue
            key = members.admit(info.name, info.size)
            if key is None:
                # Passing over a member still decompresses it: its size counts against the cap too.
                members.expanded += info.size
                if members.expanded > cap and not members.stopped:
                    members.stopped = (
                        f"the archive expands past the cap of {format_bytes(cap)}: the rest was not read; "
                        "raise max_decompressed_bytes if it is genuine"
                    )
                if members.stopped:
                    return
                continue
            fh = tf.extractfile(info)
            data = members.read(key, fh) if fh is not None else None
            if data is None:
                if members.stopped:
                    return
                continue
            members.load(key, data)


def check_zip_expansion(fh: IO[bytes], state: LoadState) -> None:
    """Refuse a zip-based document (DOCX, XLSX, EPUB) whose members claim to expand past the cap.

    ``zipfile`` never yields more than a member's declared size, so the declared sizes bound what a
    library reading the document can be made to hold."""
    try:
        with zipfile.ZipFile(fh) as zf:
            declared = sum(i.file_size for i in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ContextError(f"damaged file: not a valid zip container ({exc})") from exc
    cap = state.options.max_decompressed_bytes
    if declared > cap:
        raise InputTooLargeError(
            f"expands to {format_bytes(declared)}, past the cap of {format_bytes(cap)} (a decompression bomb?); "
            "refused: raise max_decompressed_bytes if it is genuine"
        )
