"""The command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unbounded.trace import read_trace


def run_cli(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unbounded", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def script(tmp_path: Path):
    def make(*replies: str) -> str:
        p = tmp_path / "replies.json"
        p.write_text(json.dumps(list(replies)))
        return f"scripted/{p}"

    return make


def test_answer_alone_on_stdout_from_stdin(script) -> None:
    model = script("```python\nFINAL(grep('magic')[0].text.split()[-1])\n```")
    proc = run_cli("ask", "What is magic?", "-", "--model", model, stdin="a\nthe magic word is xyzzy\nb\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "xyzzy\n"


def test_files_and_folders(script, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("alpha")
    (tmp_path / "b.txt").write_text("beta")
    model = script("```python\nFINAL(sorted(context))\n```")
    proc = run_cli("ask", "q", str(tmp_path / "docs"), str(tmp_path / "b.txt"), "--model", model, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "final"
    assert json.loads(out["answer"]) == [f"{tmp_path / 'b.txt'}", f"{tmp_path / 'docs'}/a.txt"]


def test_exit_codes(script, tmp_path: Path) -> None:
    model = script("```python\nprint(1)\n```")
    missing = run_cli("ask", "q", str(tmp_path / "nope.txt"), "--model", model)
    assert missing.returncode == 3 and "no such file" in missing.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert run_cli("ask", "q", str(empty), "--model", model).returncode == 4
    unknown = run_cli("ask", "q", "-", "--model", "warp/drive", stdin="text")
    assert unknown.returncode == 5 and "unknown model" in unknown.stderr
    budget = run_cli("ask", "q", "-", "--model", model, "--max-calls", "2", stdin="text")
    assert budget.returncode == 6 and "max_llm_calls" in budget.stderr
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\x00\x01\x02")
    assert run_cli("ask", "q", str(binary), "--model", model).returncode == 3


def test_interrupt_keeps_the_trace(script, tmp_path: Path) -> None:
    model = script("```python\nimport time\ntime.sleep(60)\n```")
    trace = tmp_path / "t.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "unbounded", "ask", "q", "-", "--model", model, "--trace", str(trace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write("some text")
    proc.stdin.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if trace.exists() and any(e.type == "lm_response" for e in read_trace(trace)):
            break
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.returncode == 130, err
    events = read_trace(trace)
    assert events[-1].type == "run_end" and events[-1].data["status"] == "interrupted"


def test_sigterm_also_ends_cleanly(script, tmp_path: Path) -> None:
    model = script("```python\nimport time\ntime.sleep(60)\n```")
    trace = tmp_path / "t.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "unbounded", "ask", "q", "-", "--model", model, "--trace", str(trace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write("some text")
    proc.stdin.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        trace.exists() and "cell" not in trace.read_text() and "lm_response" in trace.read_text()
    ):
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    assert proc.returncode == 130
    assert read_trace(trace)[-1].data["status"] == "interrupted"


def test_trace_command_prints_a_tree(script, tmp_path: Path) -> None:
    model = script("```python\nx = llm_query('hi')\n```", "```python\nFINAL('done')\n```")
    trace = tmp_path / "t.jsonl"
    assert run_cli("ask", "q", "-", "--model", model, "--trace", str(trace), stdin="ctx").returncode == 0
    shown = run_cli("trace", str(trace))
    assert shown.returncode == 0
    for word in ("run", "rlm", "cell", "llm_query", "calls"):
        assert word in shown.stdout
    assert run_cli("trace", str(tmp_path / "none.jsonl")).returncode == 3


def test_models_command() -> None:
    proc = run_cli("models")
    assert proc.returncode == 0 and "local/qwen2.5-coder-1.5b" in proc.stdout


def test_no_leftover_workers_after_cli(script) -> None:
    model = script("```python\nimport subprocess\nsubprocess.Popen(['sleep', '300'])\nFINAL('x')\n```")
    before = set(os.listdir("/proc"))
    assert run_cli("ask", "q", "-", "--model", model, stdin="ctx").returncode == 0
    time.sleep(0.3)
    new = set(os.listdir("/proc")) - before
    for pid in new:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert b"sleep\x00300" not in cmd
