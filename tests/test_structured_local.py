"""The ``schema`` option on the embedded llama.cpp model: a JSON-schema grammar (slow: the real 0.5B
GGUF on the CPU)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from unbounded.models import resolve_model
from unbounded.models.base import Message
from unbounded.models.local import LocalLM, unload_all

pytestmark = pytest.mark.slow

try:
    import llama_cpp  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install
    pytest.skip("llama-cpp-python is not installed (pip install 'unbounded[local]')", allow_module_level=True)

SMALL = "local/qwen2.5-coder-0.5b"


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLM]:
    saved = os.environ.get("UNBOUNDED_STATE_DIR")
    os.environ["UNBOUNDED_STATE_DIR"] = str(tmp_path_factory.mktemp("states"))  # keep the user's cache clean
    model = resolve_model(SMALL, n_ctx=2048)
    assert isinstance(model, LocalLM)
    yield model
    unload_all()
    if saved is None:
        os.environ.pop("UNBOUNDED_STATE_DIR", None)
    else:
        os.environ["UNBOUNDED_STATE_DIR"] = saved


async def test_a_json_schema_becomes_a_grammar(lm: LocalLM) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "type": "object",
        "properties": {
            "language": {"type": "string"},
            "year": {"type": "integer"},
            "paradigms": {"type": "array", "items": {"type": "string", "enum": ["functional", "imperative", "logic"]}},
        },
        "required": ["language", "year", "paradigms"],
        "additionalProperties": False,
    }
    ask = [Message("user", "Describe the Lisp programming language: its name, the year it appeared, its paradigms.")]
    c = await lm.complete(ask, max_tokens=48, schema=schema)
    value = json.loads(c.text)
    jsonschema.validate(value, schema)
    assert "schema_ignored" not in c.extra
    deltas = [d async for d in lm.astream(ask, max_tokens=48, schema=schema)]
    assert "".join(d.text for d in deltas) == c.text  # the same grammar, the same greedy reply
    years = {"type": "array", "items": {"type": "integer"}, "maxItems": 3}
    listing = await lm.complete([Message("user", "List the years Lisp and C appeared.")], max_tokens=24, schema=years)
    assert all(isinstance(x, int) for x in json.loads(listing.text))


async def test_a_schema_the_converter_cannot_express_is_ignored_with_a_note(lm: LocalLM) -> None:
    c = await lm.complete([Message("user", "Say hi.")], max_tokens=3, schema={"type": "object", "$ref": "http://x/y"})
    assert c.text and "cannot turn this schema into a grammar" in c.extra["schema_ignored"]
