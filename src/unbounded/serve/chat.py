"""A chat completion request read as an RLM run: the question, the context, the extension fields.

The rule (also in the package docs): the question is the last user message's text parts of at most
``inline_chars`` characters; everything else in the conversation is the context. See
``unbounded.serve`` for the whole of it, the completion form and the extension fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..engine import COMPLETION_QUESTION
from ..errors import ConfigError
from ..typed import OutputSpec
from .errors import BadRequest

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
TEXT_PARTS = frozenset({"text", "input_text"})
#: OpenAI request fields read here; the other OpenAI fields (temperature, max_tokens, seed, user…)
#: are accepted and have no effect: the RLM's own options and budget govern its model calls.
KNOWN_FIELDS = frozenset({"model", "messages", "stream", "stream_options", "response_format", "n", "tools",
                          "functions", "logprobs"})  # fmt: skip
EXTENSION_FIELDS = frozenset({"context_id", "paths", "include", "exclude", "budget", "progress"})


@dataclass
class Piece:
    """One part of the conversation that goes to the context: who said it, and the text."""

    role: str
    text: str


@dataclass
class ChatRequest:
    model: str
    question: str
    #: True when the question is the completion instruction (the prompt itself is the context).
    completion_form: bool
    pieces: list[Piece]
    stream: bool = False
    include_usage: bool = False
    progress: bool = True
    output: dict[str, Any] | None = None
    context_id: str | None = None
    paths: list[str] | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    budget: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def server_side(self) -> bool:
        return self.context_id is not None or self.paths is not None


def parse_chat(body: Any, inline_chars: int) -> ChatRequest:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("model is required: 'rlm' (the server's default) or 'rlm/<spec>'", param="model")
    _refuse_unsupported(body)
    question, long_parts, before, after = _split_messages(body.get("messages"), inline_chars)
    pieces = [*before, *long_parts, *after]
    completion_form = not question
    context_id, paths = _server_context(body)
    server_side = context_id is not None or paths is not None
    if completion_form:
        if not long_parts:
            raise BadRequest("the last user message has no text", param="messages")
        question = COMPLETION_QUESTION
    elif not pieces and not server_side:
        # A short prompt and nothing else: the paper's completion form, so a plain call still answers.
        pieces = [Piece("user", _last_user_text(body["messages"]))]
        question, completion_form = COMPLETION_QUESTION, True
    stream = _flag(body, "stream", False)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise BadRequest("stream_options must be an object", param="stream_options")
    req = ChatRequest(
        model=model.strip(),
        question=question,
        completion_form=completion_form,
        pieces=pieces,
        stream=stream,
        include_usage=bool(options and options.get("include_usage")),
        progress=_flag(body, "progress", True),
        output=_output_schema(body.get("response_format")),
        context_id=context_id,
        paths=paths,
        include=_globs(body, "include"),
        exclude=_globs(body, "exclude"),
        budget=body.get("budget"),
    )
    if server_side and pieces:
        req.question = with_conversation(req, inline_chars)
    return req


def context_value(pieces: list[Piece]) -> str | list[str]:
    """The run's context from the conversation: one piece is its text; several are a list of texts,
    each opening with a line naming its role (``[system]``, ``[user]``, ``[assistant]``…)."""
    if len(pieces) == 1:
        return pieces[0].text
    return [f"[{p.role}]\n{p.text}" for p in pieces]


def with_conversation(req: ChatRequest, inline_chars: int) -> str:
    """With a server-side context, the rest of the conversation goes before the question, if it is short."""
    total = sum(len(p.text) for p in req.pieces)
    if total > inline_chars:
        raise BadRequest(
            f"with context_id or paths, the other messages go into the question and may hold at most {inline_chars} "
            f"characters in all (they hold {total}): register the long text as a context (POST /v1/contexts) "
            "or send it without context_id/paths",
            param="messages",
        )
    lines = ["Conversation so far:"] + [f"[{p.role}] {p.text}" for p in req.pieces]
    head = req.question if not req.completion_form else "Answer the last user message."
    return "\n".join(lines) + "\n\n" + head


def _refuse_unsupported(body: dict[str, Any]) -> None:
    n = body.get("n", 1)
    if n not in (1, None):
        raise BadRequest("n must be 1: an RLM run gives one answer", param="n")
    if body.get("tools") or body.get("functions"):
        raise BadRequest(
            "tools are not supported: the RLM answers in text (its model code can call host tools only when the "
            "server is built with them)",
            param="tools",
        )
    if body.get("logprobs"):
        raise BadRequest("logprobs are not available for an RLM's answer", param="logprobs")


def _split_messages(messages: Any, inline_chars: int) -> tuple[str, list[Piece], list[Piece], list[Piece]]:
    """(question, the last user message's long parts, the pieces before it, the pieces after it)."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list of {role, content} objects", param="messages")
    texts: list[tuple[str, list[str]]] = []
    last_user = -1
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{i}] must be an object with role and content", param=f"messages[{i}]")
        role = message.get("role")
        if role not in ROLES:
            raise BadRequest(f"messages[{i}].role must be one of {', '.join(sorted(ROLES))}", param=f"messages[{i}].role")
        parts = _parts(message, i)
        texts.append((role, parts))
        if role == "user":
            last_user = i
    if last_user < 0:
        raise BadRequest("there is no user message to answer", param="messages")
    before = [Piece(role, "\n\n".join(parts)) for role, parts in texts[:last_user] if any(parts)]
    after = [Piece(role, "\n\n".join(parts)) for role, parts in texts[last_user + 1 :] if any(parts)]
    short = [p for p in texts[last_user][1] if p.strip() and len(p) <= inline_chars]
    long = [Piece("user", p) for p in texts[last_user][1] if len(p) > inline_chars]
    return "\n\n".join(short).strip(), long, before, after


def _parts(message: dict[str, Any], i: int) -> list[str]:
    content = message.get("content")
    parts: list[str]
    if content is None:
        parts = []
    elif isinstance(content, str):
        parts = [content]
    elif isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            if isinstance(part, str):
                parts.append(part)
                continue
            if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise BadRequest(f"{where}: only text parts are supported (got {kind!r})", param=where)
            parts.append(part["text"])
    else:
        raise BadRequest(f"messages[{i}].content must be a string or a list of text parts", param=f"messages[{i}].content")
    extra = [message[k] for k in ("tool_calls", "function_call") if message.get(k)]
    if extra:  # an assistant turn that called tools: its calls are part of what was said
        import json

        parts.append(json.dumps(extra, ensure_ascii=False))
    return parts


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return "\n\n".join(_parts(message, 0))
    return ""


def _server_context(body: dict[str, Any]) -> tuple[str | None, list[str] | None]:
    context_id = body.get("context_id")
    paths = body.get("paths")
    if context_id is not None and (not isinstance(context_id, str) or not context_id.strip()):
        raise BadRequest("context_id must be the id POST /v1/contexts returned", param="context_id")
    if paths is not None:
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            raise BadRequest("paths must be a non-empty list of strings", param="paths")
    if context_id is not None and paths is not None:
        raise BadRequest("give context_id or paths, not both", param="paths")
    return (context_id.strip() if context_id else None), paths


def _globs(body: dict[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        raise BadRequest(f"{name} must be a list of glob strings", param=name)
    return tuple(value)


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false", param=name)
    return value


def _output_schema(fmt: Any) -> dict[str, Any] | None:
    """``response_format`` as the JSON schema of a typed answer (None: a text answer)."""
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise BadRequest("response_format must be an object", param="response_format")
    kind = fmt.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind != "json_schema":
        raise BadRequest("response_format.type must be text, json_object or json_schema", param="response_format.type")
    spec = fmt.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise BadRequest("response_format.json_schema.schema must be a JSON schema object",
                         param="response_format.json_schema")  # fmt: skip
    try:
        OutputSpec.of(schema)
    except ConfigError as exc:
        raise BadRequest(str(exc), param="response_format.json_schema.schema") from None
    return schema
