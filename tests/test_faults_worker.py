"""Faults around the worker: crashes mid-run, Ctrl-C / SIGTERM / SIGKILL of the host, and cleanup."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import code
from unbounded import RLM, Budget
from unbounded.models import ScriptedLM
from unbounded.repl import Limits
from unbounded.repl.process import ProcessREPL
from unbounded.trace import read_trace


def processes_under(folder: Path) -> list[str]:
    """Live processes whose command line or working dir mentions ``folder`` (REPL temp dirs live there)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if state != "Z" and (str(folder) in cmd or cwd.startswith(str(folder))):
            found.append(f"{entry} {cmd[:100]}")
    return found


def wait_until_gone(folder: Path, seconds: float = 5.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := processes_under(folder)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_worker_crash_mid_run_is_reported_and_the_run_continues(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    root = ScriptedLM(
        [
            code("notes = 'precious'"),
            code("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
            code("print(notes)"),
            code("FINAL('carried on')"),
        ]
    )
    result = RLM(model=root, repl="process", trace=trace).run("q", "ctx")
    assert (result.status, result.answer) == ("final", "carried on")
    crash = root.calls[2][-1].content
    assert "SIGKILL" in crash and "ALL variables were lost" in crash and "context is loaded again" in crash
    assert "NameError" in root.calls[3][-1].content  # the state really is gone, as the model was told
    cells = [e for e in read_trace(trace) if e.type == "cell"]
    assert cells[1].data["state_lost"] is True


def test_worker_death_between_cells_is_reported_on_the_next_cell() -> None:
    root = ScriptedLM(
        [
            code(
                "import os, threading, signal\nx = 1\nthreading.Timer(0.1, os.kill, (os.getpid(), signal.SIGKILL)).start()"
            ),
            code("print('next')"),
            code("FINAL('ok')"),
        ],
        latency=0.5,
    )
    result = RLM(model=root, repl="process").run("q", "ctx")
    assert result.answer == "ok"
    note = root.calls[2][-1].content
    assert "next" in note and "restarted before this cell" in note and "ALL variables were lost" in note


async def test_close_is_quick_while_a_cell_runs() -> None:
    async def handler(*_: object) -> None:
        return None

    repl = ProcessREPL(Limits(cell_timeout=60))
    await repl.start("ctx", handler)
    task = asyncio.create_task(repl.run("import time\ntime.sleep(60)"))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    task.cancel()
    await repl.close()
    assert time.monotonic() - started < 2
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
def cli_run(tmp_path: Path):
    """Start ``unbounded ask`` with a model that spawns a child and then sleeps in its cell."""

    def start(marker: str) -> tuple[subprocess.Popen[str], Path, Path]:
        replies = tmp_path / "replies.json"
        replies.write_text(
            json.dumps([code(f"import subprocess, time\nsubprocess.Popen(['sleep', '{marker}'])\ntime.sleep(60)")])
        )
        trace = tmp_path / "t.jsonl"
        tmp = tmp_path / "tmp"
        tmp.mkdir()
        env = {**os.environ, "TMPDIR": str(tmp)}
        cmd = [
            sys.executable,
            "-m",
            "unbounded",
            "ask",
            "q",
            "-",
            "--model",
            f"scripted/{replies}",
            "--trace",
            str(trace),
        ]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        assert proc.stdin is not None
        proc.stdin.write("some text")
        proc.stdin.close()
        deadline = time.monotonic() + 30
        while not marker_processes(marker) and time.monotonic() < deadline:  # the cell's child is running
            time.sleep(0.1)
        time.sleep(0.3)
        return proc, trace, tmp

    return start


def marker_processes(marker: str) -> list[str]:
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                cmd = Path(f"/proc/{e}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = Path(f"/proc/{e}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker in cmd and state != "Z":
                out.append(f"{e} {cmd}")
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_leave_no_worker_behind(cli_run, sig: signal.Signals) -> None:
    marker = f"{4000 + os.getpid() % 900}.{sig.value:02d}{time.time_ns() % 10**6:06d}"
    proc, trace, tmp = cli_run(marker)
    assert marker_processes(marker), "the cell's child never started"
    proc.send_signal(sig)
    proc.wait(timeout=20)
    assert proc.returncode == 130
    assert read_trace(trace)[-1].data["status"] == "interrupted"
    assert wait_until_gone(tmp) == []
    deadline = time.monotonic() + 5
    while marker_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker_processes(marker) == []


def test_a_killed_host_takes_its_sandbox_down(cli_run) -> None:
    """SIGKILL gives the host no chance to clean up: the sandbox must die with it (bwrap --die-with-parent)."""
    from adversarial_cases import capabilities

    if "pids" not in capabilities("process") or "sandbox:bwrap" not in " ".join(capabilities("process")):
        pytest.skip("needs the bwrap sandbox (its pid namespace dies with the host)")
    marker = f"{4900 + os.getpid() % 90}.{time.time_ns() % 10**6:06d}"
    proc, _, tmp = cli_run(marker)
    assert marker_processes(marker)
    proc.kill()
    proc.wait(timeout=10)
    assert wait_until_gone(tmp) == []
    deadline = time.monotonic() + 5
    while marker_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker_processes(marker) == []


def test_turns_that_crash_every_time_still_end_cleanly() -> None:
    root = ScriptedLM([code("import os\nos._exit(1)")] * 3 + ["FINAL(gave up)"])
    result = RLM(model=root, repl="process", budget=Budget(max_iterations=3)).run("q", "ctx")
    assert result.status == "max_iterations" and result.answer == "gave up"
