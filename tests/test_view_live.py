"""The live terminal tree: a real engine run drives it; a rich Console on a string buffer shows it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from unbounded.view.live import LiveTree
from view_support import BATCH, record_engine_trace, trace_lines, usage_totals


def text_of(renderable: Any, width: int = 140) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_tree_follows_a_real_run(tmp_path: Path) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=140, color_system="standard")
    tree = LiveTree(console, refresh_per_second=20)
    assert tree.enabled
    snapshots: dict[str, str] = {}

    def listener(event: Any) -> None:
        tree(event)
        if event.type == "lm_response" and event.data.get("purpose") == "sub" and "batch" not in snapshots:
            snapshots["batch"] = text_of(tree.renderable())
        if event.type == "rlm_start" and event.data.get("depth") == 1:
            snapshots["child"] = text_of(tree.renderable())

    path = tmp_path / "run.jsonl"
    result = record_engine_trace(path, latency=0.02, on_event=listener)
    tree.stop()
    assert result.status == "final"
    # mid-run: the batch is in flight with one of its calls back; the child RLM hangs under its rlm_query
    assert f"llm_batch 1/{BATCH} done ⋯ in flight" in snapshots["batch"]
    assert "turn 1 running code" in snapshots["batch"]
    assert "rlm_query What does part one say? ⋯ in flight" in snapshots["child"]
    assert "RLM depth 1" in snapshots["child"]
    # at the end: every turn, the totals of the trace, nothing in flight
    final = text_of(tree.renderable())
    calls, tin, tout, _cost = usage_totals(trace_lines(path))
    assert f"{calls} model calls (0 in flight)" in final
    assert f"{tin + tout:,} tokens" in final
    assert "run final" in final and "RLM depth 0 final" in final
    assert f"llm_batch {BATCH}/{BATCH} done ✓" in final
    assert "turn 2 done" in final and "error" in final  # turn 2's cell raised NameError
    assert "FINAL" in final
    assert "in flight" not in final.split("\n", 1)[1]
    # the terminal got frames with the tree in them
    drawn = buffer.getvalue()
    assert "RLM depth 0" in drawn and "\x1b[" in drawn


def test_long_runs_fold_earlier_turns(tmp_path: Path) -> None:
    tree = LiveTree(Console(file=io.StringIO(), force_terminal=True), max_turns=2)
    record_engine_trace(tmp_path / "run.jsonl", latency=0.0, on_event=tree)
    tree.stop()
    shown = text_of(tree.renderable())
    assert "… 2 earlier turns" in shown
    assert "turn 3" in shown and "turn 4" in shown
    [turn1] = [line for line in shown.splitlines() if "turn 1 " in line]  # only the child RLM's own first turn
    assert "part one says" in turn1


def test_nothing_is_drawn_when_the_console_is_not_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.StringIO()
    tree = LiveTree(Console(file=buffer))
    assert not tree.enabled
    record_engine_trace(tmp_path / "run.jsonl", latency=0.0, on_event=tree)
    tree.stop()
    assert buffer.getvalue() == ""
    assert "RLM depth 0" in text_of(tree.renderable())  # it still followed the run
    # ask's factory: under pytest stderr is captured, not a terminal, and FORCE_COLOR does not change that
    monkeypatch.setenv("FORCE_COLOR", "1")
    quiet = LiveTree.for_stderr()
    assert not quiet.enabled
    quiet.stop()
    off = LiveTree(Console(file=io.StringIO(), force_terminal=True), enabled=False)
    assert not off.enabled


def test_a_broken_event_stream_does_not_break_the_tree() -> None:
    from unbounded.trace import Event

    tree = LiveTree(Console(file=io.StringIO(), force_terminal=True))
    for ev in [
        Event("subcall_start", "s-1", "cell-unknown", 0.0, {"kind": "llm_query"}),
        Event("lm_response", "lm-9", "nowhere", 0.0, {"usage": {"input_tokens": 5, "cost_usd": None}}),
        Event("rlm_end", "rlm-404", None, 0.0, {"status": "final"}),
        Event("mystery", "m-1", None, 0.0, {}),
    ]:
        tree(ev)
    tree.stop()
    shown = text_of(tree.renderable())
    assert "5 tokens" in shown and "cost ?" in shown


def test_on_a_real_terminal_stderr_gets_the_tree(tmp_path: Path) -> None:
    """``LiveTree.for_stderr`` with stderr on a pseudo-terminal, as ``ask`` runs it in a shell."""
    import os
    import pty
    import subprocess
    import sys
    import threading

    from view_support import ROOT

    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path\n"
        "from view_support import record_engine_trace\n"
        "from unbounded.view.live import LiveTree\n"
        "tree = LiveTree.for_stderr()\n"
        "assert tree.enabled\n"
        "record_engine_trace(Path(sys.argv[2]), latency=0.05, on_event=tree)\n"
        "tree.stop()\n"
        "print('answer on stdout')\n"
    )
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "140"}
    chunks: list[bytes] = []

    def drain() -> None:  # keep the terminal's buffer from filling up while the run draws
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "tests"), str(tmp_path / "t.jsonl")],
        stderr=slave,
        stdout=subprocess.PIPE,
        env=env,
        timeout=60,
        check=False,
    )
    os.close(slave)
    reader.join(10)
    os.close(master)
    drawn = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, drawn
    assert proc.stdout.decode() == "answer on stdout\n"  # the tree never touches stdout
    assert "RLM depth 0" in drawn and "llm_batch" in drawn
