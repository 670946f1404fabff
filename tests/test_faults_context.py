"""Bad context: each case gets a clear message, or a documented, tested behaviour."""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import code
from unbounded import RLM
from unbounded.context import MAX_NESTING, load_context
from unbounded.errors import ContextError, EmptyContextError
from unbounded.models import ScriptedLM


def ask(context: object, reply: str = "FINAL(len(context))", repl: str = "process") -> object:
    return RLM(model=ScriptedLM([code(reply)]), repl=repl).run("How big is it?", context)


@pytest.mark.parametrize("empty", ["", [], {}, (), iter([])])
def test_empty_context_is_refused_before_any_model_call(empty: object) -> None:
    lm = ScriptedLM([code("FINAL(1)")])
    with pytest.raises(EmptyContextError, match="empty"):
        RLM(model=lm, repl="inprocess").run("q", empty)
    assert not lm.calls


def test_binary_and_invalid_utf8(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="binary"):
        load_context(b"\x00\x01\x02 binary")
    with pytest.raises(ContextError, match="not valid UTF-8"):
        load_context(b"caf\xe9")
    (tmp_path / "x.bin").write_bytes(b"PK\x03\x04\x00\x00")
    with pytest.raises(ContextError, match="binary"):
        load_context(tmp_path / "x.bin")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    with pytest.raises(ContextError, match="not valid UTF-8"):
        load_context(tmp_path / "latin1.txt")


def test_zero_byte_files(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(EmptyContextError):
        load_context(tmp_path / "empty.txt")
    (tmp_path / "full.txt").write_text("x")
    assert load_context(tmp_path).value == {"empty.txt": "", "full.txt": "x"}  # kept in a folder


def test_a_100_mb_single_line_through_the_process_repl() -> None:
    line = "y" * (100 * 1024 * 1024)
    result = ask(line, "FINAL(str(len(context)) + ' ' + str(context.count(chr(10))))")
    assert (result.status, result.answer) == ("final", f"{len(line)} 0")


def test_symlink_loops_and_dangling_links(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("real")
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    os.symlink(tmp_path / "missing", tmp_path / "dangling")
    os.symlink(tmp_path, tmp_path / "dirloop")
    loaded = load_context(tmp_path)
    assert loaded.value == {"real.txt": "real"}
    skipped = {s.path: s.reason for s in loaded.info.skipped}
    assert "symbolic links" in skipped["a"] and "symbolic links" in skipped["b"]
    assert "No such file" in skipped["dangling"]
    assert skipped["dirloop"] == "symlink loop"
    with pytest.raises(ContextError, match="symlink loop"):
        load_context(tmp_path / "a")


def test_fifos_sockets_and_devices_are_skipped_not_read(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("fine")
    os.mkfifo(tmp_path / "pipe")  # opening it would block forever
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    os.symlink("/dev/zero", tmp_path / "zeros")  # reading it would never end
    try:
        loaded = load_context(tmp_path)
    finally:
        sock.close()
    assert loaded.value == {"ok.txt": "fine"}
    skipped = {s.path: s.reason for s in loaded.info.skipped}
    assert skipped["pipe"] == "a named pipe" and skipped["sock"] == "a socket"
    assert skipped["zeros"].startswith("symlink to outside the folder (/dev/zero)")  # never followed unasked
    followed = load_context(tmp_path, follow_symlinks=True)  # the socket file outlives its socket
    assert {s.path: s.reason for s in followed.info.skipped}["zeros"] == "a device"  # followed, still never read
    with pytest.raises(ContextError, match="named pipe"):
        load_context(tmp_path / "pipe")


UNREADABLE = """
import os, sys
from pathlib import Path
sys.path.insert(0, {src!r})
from unbounded.context import load_context
from unbounded.errors import ContextError
folder = Path({folder!r})
loaded = load_context(folder)
print(sorted(loaded.value), sorted((s.path, s.reason) for s in loaded.info.skipped))
try:
    load_context(folder / "secret.txt")
except ContextError as exc:
    print("ERROR", exc)
"""


def test_unreadable_files_and_folders(tmp_path: Path) -> None:
    """chmod 000 stops everyone but root; as root the check runs in a child without CAP_DAC_*."""
    (tmp_path / "ok.txt").write_text("fine")
    (tmp_path / "secret.txt").write_text("hidden")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "inner.txt").write_text("hidden")
    os.chmod(tmp_path / "secret.txt", 0)
    os.chmod(tmp_path / "locked", 0)
    try:
        script = UNREADABLE.format(src=str(Path(__file__).resolve().parents[1] / "src"), folder=str(tmp_path))
        cmd = [sys.executable, "-c", script]
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.skip("root reads chmod-000 files; setpriv (util-linux) is needed to drop CAP_DAC_*")
            cmd = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "['ok.txt']" in out.stdout
        assert "('locked', 'unreadable folder: Permission denied')" in out.stdout
        assert "('secret.txt', 'unreadable: Permission denied')" in out.stdout
        assert "ERROR cannot read" in out.stdout and "Permission denied" in out.stdout
    finally:
        os.chmod(tmp_path / "secret.txt", 0o644)
        os.chmod(tmp_path / "locked", 0o755)


def test_nesting_too_deep_or_cyclic_is_refused() -> None:
    deep: dict = {"leaf": "x"}
    for _ in range(MAX_NESTING + 10):
        deep = {"n": deep}
    with pytest.raises(ContextError, match="nests deeper"):
        load_context(deep)
    cyclic: list = ["a"]
    cyclic.append(cyclic)
    with pytest.raises(ContextError, match="reference cycle"):
        load_context(cyclic)
    ok: dict = {"leaf": "x"}
    for _ in range(MAX_NESTING - 5):
        ok = {"n": ok}
    assert ask(ok, "FINAL('deep enough')").answer == "deep enough"  # JSON to the worker copes


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    __str__ = __repr__


def test_non_serialisable_objects() -> None:
    # Plain data that JSON cannot carry goes to the worker by pickle.
    when = {"when": datetime.datetime(2024, 1, 2), "tags": {"a", "b"}}
    assert ask(when, "FINAL(type(context['when']).__name__)").answer == "datetime"
    # What cannot cross to the worker at all is a clear error status, not a crash.
    result = ask({"fn": lambda x: x})
    assert result.status == "error:repl"
    assert "cannot be sent to the REPL worker" in (result.error or "") and "inprocess" in (result.error or "")
    # The trusted in-process REPL takes any object, even one whose repr raises.
    assert ask({"fn": lambda x: x * 2}, "FINAL(context['fn'](21))", repl="inprocess").answer == "42"
    info = load_context([Hostile()]).info
    assert "Hostile" in info.preview


def test_a_huge_structure_gets_a_short_preview() -> None:
    big = [{"id": i, "text": "z" * 100} for i in range(200_000)]
    info = load_context(big).info
    assert len(info.preview) <= 600 and info.num_items == 200_000
