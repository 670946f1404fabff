"""The code-agent baseline: CodeAct with BM25 search, and no sub-calls (the paper's fourth method).

Unlike an RLM, the agent does not offload the context: as much of it as fits the window (its head)
goes into the prompt, as for ``direct``. It then works in a ReAct loop: each turn it may write a
```python block, which runs in a sandboxed REPL (``unbounded.repl``; the same worker the RLM uses,
with no ``llm_query``/``rlm_query``), and it sees what the code printed. One host tool is offered in
the REPL: ``search(query, k=5)``, BM25 (``bm25s``) over the whole context, in chunks of whole lines
(``render.chunk_context``), indexed once per item on the first search. A reply without code is the
answer (a ``FINAL(...)`` in code or text is accepted too). When the turns run out, the model is
asked once more for its answer without code.

The conversation must stay within the window: the context's head is fitted leaving ``turn_room``
tokens for the turns, each output is cut to ``output_chars``, and when the turns outgrow the room
the oldest are dropped (the system prompt, the context and the question always stay).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from ...models import LM, Message
from ...parsing import parse_reply
from ...repl import Limits, make_repl
from ...repl.base import CellResult, ToolSpec
from ..tasks.base import TaskItem
from .base import SYSTEM_PROMPT, Caller, MethodConfig, MethodResult, user_prompt
from .render import Chunk, chunk_context, render_context

#: Characters of one cell's output the agent is shown (head and tail kept).
OUTPUT_CHARS = 4_000
#: Passages one search returns at most, and the characters of each passage shown.
MAX_K = 20
SEARCH_TOOL = ToolSpec(
    "search",
    "BM25 search over the whole context: a list of the best passages, each a dict with 'source' (the document "
    "it is from, or None), 'chunk' (its number), 'score' and 'text'.",
    "(query: str, k: int = 5) -> list[dict]",
)

AGENT_PROMPT = """\
{system}

You are a code agent. The context is shown below{cut}. You also have a persistent Python session: \
write code in a ```python block and you will see what it prints. In that session:
- `search(query, k=5)` searches the WHOLE context (BM25 ranking) and returns a list of the best passages, \
each a dict with keys "source" (which document), "chunk" (its number), "score" and "text". Print what you need.
- The standard library is available for computing, counting and parsing what you have read. The context \
itself is not a variable of the session: read it below, or find parts of it with `search`.
Each turn, write one ```python block, or, when you know the answer, reply with the answer in the requested \
format and no code. You have {turns} turns."""

CUT_NOTE = " as far as it fits your window: its first {kept:,} of {total:,} characters; search finds the rest"
FORCE_ANSWER = "You are out of turns. Reply now with your final answer in the requested format, without code."
TRIM_NOTE = "[{n} earlier turn(s) omitted to fit the window]"


@dataclass(slots=True)
class _Index:
    """BM25 over the context's chunks, built on first use."""

    chunks: list[Chunk]
    retriever: Any = None

    def build(self) -> None:
        try:
            import bm25s
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError("the codeact method needs bm25s: pip install 'unbounded[bench]'") from exc
        tokens = bm25s.tokenize([c.text for c in self.chunks], stopwords="en", show_progress=False)
        self.retriever = bm25s.BM25()
        self.retriever.index(tokens, show_progress=False)

    def search(self, query: str, k: int) -> list[dict[str, Any]]:
        import bm25s

        if self.retriever is None:
            self.build()
        k = max(1, min(int(k), MAX_K, len(self.chunks)))
        query_tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
        if not any(query_tokens[0] if query_tokens else []):
            return []
        docs, scores = self.retriever.retrieve(query_tokens, k=k, show_progress=False)
        out = []
        for d, s in zip(docs[0], scores[0], strict=True):
            if float(s) <= 0:
                continue  # BM25 pads with chunks that share no term with the query
            chunk = self.chunks[int(d)]
            out.append({"source": chunk.source, "chunk": chunk.index, "score": round(float(s), 3), "text": chunk.text})
        return out


def agent_messages(item: TaskItem, head: str, total: int, turns: int) -> list[Message]:
    cut = CUT_NOTE.format(kept=len(head), total=total) if len(head) < total else " in full"
    system = AGENT_PROMPT.format(system=SYSTEM_PROMPT, cut=cut, turns=turns)
    body = f"Context:\n<<<\n{head}\n>>>\n\n{user_prompt(item.question, item.answer_format)}"
    return [Message("system", system), Message("user", body)]


def format_cell(result: CellResult, limit: int = OUTPUT_CHARS) -> str:
    """What the agent is shown of one cell: output (head and tail if long), error, notes."""
    parts = []
    if result.stdout:
        out = result.stdout
        if result.stdout_total > len(out) or len(out) > limit:
            half = limit // 2
            if len(out) > limit:
                out = f"{out[:half]}\n... [{len(out) - 2 * half:,} characters cut] ...\n{out[-half:]}"
            out += f"\n[output was {max(result.stdout_total, len(result.stdout)):,} characters; only part is shown]"
        parts.append(out)
    if result.error:
        parts.append("Error:\n" + result.error[-limit // 2 :])
    parts.extend(f"Note: {n}" for n in result.notes)
    return "\n".join(parts) if parts else "(no output)"


def _trim(call: Caller, messages: list[Message], head: int, reserve: int) -> tuple[list[Message], int]:
    """Drop the oldest (reply, output) pairs after the ``head`` until the prompt fits; returns (messages, dropped)."""
    limit = call.room(reserve)
    turns = messages[head:]
    dropped = 0
    while len(turns) > 2 and call.tokens(messages[:head] + turns) > limit:
        turns = turns[2:]
        dropped += 1
    if dropped:
        note = TRIM_NOTE.format(n=dropped)
        first = turns[0]
        turns = (
            [Message(first.role, f"{note}\n\n{first.content}"), *turns[1:]]
            if first.role == "user"
            else [
                Message("user", note),
                *turns,
            ]
        )
    return messages[:head] + turns, dropped


async def run_codeact(lm: LM, item: TaskItem, config: MethodConfig | None = None) -> MethodResult:
    config = config or MethodConfig()
    started = time.perf_counter()
    call = Caller(lm, config)
    text = render_context(item.context)
    turns = max(1, config.max_iterations)
    turn_room = max(1_024, call.window // 5)
    reserve = config.max_answer_tokens
    fitted = call.fit(text, lambda t: agent_messages(item, t, len(text), turns), reserve + turn_room)
    messages = list(fitted.messages)
    head = len(messages)
    index = _Index(chunk_context(item.context, math.ceil(config.chunk_tokens * config.chars_per_token)))
    searches = 0

    async def serve(kind: str, payload: dict[str, Any], cell_id: str | None) -> Any:
        nonlocal searches
        if kind != "tool" or payload.get("name") != "search":
            raise ValueError(f"the code agent offers only search(), not {payload.get('name') or kind}")
        args = list(payload.get("args") or [])
        kwargs = dict(payload.get("kwargs") or {})
        query = kwargs.pop("query", args.pop(0) if args else "")
        k = kwargs.pop("k", args.pop(0) if args else 5)
        if not isinstance(query, str) or not query.strip():
            raise ValueError("search(query, k=5) needs a non-empty query string")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError("search(query, k=5): k must be a positive integer")
        searches += 1
        return await asyncio.to_thread(index.search, query, k)

    repl = make_repl(config.repl, Limits())
    answer: str | None = None
    status = "max_iterations"
    iterations = 0
    trimmed = 0
    try:
        await repl.start("", serve, [SEARCH_TOOL], sub_calls=False)
        for iteration in range(1, turns + 1):
            iterations = iteration
            reply = await call(messages, reserve)
            parsed = parse_reply(reply)
            messages.append(Message("assistant", reply))
            if not parsed.code_blocks:
                answer = parsed.final.value if parsed.final is not None and not parsed.final.is_var else reply.strip()
                status = "final"
                break
            outputs = []
            for i, code in enumerate(parsed.code_blocks, 1):
                result = await repl.run(code)
                label = f"[block {i}]\n" if len(parsed.code_blocks) > 1 else ""
                outputs.append(label + format_cell(result))
                if result.final is not None:
                    answer = result.final
                    break
            if answer is not None:
                status = "final"
                break
            messages.append(Message("user", "Output:\n" + "\n\n".join(outputs)))
            messages, dropped = _trim(call, messages, head, reserve)
            trimmed += dropped
        if answer is None:
            messages.append(Message("user", FORCE_ANSWER))
            messages, dropped = _trim(call, messages, head, reserve)
            trimmed += dropped
            reply = await call(messages, reserve)
            parsed = parse_reply(reply)
            answer = parsed.final.value if parsed.final is not None and not parsed.final.is_var else reply.strip()
    finally:
        await repl.close()
    return MethodResult(
        method="codeact",
        answer=answer,
        usage=call.usage,
        seconds=time.perf_counter() - started,
        calls=call.usage.calls,
        status=status,
        notes={
            "iterations": iterations,
            "searches": searches,
            "chunks": len(index.chunks),
            "turns_dropped": trimmed,
            "truncated": fitted.truncated,
            "kept_chars": fitted.kept_chars,
            "total_chars": fitted.total_chars,
            "kept_fraction": fitted.kept_chars / max(fitted.total_chars, 1),
            "window": call.window,
        },
    )
