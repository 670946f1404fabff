"""The names the model is told about, built once per REPL and shared by both implementations.

Sub-calls go through ``call(kind, payload)``, a blocking function the REPL supplies: the process
worker sends a frame to the host; the in-process REPL schedules a coroutine on the host's loop.
This module never imports the engine, and (like everything the REPL worker loads) stays free of
``typing`` and ``dataclasses``: each costs the worker's resident memory.
"""

from __future__ import annotations

import re
from types import ModuleType

from .._lazy import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

from .doc_helpers import NAMES as DOC_HELPER_NAMES
from .doc_helpers import bind as bind_doc_helpers
from .helpers import chunks, describe_value, format_final, grep
from .subcall_kinds import MODEL_KINDS
from .toolkit import NAMES as TOOLKIT_NAMES
from .toolkit import bind as bind_toolkit

#: Names a cell may not rebind at top level (small models redefine them; see ``cell._Shield``).
SHIELDED = (
    "context",
    "llm_query",
    "llm_batch",
    "rlm_query",
    "rlm_batch",
    "FINAL",
    "FINAL_VAR",
    "SHOW_VARS",
    "grep",
    "chunks",
)
#: Every name the REPL provides (tools may not take one). The helpers beyond ``SHIELDED`` are put back
#: after a cell that replaced them, but a cell may use their names for its own variables meanwhile.
RESERVED = (*SHIELDED, *DOC_HELPER_NAMES, *TOOLKIT_NAMES)

if TYPE_CHECKING:
    SubCall = Callable[[str, dict[str, Any]], Any]


class FinalSignal(BaseException):
    """Raised by FINAL/FINAL_VAR to stop the cell. BaseException so ``except Exception`` can't swallow it."""

    def __init__(self, answer: str):
        super().__init__(answer)
        self.answer = answer


class SubCallError(RuntimeError):
    """A sub-call (llm_query, rlm_query, a tool) failed; the message says why."""


BLIND_QUERY_NOTE = (
    "llm_query saw only your {chars}-character prompt, which is the question: the helper model cannot see "
    "`context`, so its reply is a guess. To have it read the context, put the text in the prompt, or read the "
    "best places with llm_map(question, find(question))"
)
_WORDS = re.compile(r"[a-z0-9_]+")


def _only_the_question(prompt: str, question: Any) -> bool:
    """Whether a sub-call prompt is (nearly) the question alone, with no text of the context to read."""
    if not isinstance(question, str) or len(prompt) > len(question) + 300:
        return False
    words = set(_WORDS.findall(prompt.lower()))
    return bool(words) and len(words & set(_WORDS.findall(question.lower()))) >= 0.6 * len(words)


class FinalBox:
    """Where FINAL / FINAL_VAR leave the answer, so a cell that swallows FinalSignal still ends the run."""

    __slots__ = ("answer",)

    def __init__(self) -> None:
        self.answer: str | None = None


class NamespaceState:
    """The model's persistent namespace, the final-answer box, and the REPL's own names in it."""

    __slots__ = ("builtins", "final", "namespace", "notes")

    def __init__(self, namespace: dict[str, Any], final: FinalBox, builtins: dict[str, Any]) -> None:
        self.namespace = namespace
        self.final = final
        self.builtins = builtins
        #: Notes for the model that helpers leave during a cell (e.g. a capped result); the cell takes them.
        self.notes: list[str] = []

    def restore_reserved(self) -> list[str]:
        """Put back any reserved name the model replaced; returns the names restored."""
        restored = []
        for name, obj in self.builtins.items():
            if self.namespace.get(name) is not obj:
                self.namespace[name] = obj
                restored.append(name)
        return restored


def build_namespace(
    context: Any,
    call: SubCall,
    tools: Mapping[str, str] | None = None,
    *,
    sub_calls: bool = True,
) -> NamespaceState:
    box = FinalBox()
    ns: dict[str, Any] = {"__name__": "__rlm__", "__builtins__": __builtins__}

    def llm_query(prompt: str, model: str | None = None, schema: dict | None = None) -> Any:
        """One plain call to the sub-model; returns its reply text. With ``schema`` (a JSON schema dict)
        the reply is asked for as JSON of that shape (natively where the provider supports it) and
        returned parsed when it parses."""
        if not isinstance(prompt, str):
            prompt = str(prompt)
        if schema is not None and not isinstance(schema, dict):
            raise TypeError("llm_query: schema must be a JSON schema dict, e.g. {'type': 'object', ...}")
        payload = {"prompt": prompt, "model": model}
        if schema is not None:
            payload["schema"] = schema
        if _only_the_question(prompt, ns.get("question")):
            state.notes.append(BLIND_QUERY_NOTE.format(chars=len(prompt)))
        reply = call("llm_query", payload)
        if schema is None:
            return reply
        import json

        try:
            return json.loads(reply)
        except (TypeError, ValueError):
            return reply

    def llm_batch(prompts: Sequence[str], model: str | None = None) -> list[str]:
        """Many llm_query calls at once, run concurrently; results in order. A failed item is an
        error string starting with '[error' instead of an exception."""
        if isinstance(prompts, str):
            raise TypeError("llm_batch takes a list of prompts; for one prompt use llm_query")
        return call("llm_batch", {"prompts": [str(p) for p in prompts], "model": model})

    def rlm_query(question: str, context: Any = None) -> str:
        """A child RLM with its own REPL answers `question` about `context` (default: the whole context)."""
        return call("rlm_query", {"question": str(question), "context": context})

    def rlm_batch(pairs: Sequence[Any]) -> list[str]:
        """Several rlm_query calls in parallel. `pairs` is a list of (question, context) tuples
        (or of questions, each asked about the whole context). Results in order; failures are error strings."""
        norm = []
        for p in pairs:
            if isinstance(p, list | tuple) and len(p) == 2:
                norm.append([str(p[0]), p[1]])
            else:
                norm.append([str(p), None])
        return call("rlm_batch", {"pairs": norm})

    def FINAL(value: Any) -> None:
        """Give the final answer and stop."""
        box.answer = format_final(value)
        raise FinalSignal(box.answer)

    def FINAL_VAR(name: Any) -> None:
        """Give the value of the REPL variable called `name` as the final answer."""
        if not isinstance(name, str):
            FINAL(name)
        key = name.strip().strip("'\"")
        if key not in ns:
            raise NameError(f"FINAL_VAR: no variable named {key!r}; assign it first, or call FINAL(value)")
        FINAL(ns[key])

    def SHOW_VARS() -> dict[str, str]:
        """The variables you defined, with their types and sizes."""
        return {
            k: describe_value(v)
            for k, v in ns.items()
            if not k.startswith("_") and k not in state.builtins and not isinstance(v, ModuleType)
        }

    def _grep(pattern: str, text: Any = None, context_lines: int = 0, **kw: Any) -> Any:
        found = grep(pattern, ns.get("context") if text is None else text, context_lines, **kw)
        if found.capped:
            state.notes.append(
                f"grep({pattern!r}) matched {found.total:,} lines but returned only the first {len(found):,}: "
                "len() of the result is not the count, .total is (max_matches=None returns them all)"
            )
        return found

    _grep.__doc__ = grep.__doc__

    def make_tool(name: str, doc: str) -> Callable[..., Any]:
        def tool(*args: Any, **kwargs: Any) -> Any:
            return call("tool", {"name": name, "args": list(args), "kwargs": kwargs})

        tool.__name__ = name
        tool.__doc__ = doc
        return tool

    ns["context"] = context
    builtins: dict[str, Any] = {
        "FINAL": FINAL,
        "FINAL_VAR": FINAL_VAR,
        "SHOW_VARS": SHOW_VARS,
        "grep": _grep,
        "chunks": chunks,
    }
    builtins.update(bind_doc_helpers(lambda: ns.get("context")))
    builtins.update(bind_toolkit(lambda: ns.get("context"), call if sub_calls else None, lambda n: state.notes.append(n)))
    if sub_calls:
        stubs = {"llm_query": llm_query, "llm_batch": llm_batch, "rlm_query": rlm_query, "rlm_batch": rlm_batch}
        builtins.update((kind, stubs[kind]) for kind in MODEL_KINDS)
    for name, doc in (tools or {}).items():
        builtins[name] = make_tool(name, doc)
    ns.update(builtins)
    state = NamespaceState(ns, box, builtins)
    return state
