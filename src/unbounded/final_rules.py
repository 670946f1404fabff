"""Rules a final answer is held to before any model checks it: answers that cannot be right, told apart
by their form alone.

A small root repeats what its sub-calls said, "not stated" and ``True`` included, and names a file the
way Python imports it (``xml.dom.minidom``) when the question asks for a key of the context. Neither
needs a model to see. ``refusal`` returns the note that sends such an answer back, naming what to do
instead; each rule sends back at most one answer of an RLM and all of them together at most
``MAX_RULE_REFUSALS``, so an answer the model insists on is taken.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from typing import Any

from .repl.code_index import definitions
from .repl.find import code_names
from .repl.toolkit import drop_answer_label, module_file
from .shapes import Shape, question_shape

#: Answers of one RLM its form rules may send back, each rule at most once.
MAX_RULE_REFUSALS = 2

#: What a reading that found nothing says: never the answer to a question.
NON_ANSWER = re.compile(
    r"(answer:\s*)?(not stated|not found|not given|not mentioned|unknown|none|null|n/?a|no answer|"
    r"i don'?t know|cannot (?:be )?determine[d]?|no(?: \w+){0,3} (?:found|defined|mentioned))\.?",
    re.IGNORECASE,
)
#: The text of an exception (the model's own code failed), not a finding.
_ERROR_TEXT = re.compile(r"(?:\[?error\b|traceback \(most recent call last\)|\w+(?:Error|Exception): )", re.IGNORECASE)
_BOOLEAN = re.compile(r"true|false|yes|no", re.IGNORECASE)
#: Questions a yes or a no answers ("Does ...?", "Is ...?").
_YES_NO_QUESTION = re.compile(
    r"(?:^|[.?!]\s+|\n)(?:question:\s*)?(?:is|are|was|were|does|do|did|can|could|has|have|had|will|would|should)\s",
    re.IGNORECASE,
)
_ASKS_FOR_KEY = re.compile(
    r"\b(which|what|in which|name the) (?:source )?(?:file|module|path|document)s?\b|\bthe (?:file|path)\b|"
    r"\bcontext's keys\b|\bkeys? of the context\b",
    re.IGNORECASE,
)
_FILE_LIKE = re.compile(r"[\w-]+(?:[./][\w-]+)+")
_LINE_SUFFIX = re.compile(r"^(.*?)(?:\s*[:, ]\s*(?:line\s*)?\d+)?$", re.IGNORECASE)

NON_ANSWER_NOTE = (
    "Note: {answer!r} is not an answer to the question: it says that the places read so far do not give it. "
    "Read other places: find(question, k=8), definitions(name) of a name the question mentions, or search(...) "
    "with other words from the question; then call FINAL with the answer itself."
)
NOT_A_KEY_NOTE = (
    "Note: the question asks for a file of `context`, and {answer!r} is not one of its keys.{suggestion} Answer "
    "with the key exactly as `context` has it (a definition's or a hit's .key), then call FINAL again."
)

FIRST_HOP_NOTE = (
    "Note: {answer!r} is the file that defines `{start}`, where the question starts, not where it leads. Look "
    "at the code of `{start}` for the name it takes the asked thing from (a base class, a constant, a function "
    "it calls), then definitions(that name) and answer with that definition's .key. If that is the same file, "
    "call FINAL with it again."
)

FIRST_DOCUMENT_NOTE = (
    "Note: {answer!r} is the document the question starts from, not the one it leads to. Read the places in "
    "it that name the other one, e.g. print(llm_map(question, find(question, text=context[{answer!r}]))), "
    "search(...) for the name they give, and answer with the key of the document that holds it. If that is "
    "the same document, call FINAL with it again."
)


def _unquote(answer: str) -> str:
    return drop_answer_label(answer).strip("`'\" ").strip()


def _file_name(answer: str) -> str:
    """What an answer names as a file: the answer without its label, quotes and a trailing line number."""
    text = _unquote(answer)
    m = _LINE_SUFFIX.match(text)
    return (m.group(1) if m else text).strip().strip("`'\"")


def is_non_answer(answer: str, question: str) -> bool:
    """An answer that says nothing was found, or a bare boolean to a question that is not a yes/no one."""
    text = _unquote(answer)
    if not text or NON_ANSWER.fullmatch(text) or _ERROR_TEXT.match(text):
        return True
    return bool(_BOOLEAN.fullmatch(text)) and not _YES_NO_QUESTION.search(question)


def _key_for(name: str, keys: list[str]) -> str | None:
    """The key a file name written another way stands for: a dotted module path (``xml.dom.minidom``), a
    name inside a module (``socketserver.ThreadingMixIn``: the module's file), or a file's bare name."""
    parts = name.split(".")
    for size in range(len(parts), 0, -1):
        key = module_file(".".join(parts[:size]), keys)
        if key is not None:
            return key
    base = name.rsplit("/", 1)[-1]
    matches = [k for k in keys if k.rsplit("/", 1)[-1] == base]
    return matches[0] if len(matches) == 1 else None


def not_a_key(answer: str, question: str, context: Any) -> str | None:
    """The note for an answer that should be a key of a dict context and is not one (None if it is, or
    if the question does not ask for a file)."""
    if not isinstance(context, Mapping) or not context or not _ASKS_FOR_KEY.search(question):
        return None
    keys = [str(k) for k in context]
    name = _file_name(answer)
    if not _FILE_LIKE.fullmatch(name) or re.fullmatch(r"[\d.]+", name):
        return None  # a sentence, a number, a plain word: not a file named another way
    if any(name == k or k.endswith("/" + name) or name.endswith("/" + k) for k in keys):
        return None
    key = _key_for(name, keys)
    suggestion = f" Did you mean {key!r}?" if key else ""
    return NOT_A_KEY_NOTE.format(answer=answer[:200], suggestion=suggestion)


def first_hop(answer: str, question: str, context: Any) -> str | None:
    """The note for a chain question answered with its first step: the file that defines the very name the
    question starts from, when the question asks for the file that the chain leads to.

    A chain ("`X` gets ... from a class: where is that class defined?") names where it starts; its
    answer lies one definition further. A small root that prints `X`'s definition sees a file name
    and gives it. One refusal (the engine's bound) sends it on; an answer it repeats is taken, as the
    next step can lie in the same file.
    """
    if not isinstance(context, Mapping) or not context or not _ASKS_FOR_KEY.search(question):
        return None
    if question_shape(question) is not Shape.CHAIN:
        return None
    name = _file_name(answer)
    for start in code_names(question)[:3]:
        files = {str(d.key) for d in definitions(context, start) if d.kind != "module"}
        if name in files:
            return FIRST_HOP_NOTE.format(answer=answer[:200], start=start)
    if name in {str(k) for k in context} and _question_names_key(name, question):
        return FIRST_DOCUMENT_NOTE.format(answer=name)
    return None


def _question_names_key(key: str, question: str) -> bool:
    """True when every part of a document's key (``LGPL-2.1``: ``LGPL``, ``2.1``) is a word of the question
    ("The text of the LGPL version 2.1 names ..."): the document the chain starts from. A part is matched
    whole, so ``2`` is not found in ``2.1``."""
    stem = re.sub(r"\.(?:txt|md|rst|html?)$", "", key.rsplit("/", 1)[-1], flags=re.IGNORECASE)
    parts = [p for p in re.split(r"[-_\s]+", stem) if p]
    return bool(parts) and all(
        re.search(rf"(?<![\w.]){re.escape(p)}(?!\w|\.\d)", question, re.IGNORECASE) for p in parts
    )


def refusal(answer: str, question: str, context: Any) -> str | None:
    """The note that sends a final answer back by its form, or None when no rule objects."""
    found = rule_refusal(answer, question, context)
    return found[1] if found else None


def rule_refusal(answer: str, question: str, context: Any, used: Set[str] = frozenset()) -> tuple[str, str] | None:
    """(the rule's name, its note) for the first rule not in ``used`` that sends the answer back, or None.
    Each rule sends back at most one answer of an RLM: the engine passes the rules that already have."""
    if "non_answer" not in used and is_non_answer(answer, question):
        return "non_answer", NON_ANSWER_NOTE.format(answer=answer[:200])
    for name, rule in (("not_a_key", not_a_key), ("first_hop", first_hop)):
        if name not in used:
            note = rule(answer, question, context)
            if note is not None:
                return name, note
    return None
