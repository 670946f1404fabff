import os
from pathlib import Path

import pytest

from unbounded.context import describe_context, load_context
from unbounded.errors import ContextError, EmptyContextError


def test_string_metadata() -> None:
    info = load_context("x" * 5000).info
    assert info.type == "str" and info.total_chars == 5000 and len(info.preview) <= 600
    assert "total characters: 5,000" in info.describe()


def test_list_and_dict_metadata() -> None:
    info = load_context([f"doc {i}" * (i + 1) for i in range(50)]).info
    assert info.num_items == 50 and len(info.item_sizes) == 20
    info = load_context({"a.py": "x = 1", "b.py": "yy"}).info
    assert info.item_keys == ["a.py", "b.py"] and info.total_chars == 7


def test_folder_skips_binary_and_undecodable_and_lists_them(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "sub" / "b.md").write_text("world")
    (tmp_path / "img.bin").write_bytes(b"\x89PNG\x00\x00\x01")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("")
    loaded = load_context(tmp_path)
    assert loaded.value == {"a.txt": "hello", "empty.txt": "", "sub/b.md": "world"}
    skipped = {s.path: s.reason for s in loaded.info.skipped}
    assert skipped["img.bin"].startswith("binary file") and skipped["latin1.txt"].startswith("not valid UTF-8 (byte 3)")
    assert "skipped files (2)" in loaded.info.describe()


def test_symlink_loop_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    os.symlink(tmp_path, tmp_path / "loop")
    loaded = load_context(tmp_path)
    assert loaded.value == {"a.txt": "x"}
    assert any(s.reason == "symlink loop" for s in loaded.info.skipped)


def test_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="no such file"):
        load_context(tmp_path / "missing.txt")
    with pytest.raises(EmptyContextError):
        load_context("")
    with pytest.raises(EmptyContextError):
        load_context(tmp_path)  # an empty folder
    (tmp_path / "bin").write_bytes(b"\x00\x01")
    with pytest.raises(ContextError, match="binary"):
        load_context(tmp_path / "bin")
    with pytest.raises(ContextError, match="not valid UTF-8"):
        load_context(b"\xc3\x28 abc")
    with pytest.raises(EmptyContextError):
        load_context(None)


def test_jsonl_and_iterables(tmp_path: Path) -> None:
    p = tmp_path / "docs.jsonl"
    p.write_text('{"a": 1}\n\n{"b": 2}\n')
    assert load_context(p).value == [{"a": 1}, {"b": 2}]
    p.write_text('{"a": 1}\nnot json\n')
    with pytest.raises(ContextError, match=r"docs\.jsonl: line 2: invalid JSON"):
        load_context(p)
    assert load_context(iter(["a", "b"])).value == ["a", "b"]


def test_deeply_nested_dict_sizes() -> None:
    nested: dict = {"leaf": "abc"}
    for _ in range(50):
        nested = {"n": nested}
    assert describe_context(nested).total_chars == 3
