"""The retrieval agent: BM25 (``bm25s``) over chunks of the context, then one answer from the top chunks.

Chunks are whole lines or paragraphs (records stay intact) of about ``chunk_tokens``; the question
is the query; the best-ranked chunks are read, best first, until the window is full (or ``top_k``).
"""

from __future__ import annotations

import time
from typing import Any

from ...models import LM, Message
from ..tasks.base import TaskItem
from .base import SYSTEM_PROMPT, Caller, MethodConfig, MethodResult, user_prompt
from .render import Chunk, chunk_context


def rank_chunks(chunks: list[Chunk], query: str, k: int) -> list[tuple[int, float]]:
    """The ``k`` best chunks for ``query`` as (chunk index, BM25 score), best first."""
    try:
        import bm25s
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("the retrieval method needs bm25s: pip install 'unbounded[bench]'") from exc
    k = max(1, min(k, len(chunks)))
    corpus_tokens = bm25s.tokenize([c.text for c in chunks], stopwords="en", show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(corpus_tokens, show_progress=False)
    query_tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
    docs, scores = retriever.retrieve(query_tokens, k=k, show_progress=False)
    ranked = [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True)]
    # Chunks with no query term at all keep their original order rather than an arbitrary one.
    return sorted(ranked, key=lambda p: (-p[1], p[0]))


def passages_messages(item: TaskItem, passages: list[Chunk], total: int) -> list[Message]:
    shown = "\n\n".join(f"[Passage {i + 1}: chunk {c.index + 1} of {total}]\n{c.text}" for i, c in enumerate(passages))
    body = (
        "The context was too long to read whole, so a search engine picked the passages most relevant "
        f"to the question, best first.\n\nPassages:\n<<<\n{shown}\n>>>\n\n"
        f"{user_prompt(item.question, item.answer_format)}"
    )
    return [Message("system", SYSTEM_PROMPT), Message("user", body)]


def select_passages(
    call: Caller, item: TaskItem, chunks: list[Chunk], ranked: list[tuple[int, float]], config: MethodConfig
) -> list[Chunk]:
    """Best-ranked chunks, in rank order, as many as fit the window (and at most ``top_k``)."""
    limit = call.room(config.max_answer_tokens)
    overhead = call.tokens(passages_messages(item, [], len(chunks)))
    budget = (limit - overhead) * config.safety
    picked: list[Chunk] = []
    used = 0
    for idx, _score in ranked:
        if config.top_k is not None and len(picked) >= config.top_k:
            break
        cost = call.estimate(len(chunks[idx].text) + 40)
        if used + cost > budget:
            continue  # a smaller chunk further down may still fit
        picked.append(chunks[idx])
        used += cost
    # With an exact tokenizer, drop the lowest-ranked passages until the prompt really fits
    # (in proportion to the overflow, so a dense tokenizer does not cost one count per passage).
    while picked:
        used_tokens = call.tokens(passages_messages(item, picked, len(chunks)))
        if used_tokens <= limit:
            break
        drop = max(1, int(len(picked) * (1 - limit / used_tokens)))
        del picked[len(picked) - drop :]
    return picked


async def run_retrieval(lm: LM, item: TaskItem, config: MethodConfig | None = None) -> MethodResult:
    config = config or MethodConfig()
    started = time.perf_counter()
    call = Caller(lm, config)
    chunks = chunk_context(item.context, int(config.chunk_tokens * config.chars_per_token))
    room_chunks = int(call.room(config.max_answer_tokens) / max(config.chunk_tokens // 2, 1)) + 8
    want = room_chunks if config.top_k is None else min(config.top_k, room_chunks)
    ranked = rank_chunks(chunks, item.question, want) if chunks else []
    picked = select_passages(call, item, chunks, ranked, config)
    answer = await call(passages_messages(item, picked, len(chunks)), config.max_answer_tokens)
    scores = dict(ranked)
    notes: dict[str, Any] = {
        "chunks": len(chunks),
        "retrieved": len(picked),
        "retrieved_chunks": [c.index for c in picked][:100],
        "top_scores": [round(scores[c.index], 3) for c in picked][:10],
        "retrieved_chars": sum(len(c.text) for c in picked),
        "window": call.window,
    }
    return MethodResult(
        method="retrieval",
        answer=answer,
        usage=call.usage,
        seconds=time.perf_counter() - started,
        calls=call.usage.calls,
        notes=notes,
    )
