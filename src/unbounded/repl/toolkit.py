"""The REPL's reading toolkit, bound to the context: ranked search, reading a region, exact counts,
Python definitions, ``Field: value`` records, and ``llm_map`` — one instruction over many texts.

Each function reads ``context`` when no text is given, so the programs a small model must write are
short: ``definitions("TextWrapper")``, ``search("default line width")``, ``llm_map(question, texts)``.
Nothing is cut silently: a text ``llm_map`` shortens is named in a note the model sees.

Worker-side module: standard library only, no ``typing`` or ``dataclasses``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from .._lazy import TYPE_CHECKING
from .code_index import bases_of as _bases_of
from .code_index import definitions as _definitions
from .find import find as _find
from .records import records as _records
from .search import count as _count
from .search import read as _read
from .search import search as _search

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: The names ``bind`` adds to the namespace (``llm_map`` only when sub-calls are on).
NAMES = ("find", "search", "read", "count_lines", "definitions", "bases_of", "parse_records", "llm_map")
#: Characters of one text ``llm_map`` sends (the sub-model's window is small); longer ones are cut, with a note.
MAP_CHARS = 6000
#: Short texts whose answers are values (yes/no, a number) go this many to a sub-call (``batch``).
MAP_BATCH = 8
SHORT_TEXT = 400
_NUMBER = re.compile(r"-?\d[\d,_]*(?:\.\d+)?")
_NUMBERED = re.compile(r"^\s*\(?(\d+)\s*[:.)\]-]\s*(.*\S)\s*$", re.M)
_FILE_NAME = re.compile(r"[\w./-]+\.pyi?")
_ONE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_VALUES = ("number", "yes/no", "bool", int, float, bool)
_YES_NO = ("yes/no", "bool", bool)


class MapResult(list):
    """What ``llm_map`` returns: one parsed value per text, in order; ``None`` where the sub-call failed
    or its reply could not be parsed (``errors`` lists those positions, ``replies`` the raw text)."""

    __slots__ = ("errors", "replies")

    def __init__(self, values: list[Any] = (), errors: list[int] = (), replies: list[str] = ()) -> None:  # type: ignore[assignment]
        super().__init__(values)
        self.errors = list(errors)
        self.replies = list(replies)

    def __repr__(self) -> str:
        text = list.__repr__(self)
        if self.errors:
            text += f"  [{len(self.errors)} of {len(self)} failed or unparsed: positions {self.errors[:20]}]"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (MapResult, (list(self), self.errors, self.replies))


def text_of(item: Any, limit: int = MAP_CHARS) -> str:
    """The text of a search hit, a grep match, a definition (its source, or its outline when that is too
    long to read at once) or a plain value."""
    if isinstance(item, str):
        return item
    brief = getattr(item, "brief", None)
    if callable(brief):
        return brief(limit)
    for attr in ("source", "text"):
        value = getattr(item, attr, None)
        if isinstance(value, str):
            return value
    if isinstance(item, dict | list):
        return json.dumps(item, ensure_ascii=False)
    return str(item)


_LABEL = re.compile(r"^\**\s*answer\s*\**\s*:\s*\**\s*", re.IGNORECASE)


def drop_answer_label(text: str) -> str:
    """``text`` without a leading "Answer:" label (``**Answer:**`` too) and the quotes around what follows;
    ``text`` itself, stripped, when it has no label."""
    text = text.strip()
    stripped = _LABEL.sub("", text, count=1)
    if stripped == text:
        return text
    stripped = stripped.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "`'\"":
        stripped = stripped[1:-1].strip()
    return stripped or text


def _bare(text: str) -> str:
    """A one-line reply without its "Answer:" label, so that readings compare as values: a small root
    takes a labelled reply over a bare one even when the bare one comes from the better place."""
    return text if "\n" in text else drop_answer_label(text)


def parse_reply(reply: str, parse: Any) -> tuple[Any, bool]:
    """(value, ok) for a sub-model reply read as ``parse``: None (the text), ``"number"``/int/float,
    ``"yes/no"``/bool, ``"json"``, or a function of the text."""
    text = reply.strip()
    if text.startswith("[error"):
        return None, False
    if parse is None or parse is str:
        return _bare(text), True
    if parse in ("number", int, float):
        m = _NUMBER.search(text)
        if m is None:
            return None, False
        number = float(m.group().replace(",", "").replace("_", ""))
        return (int(number) if parse is int or number.is_integer() else number), True
    if parse in _YES_NO:
        head = text.lower().lstrip("*`'\" ")
        if head.startswith(("yes", "true")):
            return True, True
        if head.startswith(("no", "false")):
            return False, True
        return None, False
    if parse == "json":
        try:
            return json.loads(text), True
        except ValueError:
            return None, False
    if callable(parse):
        try:
            return parse(text), True
        except Exception:
            return None, False
    raise ValueError("llm_map: parse must be None, 'number', 'yes/no', 'json' or a function")


def module_file(dotted: str, keys: list[str]) -> str | None:
    """The key of the file a dotted module path names (``xml.dom.minidom`` → ``xml/dom/minidom.py``, a package
    → its ``__init__.py``), where exactly one key is that file."""
    path = dotted.replace(".", "/")
    for candidate in (f"{path}.py", f"{path}/__init__.py"):
        matches = [k for k in keys if k == candidate or k.endswith("/" + candidate)]
        if len(matches) == 1:
            return matches[0]
    return None


def _context_key(data: Any, key: Any) -> tuple[Any, str | None]:
    """The key of a dict context that ``key`` stands for, and a note when it is not written as one: a
    file written as a module path (``concurrent.futures._base.py`` for ``concurrent/futures/_base.py``) is
    read as that file; a key that names no file says so, instead of an empty list that reads as "none"."""
    if not isinstance(data, Mapping) or not data:
        return key, None
    keys = [str(k) for k in data]
    wanted = str(key).strip()
    if any(k == wanted or k.endswith("/" + wanted) for k in keys):
        return key, None
    found = module_file(wanted[: -len(".py")] if wanted.endswith(".py") else wanted, keys)
    if found is not None:
        return found, f"definitions: key={wanted!r} is not a key of context; read as key={found!r}"
    return key, (
        f"definitions: no file key={wanted!r} among the {len(keys)} keys of context (such as {keys[0]!r}), so "
        "nothing was found there; give key= exactly as a key of context"
    )


def _no_value_hint(name: str, found: list[Any]) -> str | None:
    """What to follow instead when every definition of ``name`` is a module or a class, whose ``.value`` and
    ``.resolved`` are None: a small model that prints them for the name a chain starts from sees
    ``None None`` and answers None, or prints it again and again."""
    kinds = {d.kind for d in found}
    first = found[0]
    if kinds == {"module"}:
        return (
            f"definitions({name!r}): {name!r} is a module ({first.key}), which has no .value. What it defines: "
            f"definitions(key={first.key!r}); the lines about the question: find(question) or search(...)"
        )
    if kinds == {"class"}:
        bases = ", ".join(first.bases) if first.bases else "none written"
        return f"definitions({name!r}): a class, so .value is None; its base classes (.bases): {bases}"
    return None


def bind(get_context: Callable[[], Any], call: Callable[[str, dict], Any] | None, note: Callable[[str], None]) -> dict:
    """The toolkit as REPL names. ``call`` makes sub-calls (None: no ``llm_map``); ``note`` tells the model."""

    def ctx(text: Any) -> Any:
        return get_context() if text is None else text

    def search(query: str, k: int = 5, text: Any = None) -> list[Any]:
        """The k passages that best match the query's words (BM25), best first; each has .key .line .text.
        A query that is one code name puts the places the code defines it first."""
        data = ctx(text)
        hits = _search(query, data, k)
        if not _ONE_NAME.fullmatch(query.strip()):
            return hits
        defs = [d for d in _definitions(data, query.strip(), None, None) if d.kind != "module"][:k]
        rest = [h for h in hits if not any(d.key == h.key and d.line <= h.line <= d.end_line for d in defs)]
        return (defs + rest)[:k]

    def find(question: str, k: int = 3, text: Any = None) -> list[Any]:
        """The k places most likely to answer the question: definitions of the code names it mentions, then
        the passages that best match its words (in the module it names, where it names one)."""
        return _find(ctx(text), question, k)

    def read(key: Any = None, line: int | None = None, before: int = 10, after: int = 40, text: Any = None) -> str:
        """Lines around `line` of document `key` (or a search hit / definition), numbered; the whole document without a line."""
        return _read(ctx(text), key, line, before=before, after=after)

    def count_lines(pattern: str, text: Any = None, per: str = "line", ignore_case: bool = False) -> int:
        """Exactly how many lines (per='doc': documents) match the regex."""
        return _count(pattern, ctx(text), per=per, ignore_case=ignore_case)

    def definitions(name: str | None = None, kind: str | None = None, key: Any = None, text: Any = None) -> list[Any]:
        """Where Python code defines `name` (class, function, method, variable): .key .line .kind .source .value .bases."""
        if isinstance(name, str) and key is None and _FILE_NAME.fullmatch(name.strip()):
            note(f"definitions: {name!r} is a file name, so it was read as key={name!r} (the definitions in that file)")
            name, key = None, name.strip()
        data = ctx(text)
        if key is not None:
            key, problem = _context_key(data, key)
            if problem:
                note(problem)
        found = _definitions(data, name, kind, key)
        if isinstance(name, str) and key is None and kind is None and found:
            hint = _no_value_hint(name, found)
            if hint:
                note(hint)
        return found

    def bases_of(item: Any, text: Any = None) -> list[str]:
        """Every class a class (a definition or a name) derives from, directly or not, builtin ones included."""
        return _bases_of(ctx(text), item)

    def parse_records(text: Any = None) -> list[dict]:
        """The `Field: value` records of a text (blank-line separated stanzas) as a list of dicts."""
        return _records(ctx(text))

    names: dict[str, Any] = {
        "find": find,
        "search": search,
        "read": read,
        "count_lines": count_lines,
        "definitions": definitions,
        "bases_of": bases_of,
        "parse_records": parse_records,
    }
    if call is None:
        return names

    def llm_map(instruction: str, items: Any, parse: Any = None, batch: int | None = None) -> MapResult:
        """Ask the sub-model `instruction` about each text (or hit, or definition) at once; the answers in
        order, read as `parse` ('number', 'yes/no', 'json' or a function). Failures are None (see .errors).
        Short texts with value answers go several to a call (`batch`, default 8; 1 asks one by one)."""
        if isinstance(items, str):
            raise TypeError("llm_map takes a list of texts; for one text use llm_query")
        texts = [text_of(item) for item in items]
        cut = [i for i, t in enumerate(texts) if len(t) > MAP_CHARS]
        if cut:
            note(
                f"llm_map sent only the first {MAP_CHARS:,} characters of {len(cut)} of its {len(texts)} texts "
                f"(positions {cut[:10]}); split long texts with chunks() to have all of them read"
            )
        size = batch if batch is not None else (MAP_BATCH if parse in _VALUES else 1)
        if size > 1 and all(len(t) <= SHORT_TEXT for t in texts):
            replies = _batched(call, instruction, texts, size, parse)
        else:
            prompts = [single_prompt(t[:MAP_CHARS], instruction, parse) for t in texts]
            replies = [str(r) for r in call("llm_batch", {"prompts": prompts, "model": None})] if prompts else []
        values, errors = [], []
        for i, reply in enumerate(replies):
            value, ok = parse_reply(reply, parse)
            values.append(value)
            if not ok:
                errors.append(i)
        return MapResult(values, errors, replies)

    names["llm_map"] = llm_map
    return names


def single_prompt(text: str, instruction: str, parse: Any = None) -> str:
    """One text and the question about it. Answers come from the text alone: a sub-model asked about a
    passage that does not say makes something up unless told it may answer that it does not say.

    A yes/no verdict is a judgment of the text, not a fact looked up in it, so it gets no such way out:
    offered one, a 1.5B sub-model answered "not stated" to 195 of 198 package descriptions it was asked
    to classify, and every one of those verdicts was lost."""
    if parse in _YES_NO:
        return f"{text}\n\n{instruction}\nJudge by the text above and answer with one word: yes or no."
    return (
        f"{text}\n\n{instruction}\nAnswer from the text above only, briefly. If the text does not say, "
        "answer: not stated."
    )


def _batched(
    call: Callable[[str, dict], Any], instruction: str, texts: list[str], size: int, parse: Any = None
) -> list[str]:
    """One reply per text, asking ``size`` numbered texts per sub-call; a text its call left unanswered
    is asked again on its own."""
    groups = [list(range(i, min(i + size, len(texts)))) for i in range(0, len(texts), size)]
    prompts = []
    for group in groups:
        listed = "\n".join(f"{n}. {' '.join(texts[i].split())}" for n, i in enumerate(group, 1))
        prompts.append(
            f"Answer this question for each numbered text below: {instruction}\n\n{listed}\n\n"
            f"Reply with exactly {len(group)} lines, one per text in order, each as '<number>: <answer>'."
        )
    replies: list[str | None] = [None] * len(texts)
    for group, reply in zip(groups, call("llm_batch", {"prompts": prompts, "model": None}), strict=False):
        text = str(reply)
        if text.startswith("[error"):
            continue
        answers = {int(m.group(1)): m.group(2) for m in _NUMBERED.finditer(text)}
        for n, i in enumerate(group, 1):
            if n in answers:
                replies[i] = answers[n]
    missing = [i for i, r in enumerate(replies) if r is None]
    if missing:
        again = call("llm_batch", {"prompts": [single_prompt(texts[i], instruction, parse) for i in missing], "model": None})
        for i, reply in zip(missing, again, strict=False):
            replies[i] = str(reply)
    return [r if r is not None else "[error: no answer]" for r in replies]
