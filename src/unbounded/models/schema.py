"""The ``schema`` call option: a JSON-schema dict, in the shapes each provider's structured output takes.

* OpenAI (and compatible servers, and LiteLLM) and Anthropic's forced tool need an object at the
  root. A schema whose root is anything else (``list[str]``, ``int``…) is sent wrapped as
  ``{"value": <schema>}`` and the reply unwrapped again, so the completion's text is always the JSON
  of the caller's shape (:func:`object_root`, :func:`unwrap_value`).
* OpenAI's ``strict`` mode accepts only a subset of JSON Schema (every property required, no extra
  properties, a list of supported keywords). :func:`strict_schema` gives the strict form when the
  schema fits it without changing what it means, and None otherwise; the request is then sent with
  ``strict: false`` (the model is still shown the schema).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

WRAP_KEY = "value"

#: Keywords OpenAI's strict mode accepts (beyond the structural ones every schema has).
_STRICT_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "$ref",
        "$defs",
        "definitions",
        "description",
        "title",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)
_STRICT_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})


def check_schema(schema: Any) -> dict[str, Any] | None:
    """The ``schema`` option as a plain dict (None when not given); ConfigError when it is not one."""
    if schema is None:
        return None
    if not isinstance(schema, Mapping):
        raise ConfigError(
            f"the schema option must be a JSON-schema dict, got {type(schema).__name__}; "
            "turn a type into one first (e.g. pydantic.TypeAdapter(T).json_schema())"
        )
    try:
        return json.loads(json.dumps(schema))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the schema option is not JSON-serialisable: {exc}") from exc


def is_object_root(schema: Mapping[str, Any]) -> bool:
    """True when every value the schema admits is a JSON object (so no wrapping is needed)."""
    kind = schema.get("type")
    if kind == "object":
        return True
    return kind is None and "properties" in schema and not any(k in schema for k in ("anyOf", "oneOf", "$ref"))


def is_wrapped(schema: Any) -> bool:
    """True when ``schema`` (a call's ``schema`` option) is sent wrapped by :func:`object_root`."""
    return isinstance(schema, Mapping) and not is_object_root(schema)


def object_root(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``(schema, False)`` when its root is an object, else ``({"value": schema}, True)``.

    Definitions (``$defs``/``definitions``) move to the wrapper's root, so ``#/$defs/...``
    references still resolve.
    """
    if is_object_root(schema):
        return schema, False
    inner = dict(schema)
    wrapper: dict[str, Any] = {
        "type": "object",
        "properties": {},
        "required": [WRAP_KEY],
        "additionalProperties": False,
    }
    for key in ("$defs", "definitions"):
        if key in inner:
            wrapper[key] = inner.pop(key)
    inner.pop("$schema", None)
    wrapper["properties"][WRAP_KEY] = inner
    return wrapper, True


def unwrap_value(text: str) -> str:
    """The JSON of ``value`` in a wrapped reply; the text unchanged when it is not one."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict) or set(data) != {WRAP_KEY}:
        return text
    return json.dumps(data[WRAP_KEY], ensure_ascii=False)


def schema_name(schema: Mapping[str, Any], default: str = "answer") -> str:
    """A name for the schema as OpenAI requires one (``[A-Za-z0-9_-]{1,64}``), from its title."""
    title = schema.get("title")
    if isinstance(title, str):
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", title).strip("_")[:64]
        if name:
            return name
    return default


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """The schema in OpenAI's strict form, or None when strict mode would change its meaning.

    Fits when every object lists all its properties as required and allows no others (absent
    ``additionalProperties`` is set to false: a reply without extra keys still matches), and only
    keywords and formats that strict mode supports appear. The root must be an object.
    """
    if not is_object_root(schema):
        return None
    out = copy.deepcopy(dict(schema))
    out.pop("$schema", None)
    return out if _strict_node(out) else None


def _strict_node(node: Any) -> bool:
    if isinstance(node, bool):
        return False  # `true`/`false` schemas are not accepted
    if not isinstance(node, dict):
        return False
    if any(k not in _STRICT_KEYWORDS for k in node):
        return False
    fmt = node.get("format")
    if fmt is not None and fmt not in _STRICT_FORMATS:
        return False
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" in kinds or "properties" in node:
        props = node.get("properties", {})
        if not isinstance(props, dict):
            return False
        if sorted(node.get("required", [])) != sorted(props):
            return False
        extra = node.get("additionalProperties", False)
        if extra is not False:
            return False
        node["additionalProperties"] = False
        if not all(_strict_node(p) for p in props.values()):
            return False
    if "items" in node and not _strict_node(node["items"]):
        return False
    if "anyOf" in node and not (isinstance(node["anyOf"], list) and all(_strict_node(a) for a in node["anyOf"])):
        return False
    for key in ("$defs", "definitions"):
        defs = node.get(key)
        if defs is not None and not (isinstance(defs, dict) and all(_strict_node(d) for d in defs.values())):
            return False
    return True


def openai_response_format(schema: dict[str, Any]) -> dict[str, Any]:
    """Chat Completions' ``response_format`` for a JSON schema (also what LiteLLM takes)."""
    wire, _ = object_root(schema)
    strict = strict_schema(wire)
    return {
        "type": "json_schema",
        "json_schema": {
            "name": schema_name(schema),
            "schema": strict if strict is not None else wire,
            "strict": strict is not None,
        },
    }
