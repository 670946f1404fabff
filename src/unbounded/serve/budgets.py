"""A request's budget: what it asks for (the ``budget`` extension field), within the server's caps."""

from __future__ import annotations

from typing import Any

from ..budget import Budget
from .errors import BadRequest

#: The fields a request may set, and their kind.
FIELDS: dict[str, type] = {
    "max_iterations": int,
    "max_llm_calls": int,
    "max_total_tokens": int,
    "max_cost_usd": float,
    "max_seconds": float,
}


def request_budget(caps: Budget, asked: Any) -> Budget:
    """``caps`` lowered by what the request asks for; a field above its cap, or unknown, is a 400."""
    values: dict[str, Any] = {name: getattr(caps, name) for name in FIELDS}
    if asked is None:
        return Budget(**values)
    if not isinstance(asked, dict):
        raise BadRequest("budget must be an object such as {\"max_iterations\": 10, \"max_seconds\": 60}",
                         param="budget")  # fmt: skip
    unknown = sorted(set(asked) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown budget field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}", param="budget")
    for name, value in asked.items():
        if value is None:
            continue
        kind = FIELDS[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
            raise BadRequest(f"budget.{name} must be a {'whole ' if kind is int else ''}number", param=f"budget.{name}")
        if value <= 0:
            raise BadRequest(f"budget.{name} must be positive, not {value}", param=f"budget.{name}")
        cap = getattr(caps, name)
        if cap is not None and value > cap:
            raise BadRequest(f"budget.{name} = {value} is above this server's cap of {cap}; ask for {cap} or less",
                             param=f"budget.{name}", code="budget_above_cap")  # fmt: skip
        values[name] = kind(value)
    return Budget(**values)


def budget_dict(budget: Budget) -> dict[str, Any]:
    return {name: getattr(budget, name) for name in FIELDS}
