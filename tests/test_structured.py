"""Structured output: the ``schema`` option in each provider's shape, through the real SDKs and the
loopback fault server, and the schema functions behind it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fault_server import FaultServer, ok
from unbounded.errors import ConfigError
from unbounded.models import Message, ScriptedLM, anthropic_backend, gemini_backend, openai_backend
from unbounded.models.base import Delta
from unbounded.models.cache import CachedLM, cache_key
from unbounded.models.retry import RetryPolicy
from unbounded.models.schema import (
    check_schema,
    object_root,
    openai_response_format,
    schema_name,
    strict_schema,
    unwrap_value,
)

FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, read_timeout=2.0)
Q = [Message("user", "Who wrote it, and when?")]

BOOK = {
    "title": "Book Answer",
    "type": "object",
    "properties": {
        "author": {"type": "string", "description": "Full name"},
        "year": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
    },
    "required": ["author", "year", "tags"],
    "$defs": {"Tag": {"type": "string", "enum": ["fiction", "poetry"]}},
}
NAMES = {"type": "array", "items": {"type": "string"}}


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


async def deltas_of(stream: Any) -> list[Delta]:
    return [d async for d in stream]


# -- schema shapes ------------------------------------------------------------------------------------


def test_object_root_wraps_other_roots_and_keeps_definitions_resolvable() -> None:
    assert object_root(BOOK) == (BOOK, False)
    schema = {"type": "array", "items": {"$ref": "#/$defs/Tag"}, "$defs": {"Tag": {"type": "string"}}}
    wrapped, was_wrapped = object_root(schema)
    assert was_wrapped
    assert wrapped["required"] == ["value"] and wrapped["additionalProperties"] is False
    assert wrapped["$defs"] == {"Tag": {"type": "string"}}  # at the root, where "#/$defs/Tag" points
    assert wrapped["properties"]["value"] == {"type": "array", "items": {"$ref": "#/$defs/Tag"}}
    assert object_root({"type": "integer"})[1] and object_root({"anyOf": [{"type": "object"}, {"type": "null"}]})[1]


def test_unwrap_value() -> None:
    assert unwrap_value('{"value": ["a", "é"]}') == '["a", "é"]'
    assert unwrap_value('{"value": 3}') == "3"
    assert unwrap_value('{"value": 3, "other": 1}') == '{"value": 3, "other": 1}'  # not a wrapper: unchanged
    assert unwrap_value("not json") == "not json"


def test_strict_form_only_where_it_keeps_the_meaning() -> None:
    strict = strict_schema(BOOK)
    assert strict is not None
    assert strict["additionalProperties"] is False  # added: a reply without extra keys still matches
    assert BOOK.get("additionalProperties") is None  # the caller's schema is not modified
    optional = {**BOOK, "required": ["author"]}
    assert strict_schema(optional) is None  # strict mode would make optional fields required
    assert strict_schema({**BOOK, "minProperties": 1}) is None  # a keyword strict mode rejects
    assert strict_schema({**BOOK, "additionalProperties": True}) is None
    odd_format = {"type": "object", "properties": {"u": {"type": "string", "format": "uri"}}, "required": ["u"]}
    assert strict_schema(odd_format) is None
    assert strict_schema(NAMES) is None  # not an object at the root


def test_schema_names_and_checks() -> None:
    assert schema_name(BOOK) == "Book_Answer"
    assert schema_name(NAMES) == "answer"
    with pytest.raises(ConfigError, match="JSON-schema dict"):
        check_schema(list[str])
    with pytest.raises(ConfigError, match="not JSON-serialisable"):
        check_schema({"type": "object", "default": object()})
    assert check_schema(None) is None


def test_openai_response_format() -> None:
    fmt = openai_response_format(BOOK)
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Book_Answer" and fmt["json_schema"]["strict"] is True
    loose = openai_response_format(NAMES)["json_schema"]
    assert loose["strict"] is True and loose["schema"]["properties"]["value"] == NAMES  # wrapped fits strict mode
    optional = openai_response_format({**BOOK, "required": ["author"]})["json_schema"]
    assert optional["strict"] is False and optional["schema"]["required"] == ["author"]


def test_structured_output_is_declared_by_backends_that_send_it(monkeypatch: pytest.MonkeyPatch) -> None:
    lm = openai_backend.create_openai("gpt-4o", {"api_key": "k"})
    assert lm.abilities.structured_output and lm.abilities.streaming
    assert not ScriptedLM(["x"]).abilities.structured_output


# -- OpenAI and compatible servers --------------------------------------------------------------------


@pytest.mark.network
async def test_openai_sends_the_schema_as_strict_json_schema(server: FaultServer) -> None:
    answer = '{"author": "Mary Shelley", "year": 1818, "tags": ["fiction"]}'
    server.script(ok(answer), ok(pieces=['{"author": ', '"Mary Shelley", ', '"year": 1818, "tags": []}']))
    lm = openai_backend.create_openai("gpt-4o", {"api_key": "k", "base_url": server.openai_url, "retry_policy": FAST})
    c = await lm.complete(Q, schema=BOOK)
    body = server.received[0].body
    assert body["response_format"]["type"] == "json_schema"
    sent = body["response_format"]["json_schema"]
    assert sent["strict"] is True and sent["name"] == "Book_Answer"
    assert sent["schema"]["properties"] == BOOK["properties"] and sent["schema"]["additionalProperties"] is False
    assert json.loads(c.text) == json.loads(answer)
    deltas = await deltas_of(lm.astream(Q, schema=BOOK))
    assert [d.text for d in deltas[:-1]] == ['{"author": ', '"Mary Shelley", ', '"year": 1818, "tags": []}']
    assert server.received[1].body["response_format"] == body["response_format"]


@pytest.mark.network
async def test_a_list_root_is_wrapped_on_the_wire_and_unwrapped_in_the_text(server: FaultServer) -> None:
    server.script(ok('{"value": ["Ada", "Grace"]}'), ok(pieces=['{"value": ', '["Ada", ', '"Grace"]}']))
    lm = openai_backend.create_compatible(f"qwen@{server.openai_url}", {"retry_policy": FAST})
    c = await lm.complete(Q, schema=NAMES)
    assert server.received[0].body["response_format"]["json_schema"]["schema"]["properties"]["value"] == NAMES
    assert json.loads(c.text) == ["Ada", "Grace"]
    deltas = await deltas_of(lm.astream(Q, schema=NAMES))
    texts = [d.text for d in deltas]
    assert "".join(texts) == deltas[-1].completion.text  # type: ignore[union-attr]
    assert json.loads("".join(texts)) == ["Ada", "Grace"]
    assert len([t for t in texts if t]) == 1  # only the whole JSON can be unwrapped


# -- Anthropic: a forced tool ----------------------------------------------------------------------


@pytest.mark.network
async def test_anthropic_forces_a_tool_whose_input_is_the_answer(server: FaultServer) -> None:
    answer = '{"author": "Mary Shelley", "year": 1818, "tags": ["fiction"]}'
    pieces = ['{"author": "Ma', 'ry Shelley", "year"', ": 1818, ", '"tags": ["fiction"]}']
    server.script(ok(answer, input_tokens=40, output_tokens=20), ok(pieces=pieces, input_tokens=40, output_tokens=20))
    lm = anthropic_backend.create(
        "claude-haiku-4-5", {"api_key": "k", "base_url": server.anthropic_url, "retry_policy": FAST}
    )
    c = await lm.complete(Q, schema=BOOK)
    body = server.received[0].body
    assert body["tools"] == [
        {"name": "answer", "description": "Give the answer, in exactly this shape.", "input_schema": BOOK}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "answer"}
    assert json.loads(c.text) == json.loads(answer)
    assert c.finish_reason == "tool_use" and c.usage.output_tokens == 20
    deltas = await deltas_of(lm.astream(Q, schema=BOOK))
    assert [d.text for d in deltas[:-1]] == pieces  # the input_json_delta pieces as they came
    streamed = deltas[-1].completion
    assert streamed is not None and json.loads(streamed.text) == json.loads(answer)
    assert streamed.usage.to_dict() == c.usage.to_dict()


@pytest.mark.network
async def test_anthropic_wraps_a_list_root(server: FaultServer) -> None:
    server.script(ok('{"value": ["Ada"]}'))
    lm = anthropic_backend.create(
        "claude-haiku-4-5", {"api_key": "k", "base_url": server.anthropic_url, "retry_policy": FAST}
    )
    c = await lm.complete(Q, schema=NAMES)
    assert server.received[0].body["tools"][0]["input_schema"]["properties"]["value"] == NAMES
    assert json.loads(c.text) == ["Ada"]


# -- Gemini and LiteLLM -----------------------------------------------------------------------------


@pytest.mark.network
async def test_gemini_sends_a_json_schema_and_mime_type(server: FaultServer) -> None:
    server.script(ok('["Ada", "Grace"]'), ok(pieces=['["Ada", ', '"Grace"]']))
    lm = gemini_backend.create(
        "gemini-2.5-flash", {"api_key": "k", "base_url": server.gemini_url, "retry_policy": FAST}
    )
    c = await lm.complete(Q, schema=NAMES)
    config = server.received[0].body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == NAMES  # any root type, sent as it is
    assert json.loads(c.text) == ["Ada", "Grace"]
    deltas = await deltas_of(lm.astream(Q, schema=BOOK))
    assert server.received[1].body["generationConfig"]["responseJsonSchema"] == BOOK
    assert "".join(d.text for d in deltas) == '["Ada", "Grace"]'


@pytest.mark.network
@pytest.mark.skipif(importlib.util.find_spec("litellm") is None, reason="litellm not installed")
@pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")
async def test_litellm_passes_response_format_through(server: FaultServer) -> None:
    from unbounded.models.litellm_backend import create

    server.script(ok('{"value": ["Ada"]}'))
    lm = create("openai/gpt-4o-mini", {"api_key": "k", "base_url": server.openai_url, "retry_policy": FAST})
    c = await lm.complete(Q, schema=NAMES)
    sent = server.received[0].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"]["properties"]["value"] == NAMES
    assert json.loads(c.text) == ["Ada"]


# -- the response cache ------------------------------------------------------------------------------


def test_the_schema_is_part_of_the_cache_key() -> None:
    plain = cache_key("m", Q, {"max_tokens": 10})
    assert cache_key("m", Q, {"max_tokens": 10, "schema": BOOK}) != plain
    assert cache_key("m", Q, {"max_tokens": 10, "schema": BOOK}) != cache_key(
        "m", Q, {"max_tokens": 10, "schema": NAMES}
    )
    # Without a schema the key is what it was before schemas existed, so stored answers still hit.
    payload = {
        "model": "m",
        "messages": [["user", Q[0].content]],
        "params": {"temperature": None, "max_tokens": 10, "stop": None, "seed": None},
    }
    data = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert plain == hashlib.sha256(data.encode()).hexdigest()


async def test_cached_answers_are_kept_apart_by_schema(tmp_path: Path) -> None:
    inner = ScriptedLM(['{"author": "A", "year": 1, "tags": []}', '["A"]'])
    lm = CachedLM(inner, path=tmp_path / "c.sqlite")
    a = await lm.complete(Q, schema=BOOK)
    b = await lm.complete(Q, schema=NAMES)
    again = await lm.complete(Q, schema=BOOK)
    assert (a.text, b.text) == ('{"author": "A", "year": 1, "tags": []}', '["A"]')
    assert again.cached and again.text == a.text
    assert len(inner.calls) == 2 and inner.options[0]["schema"] == BOOK
