"""How the context reaches the worker, and what the worker and host load to get there.

The context is written once by the host and read once by the worker, in 64 KiB pieces so neither
side holds a second copy. The memory target (peak RSS of host + worker <= 3x the context) also
depends on what each side imports, so the import closures are pinned here.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from unbounded.repl import sandbox
from unbounded.repl.process import _PKG_PARENT, private_temp_dir
from unbounded.repl.transfer import CHUNK as _READ_CHUNK
from unbounded.repl.transfer import load_context_file, write_context_file


def test_ascii_text_crosses_in_pieces_of_any_remainder(tmp_path: Path) -> None:
    text = "".join(chr(32 + i % 95) for i in range(3 * _READ_CHUNK + 17))
    path, fmt = write_context_file(text, tmp_path)
    assert fmt == "ascii" and path.stat().st_size == len(text)
    loaded = load_context_file(str(path), fmt)
    assert loaded == text and loaded.isascii()


@pytest.mark.parametrize(("char", "kind"), [("é", 1), ("€", 2), ("😀", 4), ("\udc80", 2)])
def test_non_ascii_text_is_rebuilt_in_its_own_layout_across_pieces(tmp_path: Path, char: str, kind: int) -> None:
    # A wide character on each side of every 64 KiB boundary; a lone surrogate too (surrogatepass).
    head = "a" * (64 * 1024 - 1)
    text = (head + char) * 3 + char + "tail"
    path, fmt = write_context_file(text, tmp_path)
    assert fmt == f"ucs{kind}:{len(text)}"
    loaded = load_context_file(str(path), fmt)
    # Equal, and built the way CPython builds it (same layout, so same size and hash).
    assert loaded == text and sys.getsizeof(loaded) == sys.getsizeof(text) and hash(loaded) == hash(text)


@pytest.mark.parametrize(
    ("text", "announced"),
    [
        ("a€b", "ucs1:3"),  # '€' has no latin-1 layout
        ("a😀b", "ucs2:3"),  # an astral character takes two UTF-16 units: too long
        ("aéb", "ucs1:4"),  # shorter than announced
        ("aéb", "ucs1:2"),  # longer than announced
        ("aéb", "ucs3:3"),  # no such kind
        ("aéb", "ucs1:x"),  # not a length
        ("aéb", "ucs2:3"),  # the text fits a narrower kind: the str would not be canonical
        ("a€b", "ucs4:3"),
    ],
)
def test_a_text_file_that_does_not_match_its_announced_layout_is_decoded_plainly(
    tmp_path: Path, text: str, announced: str
) -> None:
    path = tmp_path / "context.txt"
    path.write_bytes(text.encode("utf-8"))
    assert load_context_file(str(path), announced) == text


def test_a_str_subclass_is_sent_as_plain_text(tmp_path: Path) -> None:
    class Tagged(str):
        pass

    path, fmt = write_context_file(Tagged("aéb" * 100), tmp_path)
    assert fmt == "text" and load_context_file(str(path), fmt) == "aéb" * 100


def test_empty_text(tmp_path: Path) -> None:
    path, fmt = write_context_file("", tmp_path)
    assert load_context_file(str(path), fmt) == ""


def test_a_file_marked_ascii_with_a_wide_byte_is_decoded_instead(tmp_path: Path) -> None:
    path = tmp_path / "context.txt"
    text = "x" * (_READ_CHUNK + 5) + "ü" + "y" * 10
    path.write_bytes(text.encode("utf-8"))
    assert load_context_file(str(path), "ascii") == text


@pytest.mark.parametrize(
    ("context", "fmt"),
    [
        ({"a.txt": "one", "b.txt": "twö", "ç/€.md": ""}, "docdict"),
        (["x", "", "y😀"], "doclist"),
        ({"n": [1, 2.5, None]}, "json"),
        ([["nested"], "list"], "json"),
        ({1: "int key"}, "json"),
        ([], "json"),
    ],
)
def test_structured_contexts_round_trip(tmp_path: Path, context: object, fmt: str) -> None:
    path, got = write_context_file(context, tmp_path)
    assert got == fmt
    loaded = load_context_file(str(path), got)
    assert loaded == (context if fmt != "json" or not isinstance(context, dict) else json.loads(json.dumps(context)))


def test_documents_of_every_size_and_layout_round_trip(tmp_path: Path) -> None:
    """Strings longer than one piece are filled in place (the non-ASCII ones with a patched header)."""
    big = 3 * _READ_CHUNK + 11
    docs = {
        "ascii.txt": "a" * big,
        "latin1.txt": ("é" + "b" * 1000) * (big // 1000),
        "bmp.txt": ("€" + "c" * 1000) * (big // 1000),
        "astral.txt": ("😀" + "d" * 1000) * (big // 1000),
        "surrogate.txt": "\udc80" + "e" * big,
        "small.txt": "tiny ü",
        "empty.txt": "",
    }
    path, fmt = write_context_file(docs, tmp_path)
    loaded = load_context_file(str(path), fmt)
    assert fmt == "docdict" and loaded == docs and list(loaded) == list(docs)
    for key, text in docs.items():
        assert sys.getsizeof(loaded[key]) == sys.getsizeof(text) and hash(loaded[key]) == hash(text), key


def test_a_truncated_documents_file_is_an_error_not_a_short_context(tmp_path: Path) -> None:
    path, fmt = write_context_file(["a" * 100, "b" * 100_000], tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(ValueError, match="ends inside"):
        load_context_file(str(path), fmt)
    path.write_bytes(data[: -len(data) + 120])  # inside the second record's header
    with pytest.raises(ValueError, match="ends inside"):
        load_context_file(str(path), fmt)


def _modules_after(code: str) -> set[str]:
    """The modules a fresh isolated interpreter holds after ``code`` (which may print them itself)."""
    script = f"import sys, json\nsys.path.insert(0, {_PKG_PARENT!r})\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout.strip().splitlines()[0]))


def test_the_worker_imports_no_typing_dataclasses_or_inspect() -> None:
    """Each of these costs every worker resident memory; none is needed to load a context or run a cell."""
    loaded = _modules_after("import unbounded.repl.worker")
    assert "unbounded.repl.worker" in loaded
    heavy = {"typing", "dataclasses", "inspect", "pickle", "tempfile", "shutil", "asyncio", "unbounded.repl.base"}
    assert not heavy & loaded, sorted(heavy & loaded)


def test_a_running_process_repl_keeps_tempfile_shutil_pickle_and_ctypes_out_of_the_host() -> None:
    """While the worker holds the context (the memory peak), the host has not loaded these (~1.5 MB)."""
    loaded = _modules_after(
        "import asyncio\n"
        "from unbounded.repl import make_repl\n"
        "async def handler(kind, payload, cell):\n"
        "    return ''\n"
        "async def go():\n"
        "    r = make_repl('process')\n"
        "    await r.start('x' * 100_000, handler)\n"
        "    res = await r.run('print(len(context))')\n"
        "    assert res.stdout.strip() == '100000', res\n"
        "    print(json.dumps(sorted(sys.modules)))\n"
        "    await r.close()\n"
        "asyncio.run(go())"
    )
    assert "unbounded.repl.process" in loaded
    heavy = {"tempfile", "shutil", "pickle", "ctypes", "random", "bz2", "lzma"}
    assert not heavy & loaded, sorted(heavy & loaded)


def test_private_temp_dir_is_new_and_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    a = private_temp_dir("unbounded-test-")
    b = private_temp_dir("unbounded-test-")
    assert a != b and a.parent == tmp_path.resolve() and a.name.startswith("unbounded-test-")
    assert stat.S_IMODE(a.stat().st_mode) == 0o700


def test_private_temp_dir_skips_a_missing_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "gone"))
    monkeypatch.setenv("TEMP", str(tmp_path))
    assert private_temp_dir("unbounded-test-").parent == tmp_path.resolve()


def test_which_finds_executables_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain"
    plain.write_text("")
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    (tmp_path / "folder").mkdir(mode=0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "nowhere"), str(tmp_path)]))
    assert sandbox.which("tool") == str(tool)
    assert sandbox.which("plain") is None
    assert sandbox.which("folder") is None
    assert sandbox.which("absent") is None


def test_the_worker_cell_outcome_and_cell_result_have_the_same_fields() -> None:
    """The worker builds outcomes as dicts (no dataclasses there); the host reads them into CellResult."""
    from dataclasses import fields

    from unbounded.repl.base import CellResult
    from unbounded.repl.cell import new_result

    assert set(new_result()) == {f.name for f in fields(CellResult)}
    assert CellResult.from_dict(new_result()) == CellResult()
    full = new_result(stdout="x", stdout_total=1, error="e", final="f", duration=0.5, timed_out=True, state_lost=True)
    full["notes"] = ["n"]
    assert CellResult.from_dict(full).to_dict() == full
