"""``astream`` in the model layer itself: the default for every model, wrappers, the response cache,
the scripted model, and the stop-sequence filter every streaming backend shares."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unbounded.models import Completion, Message, ScriptedLM, Usage, WrappedLM, full_lm
from unbounded.models.base import Delta, LMBase
from unbounded.models.cache import CachedLM
from unbounded.models.streaming import ReplyText, StopFilter

Q = [Message("user", "Say something long.")]
TEXT = "The quick brown fox jumps over the lazy dog."


async def collect(stream: AsyncIterator[Delta]) -> list[Delta]:
    return [d async for d in stream]


def check_stream(deltas: list[Delta]) -> Completion:
    assert deltas, "a stream yields at least one delta"
    *head, last = deltas
    assert last.completion is not None and all(d.completion is None for d in head)
    assert "".join(d.text for d in deltas) == last.completion.text
    return last.completion


# -- the default and the wrappers --------------------------------------------------------------------


class OneShot(LMBase):
    """A backend that only implements ``complete``."""

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        self.calls += 1
        await asyncio.sleep(0)
        return Completion(TEXT, Usage(calls=1, input_tokens=7, output_tokens=9), "one", "stop")


async def test_every_model_streams_one_delta_by_default() -> None:
    lm = OneShot()
    assert not lm.abilities.streaming
    deltas = await collect(lm.astream(Q))
    assert len(deltas) == 1 and deltas[0].text == TEXT
    c = check_stream(deltas)
    assert (c.usage.input_tokens, c.usage.output_tokens, c.finish_reason) == (7, 9, "stop")


async def test_a_protocol_only_model_streams_through_full_lm() -> None:
    class Bare:
        name = "bare"
        max_concurrency = 1
        context_window = None

        async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
            return Completion("bare reply", Usage(calls=1))

    deltas = await collect(full_lm(Bare()).astream(Q))
    assert check_stream(deltas).text == "bare reply"


async def test_a_wrapper_forwards_the_inner_stream() -> None:
    inner = ScriptedLM([TEXT], stream_chunk=5)
    deltas = await collect(WrappedLM(inner).astream(Q))
    assert [d.text for d in deltas[:-1]] == [TEXT[i : i + 5] for i in range(0, len(TEXT), 5)]
    assert check_stream(deltas).text == TEXT
    assert WrappedLM(inner).abilities.streaming


async def test_a_wrapper_that_changes_complete_also_sees_streamed_calls() -> None:
    class Counting(WrappedLM):
        seen = 0

        async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
            Counting.seen += 1
            c = await self.inner.complete(messages, **opts)
            return Completion(c.text.upper(), c.usage, c.model, c.finish_reason)

    deltas = await collect(Counting(ScriptedLM([TEXT], stream_chunk=3)).astream(Q))
    assert Counting.seen == 1
    assert check_stream(deltas).text == TEXT.upper()


async def test_closing_a_wrapped_stream_closes_the_inner_one() -> None:
    inner = ScriptedLM([TEXT * 10], stream_chunk=2, delta_latency=0.001)
    stream = WrappedLM(inner).astream(Q)
    await anext(stream)
    await anext(stream)
    await stream.aclose()
    assert inner.closed_streams == 1


# -- the scripted model -----------------------------------------------------------------------------


async def test_scripted_model_streams_in_chunks_with_its_usage() -> None:
    lm = ScriptedLM([TEXT], stream_chunk=10, usage_fn=lambda m, t: Usage(input_tokens=3, output_tokens=len(t)))
    assert lm.abilities.streaming
    deltas = await collect(lm.astream(Q, max_tokens=5))
    c = check_stream(deltas)
    assert [len(d.text) for d in deltas] == [10, 10, 10, 10, 4, 0]
    assert (c.usage.calls, c.usage.input_tokens, c.usage.output_tokens) == (1, 3, len(TEXT))
    assert lm.options == [{"max_tokens": 5}]


async def test_cancelling_a_scripted_stream_stops_it() -> None:
    lm = ScriptedLM([TEXT * 50], stream_chunk=1, delta_latency=0.01)
    got: list[str] = []

    async def consume() -> None:
        async for d in lm.astream(Q):
            got.append(d.text)

    task = asyncio.create_task(consume())
    while len(got) < 3:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lm.closed_streams == 1 and len(got) < len(TEXT * 50)


def test_stream_chunk_must_be_positive() -> None:
    with pytest.raises(ValueError, match="stream_chunk"):
        ScriptedLM(["x"], stream_chunk=0)


# -- the response cache -------------------------------------------------------------------------------


async def test_cache_stores_a_streamed_miss_and_serves_the_hit_as_one_delta(tmp_path: Path) -> None:
    inner = ScriptedLM([TEXT], stream_chunk=4, usage_fn=lambda m, t: Usage(input_tokens=11, output_tokens=12))
    lm = CachedLM(inner, path=tmp_path / "c.sqlite")
    first = await collect(lm.astream(Q, temperature=0))
    assert len(first) > 2 and not check_stream(first).cached
    second = await collect(lm.astream(Q, temperature=0))
    assert len(second) == 1 and second[0].text == TEXT
    hit = check_stream(second)
    assert hit.cached and hit.usage.input_tokens == 0 and hit.extra["cached_usage"]["input_tokens"] == 11
    assert len(inner.calls) == 1 and (lm.hits, lm.misses) == (1, 1)
    assert (await lm.complete(Q, temperature=0)).cached  # complete and astream share the store


async def test_cache_stores_nothing_for_a_stream_closed_early(tmp_path: Path) -> None:
    inner = ScriptedLM([TEXT], stream_chunk=4)
    lm = CachedLM(inner, path=tmp_path / "c.sqlite")
    stream = lm.astream(Q)
    await anext(stream)
    await stream.aclose()
    assert lm.store.count() == 0 and not lm._in_flight
    deltas = await collect(lm.astream(Q))
    assert check_stream(deltas).text == TEXT and len(inner.calls) == 2


async def test_a_stream_waits_for_the_same_call_in_flight(tmp_path: Path) -> None:
    inner = ScriptedLM([TEXT], stream_chunk=4, delta_latency=0.01)
    lm = CachedLM(inner, path=tmp_path / "c.sqlite")
    a, b = await asyncio.gather(collect(lm.astream(Q)), collect(lm.astream(Q)))
    assert len(inner.calls) == 1
    assert check_stream(a).text == check_stream(b).text == TEXT
    assert sorted([len(a), len(b)])[0] == 1  # the second one got the stored answer, whole


# -- the stop filter ----------------------------------------------------------------------------------


def test_stop_filter_holds_back_only_what_could_start_a_stop() -> None:
    f = StopFilter(["STOP", "\n\n"])
    assert f.feed("hello S") == "hello "
    assert f.feed("T") == ""  # "ST" may still become "STOP"
    assert f.feed("ART and ") == "START and "
    assert f.feed("more\n") == "more"
    assert f.feed("\nafter") == ""
    assert f.stopped and f.feed("x") == "" and f.flush() == ""


def test_the_first_stop_to_complete_cuts_whole_or_in_pieces() -> None:
    """Found by hypothesis: cut at the earliest *start*, the whole text gave "" and the pieces "O"."""
    assert ReplyText.whole("OaO", ["a", "OaO"]) == "O"
    reply = ReplyText(["a", "OaO"])
    assert reply.feed("Oa") + reply.feed("O") + reply.finish() == "O"
    assert ReplyText.whole("xOa", ["a", "Oa"]) == "x", "a tie on the end goes to the earlier start"


def test_reply_text_unwraps_at_the_end() -> None:
    reply = ReplyText(unwrap=True)
    assert reply.feed('{"value": ') == "" and reply.feed("[1, 2]}") == ""
    assert reply.finish() == "[1, 2]" and reply.text == "[1, 2]"


@given(
    text=st.text(alphabet="abS TOP\n", max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=8),
    stops=st.lists(st.text(alphabet="abS TOP\n", min_size=1, max_size=4), max_size=3),
)
def test_stream_pieces_join_to_the_whole_text_cut(text: str, cuts: list[int], stops: list[str]) -> None:
    """However a reply is split, the delivered pieces join to the text cut where a stop first completes."""
    bounds = sorted({0, len(text), *(min(c, len(text)) for c in cuts)})
    reply = ReplyText(stops)
    out = [reply.feed(text[a:b]) for a, b in itertools.pairwise(bounds)]
    out.append(reply.finish())
    hits = [(i + len(s), i) for s in stops if (i := text.find(s)) >= 0]
    expected = text[: min(hits)[1]] if hits else text
    assert "".join(out) == reply.text == expected == ReplyText.whole(text, stops)


async def test_closing_before_the_end_runs_the_backend_cleanup() -> None:
    """An async generator backend's ``finally`` runs when the consumer breaks out (aclosing)."""
    closed: list[bool] = []

    class Streams(LMBase):
        async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
            raise AssertionError("not used")

        async def astream(self, messages: Sequence[Message], **opts: Any) -> AsyncIterator[Delta]:
            try:
                for word in TEXT.split():
                    yield Delta(word + " ")
                    await asyncio.sleep(0)
            finally:
                closed.append(True)

    async with contextlib.aclosing(WrappedLM(Streams()).astream(Q)) as stream:
        async for d in stream:
            if d.text.startswith("brown"):
                break
    assert closed == [True]
