"""``find(question)``: the few places of the context most likely to hold a question's answer.

A small root that must turn a question into a search tends to search for the wrong thing (the
package's name, a word of the answer format). ``find`` takes the question itself: the definitions of
the code names it mentions (quoted in backticks, or written as code: ``snake_case``, ``CamelCase``,
``a.dotted.name``) come first, and a module it names narrows the rest to that module's file; ranked
passages (BM25 over the question's words) fill the remaining places. The program a small model has
to copy is then ``llm_map(question, find(question))``: read each place with the sub-model.

Worker-side module: standard library only, no ``typing`` or ``dataclasses``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .._lazy import TYPE_CHECKING
from .code_index import definitions
from .search import STOP_WORDS, SearchHit, name_parts, search, terms

if TYPE_CHECKING:
    from typing import Any

#: Characters of a prose passage ``find`` keeps: the sentences around its best-matching one. A reader
#: (the sub-model) pays for every token it is given; a needle or a setting is one sentence.
FOCUS_CHARS = 400
_UNIT = re.compile(r"[^\n]*?(?:[.!?](?=\s)|\n|$)\s*")
_QUOTED = re.compile(r"`([^`\n]{1,120})`")
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_NAME_IN_QUOTES = re.compile(_DOTTED)
_CODE_WORD = re.compile(
    r"(?<![\w.])(?:[A-Za-z_]\w*_\w*|[a-z]+[A-Z]\w*|[A-Z][a-z0-9]+[A-Z]\w*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?![\w(])"
)
#: Words that look like code in English questions but name nothing in it.
_NOT_NAMES = frozenset({"e.g", "i.e", "etc"})


def code_names(question: str) -> list[str]:
    """The code names a question mentions, in order: what it quotes in backticks first (``foo()`` and
    ``Foo.bar`` kept as ``foo`` and ``Foo.bar``; a quoted answer format such as ``Answer: <value>`` is
    not a name), then words written as code."""
    names: list[str] = []
    for quoted in _QUOTED.findall(question):
        if "<" in quoted or ": " in quoted:
            continue
        m = _NAME_IN_QUOTES.search(quoted)
        if m is not None:
            names.append(m.group().strip("."))
    unquoted = _QUOTED.sub(" ", question)
    names += [w.rstrip(".") for w in _CODE_WORD.findall(unquoted)]
    seen: list[str] = []
    for name in names:
        if name and name.lower() not in _NOT_NAMES and name not in seen and not name.endswith((".py", ".txt")):
            seen.append(name)
    return seen


#: A module or package named in words: "the pickle module", "module pickle", "wsgiref's base handler".
_MODULE_WORD = re.compile(
    r"\b([A-Za-z_][\w.]*)\s+(?:module|package)s?\b|\b(?:module|package)\s+([A-Za-z_][\w.]*)|\b([A-Za-z_][\w.]*)'s\b"
)
_WORD = re.compile(r"\b[a-z][a-z0-9]+\b")


def _described_names(question: str) -> list[str]:
    """Names a question spells out in lowercase words: "base handler" may be ``BaseHandler`` or
    ``base_handler`` (groups of two or three words, none of them a stop word)."""
    words = _WORD.findall(_QUOTED.sub(" ", question))
    out = []
    for size in (3, 2):
        for i in range(len(words) - size + 1):
            group = words[i : i + size]
            if any(w in STOP_WORDS for w in group):
                continue
            out.append("".join(w.capitalize() for w in group))
            out.append("_".join(group))
    return out


def _defined(data: Any, names: list[str]) -> list[str]:
    """The names that some source plausibly defines (``class X``, ``def x``, ``x =``): a cheap test
    before parsing, since a spelled-out name rarely exists."""
    texts = list(data.values()) if isinstance(data, Mapping) else [data] if isinstance(data, str) else []
    texts = [t for t in texts if isinstance(t, str)]
    out = []
    for name in names:
        marks = (f"class {name}", f"def {name}", f"{name} =", f"{name}: ")
        if any(mark in text for text in texts for mark in marks):
            out.append(name)
    return out


def _worded_variables(data: Any, question: str, keys: list[Any], limit: int = 2) -> list[Any]:
    """The variables of the named modules whose name is made only of the question's words, in any order:
    "the archive format it writes by default" → ``DEFAULT_FORMAT``, "the default buffer limit" →
    ``_DEFAULT_LIMIT``. Names of two parts or more (one word names too much); the most parts first."""
    words = set(_WORD.findall(question.lower())) - STOP_WORDS
    scored = []
    for key in keys:
        for d in definitions(data, kind="variable", key=key):
            parts = name_parts(d.name)
            if len(parts) >= 2 and all(p in words for p in parts):
                scored.append((-len(parts), d.qualname.count("."), d.line, d))
    scored.sort(key=lambda t: t[:3])
    return [t[3] for t in scored[:limit]]


def _is_code(data: Any) -> bool:
    if isinstance(data, Mapping):
        return any(str(k).endswith((".py", ".pyi")) for k in data)
    return isinstance(data, str) and bool(re.search(r"^(?:def|class|import|from) \w", data[:20_000], re.M))


def _file_names(question: str, data: Any) -> list[Any]:
    """Keys of a dict context that the question names as a path (``email/utils.py``)."""
    if not isinstance(data, Mapping):
        return []
    out = []
    for word in re.findall(r"[\w./-]+\.pyi?\b", question):
        out += [k for k in data if str(k) == word or str(k).endswith("/" + word)]
    return out


def _module_keys(data: Mapping, module: Any) -> list[Any]:
    """The files a module definition stands for: its own, or every file of a package (``email/__init__.py``)."""
    key = str(module.key)
    if not key.endswith("__init__.py"):
        return [module.key]
    folder = key[: -len("__init__.py")]
    return [k for k in data if str(k).startswith(folder)]


def _scope(data: Any, question: str, named: list[Any]) -> list[Any]:
    """The keys of the modules and files a question names, or [] when it names none (or the whole context)."""
    if not isinstance(data, Mapping):
        return []
    keys = _file_names(question, data)
    modules = [d for d in named if d.kind == "module" and d.key is not None]
    for m in _MODULE_WORD.finditer(_QUOTED.sub(lambda q: q.group(1), question)):
        word = next(g for g in m.groups() if g)
        modules += [d for d in definitions(data, word, kind="module") if d.key is not None]
    for module in modules:
        keys += [k for k in _module_keys(data, module) if k not in keys]
    return [] if len(keys) >= len(data) else keys


def _enclosing(data: Any, hit: Any, limit: int) -> Any:
    """The definition a passage of code lies in, when there is one worth reading whole: the innermost
    function or method if its source fits ``limit``, else the innermost class (read as its outline,
    settings first); the passage itself otherwise."""
    line = hit.line + len(hit.text) - len(hit.text.lstrip("\n"))
    around = [d for d in definitions(data, key=hit.key) if d.kind in ("class", "function", "method")
              and d.line <= line <= (d.end_line or d.line)]  # fmt: skip
    if not around:
        return hit
    around.sort(key=lambda d: d.line, reverse=True)  # innermost first
    for d in around:
        if d.kind != "class" and len(d.source) <= limit:
            return d
    classes = [d for d in around if d.kind == "class"]
    return classes[0] if classes else hit


def find(data: Any, question: str, k: int = 3, limit: int = 6000) -> list[Any]:
    """At most ``k`` places for ``question``, best first: definitions of the code names it mentions (or
    spells out, "base handler" for ``BaseHandler``; in a module it names, the variables its words make up),
    then the passages that best match its words, within
    the modules or files it names; a passage of code is given as the definition it lies in."""
    if not isinstance(question, str) or not question.strip():
        raise ValueError("find needs the question (or the words to look for), e.g. find(question)")
    k = max(1, int(k))
    places: list[Any] = []
    code = _is_code(data)
    named: list[Any] = []
    if code:
        for name in code_names(question):
            named += [d for d in definitions(data, name) if d not in named]
        for name in _defined(data, _described_names(question)):
            named += [d for d in definitions(data, name) if d.kind != "module" and d not in named]
    scope_keys = _scope(data, question, named)
    if code and scope_keys:
        named += [d for d in _worded_variables(data, question, scope_keys) if d not in named]
    inner = [d for d in named if d.kind != "module"]
    if scope_keys:  # a module or file is named: its own definitions first
        inner.sort(key=lambda d: d.key not in scope_keys)
    places += inner[:k]
    scope = {key: data[key] for key in scope_keys} if scope_keys else data
    for hit in search(question, scope, 3 * k):
        if len(places) >= k:
            break
        place = _enclosing(data, hit, limit) if code and hit.key is not None else hit
        if not code:
            place = focus(place, question)
        if place not in places and not any(_covers(p, place) for p in places):
            places.append(place)
    return places[:k]


def _covers(place: Any, hit: Any) -> bool:
    """Whether a definition already taken holds a passage (the same lines of the same file)."""
    end = getattr(place, "end_line", None)
    return end is not None and place.key == hit.key and place.line <= hit.line <= end


def focus(hit: Any, question: str, chars: int = FOCUS_CHARS) -> Any:
    """A passage cut to about ``chars`` characters around its sentence or line with the most of the
    question's words (the whole passage when it is that short); ``offset`` and ``line`` follow the cut."""
    if len(hit.text) <= chars:
        return hit
    units = [u for u in _UNIT.findall(hit.text) if u]
    if not units:
        return hit
    wanted = set(terms(question))
    best = max(range(len(units)), key=lambda i: (len(wanted.intersection(terms(units[i]))), -i))
    lo = hi = best
    size = len(units[best])
    while True:
        grew = False
        for j in (lo - 1, hi + 1):
            if 0 <= j < len(units) and size + len(units[j]) <= chars:
                size += len(units[j])
                lo, hi = min(lo, j), max(hi, j)
                grew = True
        if not grew:
            break
    before = "".join(units[:lo])
    text = "".join(units[lo : hi + 1])
    return SearchHit(hit.key, hit.offset + len(before), hit.line + before.count("\n"), hit.score, text)
