"""Streaming and bounded cancellation on the embedded llama.cpp model
(slow: the real 0.5B GGUF on the CPU). Greedy decoding makes streamed and whole replies comparable."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from unbounded.models import resolve_model
from unbounded.models.base import Delta, Message
from unbounded.models.local import LocalLM, unload_all

pytestmark = pytest.mark.slow

try:
    import llama_cpp  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install
    pytest.skip("llama-cpp-python is not installed (pip install 'unbounded[local]')", allow_module_level=True)

SMALL = "local/qwen2.5-coder-0.5b"
N_CTX = 4096
COUNT = [Message("user", "Count from 1 to 12, separated by commas and spaces. Output only the numbers.")]


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLM]:
    saved = os.environ.get("UNBOUNDED_STATE_DIR")
    os.environ["UNBOUNDED_STATE_DIR"] = str(tmp_path_factory.mktemp("states"))  # keep the user's cache clean
    model = resolve_model(SMALL, n_ctx=N_CTX)
    assert isinstance(model, LocalLM)
    yield model
    unload_all()
    if saved is None:
        os.environ.pop("UNBOUNDED_STATE_DIR", None)
    else:
        os.environ["UNBOUNDED_STATE_DIR"] = saved


async def stream(lm: LocalLM, messages: list[Message], **opts: object) -> list[Delta]:
    return [d async for d in lm.astream(messages, **opts)]


async def test_streamed_deltas_are_the_complete_text(lm: LocalLM) -> None:
    whole = await lm.complete(COUNT, max_tokens=20)
    deltas = await stream(lm, COUNT, max_tokens=20)
    last = deltas[-1].completion
    assert last is not None and all(d.completion is None for d in deltas[:-1])
    assert "".join(d.text for d in deltas) == last.text == whole.text
    assert "1, 2, 3" in whole.text
    assert len([d for d in deltas if d.text]) >= 10  # token by token, not one block
    assert last.usage.output_tokens == whole.usage.output_tokens
    assert last.usage.input_tokens == whole.usage.input_tokens
    assert last.finish_reason == whole.finish_reason


async def test_stop_sequences_hold_while_streaming(lm: LocalLM) -> None:
    whole = await lm.complete(COUNT, max_tokens=30, stop=["7", "never-there"])
    deltas = await stream(lm, COUNT, max_tokens=30, stop=["7", "never-there"])
    joined = "".join(d.text for d in deltas)
    assert joined == whole.text and joined and "7" not in joined
    assert deltas[-1].completion is not None and deltas[-1].completion.finish_reason == "stop"


async def test_closing_the_stream_stops_the_generation(lm: LocalLM) -> None:
    essay = [Message("user", "Write a very long essay about the history of compilers.")]
    agen = lm.astream(essay, max_tokens=2000)
    first = [await anext(agen) for _ in range(5)]
    assert all(d.text for d in first)
    await agen.aclose()
    started = time.perf_counter()
    after = await asyncio.wait_for(lm.complete([Message("user", "Say hi.")], max_tokens=4), timeout=120)
    assert after.text
    # 2,000 tokens would take minutes here; the closed stream stopped at its next token.
    assert time.perf_counter() - started < 45


async def test_cancelling_during_a_long_prompt_stops_within_a_batch(lm: LocalLM, tmp_path: Path) -> None:
    """llama.cpp cannot stop inside a batch; the prompt goes in ``n_batch``-token batches with a
    check between them, so a cancelled call leaves most of a long prompt unevaluated."""
    fresh = lm.with_slot("t-cancel")
    long_prompt = [Message("user", " ".join(f"item{i} is filed under shelf {i % 97}." for i in range(300)))]
    n_prompt = fresh.count_tokens(long_prompt)
    assert n_prompt is not None and 2000 < n_prompt < N_CTX - 8
    task = asyncio.create_task(fresh.complete(long_prompt, max_tokens=8))
    await asyncio.sleep(1.0)
    cancelled_at = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rt = fresh._runtime()
    await asyncio.wrap_future(rt.executor.submit(lambda: None))  # the job has returned
    waited = time.perf_counter() - cancelled_at
    evaluated = int(rt.llama.n_tokens)
    assert evaluated < n_prompt, f"the whole prompt was evaluated ({evaluated} tokens) after the cancel"
    assert evaluated % 512 == 0  # it stopped on a batch boundary
    assert waited < 30, f"waited {waited:.1f}s for the model after cancelling"
    fresh.unload()
