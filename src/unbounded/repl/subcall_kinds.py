"""The sub-calls model code can make, in one table that the namespace, the protocol and the engine share.

Each kind lists its payload fields and their types. The REPL namespace installs one function per
kind (``namespace.py``), the host checks every ``call`` frame from a worker against this table
(``protocol.check_call``), and the engine routes each kind to its handler (``router.py``); tests pin
that all three cover exactly these kinds. Worker-side module: standard library only, no ``typing``.
"""

from __future__ import annotations

# kind -> {payload field: type}. Types: "str", "str?" (str or null), "list[str]", "pairs" (a list of
# [question: str, context]), "any", "list?" and "dict?" (absent, or a list / an object).
SUBCALLS = {
    "llm_query": {"prompt": "str", "model": "str?", "schema": "dict?"},
    "llm_batch": {"prompts": "list[str]", "model": "str?"},
    "rlm_query": {"question": "str", "context": "any"},
    "rlm_batch": {"pairs": "pairs"},
    "tool": {"name": "str", "args": "list?", "kwargs": "dict?"},
}

#: Kinds served by models (left out of a REPL started without sub-calls); ``tool`` calls a host function.
MODEL_KINDS = ("llm_query", "llm_batch", "rlm_query", "rlm_batch")
ALL_KINDS = tuple(SUBCALLS)


def _ok(kind: str, value: object) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "str?":
        return value is None or isinstance(value, str)
    if kind == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "pairs":
        return isinstance(value, list) and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in value
        )
    if kind == "list?":
        return value is None or isinstance(value, list)
    if kind == "dict?":
        return value is None or isinstance(value, dict)
    return True  # "any"


def payload_problem(kind: str, payload: dict) -> str | None:
    """What is wrong with a call's payload, or None when every field has its type."""
    for field, field_type in SUBCALLS[kind].items():
        if not _ok(field_type, payload.get(field)):
            return f"{kind} field {field!r} must be {_DESCRIBE[field_type]}"
    return None


_DESCRIBE = {
    "str": "a string",
    "str?": "a string or null",
    "list[str]": "a list of strings",
    "pairs": "a list of [question, context]",
    "any": "any value",
    "list?": "a list",
    "dict?": "an object",
}
