"""Saved llama.cpp states of evaluated prompt prefixes, so a new process starts warm.

A cold run of the embedded model spends most of its first turn evaluating the same system prompt
and worked examples as every run before it. The first call on a freshly loaded context saves the
KV state of that prefix (``llama_state_seq_get_data``) here; the next process whose first call
starts with the same tokens loads it (``llama_state_seq_set_data``) and evaluates only the rest.

What a state file is keyed by, and checked against before it is used (any mismatch, a short or
corrupt file, or a state llama.cpp refuses, and the file is deleted and the prefix evaluated and
saved again; a file is never trusted):

* the model file's SHA-256 (the catalogue's, or computed once per file and remembered);
* the llama.cpp version and the settings that change the state (``n_ctx``, ``n_batch``,
  ``flash_attn``, the extra ``llama_kwargs`` such as KV cache types);
* the prefix tokens themselves: their hash names the file, the file holds the token list, and it
  must equal the start of the new prompt token for token;
* the payload's SHA-256, recorded in the header.

Files live in ``<cache dir>/llama-state`` (``$UNBOUNDED_STATE_DIR`` overrides), are written to a
temporary name and renamed into place (safe with several processes), and are kept under a size
cap by deleting the least recently used (a load refreshes a file's time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATE_DIR_ENV = "UNBOUNDED_STATE_DIR"
DEFAULT_MAX_BYTES = 1 << 30
#: A prefix shorter than this costs less to evaluate than a file read and a state restore.
MIN_PREFIX_TOKENS = 128
MAGIC = b"UNBOUNDED-KV\x00\x01"
_SUFFIX = ".kvstate"
_STALE_TEMP_S = 3600.0


def state_dir() -> Path:
    """Where saved states live: ``$UNBOUNDED_STATE_DIR``, else ``llama-state`` in the cache dir."""
    override = os.environ.get(STATE_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    from .weights import cache_root

    return cache_root() / "llama-state"


@dataclass(frozen=True)
class StateKey:
    """Everything a saved state depends on besides the prefix tokens."""

    model_sha256: str
    llama_cpp: str
    settings: tuple[tuple[str, Any], ...]

    def identity(self, tokens: Sequence[int]) -> dict[str, Any]:
        return {
            "model_sha256": self.model_sha256,
            "llama_cpp": self.llama_cpp,
            "settings": [list(kv) for kv in self.settings],
            "n_tokens": len(tokens),
            "tokens_sha256": tokens_sha256(tokens),
        }


def tokens_sha256(tokens: Sequence[int]) -> str:
    return hashlib.sha256(struct.pack(f"<{len(tokens)}i", *tokens)).hexdigest()


@dataclass(frozen=True)
class Loaded:
    """A verified state: its payload and where it came from."""

    payload: bytes
    path: Path
    seconds: float


class StateStore:
    """The folder of saved states, bounded to ``max_bytes``."""

    def __init__(self, root: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        self.root = Path(root) if root is not None else state_dir()
        self.max_bytes = max_bytes

    def path_for(self, key: StateKey, tokens: Sequence[int]) -> Path:
        ident = json.dumps(key.identity(tokens), sort_keys=True).encode()
        return self.root / (hashlib.sha256(ident).hexdigest()[:40] + _SUFFIX)

    # -- loading ------------------------------------------------------------------------------------
    def load(self, key: StateKey, tokens: Sequence[int]) -> Loaded | None:
        """The payload saved for exactly these prefix tokens under ``key``, verified; else None.

        A file that exists but fails a check is deleted (and so replaced by the next save).
        """
        path = self.path_for(key, tokens)
        started = time.perf_counter()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("warm start: cannot read %s (%s); evaluating the prefix instead", path, exc)
            return None
        problem, payload = _verify(data, key, tokens)
        if problem is not None:
            log.warning("warm start: ignoring %s: %s; it will be replaced", path.name, problem)
            self.discard(path)
            return None
        try:
            os.utime(path)  # most recently used
        except OSError:
            pass
        return Loaded(payload, path, time.perf_counter() - started)

    def discard(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("warm start: cannot delete %s: %s", path, exc)

    # -- saving -------------------------------------------------------------------------------------
    def save(self, key: StateKey, tokens: Sequence[int], payload: bytes) -> Path | None:
        """Write the state atomically, then trim the folder to its cap; None when it does not fit."""
        if len(payload) + 4096 > self.max_bytes:
            log.info("warm start: a %d-byte state is over the %d-byte cap; not saved", len(payload), self.max_bytes)
            return None
        path = self.path_for(key, tokens)
        header = {
            **key.identity(tokens),
            "payload_bytes": len(payload),
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
            "created": time.time(),
        }
        head = json.dumps(header, sort_keys=True).encode()
        token_bytes = struct.pack(f"<{len(tokens)}i", *tokens)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".", suffix=_SUFFIX + ".tmp", dir=self.root)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(MAGIC)
                    fh.write(struct.pack("<I", len(head)))
                    fh.write(head)
                    fh.write(token_bytes)
                    fh.write(payload)
                os.replace(tmp, path)
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("warm start: could not save a state in %s: %s", self.root, exc)
            return None
        self.trim(keep=path)
        return path

    def trim(self, keep: Path | None = None) -> None:
        """Delete the least recently used states until the folder is under the cap (never ``keep``),
        and temporary files left by a process that died while writing."""
        entries: list[tuple[float, int, Path]] = []
        now = time.time()
        try:
            listing = list(self.root.iterdir())
        except OSError:
            return
        for p in listing:
            try:
                st = p.stat()
            except OSError:
                continue
            if p.name.endswith(_SUFFIX + ".tmp"):
                if now - st.st_mtime > _STALE_TEMP_S:
                    self.discard(p)
                continue
            if p.suffix == _SUFFIX:
                entries.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in entries)
        for _, size, p in sorted(entries):
            if total <= self.max_bytes:
                break
            if p == keep:
                continue
            self.discard(p)
            total -= size

    def files(self) -> list[Path]:
        try:
            return sorted(p for p in self.root.iterdir() if p.suffix == _SUFFIX)
        except OSError:
            return []


def _verify(data: bytes, key: StateKey, tokens: Sequence[int]) -> tuple[str | None, bytes]:
    """(None, payload) for a good file, else (what is wrong, b"")."""
    if not data.startswith(MAGIC):
        return "not a saved state (bad magic)", b""
    pos = len(MAGIC)
    if len(data) < pos + 4:
        return "truncated header", b""
    (head_len,) = struct.unpack_from("<I", data, pos)
    pos += 4
    try:
        header = json.loads(data[pos : pos + head_len])
    except ValueError:
        return "unreadable header", b""
    pos += head_len
    if not isinstance(header, dict):
        return "unreadable header", b""
    expected = key.identity(tokens)
    for field, value in expected.items():
        if header.get(field) != value:
            return f"{field} differs (saved {header.get(field)!r}, now {value!r})", b""
    n = len(tokens)
    saved = data[pos : pos + 4 * n]
    if len(saved) != 4 * n or list(struct.unpack(f"<{n}i", saved)) != list(tokens):
        return "its tokens are not the start of this prompt", b""
    pos += 4 * n
    payload = data[pos:]
    if len(payload) != header.get("payload_bytes"):
        return f"payload is {len(payload)} bytes, the header says {header.get('payload_bytes')}", b""
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        return "payload checksum mismatch (corrupt)", b""
    return None, payload


# -- the model file's hash ------------------------------------------------------------------------

_HASHES_LOCK = threading.Lock()


def model_sha256(path: Path, known: str | None = None) -> str:
    """The SHA-256 of a model file: ``known`` (the catalogue's), else computed once and remembered
    in the state folder keyed by path, size and modification time."""
    if known:
        return known
    st = path.stat()
    ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo = state_dir() / "model-hashes.json"
    with _HASHES_LOCK:
        table = _read_json(memo)
        if isinstance(table.get(ident), str):
            return table[ident]
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(4 << 20):
                digest.update(chunk)
        value = digest.hexdigest()
        table[ident] = value
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".hashes.", dir=memo.parent)
            with os.fdopen(fd, "w") as fh:
                json.dump(table, fh)
            os.replace(tmp, memo)
        except OSError as exc:
            log.warning("warm start: could not remember the hash of %s: %s", path, exc)
        return value


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def settings_key(settings: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The state-changing settings as a sorted, JSON-friendly tuple."""
    return tuple(
        sorted((str(k), v if isinstance(v, int | float | str | bool) else repr(v)) for k, v in settings.items())
    )


# -- saving off the model's thread ----------------------------------------------------------------

_WRITERS: list[threading.Thread] = []
_WRITERS_LOCK = threading.Lock()


def save_in_background(store: StateStore, key: StateKey, tokens: Sequence[int], payload: bytes) -> threading.Thread:
    """``store.save`` on a thread of its own, so generation does not wait for the disk.

    The thread is not a daemon: a process that ends right after its first call still finishes
    writing the state (a fraction of a second) before it exits.
    """
    thread = threading.Thread(
        target=store.save, args=(key, list(tokens), payload), name="unbounded-kv-save", daemon=False
    )
    with _WRITERS_LOCK:
        _WRITERS[:] = [t for t in _WRITERS if t.is_alive()]
        _WRITERS.append(thread)
    thread.start()
    return thread


def wait_for_saves(timeout: float | None = None) -> None:
    """Wait until every state being saved is on disk."""
    with _WRITERS_LOCK:
        pending = list(_WRITERS)
    for thread in pending:
        thread.join(timeout)
