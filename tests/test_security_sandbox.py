"""The sandbox around the process REPL: what model code sees, the opt-in network, the fallbacks."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from adversarial_cases import capabilities
from conftest import code
from unbounded import RLM
from unbounded.errors import REPLError
from unbounded.models import ScriptedLM
from unbounded.repl import Limits, sandbox
from unbounded.repl.process import ProcessREPL
from unbounded.trace import read_trace


async def handler(kind: str, payload: dict[str, Any], cell_id: str | None) -> Any:
    return "sub"


async def started(**limits: Any) -> ProcessREPL:
    repl = ProcessREPL(Limits(cell_timeout=20, **limits))
    await repl.start("the context", handler)
    return repl


def needs(cap: str, mode: str = "process") -> None:
    if cap not in capabilities(mode):
        pytest.skip(f"the {mode} sandbox here does not provide {cap}")


@pytest.fixture
def fresh_sandbox_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget which modes failed before, so a test can make one fail."""
    monkeypatch.setattr(sandbox, "_broken", {})
    monkeypatch.setattr(sandbox, "_warned", set())


async def test_what_model_code_sees_under_bwrap() -> None:
    needs("fs")
    repl = await started()
    try:
        assert repl.plan is not None and repl.plan.mode == "bwrap"
        res = await repl.run(
            "import os\n"
            "print(sorted(os.listdir('/')))\n"
            "print(os.path.exists('/home'), os.path.exists('/var'), os.path.exists('/etc/shadow'))\n"
            "print(os.getcwd() == os.environ['HOME'] == os.environ['TMPDIR'])\n"
            "open('mine.txt', 'w').write('ok')\n"
            "open('/tmp/scratch', 'w').write('ok')\n"
            "for p in ('/usr/evil', '/etc/evil', os.path.dirname(os.__file__) + '/evil', '/ctx-evil'):\n"
            "    try:\n"
            "        open(p, 'w')\n"
            "        print('WROTE', p)\n"
            "    except OSError as e:\n"
            "        print('refused', e.errno)\n"
            "print(len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
            "print(os.getuid())"
        )
        assert res.error is None, res.error
        lines = res.stdout.splitlines()
        top = eval(lines[0])  # our own output
        assert "home" not in top and "var" not in top and "root" in top  # /root holds only the Python install
        assert lines[1] == "False False False"
        assert lines[2] == "True"
        assert not any(line.startswith("WROTE") for line in lines)
        assert int(lines[-2]) <= 3  # bwrap's init, the worker, maybe a transient child
        if os.geteuid() == 0:
            assert int(lines[-1]) >= sandbox._UID_BASE
        assert (await repl.run("print(open('/etc/passwd').read()[:4])")).stdout.strip() == "root"
    finally:
        await repl.close()


async def test_every_worker_gets_its_own_uid() -> None:
    if os.geteuid() != 0:
        pytest.skip("only a root host drops workers to private uids")
    needs("uid")
    a, b = await started(), await started()
    try:
        assert a.worker_uid != b.worker_uid and a.worker_uid and b.worker_uid
        res = await a.run(f"import os, signal\nos.kill({b._inner_pid or 1}, 0)")
        assert res.error is not None  # another sandbox's processes are not even visible
    finally:
        await a.close()
        await b.close()


async def test_the_process_cap_binds() -> None:
    needs("nproc")
    repl = await started(max_processes=16)
    try:
        res = await repl.run(
            "import subprocess\nprocs = []\ntry:\n    for _ in range(100):\n"
            "        procs.append(subprocess.Popen(['sleep', '30']))\nexcept OSError as e:\n    print('refused', e)\n"
            "print(len(procs))\nfor p in procs:\n    p.kill()"
        )
        assert "refused" in res.stdout, res
        assert int(res.stdout.split()[-1]) < 16
    finally:
        await repl.close()


def loopback_server() -> tuple[socket.socket, list[bytes]]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    got: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                got.append(conn.recv(64))

    threading.Thread(target=serve, daemon=True).start()
    return srv, got


@pytest.mark.parametrize("mode", ["bwrap", "unshare"])
async def test_network_is_off_by_default_and_allow_network_opts_in(mode: str) -> None:
    needs("net", f"process:{mode}" if mode != "bwrap" else "process")
    srv, got = loopback_server()
    port = srv.getsockname()[1]
    cell = (
        f"import socket\ntry:\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "    s.sendall(b'hello')\n    s.close()\n    print('connected')\nexcept OSError as e:\n    print('blocked', e)"
    )
    try:
        closed = await started(sandbox=mode)
        try:
            assert (await closed.run(cell)).stdout.startswith("blocked")
        finally:
            await closed.close()
        opened = await started(sandbox=mode, allow_network=True)
        try:
            assert (await opened.run(cell)).stdout.strip() == "connected"
        finally:
            await opened.close()
        await asyncio.sleep(0.2)
        assert got == [b"hello"]
    finally:
        srv.close()


def fake_tool(tmp_path: Path, name: str) -> str:
    """A stand-in for bwrap/unshare that refuses the way they do where namespaces are not allowed."""
    exe = tmp_path / name
    exe.write_text(f"#!/bin/sh\necho '{name}: Creating new namespace failed: Operation not permitted' >&2\nexit 1\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


def test_a_refused_sandbox_falls_back_with_a_loud_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fresh_sandbox_state: None
) -> None:
    real = sandbox.tool_path
    fake = fake_tool(tmp_path, "bwrap")
    monkeypatch.setattr(sandbox, "tool_path", lambda mode: fake if mode == "bwrap" else real(mode))
    trace = tmp_path / "t.jsonl"
    result = RLM(model=ScriptedLM([code("FINAL('still works')")]), trace=trace).run("q", "ctx")
    assert result.answer == "still works"
    warnings = [e.data["message"] for e in read_trace(trace) if e.type == "warning"]
    assert any("sandbox 'bwrap' is unavailable here" in w and "Operation not permitted" in w for w in warnings)
    assert "unbounded: WARNING: sandbox 'bwrap' is unavailable" in capsys.readouterr().err
    assert sandbox.broken_reason("bwrap")


async def test_no_sandbox_at_all_still_runs_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fresh_sandbox_state: None
) -> None:
    monkeypatch.setattr(sandbox, "tool_path", lambda mode: "" if mode == "none" else None)
    repl = await started()
    try:
        assert repl.plan is not None and repl.plan.mode == "none"
        assert any("without a sandbox" in w and "network" in w for w in repl.warnings)
        assert (await repl.run("print(len(context))")).stdout.strip() == "11"
    finally:
        await repl.close()
    assert "WARNING" in capsys.readouterr().err


async def test_an_explicit_mode_that_is_missing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "tool_path", lambda mode: None)
    repl = ProcessREPL(Limits(sandbox="bwrap"))
    with pytest.raises(REPLError, match="not available"):
        await repl.start("ctx", handler)
    with pytest.raises(ValueError, match=r"Limits\.sandbox"):
        await ProcessREPL(Limits(sandbox="docker")).start("ctx", handler)


async def test_without_a_pid_namespace_escaped_daemons_are_still_killed(tmp_path: Path) -> None:
    marker = f"{5000 + os.getpid() % 900}.{id(tmp_path) % 10**6:06d}"
    repl = await started(sandbox="none")
    try:
        res = await repl.run(
            "import os, subprocess\n"
            f"subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
            "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            f"        os.execvp('sleep', ['sleep', '{marker}'])\n    os._exit(0)\n"
            "import time\ntime.sleep(0.3)"
        )
        assert res.error is None, res.error
    finally:
        await repl.close()

    def alive() -> list[str]:
        out = []
        for e in os.listdir("/proc"):
            try:
                if (
                    e.isdigit()
                    and marker in Path(f"/proc/{e}/cmdline").read_text(errors="replace")
                    and Path(f"/proc/{e}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
                ):
                    out.append(e)
            except OSError:
                pass
        return out

    for _ in range(50):
        if not alive():
            break
        await asyncio.sleep(0.05)
    assert alive() == []


def test_unprivileged_user_namespaces_work_here() -> None:
    """Recorded for docs/security.md: does an unprivileged user get namespaces on this machine?"""
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("unshare"):
        pytest.skip("needs root and util-linux to try as another user")
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "unshare", "--user", "--map-root-user"]
    proc = subprocess.run([*cmd, "--net", "--pid", "--fork", "true"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        pytest.skip(f"unprivileged user namespaces are off here: {proc.stderr.strip()}")
