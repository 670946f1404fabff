"""What kind of question, about what kind of context: the cheap classifiers the guided style uses to
pick the worked example a small model is shown.

A 1.5B model copies the program it is shown; shown one needle search, it answers every question with
a needle search. So the guided style shows the program for the question's *shape* — look up a value,
say where something is defined, count, list, follow a chain, classify items and count them — written
for the *kind* of context at hand (Python source files, ``Field: value`` records, a set of documents,
one text). Both are read off the wording of the question and the shape of the data, by rules any
question in English can trigger; nothing here knows a benchmark.
"""

from __future__ import annotations

import re
from enum import StrEnum

from .context import ContextInfo


class Shape(StrEnum):
    VALUE = "value"  # look up one value (a default, a setting, a date)
    WHERE = "where"  # where something is: which file, which line
    COUNT = "count"  # how many, how much, a total
    LIST = "list"  # enumerate the things that match
    CHAIN = "chain"  # the answer is found by following one fact to the next
    CLASSIFY = "classify"  # judge each item, then count or list those that qualify


class ContextKind(StrEnum):
    CODE = "code"  # Python sources: a {path: source} dict, or one source text
    RECORDS = "records"  # `Field: value` stanzas (dpkg status, mail headers…) or a list of dicts
    DOCUMENTS = "documents"  # several texts: a dict or a list of str
    TEXT = "text"  # one text


_COUNT = re.compile(r"\b(how many|how much|count|number of|total|sum of|add up|on average|average)\b", re.I)
_JUDGE = re.compile(
    r"\b(judging|judged|by (?:its|their) (?:description|text|content)s?|judg(?:e|ment)|classif\w*|"
    r"would you call|count as|consider(?:ed)? to be|seem to be|kind of|sort of)\b",
    re.I,
)
_LIST = re.compile(
    r"\b(list|enumerate|name (?:all|every|each)|all (?:of )?(?:the|their|its) \w+|every \w+ that|"
    r"which (?:\w+ )?(?:classes|functions|methods|members|files|modules|packages|names|keys|fields|items|"
    r"entries|attributes|constants|options|values|tags|authors|licenses))\b",
    re.I,
)
_WHERE = re.compile(
    r"\b(where\b|which (?:source )?(?:file|module|document|line)|what (?:source )?(?:file|module|line)|"
    r"in which (?:file|module|document)|on which line|point me to|definition of|defined|defines)\b",
    re.I,
)
_CHAIN = re.compile(
    r"\b(not its name|in turn|that (?:file|class|base class|parent|function|method|constant|variable|module|one|"
    r"license|mix-?in)|the one (?:it|that)|(?:gets?|takes?|borrows?) (?:its|their) (?:\w+ ){1,3}from|inherits?|"
    r"derived from|succeeds|refers to|points to|names the)\b",
    re.I,
)


#: "Which of the classes ... are exceptions?": each item is judged, then the ones that qualify listed.
_WHICH_OF = re.compile(r"\bwhich of (?:the|its|their|these|those)\b", re.I)

_DEFAULT = re.compile(
    r"\b(by default|default|without (?:arguments|choosing|giving|passing|setting|any)|(?:give|gives|pass|passes) no|"
    r"unless|if you (?:don't|do not)|when no|created without|out of the box)\b",
    re.I,
)


def question_shape(question: str) -> Shape:
    """The shape a question asks for, by its wording (the most specific rule that matches wins).

    "How many" asks for a count, except about a default ("at most how many results does it keep if
    you give no size?"), which is a value to look up.
    """
    q = " ".join(question.split())
    if _CHAIN.search(q):
        return Shape.CHAIN
    if _DEFAULT.search(q):
        return Shape.VALUE
    if _COUNT.search(q):
        return Shape.CLASSIFY if _JUDGE.search(q) else Shape.COUNT
    if (_JUDGE.search(q) and _LIST.search(q)) or _WHICH_OF.search(q):
        return Shape.CLASSIFY
    if _LIST.search(q):
        return Shape.LIST
    if _WHERE.search(q):
        return Shape.WHERE
    return Shape.VALUE


_FIELD_LINE = re.compile(r"^[A-Za-z][\w-]*:\s", re.M)


def context_kind(info: ContextInfo) -> ContextKind:
    """What the context is made of, from its metadata (keys, sizes, preview) — never from reading all of it."""
    keys = [str(k) for k in info.item_keys]
    if info.type == "dict" and keys:
        code = sum(1 for k in keys if k.endswith((".py", ".pyi")))
        if code * 2 >= len(keys):
            return ContextKind.CODE
        return ContextKind.DOCUMENTS
    preview = info.preview or ""
    if info.type == "list":
        if preview.lstrip().startswith("{"):
            return ContextKind.RECORDS
        return ContextKind.DOCUMENTS
    if info.type == "str":
        lines = [line for line in preview.splitlines() if line.strip()]
        if lines and len(_FIELD_LINE.findall(preview)) * 2 >= len(lines):
            return ContextKind.RECORDS
        if re.search(r"^(?:def|class|import|from) \w", preview, re.M):
            return ContextKind.CODE
    return ContextKind.TEXT
