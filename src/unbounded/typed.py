"""Typed answers: ``rlm.run(question, context, output=T)``.

``T`` is a type pydantic can validate — a pydantic model, a dataclass, a ``TypedDict``, ``list[str]``,
``int``… — or a JSON schema as a dict. The model is told the shape (the JSON schema); the value given
to ``FINAL`` is validated (pydantic for types, ``jsonschema`` for a schema dict); a failure goes back
to the model with the validation error for another turn, a bounded number of times.
``result.value`` is the validated value and ``result.answer`` its JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

#: How many answers that fail validation go back to the model before the run ends with ``error:output``.
MAX_OUTPUT_RETRIES = 2
#: Characters of the schema shown to the model.
SCHEMA_CHARS = 2000


class OutputInvalid(ValueError):
    """An answer that does not have the requested shape; the message says where and why."""


@dataclass(frozen=True)
class OutputSpec:
    """The shape an answer must have: its JSON schema, and how to validate and serialise a value."""

    target: Any
    schema: dict[str, Any]

    @classmethod
    def of(cls, target: Any) -> OutputSpec:
        if isinstance(target, OutputSpec):
            return target
        if isinstance(target, dict):
            _check_schema(target)
            return cls(target, target)
        try:
            from pydantic import TypeAdapter
        except ImportError as exc:  # pydantic is a dependency; this guards a broken install
            raise ConfigError("typed answers need pydantic: pip install pydantic") from exc
        try:
            schema = TypeAdapter(target).json_schema()
        except Exception as exc:
            raise ConfigError(f"output={target!r} is not a type pydantic can validate ({exc})") from exc
        return cls(target, schema)

    @property
    def is_schema_dict(self) -> bool:
        return isinstance(self.target, dict)

    def instructions(self) -> str:
        """What the model is told about the answer's shape."""
        text = json.dumps(self.schema, separators=(",", ":"))
        if len(text) > SCHEMA_CHARS:
            text = text[:SCHEMA_CHARS] + " …"
        return (
            "The answer must be a JSON value of this schema: "
            f"{text}\nCall FINAL with it as a Python value (a dict, a list, a number or a string)."
        )

    def validate(self, answer: str) -> tuple[Any, str]:
        """(the validated value, its JSON) for a FINAL answer's text; ``OutputInvalid`` if it does not fit."""
        try:
            raw: Any = json.loads(answer)
        except ValueError:
            raw = answer  # a plain string answer
        if self.is_schema_dict:
            import jsonschema

            try:
                jsonschema.validate(raw, self.schema)
            except jsonschema.ValidationError as exc:
                where = "/".join(str(p) for p in exc.absolute_path) or "the answer"
                raise OutputInvalid(f"{where}: {exc.message}") from None
            return raw, json.dumps(raw, ensure_ascii=False)
        from pydantic import TypeAdapter, ValidationError

        adapter = TypeAdapter(self.target)
        try:
            value = adapter.validate_python(raw)
        except ValidationError as exc:
            raise OutputInvalid(_pydantic_errors(exc)) from None
        return value, adapter.dump_json(value).decode("utf-8")


def _check_schema(schema: dict[str, Any]) -> None:
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"output schema is not a valid JSON schema: {exc.message}") from None


def _pydantic_errors(exc: Any) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "the answer"
        parts.append(f"{where}: {err.get('msg')}")
    more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return "; ".join(parts) + more


def output_refusal(error: str, spec: OutputSpec) -> str:
    """The note that sends an answer of the wrong shape back to the model."""
    return (
        f"That answer was not accepted: it does not have the required shape ({error}). "
        f"{spec.instructions()}"
    )
