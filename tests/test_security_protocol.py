"""The host treats the REPL worker as untrusted: every frame is size-limited and checked.

Two levels: the checks in ``protocol.py`` on their own, and a ``ProcessREPL`` talking to fake workers
that break the protocol on purpose (each must end that worker with a clear error, never the host).
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import struct
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from unbounded.errors import REPLError
from unbounded.repl import Limits, ToolSpec
from unbounded.repl.process import MAX_PENDING_CALLS, ProcessREPL
from unbounded.repl.protocol import (
    FrameError,
    check_call,
    check_id,
    check_result,
    decode_body,
    encode_frame,
    read_frame_async,
    read_frame_fd,
)

KINDS = ("llm_query", "llm_batch", "rlm_query", "rlm_batch", "tool")
SRC = str(Path(__file__).resolve().parents[1] / "src")


# -- the checks on their own ------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"op": "call", "id": 1, "kind": "shell", "payload": {}},
        {"op": "call", "id": 1, "kind": "llm_query", "payload": {"prompt": 3}},
        {"op": "call", "id": 1, "kind": "llm_query", "payload": {"prompt": "p", "model": 7}},
        {"op": "call", "id": 1, "kind": "llm_batch", "payload": {"prompts": "not a list"}},
        {"op": "call", "id": 1, "kind": "llm_batch", "payload": {"prompts": ["a", 2]}},
        {"op": "call", "id": 1, "kind": "rlm_query", "payload": {"question": None}},
        {"op": "call", "id": 1, "kind": "rlm_batch", "payload": {"pairs": [["q"]]}},
        {"op": "call", "id": 1, "kind": "tool", "payload": {"name": "rm_rf", "args": [], "kwargs": {}}},
        {"op": "call", "id": 1, "kind": "tool", "payload": {"name": "lookup", "args": {}, "kwargs": {}}},
        {"op": "call", "id": 1, "kind": "llm_query", "payload": "not an object"},
        {"op": "call", "id": "1", "kind": "llm_query", "payload": {"prompt": "p"}},
        {"op": "call", "id": True, "kind": "llm_query", "payload": {"prompt": "p"}},
        {"op": "call", "id": -5, "kind": "llm_query", "payload": {"prompt": "p"}},
        {"op": "call", "id": 2**60, "kind": "llm_query", "payload": {"prompt": "p"}},
    ],
)
def test_bad_calls_are_refused(frame: dict[str, Any]) -> None:
    with pytest.raises(FrameError):
        check_call(frame, KINDS, {"lookup"})


def test_good_calls_pass() -> None:
    assert check_call(
        {"op": "call", "id": 3, "kind": "llm_query", "payload": {"prompt": "p", "model": None}}, KINDS, ()
    )[:2] == (3, "llm_query")
    check_call({"op": "call", "id": 4, "kind": "rlm_batch", "payload": {"pairs": [["q", {"a": 1}]]}}, KINDS, ())
    check_call({"op": "call", "id": 5, "kind": "tool", "payload": {"name": "lookup", "args": [1]}}, KINDS, {"lookup"})
    with pytest.raises(FrameError, match="does not offer"):  # sub_calls=False offers only tools
        check_call({"op": "call", "id": 6, "kind": "llm_query", "payload": {"prompt": "p"}}, ("tool",), ())


@pytest.mark.parametrize(
    "bad",
    [{"stdout": 5}, {"stdout_total": "many"}, {"stdout_total": -1}, {"stdout_total": True}, {"final": 3},
     {"notes": "x"}, {"notes": [1]}, {"timed_out": "yes"}, {"duration": "slow"}],
)  # fmt: skip
def test_bad_results_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(FrameError):
        check_result({"op": "result", "id": 1, **bad})


def test_ids() -> None:
    assert check_id(7) == 7
    for bad in (0, -1, 1.5, "3", None, True, 2**53):
        with pytest.raises(FrameError):
            check_id(bad)


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"no_op": 1}', b'{"op": 5}', b"\xff\xfe", b'"just a string"']
)
def test_bodies_that_are_not_frames(body: bytes) -> None:
    with pytest.raises(FrameError):
        decode_body(body)


async def _reader_with(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_async_reader_limits_and_truncation() -> None:
    huge = await _reader_with(struct.pack(">I", 2**31) + b"x" * 10)
    with pytest.raises(FrameError, match="over the limit"):
        await read_frame_async(huge, 1024)
    cut = await _reader_with(struct.pack(">I", 100) + b'{"op":')
    with pytest.raises(FrameError, match="inside a frame"):
        await read_frame_async(cut)
    half_header = await _reader_with(b"\x00\x00")
    with pytest.raises(FrameError):
        await read_frame_async(half_header)
    assert await read_frame_async(await _reader_with(b"")) is None
    ok = await _reader_with(encode_frame({"op": "ready", "pid": 1}))
    assert (await read_frame_async(ok)) == {"op": "ready", "pid": 1}


def test_fd_reader_limits() -> None:
    r, w = os.pipe()
    os.write(w, struct.pack(">I", 2**31))
    os.close(w)
    with pytest.raises(FrameError):
        read_frame_fd(r, 1024)
    os.close(r)


# -- a ProcessREPL against workers that break the protocol ------------------------------------

FAKE_HEAD = f"""
import json, os, struct, sys, time
sys.path.insert(0, {SRC!r})
from unbounded.repl.protocol import read_frame_fd, write_frame_fd, encode_frame
IN, OUT = 0, 1
def send(obj):
    write_frame_fd(OUT, obj)
def raw(data):
    os.write(OUT, data)
def recv():
    return read_frame_fd(IN)
init = recv()
"""

READY = "send({'op': 'ready', 'pid': os.getpid(), 'uid': os.getuid(), 'nproc_set': False, 'load_seconds': 0})\n"


def fake_python(tmp_path: Path, body: str) -> str:
    """An executable that ignores the worker's argv and runs ``body`` as the worker instead."""
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_HEAD + body)
    exe = tmp_path / "fakepython"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(exe)


class Calls:
    def __init__(self) -> None:
        self.n = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, kind: str, payload: dict[str, Any], cell_id: str | None) -> Any:
        self.n += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.2)
            return "ok"
        finally:
            self.in_flight -= 1


async def start_fake(tmp_path: Path, body: str, handler: Any = None) -> ProcessREPL:
    repl = ProcessREPL(Limits(sandbox="none", cell_timeout=5, kill_grace=1), python=fake_python(tmp_path, body))
    await repl.start("ctx", handler or Calls(), [ToolSpec("lookup", "", "()")])
    return repl


@pytest.mark.parametrize(
    "before_ready, message",
    [
        ("raw(struct.pack('>I', 2**31))\ntime.sleep(30)", "over the limit"),
        ("raw(struct.pack('>I', 9) + b'not json!')\ntime.sleep(30)", "not valid JSON"),
        ("send({'op': 'call', 'id': 1, 'kind': 'llm_query', 'payload': {'prompt': 'x'}})\ntime.sleep(30)", "before"),
        ("send({'op': 'result', 'id': 1})\ntime.sleep(30)", "before"),
        ("sys.exit(0)", "exit"),
    ],
)
async def test_a_worker_that_breaks_the_protocol_at_start(tmp_path: Path, before_ready: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(REPLError, match=message):
        await start_fake(tmp_path, before_ready)
    assert time.monotonic() - started < 10


AFTER_READY = [
    ("send({'op': 'call', 'id': 1, 'kind': 'shell', 'payload': {'cmd': 'id'}})", "does not offer"),
    ("send({'op': 'call', 'id': 1, 'kind': 'tool', 'payload': {'name': 'rm', 'args': []}})", "does not offer"),
    ("send({'op': 'result', 'id': 424242})", "did not make"),
    ("send({'op': 'result', 'id': cell['id'], 'stdout_total': 'lots'})", "wrong type"),
    ("send({'op': 'value', 'id': cell['id']})", "expects 'result'"),
    ("send({'op': 'ready', 'pid': 1})", "unexpected op"),
    ("send({'op': 'reply', 'id': 1, 'value': 1})", "unexpected op"),
    ("raw(struct.pack('>I', 2**31))", "over the limit"),
    ("raw(struct.pack('>I', 5) + b'\\xff\\xfe\\xfd{}')", "not valid JSON"),
    ("raw(b'\\x00\\x00')\nos.close(OUT)", "inside a frame"),
    ("send({'op': 'result', 'id': cell['id']})\nsend({'op': 'result', 'id': cell['id']})", None),
]


@pytest.mark.parametrize("misbehaviour, message", AFTER_READY)
async def test_a_worker_that_breaks_the_protocol_in_a_cell(tmp_path: Path, misbehaviour: str, message: str) -> None:
    body = READY + "cell = recv()\n" + misbehaviour + "\ntime.sleep(30)\n"
    repl = await start_fake(tmp_path, body)
    try:
        first_pid = repl.pid
        started = time.monotonic()
        res = await repl.run("print(1)")
        assert time.monotonic() - started < 5  # stopped at once, not at the cell timeout
        if message is None:  # the first answer is taken; the duplicate ends the worker between cells
            assert res.error is None
            await asyncio.sleep(0.3)
            res = await repl.run("print(2)")
            assert res.state_lost and "did not make or already has" in res.notes[0], res
            assert "variables were lost" in res.notes[0]
        else:
            assert res.error is not None and "broke the protocol" in res.error and message in res.error, res.error
            assert res.state_lost and "variables were lost" in res.error
        assert repl.pid != first_pid and repl.restarts >= 1  # a fresh worker took over
        with pytest.raises(ProcessLookupError):
            os.kill(first_pid, 0)
    finally:
        await repl.close()


async def test_a_flood_of_calls_is_bounded(tmp_path: Path) -> None:
    calls = Calls()
    body = (
        READY
        + "cell = recv()\n"
        + "for i in range(1, 3001):\n"
        + "    send({'op': 'call', 'id': i, 'kind': 'llm_query', 'payload': {'prompt': 'p', 'model': None}})\n"
        + "replies = [recv() for _ in range(3000)]\n"
        + "errors = sum('error' in r for r in replies)\n"
        + "send({'op': 'result', 'id': cell['id'], 'stdout': f'{errors} refused'})\n"
        + "while recv():\n    pass\n"
    )
    repl = await start_fake(tmp_path, body, calls)
    try:
        res = await repl.run("flood")
        assert res.error is None, res.error
        refused = int(res.stdout.split()[0])
        assert calls.max_in_flight <= MAX_PENDING_CALLS
        assert calls.n + refused == 3000 and refused > 0
    finally:
        await repl.close()


async def test_a_duplicate_call_id_is_a_breach(tmp_path: Path) -> None:
    body = (
        READY
        + "cell = recv()\n"
        + "send({'op': 'call', 'id': 9, 'kind': 'llm_query', 'payload': {'prompt': 'p'}})\n"
        + "send({'op': 'call', 'id': 9, 'kind': 'llm_query', 'payload': {'prompt': 'p'}})\n"
        + "time.sleep(30)\n"
    )
    repl = await start_fake(tmp_path, body)
    try:
        res = await repl.run("x")
        assert "already in flight" in (res.error or "")
    finally:
        await repl.close()


async def test_a_worker_that_stops_reading_cannot_hang_get_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("unbounded.repl.process.CONTROL_TIMEOUT", 1.0)
    body = READY + "time.sleep(60)\n"
    repl = await start_fake(tmp_path, body)
    try:
        from unbounded.repl import VariableError

        started = time.monotonic()
        with pytest.raises(VariableError, match="failed"):
            await repl.get_var("x")
        assert time.monotonic() - started < 5
    finally:
        await repl.close()


async def test_a_tool_value_that_is_not_data_is_an_error_not_a_hang() -> None:
    async def handler(kind: str, payload: dict[str, Any], cell_id: str | None) -> Any:
        return object()  # a host tool returned something that cannot cross the pipe

    repl = ProcessREPL(Limits(cell_timeout=10))
    await repl.start("ctx", handler, [ToolSpec("lookup", "", "()")])
    try:
        started = time.monotonic()
        res = await repl.run("print(lookup())")
        assert "not plain data" in (res.error or ""), res
        assert time.monotonic() - started < 5
    finally:
        await repl.close()


def test_frames_round_trip_what_the_worker_sends() -> None:
    frame = {"op": "result", "id": 3, "stdout": "caf\u00e9 \ud800", "notes": []}
    data = encode_frame(frame)
    (size,) = struct.unpack(">I", data[:4])
    assert size == len(data) - 4
    assert decode_body(data[4:]) == json.loads(json.dumps(frame))
