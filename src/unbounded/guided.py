"""The guided style: how a small model is taught to answer real questions, not only find needles.

The system prompt names the reading toolkit that fits the context (``definitions`` for Python code,
``parse_records`` for ``Field: value`` records, ``search``/``read``/``grep`` always, ``llm_map`` and
``llm_query`` to have the sub-model read), and one worked example shows the program for the
question's shape on a context of the same kind (``shapes.py`` picks it, ``guided_examples.py`` holds
them). Before a ``FINAL`` is taken, the engine has the sub-model check it against what the code
printed (``check_answers``). Everything else — one code block per reply, the fence put back, the
grounding guard, the notes when a reply repeats itself — is the compact style's.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from typing import Any

from .coaching import example_echo_note, turns_since_same_code
from .context import ContextInfo
from .guided_examples import EXAMPLE_NAMES, Example, example_for
from .models.base import Message
from .prompts import PromptConfig, compact_context_description, compact_first_user_message, tool_docs
from .repl.base import ToolSpec
from .repl.find import code_names
from .shapes import ContextKind, Shape, context_kind, question_shape
from .styles import CompactStyle, register_style

GUIDED_SYSTEM = """\
You answer a question about data in the variable `context` ({context_type}: {kind_note}). It is far too long \
to print: look at it with code. The question is also in the variable `question`.
These functions ALREADY EXIST. Never define or import them, just call them:
{functions}- FINAL(answer): give the final answer and stop
{tool_docs}Reply with ONE ```python block and nothing else. You will see what it prints; then write more code.
Print short things (counts, names, a few lines), not whole documents. To follow a name you see in code (a \
constant, a base class, a function it calls), look it up with definitions(that name).
Never guess: find the answer in `context` first. When the output shows it, call FINAL(answer) with exactly \
what the question asks for, in its format."""

_KIND_NOTE = {
    ContextKind.CODE: "Python source files",
    ContextKind.RECORDS: "records of 'Field: value' lines",
    ContextKind.DOCUMENTS: "a set of documents",
    ContextKind.TEXT: "one long text",
}

_DOCS = {
    "find": "- find(question, k=3) -> the k places most likely to answer the question (definitions of the names "
    "it mentions, then the passages that best match it); each has .key, .line and .text\n",
    "search": "- search(query, k=5) -> the k passages that best match the query's words; each has .key (which "
    "document), .line and .text\n",
    "read": "- read(key, line) -> the numbered lines around `line` of document `key`; read(hit) reads around a "
    "search hit\n",
    "grep": "- grep(pattern) -> regex matches; each has .key, .line, .match and .text (the line)\n",
    "count_lines": "- count_lines(pattern, per='line') -> exactly how many lines (per='doc': documents) match a regex\n",
    "definitions": "- definitions(name=None, kind=None, key=None) -> where the code defines a module, class, "
    "function, method or variable; each has .key (file), .line, .kind, .name, .qualname, .bases, .value, "
    ".resolved (a variable's value with the names in it followed), .text (its code)\n",
    "bases_of": "- bases_of(class_definition) -> the names of every class it derives from, directly or through "
    "others (builtin ones too: an exception class has 'Exception')\n",
    "parse_records": "- parse_records(text) -> the records of a text (blank-line separated 'Field: value' stanzas) "
    "as a list of dicts\n",
    "llm_query": "- llm_query(prompt) -> str: a helper model answers a prompt; it sees only the prompt, so put the "
    "text to read in it\n",
    "llm_map": "- llm_map(question, texts, parse=None) -> the helper model's answer for each text (or hit), in "
    "order; parse='number' or 'yes/no' reads the answers as values\n",
}

_BY_KIND = {
    ContextKind.CODE: ("find", "definitions", "bases_of", "search", "read", "grep", "count_lines"),
    ContextKind.RECORDS: ("parse_records", "search", "grep", "count_lines"),
    ContextKind.DOCUMENTS: ("find", "search", "read", "grep", "count_lines"),
    ContextKind.TEXT: ("find", "search", "read", "grep", "count_lines"),
}


def guided_system_prompt(
    cfg: PromptConfig, info: ContextInfo, kind: ContextKind, tools: Sequence[ToolSpec] = ()
) -> str:
    names = list(_BY_KIND[kind])
    if cfg.sub_calls:
        names += ["llm_query", "llm_map"]
    return GUIDED_SYSTEM.format(
        context_type=info.type,
        kind_note=_KIND_NOTE[kind],
        functions="".join(_DOCS[n] for n in names),
        tool_docs=tool_docs(tools, True),
    )


def example_messages(example: Example) -> list[Message]:
    """The worked exchange: the question, then each turn's code and its output, then the FINAL."""
    msgs = [Message("user", compact_first_user_message(example.question, example.context))]
    for code, output in example.turns:
        msgs.append(Message("assistant", f"```python\n{code}\n```"))
        msgs.append(Message("user", f"Output:\n{output}"))
    msgs.append(Message("assistant", f"```python\n{example.final}\n```"))
    return msgs


#: Questions that count code entities (judged definition by definition) rather than files.
_CODE_THINGS = re.compile(
    r"\b(class(?:es)?|functions?|methods?|generators?|exceptions?|decorators?|subclass(?:es)?|coroutines?)\b", re.I
)
#: How many keys of a dict context the description lists, and in how many characters at most.
LIST_KEYS = 40
KEYS_CHARS = 900
_FIELD = re.compile(r"^([A-Za-z][\w-]*):", re.M)


_FILE_NAME = re.compile(r"[\w./-]+\.pyi?\b")
#: Questions that judge classes by what they derive from (exceptions, subclasses of a named class).
_CLASS_THINGS = re.compile(r"\b(exceptions?|subclass(?:es)?|derive[sd]?|inherit\w*|base class(?:es)?)\b", re.I)
#: A chain through a class's bases: "gets its ... from a mix-in", "which base class", "inherits".
_CLASS_HOP = re.compile(
    r"\b(mix-?ins?|base class(?:es)?|parent class(?:es)?|super-?class(?:es)?|inherit\w*|derive[sd]? from|"
    r"subclass(?:es)? of)\b",
    re.I,
)
_COUNT_WORDS = re.compile(r"\b(how many|number of|count)\b", re.I)
#: Counting lines of a text rather than documents ("how many lines of ... mention"), not an answer format's
#: "give the number on the last line".
_LINES = re.compile(r"\b(?:how many|number of|count(?: the)?)\s+(?:[\w`.-]+\s+){0,3}?lines?\b", re.I)


def _named_code(question: str) -> bool:
    """Whether a question names some code: a quoted or code-like name that is not a keyword, a file, or the
    package or module the question is about ("the `email` package")."""
    question = _PACKAGE_NAMED.sub(" ", question)
    return any(not keyword.iskeyword(n) for n in code_names(question))


_PACKAGE_NAMED = re.compile(r"`[^`\n]+`\s+(?:package|module)s?\b|\b(?:package|module)\s+`[^`\n]+`", re.I)


def _variant(shape: Shape, kind: ContextKind, question: str) -> str | None:
    """A sharper example where the question says which: the members of a class rather than what a file defines,
    a chain through a class's bases rather than through a constant."""
    if shape is Shape.LIST and kind is ContextKind.CODE and not _FILE_NAME.search(question):
        return "members"
    if shape is Shape.WHERE and kind is ContextKind.CODE and not _named_code(question):
        return "described"
    if shape is Shape.CLASSIFY and kind is ContextKind.CODE and _CLASS_THINGS.search(question):
        if not _COUNT_WORDS.search(question):
            return "classes-list"
        return "classes-file" if _FILE_NAME.search(question) else "classes"
    if shape is Shape.CHAIN and kind is ContextKind.CODE and _CLASS_HOP.search(question):
        return "bases"
    if shape is Shape.COUNT and kind in (ContextKind.DOCUMENTS, ContextKind.TEXT) and _LINES.search(question):
        return "lines"
    return None


def describe(info: ContextInfo, kind: ContextKind, value: Any = None) -> str:
    """The compact one-line description, plus what a small model needs to address the data: every key
    of a small dict (so it never has to guess one), and the field names of ``Field: value`` records."""
    text = compact_context_description(info)
    if isinstance(value, dict) and 0 < len(value) <= LIST_KEYS:
        keys = ", ".join(repr(str(k)) for k in value)
        if len(keys) <= KEYS_CHARS:
            text += f". Its keys: {keys}"
    if kind is ContextKind.RECORDS and isinstance(value, str):
        fields = list(dict.fromkeys(_FIELD.findall(value[:50_000])))
        if fields:
            text += ". The records' fields include: " + ", ".join(fields[:30])
    return text


class GuidedStyle(CompactStyle):
    """Small models on real questions: the toolkit for the context's kind, the example for the question's
    shape, answers checked before they are taken."""

    name = "guided"
    check_answers = True
    loop_temperature = 0.7
    max_stale_turns = 3

    def initial_messages(
        self, cfg: PromptConfig, question: str, info: ContextInfo, tools: Sequence[ToolSpec], value: Any = None
    ) -> list[Message]:
        kind = context_kind(info)
        shape = question_shape(question)
        if shape is Shape.COUNT and kind is ContextKind.CODE and _CODE_THINGS.search(question):
            shape = Shape.CLASSIFY  # counting classes or functions: judge each definition, not each file
        if not cfg.sub_calls and shape is Shape.CLASSIFY and kind is not ContextKind.CODE:
            shape = Shape.COUNT  # judging each item needs the sub-model
        msgs = [Message("system", guided_system_prompt(cfg, info, kind, tools))]
        msgs += example_messages(example_for(shape, kind, _variant(shape, kind, question)))
        msgs.append(Message("user", compact_first_user_message(question, describe(info, kind, value))))
        return msgs

    def turn_notes(self, code_blocks: list[str], question: str, earlier_code: Sequence[list[str]]) -> list[str]:
        echo = example_echo_note(code_blocks, question, EXAMPLE_NAMES, whole_words=True)
        if echo is not None:
            return [echo]
        ago = turns_since_same_code(code_blocks, earlier_code)
        if ago == 1:
            return ["Note: this is the same code as your previous reply, so it printed the same. Write different "
                    "code, or call FINAL(answer) if the output above shows the answer."]  # fmt: skip
        if ago is not None:
            return [f"Note: this is the same code as your reply {ago} turns ago, so it printed what it printed then: "
                    "going back to it goes round in a circle. Write code you have not run yet (another search, "
                    "reading another place, asking llm_map about what you found), or call FINAL(answer) if an "
                    "output above shows the answer."]  # fmt: skip
        return []


register_style(GuidedStyle())
