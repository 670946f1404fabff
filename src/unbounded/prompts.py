"""System prompts and per-turn messages for the root model.

Two styles: ``full`` for capable models (the paper's setting) and ``compact`` for small local models,
which need a short prompt, a plain statement that the names already exist, and one worked first turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .context import ContextInfo
from .repl.base import ToolSpec

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
- Loaded documents: paged text (PDF, EPUB) has a line `=== page N ===` before each page; tables (CSV, \
Parquet, SQLite…) are lists of dicts. `page(key, n)`, `pages(key)`, `page_of(key, offset)` (the page of a grep \
hit), `table(key, name=None)` and `tables(key)` address them by their key in `context`.
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

# --------------------------------------------------------------------------- compact style
#
# Tuned on qwen2.5-coder-1.5b/0.5b (see benchmarks/local_model.py). What mattered:
# - saying plainly that the names exist: without it small models write their own `FINAL`/`llm_query`;
# - one worked first turn (a keyword grep that prints a window around each hit), which they copy;
# - printing a window from `context` around the hit instead of the matching line: a generated or
#   minified text can be one 1M-character line, and its first 300 characters miss the needle;
# - a short prompt: on two CPU cores the first (cold) turn costs ~10-20 ms per prompt token.

COMPACT_SYSTEM = """\
You answer a question about a long text by writing Python code. The text is in the variable `context` \
({context_type}). It is far too long to print: search it.
These names ALREADY EXIST. Never define or import them, just call them:
{grep_doc}
- chunks(text, size) -> list of pieces of the text
{compact_sub}- FINAL(answer): give the final answer and stop
{tool_docs}Reply with ONE ```python block and nothing else. You will see what it prints, then you can write more code.
To find something, grep for the most unusual name or term in the question, spelled exactly as there, not for \
common words or the whole question. \
When the output shows the answer, call FINAL(answer) with the exact answer; if it does not, search again \
with other words."""

COMPACT_GREP_STR = (
    "- grep(pattern, text=context) -> list of regex matches; each has .offset (where it is in the text), "
    ".match and .text (its line)"
)
COMPACT_GREP_ITEMS = (
    "- grep(pattern, text=context) -> list of regex matches; each has .key (which item), .match and .text (its line)"
)

COMPACT_SUB = (
    "- llm_query(prompt) -> str: ask a helper model to read a short text (at most a few thousand characters). "
    'It sees only the prompt, so put the text in it: llm_query("What does this say about X? " + text)\n'
)

#: Stop generating once a code block is closed: the reply is one block, and a small model that goes on
#: writes made-up output. The opening fence (```python) never matches "\n```\n"; the engine puts the
#: closing fence back (``close_code_fence``).
COMPACT_STOP = ("\n```\n",)
#: Output cap for a root turn: one code block of a small model fits easily; a runaway reply costs
#: ~70 ms per token on a laptop CPU.
COMPACT_MAX_TOKENS = 384

# The worked example: search for the most unusual term of the question and, in case it is spelled
# differently in the text (or the model misspells it: "woven-falcon" became "weaved-falcon"), for its
# parts; show the hits of the rarest term that is found (so a common word the model adds to the list,
# like "global" taken from a preview of Python docs, cannot hide the answer); read the answer off the
# output. The question carries a format hint with an "e.g." as benchmark questions do: shown none, the
# 1.5B model answered such questions with the example value ("12345") without searching.
COMPACT_EXAMPLE_QUESTION = (
    "What is the secret code for the Rhodes-Ward vault? Give the code itself, e.g. `Answer: 1234`."
)
COMPACT_EXAMPLE_TERMS = '["Rhodes-Ward", "Ward", "Rhodes"]'

COMPACT_EXAMPLE_USER_STR = f"""\
Context: str, 52,310 characters, starts with 'Minutes of the harbour board, 3 May. Present: the chair, the clerk'
Question: {COMPACT_EXAMPLE_QUESTION}"""

# The search loop shared by both examples; what each prints around a hit differs.
_COMPACT_SEARCH_LOOP = """\
```python
hits = []
for term in {terms}:
    found = grep(term, context, ignore_case=True)
    print(term, len(found))
    if found and (not hits or len(found) < len(hits)):
        hits = found
"""

COMPACT_EXAMPLE_SEARCH_STR = (
    _COMPACT_SEARCH_LOOP
    + """for h in hits[:5]:
    print(context[max(0, h.offset - 100):h.offset + 200])
```"""
)

COMPACT_EXAMPLE_OUTPUT_STR = """\
Output:
Rhodes-Ward 0
Ward 2
Rhodes 3
the gate is to be repainted before the summer. The secret code for the Rhodes Ward vault is 7731. The \
clerk will change it in June. Members should not share it.
 and Captain Ward thanked the clerk for the new lamps on the quay. The chair closed the meeting at nine."""

COMPACT_EXAMPLE_USER_ITEMS = f"""\
Context: dict of 214 items, 52,310 characters in all, first keys 'minutes/2019-05.txt', 'minutes/2019-06.txt'
Question: {COMPACT_EXAMPLE_QUESTION}"""

COMPACT_EXAMPLE_SEARCH_ITEMS = (
    _COMPACT_SEARCH_LOOP
    + """for h in hits[:5]:
    i = h.text.find(h.match)
    print(h.key, h.text[max(0, i - 100):i + 200])
```"""
)

COMPACT_EXAMPLE_OUTPUT_ITEMS = """\
Output:
Rhodes-Ward 0
Ward 2
Rhodes 3
minutes/2019-05.txt The secret code for the Rhodes Ward vault is 7731. The clerk will change it in June.
minutes/2019-06.txt Captain Ward thanked the clerk for the new lamps on the quay."""

COMPACT_EXAMPLE_FINAL = """\
```python
FINAL("7731")
```"""


@dataclass(frozen=True, slots=True)
class PromptConfig:
    """What the system prompt says about this RLM's situation."""

    max_iterations: int = 20
    sub_calls: bool = True
    can_recurse: bool = True
    sub_chunk_chars: int = 100_000


def tool_docs(tools: Sequence[ToolSpec], compact: bool) -> str:
    """The lines that list host tools for the model."""
    if not tools:
        return ""
    lines = ["Host tools you can call:" if not compact else ""]
    for t in tools:
        doc = t.doc.strip().splitlines()[0] if t.doc.strip() else ""
        call = f"{t.name}{t.signature}" if compact else f"`{t.name}{t.signature}`"
        lines.append(f"- {call}" + (f": {doc}" if doc else ""))
    return "\n".join(line for line in lines if line) + "\n"


def compact_system_prompt(cfg: PromptConfig, context_type: str, tools: Sequence[ToolSpec] = ()) -> str:
    return COMPACT_SYSTEM.format(
        context_type=context_type,
        grep_doc=COMPACT_GREP_STR if context_type == "str" else COMPACT_GREP_ITEMS,
        compact_sub=COMPACT_SUB if cfg.sub_calls else "",
        tool_docs=tool_docs(tools, True),
    )


def full_system_prompt(cfg: PromptConfig, context_type: str, tools: Sequence[ToolSpec] = ()) -> str:
    if cfg.sub_calls:
        depth_note = "" if cfg.can_recurse else " (at this depth it is a plain llm_query)"
        sub_docs = SUB_CALL_DOCS.format(sub_chars=cfg.sub_chunk_chars, depth_note=depth_note) + "\n"
        no_sub = ""
    else:
        sub_docs = ""
        no_sub = " (No sub-model is available in this run: do it with code — regular expressions, parsing, counting.)"
    return FULL_SYSTEM.format(
        context_type=context_type,
        sub_call_docs=sub_docs,
        helper_docs=HELPER_DOCS + "\n",
        tool_docs=tool_docs(tools, False),
        no_sub_note=no_sub,
        max_iterations=cfg.max_iterations,
    )


def first_user_message(question: str, context_description: str) -> str:
    return (
        f"The context (in the REPL variable `context`):\n{context_description}\n\n"
        f"Question: {question}\n\nStart by writing code to look at the context."
    )


def compact_few_shot(context_type: str = "str") -> list[tuple[str, str]]:
    """The worked exchange shown before the real question under the compact style.

    A str context is searched by offset (a window of ``context`` around each hit); a list or dict by
    item key, with the window cut from the hit's line.
    """
    if context_type == "str":
        user, search, output = COMPACT_EXAMPLE_USER_STR, COMPACT_EXAMPLE_SEARCH_STR, COMPACT_EXAMPLE_OUTPUT_STR
    else:
        user, search, output = COMPACT_EXAMPLE_USER_ITEMS, COMPACT_EXAMPLE_SEARCH_ITEMS, COMPACT_EXAMPLE_OUTPUT_ITEMS
    return [
        ("user", user),
        ("assistant", search.format(terms=COMPACT_EXAMPLE_TERMS)),
        ("user", output),
        ("assistant", COMPACT_EXAMPLE_FINAL),
    ]


def compact_first_user_message(question: str, context_description: str) -> str:
    return f"Context: {context_description}\nQuestion: {question}"


def compact_context_description(info: ContextInfo, preview_chars: int = 100) -> str:
    """One line about the context for the compact prompt: type, size and how it starts.

    Small models copy what they are shown, so this holds no labels to misread and only a short
    preview (enough to tell prose from logs, code or records).
    """
    if info.type == "str":
        text = f"str, {info.total_chars:,} characters"
        if info.preview:
            text += f", starts with {_short(info.preview, preview_chars)!r}"
    elif info.type in ("dict", "list"):
        text = f"{info.type} of {info.num_items:,} items, {info.total_chars:,} characters in all"
        if info.item_keys:
            text += ", first keys " + ", ".join(repr(k) for k in info.item_keys[:3])
        elif info.preview:
            text += f", item 0 starts with {_short(info.preview, preview_chars)!r}"
    else:
        text = f"{info.type}, {info.total_chars:,} characters"
    outline = info.outline(compact=True)
    if outline:
        text += ". " + outline
    return text


def _short(text: str, limit: int) -> str:
    """The first ``limit`` characters on one line, cut at a word."""
    flat = " ".join(text[: limit * 2].split())
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    return flat[: cut if cut > limit // 2 else limit]


def close_code_fence(reply: str) -> str:
    """Put back the closing fence that the compact stop sequence removed.

    Kept in the history, the whole block shows the model its own reply in the form it was taught,
    and it tokenizes like the text the model generated (so the KV cache prefix still matches).
    """
    fences = sum(1 for line in reply.splitlines() if line.lstrip().startswith("```"))
    if fences % 2 == 1:
        return reply.rstrip("\n") + "\n```"
    return reply


REPEATED_CODE_NOTE = (
    "Note: this is the same code as your previous reply, so it printed the same. Write different code: "
    "search with other words, or call FINAL(answer) if the output above shows the answer."
)

EXAMPLE_ECHO_NOTE = (
    "Note: your code searched for {copied}: words from the worked example, which was about another text. "
    "Search for the unusual words of THIS question{suggestion}."
)

NO_CODE_REMINDER = (
    "Your reply had no ```python block and no FINAL(...). Write Python in a ```python block to inspect "
    "`context`, or call FINAL(answer) if you know the answer."
)

PREMATURE_FINAL_NOTE = (
    "That answer was not accepted: no code has looked at `context` yet, so it can only be a guess. "
    "Write a ```python block that searches `context` first, then call FINAL(answer) with what it shows."
)

UNGROUNDED_FINAL_NOTE = (
    "That answer was not accepted: {value!r} is not in anything your code has printed, so it did not come "
    "from `context`. Print the text around the hits that answer the question, then call FINAL(answer) with "
    "the answer as it is written there."
)

FORCE_FINAL = (
    "You are out of turns. Based on everything you found so far, give your best final answer now, "
    "in the form FINAL(your answer). Do not write code."
)
