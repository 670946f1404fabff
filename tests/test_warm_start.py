"""The store of saved llama.cpp prefix states: verified before use, replaced when bad, bounded on disk.

These tests write real state files with arbitrary payloads; the embedded model's own save and load
are in ``test_warm_start_local.py`` (slow)."""

from __future__ import annotations

import hashlib
import os
import struct
import time
from pathlib import Path

import pytest

from unbounded.errors import ConfigError
from unbounded.models import warm_start
from unbounded.models.warm_start import StateKey, StateStore, model_sha256, settings_key

KEY = StateKey("a" * 64, "0.3.36", settings_key({"n_ctx": 4096, "n_batch": 512, "flash_attn": False}))
TOKENS = list(range(1000, 1300))
PAYLOAD = os.urandom(64 * 1024)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "states", max_bytes=10 << 20)


def test_a_saved_state_loads_back_exactly(store: StateStore) -> None:
    path = store.save(KEY, TOKENS, PAYLOAD)
    assert path is not None and path.exists() and path.parent == store.root
    loaded = store.load(KEY, TOKENS)
    assert loaded is not None and loaded.payload == PAYLOAD and loaded.path == path
    assert not [p for p in store.root.iterdir() if p.name.endswith(".tmp")]  # written under a temp name, renamed


def test_nothing_saved_means_nothing_loaded(store: StateStore) -> None:
    assert store.load(KEY, TOKENS) is None
    store.save(KEY, TOKENS, PAYLOAD)
    assert store.load(KEY, [*TOKENS, 7]) is None  # another prefix is another file
    assert store.load(KEY, TOKENS[:-1]) is None


@pytest.mark.parametrize(
    "other",
    [
        StateKey("b" * 64, KEY.llama_cpp, KEY.settings),
        StateKey(KEY.model_sha256, "0.3.99", KEY.settings),
        StateKey(KEY.model_sha256, KEY.llama_cpp, settings_key({"n_ctx": 8192, "n_batch": 512, "flash_attn": False})),
    ],
    ids=["model", "llama.cpp version", "settings"],
)
def test_a_state_for_another_model_or_setting_is_never_used(store: StateStore, other: StateKey) -> None:
    store.save(KEY, TOKENS, PAYLOAD)
    # Put KEY's file where `other` would look, as a stale or foreign file might be.
    store.path_for(KEY, TOKENS).rename(store.path_for(other, TOKENS))
    assert store.load(other, TOKENS) is None
    assert store.files() == []  # rejected files are deleted, so the next save replaces them


def test_the_saved_tokens_must_be_the_prompts_own(store: StateStore) -> None:
    other = [t + 1 for t in TOKENS]
    store.save(KEY, other, PAYLOAD)
    store.path_for(KEY, other).rename(store.path_for(KEY, TOKENS))
    assert store.load(KEY, TOKENS) is None
    assert store.files() == []


def _rewrite(path: Path, change: str) -> None:
    data = bytearray(path.read_bytes())
    if change == "flip a payload byte":
        data[-100] ^= 0xFF
    elif change == "truncate":
        del data[-1000:]
    elif change == "bad magic":
        data[0:4] = b"GGUF"
    elif change == "garbage header":
        data[len(warm_start.MAGIC) + 4 : len(warm_start.MAGIC) + 12] = b"\xff" * 8
    elif change == "empty":
        data = bytearray()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("change", ["flip a payload byte", "truncate", "bad magic", "garbage header", "empty"])
def test_a_damaged_file_is_ignored_and_replaced(
    store: StateStore, change: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = store.save(KEY, TOKENS, PAYLOAD)
    assert path is not None
    _rewrite(path, change)
    with caplog.at_level("WARNING", logger="unbounded.models.warm_start"):
        assert store.load(KEY, TOKENS) is None
    assert not path.exists()
    assert "ignoring" in caplog.text and "replaced" in caplog.text
    store.save(KEY, TOKENS, PAYLOAD)
    loaded = store.load(KEY, TOKENS)
    assert loaded is not None and loaded.payload == PAYLOAD


def test_the_header_records_what_the_file_is(store: StateStore) -> None:
    path = store.save(KEY, TOKENS, PAYLOAD)
    assert path is not None
    data = path.read_bytes()
    assert data.startswith(warm_start.MAGIC)
    (n,) = struct.unpack_from("<I", data, len(warm_start.MAGIC))
    import json

    header = json.loads(data[len(warm_start.MAGIC) + 4 : len(warm_start.MAGIC) + 4 + n])
    assert header["n_tokens"] == len(TOKENS) and header["model_sha256"] == KEY.model_sha256
    assert header["payload_sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert header["settings"] == [["flash_attn", False], ["n_batch", 512], ["n_ctx", 4096]]


def test_the_folder_stays_under_its_cap_least_recently_used_first(tmp_path: Path) -> None:
    each = 100 * 1024
    store = StateStore(tmp_path / "s", max_bytes=int(3.5 * each))
    paths = []
    for i in range(3):
        paths.append(store.save(KEY, [i, *TOKENS], os.urandom(each)))
        old = time.time() - 100 + i
        os.utime(paths[-1], (old, old))  # type: ignore[arg-type]
    assert store.load(KEY, [0, *TOKENS]) is not None  # a load makes the oldest the most recent
    store.save(KEY, [3, *TOKENS], os.urandom(each))
    left = {p.name for p in store.files()}
    assert paths[1] is not None and paths[1].name not in left  # the least recently used went
    assert paths[0] is not None and paths[0].name in left
    assert sum(p.stat().st_size for p in store.files()) <= store.max_bytes


def test_a_state_over_the_cap_is_not_saved(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s", max_bytes=10_000)
    assert store.save(KEY, TOKENS, os.urandom(20_000)) is None
    assert store.files() == []


def test_stale_temporary_files_are_cleaned_up(store: StateStore) -> None:
    store.root.mkdir(parents=True)
    stale = store.root / ".abandoned.kvstate.tmp"
    stale.write_bytes(b"x" * 10)
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = store.root / ".writing.kvstate.tmp"
    fresh.write_bytes(b"y")
    store.save(KEY, TOKENS, PAYLOAD)
    assert not stale.exists() and fresh.exists()  # another process may still be writing that one


def test_saving_in_the_background(store: StateStore) -> None:
    thread = warm_start.save_in_background(store, KEY, TOKENS, PAYLOAD)
    assert not thread.daemon  # a process that exits right away still finishes the file
    warm_start.wait_for_saves(30)
    loaded = store.load(KEY, TOKENS)
    assert loaded is not None and loaded.payload == PAYLOAD


def test_state_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UNBOUNDED_STATE_DIR", str(tmp_path / "here"))
    assert warm_start.state_dir() == tmp_path / "here"
    monkeypatch.delenv("UNBOUNDED_STATE_DIR")
    monkeypatch.setenv("UNBOUNDED_CACHE_DIR", str(tmp_path / "cache"))
    assert warm_start.state_dir() == tmp_path / "cache" / "llama-state"
    assert StateStore().root == tmp_path / "cache" / "llama-state"


def test_a_user_model_file_is_hashed_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UNBOUNDED_STATE_DIR", str(tmp_path / "states"))
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + os.urandom(5000))
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert model_sha256(model) == digest
    assert (tmp_path / "states" / "model-hashes.json").exists()
    calls = []
    real_open = Path.open

    def counting_open(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if self == model:
            calls.append(1)
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", counting_open)
    assert model_sha256(model) == digest and calls == []  # remembered, not re-read
    model.write_bytes(b"GGUF" + os.urandom(5000))  # a changed file is hashed again
    assert model_sha256(model) == hashlib.sha256(model.read_bytes()).hexdigest()
    assert model_sha256(model, "f" * 64) == "f" * 64  # the catalogue's hash needs no reading


def test_local_factory_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from unbounded.models import local

    monkeypatch.setattr(local.weights, "check_model_spec", lambda rest: local.weights.ModelSource(rest, None, None))
    lm = local.create("some-model", {"warm_start": "off", "warm_start_max_bytes": 5 << 20, "small": True})
    assert lm.warm_start is False and lm.warm_start_max_bytes == 5 << 20 and lm._states() is None
    twin = lm.fork_for_subcalls()
    assert twin.warm_start is False and twin.warm_start_max_bytes == 5 << 20
    on = local.create("some-model", {"small": True})
    assert on.warm_start is True and isinstance(on._states(), StateStore)
    assert on.abilities.streaming and on.abilities.structured_output
    with pytest.raises(ConfigError, match="warm_start_max_bytes"):
        local.create("some-model", {"warm_start_max_bytes": -1, "small": True})
