"""Typed answers: the model is told the shape, FINAL is validated, failures go back to it (bounded)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict  # pydantic validates typing.TypedDict from Python 3.12 on

from conftest import code
from unbounded import RLM
from unbounded.errors import ConfigError
from unbounded.models import Message, ScriptedLM
from unbounded.trace import read_trace


class Person(BaseModel):
    name: str
    age: int


@dataclass
class Point:
    x: int
    y: int


class Movie(TypedDict):
    title: str
    year: int


@pytest.mark.parametrize(
    "output,final,value,answer",
    [
        (Person, "{'name': 'Ada', 'age': 36}", Person(name="Ada", age=36), '{"name":"Ada","age":36}'),
        (Point, "{'x': 1, 'y': 2}", Point(1, 2), '{"x":1,"y":2}'),
        (Movie, "{'title': 'Alien', 'year': 1979}", {"title": "Alien", "year": 1979}, '{"title":"Alien","year":1979}'),
        (list[str], "['a', 'b']", ["a", "b"], '["a","b"]'),
        (int, "'42'", 42, "42"),
        ({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}, "{'n': 3}", {"n": 3}, '{"n": 3}'),
    ],
)
def test_a_valid_answer_is_typed(output: Any, final: str, value: Any, answer: str, repl_kind: str) -> None:
    root = ScriptedLM([code(f"FINAL({final})")])
    result = RLM(model=root, repl=repl_kind).run("q", "context", output=output)
    assert (result.status, result.value, result.answer) == ("final", value, answer)
    assert "JSON value of this schema" in root.calls[0][-1].content  # the model was told the shape


def test_an_invalid_answer_goes_back_with_the_error_then_is_fixed(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    root = ScriptedLM([code("FINAL({'name': 'Ada'})"), code("FINAL({'name': 'Ada', 'age': 36})")])
    result = RLM(model=root, repl="inprocess", trace=trace).run("q", "context", output=Person)
    assert result.status == "final" and result.value == Person(name="Ada", age=36)
    note = root.calls[1][-1].content
    assert "not accepted" in note and "age" in note and "Field required" in note
    checks = [e.data for e in read_trace(trace) if e.type == "check"]
    assert checks[0]["verdict"] == "invalid" and checks[0]["refused"] is True


def test_an_answer_that_never_fits_ends_the_run_with_error_output_and_keeps_it() -> None:
    root = ScriptedLM([code("FINAL('not a number')")])
    result = RLM(model=root, repl="inprocess").run("q", "context", output=int)
    assert result.status == "error:output" and result.value is None
    assert result.answer == "not a number" and "shape" in result.error
    assert len(root.calls) == 3  # the first try and two more, then the run ends


def test_a_bad_output_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="pydantic"):
        RLM(model=ScriptedLM(["x"]), repl="inprocess").run("q", "c", output=object())
    with pytest.raises(ConfigError, match="valid JSON schema"):
        RLM(model=ScriptedLM(["x"]), repl="inprocess").run("q", "c", output={"type": 12})


def test_sub_calls_can_ask_for_a_schema(repl_kind: str) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}

    def sub_reply(messages: list[Message]) -> str:
        return '{"city": "Lyon"}'

    sub = ScriptedLM(sub_reply, name="sub")
    root = ScriptedLM([code(f"r = llm_query('where?', schema={schema!r})\nFINAL(r['city'] + ' ' + type(r).__name__)")])
    result = RLM(model=root, sub_model=sub, repl=repl_kind).run("q", "context")
    assert result.answer == "Lyon dict"
    assert sub.options[0]["schema"] == schema  # handed to the backend, which asks its provider for that shape


def test_cli_schema_file(tmp_path: Path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "array", "items": {"type": "integer"}}))
    replies = tmp_path / "r.json"
    replies.write_text(json.dumps([code("FINAL([1, 2, 3])")]))
    proc = subprocess.run(
        [sys.executable, "-m", "unbounded", "ask", "q", "-", "--model", f"scripted/{replies}", "--schema", str(schema),
         "--repl", "inprocess", "--json", "-q"],
        input="some context", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["value"] == [1, 2, 3] and out["status"] == "final"
    bad = subprocess.run(
        [sys.executable, "-m", "unbounded", "ask", "q", "-", "--schema", str(tmp_path / "missing.json")],
        input="x", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "cannot read a JSON schema" in bad.stderr
