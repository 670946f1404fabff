"""Baselines end to end on a scripted model that answers from what it was shown."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from unbounded.bench.methods import (
    MethodConfig,
    MethodResult,
    chunk_context,
    render_context,
    run_method,
)
from unbounded.bench.tasks import generate, score
from unbounded.models import Message, ScriptedLM
from unbounded.models.base import Abilities

NEEDLE = re.compile(r"One of the special magic \w+ for [\w-]+ is: ([\w-]+)\.")
NOTES = re.compile(r"Your notes from the earlier parts:\n<<<\n(.*?)\n>>>", re.S)


def reader(messages: list[Message]) -> str:
    """A model that 'reads': it answers with a needle it can see, and keeps needles in its notes."""
    text = messages[-1].content
    found = NEEDLE.search(text)
    if "Rewrite your notes" in text:
        if found:
            return found.group(0)
        old = NOTES.search(text)
        return "" if old is None or old.group(1) == "(none yet)" else old.group(1)
    return f"Answer: {found.group(1)}" if found else "Answer: I do not know"


def prompt_chars(lm: ScriptedLM) -> list[int]:
    return [sum(len(m.content) for m in call) for call in lm.calls]


async def test_direct_fits_small_context_whole() -> None:
    item = generate("niah", 8_000, n=1, seed=0)[0]
    lm = ScriptedLM(reader)
    result = await run_method("direct", lm, item)
    assert isinstance(result, MethodResult)
    assert result.method == "direct" and result.status == "ok"
    assert score(item, result.answer) == 1.0
    assert result.calls == 1 and result.usage.calls == 1
    assert result.usage.input_tokens > 7_000
    assert result.notes["truncated"] is False and result.notes["kept_fraction"] == 1.0
    assert lm.options[0]["temperature"] == 0
    assert item.answer_format in lm.calls[0][-1].content
    assert result.seconds >= 0


async def test_direct_truncates_keeping_the_head_and_records_it() -> None:
    item = generate("niah", 100_000, n=1, seed=0, haystack="noise", depth=0.9)[0]
    lm = ScriptedLM(reader)
    result = await run_method("direct", lm, item, MethodConfig(context_window=16_384))
    notes = result.notes
    assert notes["truncated"] is True
    assert notes["total_chars"] == len(item.context)
    assert 0.05 < notes["kept_fraction"] < 0.2
    shown = lm.calls[0][-1].content
    assert item.context[: notes["kept_chars"]] in shown  # the head, verbatim
    assert "was cut to fit" in shown
    assert prompt_chars(lm)[0] / 4 <= 16_384 - 1_024  # within the window by the chars/4 estimate
    assert score(item, result.answer) == 0.0  # the needle sat in the cut tail


async def test_model_window_overrides_the_default_and_exact_counts_are_honoured() -> None:
    class DenseLM(ScriptedLM):
        """Pretends to tokenise at 2 characters per token, so the chars/4 estimate would overflow."""

        abilities = Abilities(tokenizer=True)

        def count_tokens(self, messages: Sequence[Message]) -> int:
            return sum(len(m.content) for m in messages) // 2 + 10

    item = generate("oolong", 50_000, n=1, seed=0)[0]
    lm = DenseLM(["Answer: 3"], context_window=8_192)
    result = await run_method("direct", lm, item)
    assert result.notes["window"] == 8_192
    assert lm.count_tokens(lm.calls[0]) <= 8_192 - 1_024
    assert lm.count_tokens(lm.calls[0]) > 0.8 * (8_192 - 1_024)  # and it still uses most of the room
    lines = lm.calls[0][-1].content.split("<<<\n", 1)[1].split("\n>>>", 1)[0].split("\n")
    assert all(line.startswith("Date: ") for line in lines)  # cut at a record boundary

    lm = DenseLM(["Answer: 3"], context_window=8_192)
    result = await run_method("retrieval", lm, item)
    assert result.notes["retrieved"] > 0 and lm.count_tokens(lm.calls[0]) <= 8_192 - 1_024


async def test_summarize_carries_notes_across_parts() -> None:
    item = generate("niah", 120_000, n=1, seed=3, haystack="prose", depth=0.35)[0]
    lm = ScriptedLM(reader)
    config = MethodConfig(context_window=16_384)
    result = await run_method("summarize", lm, item, config)
    parts = result.notes["parts"]
    assert parts >= 8
    assert result.calls == parts + 1
    assert score(item, result.answer) == 1.0
    assert all(n / 4 <= 16_384 for n in prompt_chars(lm))
    # Every character of the context was shown in some part, in order.
    shown = "".join(
        call[-1].content.split("of the context:\n<<<\n", 1)[1].rsplit("\n>>>\n\nRewrite", 1)[0]
        for call in lm.calls[:-1]
    )
    assert len(shown) >= 0.99 * len(item.context)
    assert "Answer from the notes." in lm.calls[-1][-1].content


async def test_summarize_answers_directly_when_it_fits() -> None:
    item = generate("multihop", 8_000, n=1, seed=0)[0]
    lm = ScriptedLM(["Answer: x"])
    result = await run_method("summarize", lm, item)
    assert result.calls == 1 and result.notes == {"parts": 0, "fits_window": True, "window": 32_768}


@pytest.mark.parametrize("haystack", ["noise", "prose"])
async def test_retrieval_finds_the_needle_chunk_at_200k(haystack: str) -> None:
    item = generate("niah", 200_000, n=1, seed=1, haystack=haystack, depth=0.77)[0]
    lm = ScriptedLM(reader)
    result = await run_method("retrieval", lm, item)
    notes = result.notes
    assert notes["chunks"] > 150
    assert 0 < notes["retrieved"] < notes["chunks"]
    needle_chunk = next(c.index for c in chunk_context(item.context, 3_200) if NEEDLE.search(c.text))
    assert notes["retrieved_chunks"][0] == needle_chunk  # ranked first
    assert score(item, result.answer) == 1.0
    assert result.calls == 1
    assert prompt_chars(lm)[0] / 4 <= 32_768 - 1_024


async def test_retrieval_top_k_and_keyed_contexts() -> None:
    item = generate("multihop", 60_000, n=1, seed=2)[0]
    lm = ScriptedLM(["Answer: x"])
    result = await run_method("retrieval", lm, item, MethodConfig(top_k=5, chunk_tokens=300))
    assert result.notes["retrieved"] == 5
    shown = lm.calls[0][-1].content
    assert shown.count("[Passage ") == 5
    assert re.search(r"=== doc-\d+ ===\nTitle: ", shown)  # chunks keep their document id


def test_chunks_keep_lines_whole_and_bounded() -> None:
    item = generate("oolong", 20_000, n=1, seed=0)[0]
    chunks = chunk_context(item.context, 2_000)
    assert all(len(c.text) <= 2_000 for c in chunks)
    assert "\n".join(c.text for c in chunks) == item.context
    long_line = "word " * 5_000
    assert all(len(c.text) <= 1_000 for c in chunk_context(long_line, 1_000))
    assert render_context({"a.py": "x = 1"}) == "=== a.py ===\nx = 1"
    assert render_context(["p", "q"]) == "=== item 0 ===\np\n\n=== item 1 ===\nq"


@pytest.mark.parametrize("task", ["oolong", "oolong-pairs", "codeqa", "multihop"])
@pytest.mark.parametrize("method", ["direct", "summarize", "retrieval"])
async def test_every_baseline_runs_on_every_task(task: str, method: str) -> None:
    item = generate(task, 40_000, n=1, seed=0)[0]
    lm = ScriptedLM(lambda msgs: "Notes: nothing yet." if "Rewrite your notes" in msgs[-1].content else "Answer: A")
    result = await run_method(method, lm, item, MethodConfig(context_window=16_384))
    assert result.answer is not None
    assert 0.0 <= score(item, result.answer) <= 1.0
    assert result.usage.calls == result.calls == len(lm.calls)
    assert all(item.answer_format in call[-1].content for call in lm.calls if "Rewrite" not in call[-1].content)
    assert all(n / 4 <= 16_384 for n in prompt_chars(lm))


async def test_unknown_method_is_rejected() -> None:
    item = generate("niah", 8_000)[0]
    with pytest.raises(ValueError, match="unknown method"):
        await run_method("magic", ScriptedLM(["x"]), item)


# ---------------------------------------------------------------------------------------------
# RLM methods: only where the engine is importable


@pytest.mark.parametrize("method", ["rlm", "rlm-nosub"])
async def test_rlm_methods_run_through_the_engine(method: str, tmp_path) -> None:
    engine = pytest.importorskip("unbounded.engine")
    if not hasattr(engine, "RLM"):
        pytest.skip("engine without RLM")
    item = generate("niah", 20_000, n=1, seed=0)[0]
    code = (
        "```python\nimport re\n"
        "m = re.search(r'special magic \\w+ for [\\w-]+ is: ([\\w-]+)\\.', context)\n"
        "FINAL(m.group(1))\n```"
    )
    lm = ScriptedLM([code])
    config = MethodConfig(repl="inprocess", trace_dir=str(tmp_path))
    result = await run_method(method, lm, item, config)
    assert result.method == method
    assert result.status == "final"
    assert score(item, result.answer) == 1.0
    assert result.calls == result.usage.calls >= 1
    assert result.notes["iterations"] >= 1
    assert result.notes["trace_path"] and result.notes["trace_path"].startswith(str(tmp_path))
    assert item.answer_format in "\n".join(m.content for m in lm.calls[0])
