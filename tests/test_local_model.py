"""The embedded llama.cpp backend against the real GGUF models (slow: minutes on 2 CPU cores).

Most assertions run on qwen2.5-coder-0.5b; the default 1.5b model is exercised once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from unbounded.errors import ContextLengthError, ModelError
from unbounded.models import resolve_model
from unbounded.models.base import Message
from unbounded.models.local import LocalLM, unload_all

pytestmark = pytest.mark.slow

try:
    import llama_cpp  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install
    pytest.skip("llama-cpp-python is not installed (pip install 'unbounded[local]')", allow_module_level=True)

SMALL = "local/qwen2.5-coder-0.5b"
N_CTX = 4096

# A long, fixed prefix (~1,500 tokens) standing in for an RLM system prompt plus metadata.
LONG_SYSTEM = "You answer questions about a Python code base. Reply tersely.\n\n" + "\n".join(
    f"def helper_{i}(x):\n    '''Return x times {i}.'''\n    return x * {i}\n" for i in range(60)
)


@pytest.fixture(scope="module", autouse=True)
def _own_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Warm-start states go to a folder of this module's, not the user's cache."""
    saved = os.environ.get("UNBOUNDED_STATE_DIR")
    os.environ["UNBOUNDED_STATE_DIR"] = str(tmp_path_factory.mktemp("states"))
    yield
    if saved is None:
        os.environ.pop("UNBOUNDED_STATE_DIR", None)
    else:
        os.environ["UNBOUNDED_STATE_DIR"] = saved


@pytest.fixture(scope="module")
def lm() -> Iterator[LocalLM]:
    model = resolve_model(SMALL, n_ctx=N_CTX)
    assert isinstance(model, LocalLM)
    yield model
    unload_all()


def ask(text: str) -> list[Message]:
    return [Message("user", text)]


async def test_completes_a_chat_with_exact_usage(lm: LocalLM) -> None:
    fresh = lm.with_slot("t-chat")
    msgs = [Message("system", "Answer with a number only."), Message("user", "What is 2 + 2?")]
    c = await fresh.complete(msgs, max_tokens=16)
    assert "4" in c.text
    assert c.finish_reason == "stop"
    assert c.model == SMALL
    assert c.usage.calls == 1
    assert c.usage.input_tokens == fresh.count_tokens(msgs) == len(fresh.tokenize(msgs))
    assert 0 < c.usage.output_tokens <= 16
    assert c.usage.cached_input_tokens == 0
    assert c.usage.cost_usd == 0.0
    assert c.extra["load_s"] > 0 and fresh.load_seconds is not None
    assert fresh.context_window == N_CTX
    fresh.unload()


async def test_deterministic_at_temperature_zero(lm: LocalLM) -> None:
    msgs = ask("Write a one-line Python expression that reverses a string s.")
    a = await lm.complete(msgs, max_tokens=40)
    b = await lm.complete(msgs, max_tokens=40)  # now served mostly from the KV cache
    assert a.text == b.text
    assert b.usage.cached_input_tokens > 0


async def test_max_tokens_caps_output(lm: LocalLM) -> None:
    c = await lm.complete(ask("Count from 1 to 100, separated by commas."), max_tokens=8)
    assert c.finish_reason == "length"
    assert c.usage.output_tokens == 8


async def test_stop_sequences_cut_the_text(lm: LocalLM) -> None:
    msgs = ask("Count from 1 to 20, separated by commas and spaces. Output only the numbers.")
    full = await lm.complete(msgs, max_tokens=80)
    assert "7, 8" in full.text
    cut = await lm.complete(msgs, max_tokens=80, stop=["7", "never-there"])
    assert cut.finish_reason == "stop"
    assert "7" not in cut.text
    assert full.text.startswith(cut.text) and cut.text


async def test_warm_prefix_is_reused_between_turns(lm: LocalLM) -> None:
    first = [Message("system", LONG_SYSTEM), Message("user", "What does helper_7 return?")]
    c1 = await lm.complete(first, max_tokens=24)
    assert c1.usage.input_tokens > 1000
    second = [*first, Message("assistant", c1.text), Message("user", "And helper_12?")]
    c2 = await lm.complete(second, max_tokens=24)
    assert c2.usage.cached_input_tokens >= c1.usage.input_tokens
    fresh = c2.usage.input_tokens - c2.usage.cached_input_tokens
    assert fresh < 40
    # llama.cpp's own counter agrees that only the suffix was decoded.
    assert c2.extra["llama_prompt_eval_count"] <= fresh + 1


async def test_subcall_slot_keeps_root_cache_warm(lm: LocalLM) -> None:
    root_msgs = [Message("system", LONG_SYSTEM), Message("user", "What does helper_3 return?")]
    await lm.complete(root_msgs, max_tokens=8)
    sub = lm.fork_for_subcalls()
    await sub.complete(ask("Say OK."), max_tokens=4)
    again = await lm.complete([*root_msgs[:1], Message("user", "What does helper_4 return?")], max_tokens=8)
    assert again.usage.cached_input_tokens > 1000  # the sub-call did not evict the root's prefix


async def test_a_slot_that_starts_small_grows_on_the_first_prompt_that_needs_it(lm: LocalLM) -> None:
    small = lm.with_slot("t-grow", n_ctx_start=1024)
    c = await small.complete(ask("Say OK."), max_tokens=4)
    rt = small._runtime()
    assert c.text and rt.n_ctx == 1024 and rt.grown == 0
    assert small.context_window == N_CTX  # what it offers, not what is loaded yet
    long = [Message("system", LONG_SYSTEM), Message("user", "What does helper_7 return? Answer in a few words.")]
    assert 1024 < small.count_tokens(long) < N_CTX
    grown = await small.complete(long, max_tokens=24)
    assert rt.n_ctx == N_CTX and rt.grown == 1
    assert "7" in grown.text and grown.extra["load_s"] > 0
    with pytest.raises(ContextLengthError):  # the full window is still the limit
        await small.complete(ask("word " * (N_CTX + 100)), max_tokens=8)
    assert rt.grown == 1
    small.unload()


async def test_slots_share_one_copy_of_the_weights_and_outlive_each_other(lm: LocalLM) -> None:
    from unbounded.models.llama_shared import users_of

    a, b = lm.with_slot("t-share-a"), lm.with_slot("t-share-b")
    msgs = ask("What is 3 + 4? Answer with the number only.")
    first = await a.complete(msgs, max_tokens=4)
    users = users_of(a._runtime().llama)
    again = await b.complete(msgs, max_tokens=4)
    assert users is not None and users_of(b._runtime().llama) == users + 1  # b borrowed a's weights
    assert a._runtime().llama._model._shared is b._runtime().llama._model._shared
    assert again.text == first.text and "7" in first.text
    a.unload()  # the weights stay for b
    assert users_of(b._runtime().llama) == users
    assert (await b.complete(msgs, max_tokens=4)).text == first.text
    b.unload()


async def test_concurrent_calls_are_serialised(lm: LocalLM) -> None:
    prompts = [ask(f"What is {i} + {i}? Answer with the number only.") for i in range(4)]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    t = asyncio.create_task(ticker())
    together = await asyncio.gather(*(lm.complete(p, max_tokens=8) for p in prompts))
    t.cancel()
    assert ticks > 0, "the event loop must keep running while the model works"
    alone = [await lm.complete(p, max_tokens=8) for p in prompts]
    assert [c.text for c in together] == [c.text for c in alone]
    assert [c.text.strip() for c in alone] == ["0", "2", "4", "6"]


async def test_context_overflow_raises_context_length_error(lm: LocalLM) -> None:
    with pytest.raises(ContextLengthError) as err:
        await lm.complete(ask("word " * (N_CTX + 100)), max_tokens=8)
    assert isinstance(err.value, ModelError) and err.value.kind == "context_length"
    assert str(N_CTX) in str(err.value)
    ok = await lm.complete(ask("Say yes."), max_tokens=4)  # still healthy afterwards
    assert ok.text


async def test_cancel_stops_generation(lm: LocalLM) -> None:
    task = asyncio.create_task(lm.complete(ask("Write a very long essay about compilers."), max_tokens=2000))
    await asyncio.sleep(1.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    c = await asyncio.wait_for(lm.complete(ask("Say hi."), max_tokens=4), timeout=60)
    assert c.text


def test_complete_sync(lm: LocalLM) -> None:
    c = lm.complete_sync("What is 3 * 3? Answer with the number only.", max_tokens=8)
    assert "9" in c.text


def test_special_tokens_in_content_are_plain_text(lm: LocalLM) -> None:
    plain = lm.tokenize([Message("user", "a <|im_end|> b")])
    im_end = lm.tokenize([Message("user", "")])
    assert len(plain) > len(im_end) + 3  # spelled out, not one special token


async def test_default_model_answers() -> None:
    big = resolve_model("local/qwen2.5-coder-1.5b", n_ctx=2048)
    try:
        msgs = [Message("user", "Write a Python function add(a, b) that returns a + b. Only code.")]
        c = await big.complete(msgs, max_tokens=64)
        assert "def add" in c.text
        assert c.usage.input_tokens == big.count_tokens(msgs)
        assert big.context_window == 2048
    finally:
        big.unload()
