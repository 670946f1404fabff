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
from unbounded.models import resolve_model
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
SUBCALL_QUESTION = (
    "Find Aunt Mabel's letter with grep and print llm_query('In one word, what is the mood of this letter? ' "
    "+ context[h.offset:h.offset + 300]) for the first hit h. Then answer with that word."
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
    assert usage["cost_usd"] == 0.0 and usage["input_tokens"] == sum(t.data["usage"]["input_tokens"] for t in turns)


def test_subcall_runs_on_the_sub_slot_and_the_root_cache_stays_warm(tmp_path: Path) -> None:
    prose = niah.prose_haystack(200_000, "NEEDLE", 0.5, random.Random(1))
    context = prose.replace("NEEDLE", LETTER)
    trace = tmp_path / "run.jsonl"
    rlm = RLM(model=MODEL, repl="process", trace=trace, budget=Budget(max_iterations=4))
    assert isinstance(rlm.root_lm, LocalLM) and rlm.root_lm.slot == "root"
    assert isinstance(rlm.sub_lm, LocalLM) and rlm.sub_lm.slot == "sub"

    result = rlm.run(SUBCALL_QUESTION, context)
    assert result.status == "final", result
    assert result.subcalls >= 1
    assert any(m in (result.answer or "").lower() for m in MOODS), result.answer

    events = read_trace(trace)
    sub_requests = [e for e in events if e.type == "lm_request" and e.data["purpose"] == "sub"]
    sub_responses = [e for e in events if e.type == "lm_response" and e.data.get("purpose") == "sub"]
    assert sub_requests and len(sub_responses) == len(sub_requests)
    assert "Aunt Mabel" in sub_requests[0].data["last_message"]  # the letter went into the sub-call's prompt
    assert all(e.data["text"].strip() and "error" not in e.data for e in sub_responses)
    turns = root_responses(events)
    assert len(turns) >= 2
    # The sub-call ran on its own slot, so the root's next turn still finds its whole history cached.
    assert turns[1].data["usage"]["cached_input_tokens"] >= turns[0].data["usage"]["input_tokens"]


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
