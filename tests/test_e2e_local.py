"""End to end on the embedded model (slow): the real CLI and ``RLM(...)`` with the process REPL.

Deterministic: greedy decoding (temperature 0, seed 0 are the engine's and the backend's defaults)
over seeded haystacks. Each test takes 10-40 s on two CPU cores.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unbounded import RLM, Budget
from unbounded.bench.tasks import niah
from unbounded.budget import Ledger
from unbounded.calls import ModelCaller
from unbounded.models import ScriptedLM, resolve_model
from unbounded.models.base import Message
from unbounded.models.local import LocalLM
from unbounded.trace import Event, Tracer, read_trace

pytestmark = pytest.mark.slow

try:
    import llama_cpp  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install
    pytest.skip("llama-cpp-python is not installed (pip install 'unbounded[local]')", allow_module_level=True)

MODEL = "local/qwen2.5-coder-1.5b"
LETTER = (
    "Letter from Aunt Mabel, 3 March: I am furious. The roof leaks again, the builder never came, "
    "and the cat knocked over my best teapot. Do not visit until I have calmed down."
)
MOODS = ("furious", "angry", "anger", "upset", "annoyed", "frustrat", "irritat", "mad")


def root_responses(events: list[Event]) -> list[Event]:
    return [e for e in events if e.type == "lm_response" and e.data.get("purpose") == "root"]


def test_cli_finds_a_needle_in_over_a_million_characters(tmp_path: Path) -> None:
    item = niah.generate(300_000, 1, seed=7, haystack="prose", value_type="number")[0]
    assert len(item.context) >= 1_000_000
    haystack = tmp_path / "haystack.txt"
    haystack.write_text(item.context, encoding="utf-8")
    trace = tmp_path / "run.jsonl"
    cmd = [sys.executable, "-m", "unbounded", "ask", item.question, str(haystack), "--model", MODEL]
    cmd += ["--trace", str(trace), "--max-iterations", "6"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert str(item.answer) in proc.stdout, (proc.stdout, proc.stderr)
    assert "[final]" in proc.stderr and "turns" in proc.stderr and "sub-calls" in proc.stderr

    events = read_trace(trace)
    assert events[-1].type == "run_end" and events[-1].data["status"] == "final"
    # The root model saw metadata and short outputs, never the haystack.
    assert max(e.data["input_chars"] for e in events if e.type == "lm_request") < 12_000
    turns = root_responses(events)
    assert len(turns) >= 2
    first, second = turns[0].data["usage"], turns[1].data["usage"]
    # Turn 2 reuses turn 1's prompt from the KV cache: only the new output is evaluated.
    assert second["cached_input_tokens"] >= first["input_tokens"]
    usage = events[-1].data["usage"][MODEL]
    # The ledger's total is every call's usage: root turns, sub-calls and the answer check alike.
    calls = [e for e in events if e.type == "lm_response"]
    assert usage["cost_usd"] == 0.0 and usage["input_tokens"] == sum(e.data["usage"]["input_tokens"] for e in calls)


def test_subcall_from_model_code_runs_on_the_real_sub_slot(tmp_path: Path) -> None:
    """``llm_query`` in REPL code reaches the embedded model on its own slot and its answer comes back.

    The root is scripted so that a sub-call is certain (whether the 1.5B root chooses to make one is
    the model's business, not the plumbing's); the sub-model is the real one.
    """
    prose = niah.prose_haystack(200_000, "NEEDLE", 0.5, random.Random(1))
    context = prose.replace("NEEDLE", LETTER)
    root = ScriptedLM(
        [
            "```python\nh = grep('Aunt Mabel')[0]\n"
            "mood = llm_query('In one word, what is the mood of this letter? ' + context[h.offset:h.offset + 300])\n"
            "print(mood)\n```",
            "```python\nFINAL(mood)\n```",
        ]
    )
    trace = tmp_path / "run.jsonl"
    rlm = RLM(model=root, sub_model=MODEL, repl="process", trace=trace)
    assert isinstance(rlm.sub_lm, LocalLM)
    result = rlm.run("What is the mood of Aunt Mabel's letter?", context)
    assert (result.status, result.subcalls) == ("final", 1), result
    assert any(m in (result.answer or "").lower() for m in MOODS), result.answer
    events = read_trace(trace)
    sub = [e for e in events if e.type == "lm_response" and e.data.get("purpose") == "sub"]
    assert len(sub) == 1 and sub[0].data["usage"]["input_tokens"] > 50
    assert (
        "Aunt Mabel"
        in next(e for e in events if e.type == "lm_request" and e.data["purpose"] == "sub").data["last_message"]
    )


def test_the_sub_slot_never_evicts_the_root_cache() -> None:
    """Root turn, a sub-call on the forked slot, then the root's next turn: only the new suffix of the
    root's prompt is evaluated, because the sub-call ran in another llama.cpp context."""
    root = resolve_model(MODEL)
    assert isinstance(root, LocalLM)
    sub = root.fork_for_subcalls()
    assert sub.slot != root.slot
    first = [Message("system", "You are terse."), Message("user", "Name three rivers in Europe. " * 20)]
    a = root.complete_sync(first, max_tokens=16, temperature=0.0)
    sub.complete_sync("Name one colour of the rainbow. " * 30, max_tokens=8, temperature=0.0)
    second = [*first, Message("assistant", a.text), Message("user", "And one in Asia?")]
    b = root.complete_sync(second, max_tokens=8, temperature=0.0)
    assert b.usage.cached_input_tokens >= a.usage.input_tokens - 2, (a.usage, b.usage)


async def test_first_call_loads_the_model_off_the_event_loop() -> None:
    lm = resolve_model(MODEL, slot="e2e-first-call", n_ctx=2048)
    assert isinstance(lm, LocalLM) and not lm.loaded
    caller = ModelCaller(Ledger(Budget()), Tracer(None))
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.02)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)  # the ticker is running before the call starts
    try:
        c = await caller.complete(lm, [Message("user", "Say OK.")], purpose="root", parent=None, max_tokens=4)
    finally:
        task.cancel()
    try:
        assert c.text and c.usage.input_tokens > 0
        assert lm.load_seconds and sum(gaps) > lm.load_seconds  # the ticker ran all through the load
        assert max(gaps) < 0.5, "loading or counting tokens blocked the event loop"
    finally:
        lm.unload()
