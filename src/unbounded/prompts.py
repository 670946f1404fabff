"""System prompts and per-turn messages for the root model.

Two styles: ``full`` for capable models (the paper's setting) and ``compact`` for small local models,
which need a short prompt, a plain statement that the names already exist, and one worked first turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .repl.namespace import ToolSpec

SUB_CALL_DOCS = """\
- `llm_query(prompt: str, model: str | None = None) -> str`: ask a sub-model; it sees ONLY the prompt you give it, \
so put the text it must read into the prompt (a chunk of at most ~{sub_chars:,} characters).
- `llm_batch(prompts: list[str], model=None) -> list[str]`: many llm_query calls at once, run concurrently, \
answers in the same order (a failed item is a string starting with "[error").
- `rlm_query(question: str, context=None) -> str`: hand a sub-problem to a child RLM with its own REPL over \
`context` (any size).{depth_note}
- `rlm_batch(pairs: list[tuple[str, object]]) -> list[str]`: several rlm_query calls in parallel."""

HELPER_DOCS = """\
- `grep(pattern, text=context, context_lines=0, ignore_case=False)` -> list of matches with `.key` (which \
document), `.offset`, `.line`, `.match`, `.text` (the matching line): a regex search, fast on huge text.
- `chunks(text, size, overlap=0)` -> list of pieces of `size` characters (or items, for lists and dicts).
- `SHOW_VARS()` -> the variables you have defined, with types and sizes.
- `FINAL(answer)`: give your final answer and stop. `FINAL_VAR(name)`: give the value of variable `name`."""

FULL_SYSTEM = """\
You are a Recursive Language Model. You answer a question about a context that is far too large to read \
at once. The context is NOT in this conversation: it is the variable `context` in a persistent Python REPL.

Each turn, write Python in ```python blocks. They run in order in the REPL and you see what they print \
(long output is cut, so print summaries, counts and short slices, not whole documents). Variables and \
functions persist between turns. These names already exist in the REPL — use them, never define them yourself:
- `context`: the data ({context_type}).
{sub_call_docs}{helper_docs}{tool_docs}

How to work:
1. Look before you read: print the context's size and structure and a few short samples; use `grep` to find \
what the question is about.
2. For questions that need reading much of the context (counting, classifying, aggregating, comparing), split it \
into chunks, ask a sub-model about each chunk with `llm_batch`, collect the answers in variables, and combine them \
in code.{no_sub_note}
3. Check your answer against the evidence you gathered before you commit to it.
4. When you know the answer, call `FINAL(answer)` in code (or `FINAL_VAR(name)` for a variable that holds it). \
The answer should be exactly what the question asks for, in the requested format.

You have {max_iterations} turns. Be efficient: do as much as you can in each turn."""

COMPACT_SYSTEM = """\
You answer a question about a huge text by writing Python. The text is already loaded in the variable \
`context` ({context_type}). Do not print all of it: it is too long.
These functions ALREADY EXIST. Never define them yourself, just call them:
- grep(pattern, text=context) -> list of matches; each has .line and .text (the matching line)
- chunks(text, size) -> list of pieces of the text
{compact_sub}- FINAL(answer): give the final answer and stop
{tool_docs}
Reply with ONE ```python block and nothing else. You will see its output, then you can write more code.
When the output shows the answer, call FINAL(answer) with the exact answer."""

COMPACT_SUB = "- llm_query(prompt) -> str: ask a helper model about a piece of text you put in the prompt\n"

COMPACT_EXAMPLE_USER = """\
Context: str, 52,310 characters.
Question: What is the secret code for the vault?"""

COMPACT_EXAMPLE_ASSISTANT = """\
```python
hits = grep(r"secret code|vault", context)
print(len(hits))
for h in hits[:10]:
    print(h.line, h.text[:300])
```"""

COMPACT_EXAMPLE_OUTPUT = """\
Output:
2
1204 The secret code for the vault is 7731.
5310 Guests may not enter the vault after dark."""

COMPACT_EXAMPLE_FINAL = """\
```python
FINAL("7731")
```"""


@dataclass(frozen=True, slots=True)
class PromptConfig:
    style: str = "full"  # "full" | "compact"
    max_iterations: int = 20
    sub_calls: bool = True
    can_recurse: bool = True
    sub_chunk_chars: int = 100_000
    few_shot: bool = True


def _tool_docs(tools: Sequence[ToolSpec], compact: bool) -> str:
    if not tools:
        return ""
    lines = ["Host tools you can call:" if not compact else ""]
    for t in tools:
        doc = t.doc.strip().splitlines()[0] if t.doc.strip() else ""
        lines.append(f"- `{t.name}{t.signature}`" + (f": {doc}" if doc else ""))
    return "\n".join(line for line in lines if line) + "\n"


def system_prompt(cfg: PromptConfig, context_type: str, tools: Sequence[ToolSpec] = ()) -> str:
    if cfg.style == "compact":
        return COMPACT_SYSTEM.format(
            context_type=context_type,
            compact_sub=COMPACT_SUB if cfg.sub_calls else "",
            tool_docs=_tool_docs(tools, True),
        )
    if cfg.sub_calls:
        depth_note = "" if cfg.can_recurse else " (at this depth it is a plain llm_query)"
        sub_docs = SUB_CALL_DOCS.format(sub_chars=cfg.sub_chunk_chars, depth_note=depth_note) + "\n"
        no_sub = ""
    else:
        sub_docs = ""
        no_sub = " (No sub-model is available in this run: do it with code — regular expressions, parsing, counting.)"
    tool_docs = _tool_docs(tools, False)
    return FULL_SYSTEM.format(
        context_type=context_type,
        sub_call_docs=sub_docs,
        helper_docs=HELPER_DOCS + "\n",
        tool_docs=tool_docs,
        no_sub_note=no_sub,
        max_iterations=cfg.max_iterations,
    )


def first_user_message(question: str, context_description: str) -> str:
    return (
        f"The context (in the REPL variable `context`):\n{context_description}\n\n"
        f"Question: {question}\n\nStart by writing code to look at the context."
    )


def few_shot_messages(cfg: PromptConfig) -> list[tuple[str, str]]:
    """A worked exchange shown before the real question (compact style only)."""
    if cfg.style != "compact" or not cfg.few_shot:
        return []
    return [
        ("user", COMPACT_EXAMPLE_USER),
        ("assistant", COMPACT_EXAMPLE_ASSISTANT),
        ("user", COMPACT_EXAMPLE_OUTPUT),
        ("assistant", COMPACT_EXAMPLE_FINAL),
    ]


def compact_first_user_message(question: str, context_description: str) -> str:
    return f"Context: {context_description}\nQuestion: {question}"


def output_message(parts: Sequence[str], iteration: int, max_iterations: int, compact: bool = False) -> str:
    body = "\n\n".join(parts)
    if compact:
        return f"Output:\n{body}"
    left = max_iterations - iteration
    return f"{body}\n\n[turn {iteration} of {max_iterations}; {left} left]"


NO_CODE_REMINDER = (
    "Your reply had no ```python block and no FINAL(...). Write Python in a ```python block to inspect "
    "`context`, or call FINAL(answer) if you know the answer."
)

FORCE_FINAL = (
    "You are out of turns. Based on everything you found so far, give your best final answer now, "
    "in the form FINAL(your answer). Do not write code."
)
