"""Fuzzing the host side of the worker protocol: whatever bytes or frames a hostile worker sends, the
host either accepts a well-formed frame or raises ``FrameError`` (which stops that worker), never
anything else. A short run here; ``scripts/fuzz.py`` runs it for minutes."""

from __future__ import annotations

import asyncio
import json
import os
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unbounded.repl import Limits, ToolSpec
from unbounded.repl.process import ProcessREPL
from unbounded.repl.protocol import (
    CALL_KINDS,
    FrameError,
    check_call,
    check_ready,
    check_result,
    decode_body,
    encode_frame,
    read_frame_async,
)

EXAMPLES = int(os.environ.get("UNBOUNDED_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
HEAVY = settings(max_examples=max(1, EXAMPLES // 3), deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63), st.floats(), st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
OPS = ["ready", "init_error", "call", "result", "value", "reply", "exec", "", "x"]
KEYS = ["op", "id", "kind", "payload", "stdout", "stdout_total", "error", "final", "duration", "timed_out",
        "state_lost", "notes", "value", "repr", "pid", "uid", "load_seconds", "prompt", "prompts", "model",
        "question", "context", "pairs", "name", "args", "kwargs"]  # fmt: skip
frames = st.fixed_dictionaries(
    {"op": st.sampled_from(OPS)},
    optional={
        "id": st.one_of(st.integers(min_value=-3, max_value=12), st.just(2**60), scalars),
        "kind": st.one_of(st.sampled_from([*CALL_KINDS, "shell"]), scalars),
        "payload": st.one_of(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5), json_values),
        **{k: json_values for k in KEYS[4:14]},
    },
)


@FUZZ
@given(st.binary(max_size=300))
def test_any_body_is_a_frame_or_a_frame_error(body: bytes) -> None:
    try:
        frame = decode_body(body)
    except FrameError:
        return
    assert isinstance(frame, dict) and isinstance(frame["op"], str)


@FUZZ
@given(frames)
def test_the_checks_only_ever_raise_frame_error(frame: dict[str, Any]) -> None:
    for check in (
        lambda f: check_call(f, CALL_KINDS, {"lookup"}),
        check_result,
        lambda f: check_ready({**f, "op": "ready"}),
    ):
        try:
            check(frame)
        except FrameError:
            pass


@HEAVY
@given(st.lists(st.one_of(st.binary(max_size=40), frames.map(encode_frame)), max_size=12))
def test_a_byte_stream_yields_frames_then_none_or_a_frame_error(chunks: list[bytes]) -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(b"".join(chunks))
        reader.feed_eof()
        for _ in range(len(chunks) + 2):
            try:
                frame = await read_frame_async(reader, 4096)
            except FrameError:
                return
            if frame is None:
                return
            assert isinstance(frame.get("op"), str)

    asyncio.run(main())


@HEAVY
@given(st.lists(frames, min_size=1, max_size=8))
def test_the_host_dispatch_accepts_or_refuses_never_crashes(sequence: list[dict[str, Any]]) -> None:
    """Frames straight into ``ProcessREPL._dispatch`` (no process): a frame is served, or refused with
    ``FrameError``, whatever it holds; once one is refused the real host stops reading."""

    async def handler(kind: str, payload: dict[str, Any], cell_id: str | None) -> Any:
        return "ok"

    async def main() -> None:
        repl = ProcessREPL(Limits())
        repl._handler = handler
        repl._tool_names = frozenset({"lookup"})
        repl._ready = True
        loop = asyncio.get_running_loop()
        for rid, expect in ((1, "result"), (2, "value")):
            repl._waiters[rid] = (expect, loop.create_future())
        try:
            for frame in sequence:
                json.dumps(frame)  # it could have come off the wire
                try:
                    repl._dispatch(frame)
                except FrameError:
                    break
        finally:
            for task in list(repl._calls.values()):
                task.cancel()
            await asyncio.gather(*repl._calls.values(), return_exceptions=True)

    asyncio.run(main())


def test_a_fuzzed_frame_round_trips() -> None:
    frame = {"op": "call", "id": 1, "kind": "tool", "payload": {"name": "lookup", "args": [], "kwargs": {}}}
    data = encode_frame(frame)
    assert struct.unpack(">I", data[:4])[0] == len(data) - 4
    assert check_call(decode_body(data[4:]), CALL_KINDS, {ToolSpec("lookup", "", "()").name})[1] == "tool"
