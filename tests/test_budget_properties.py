"""Budget invariants under concurrency, as properties: random trees of nested ``rlm_query`` /
``rlm_batch`` / ``llm_batch`` / ``llm_query`` with random latencies and failures never exceed a limit,
and usage is accounted exactly: the sum over the trace's ``lm_response`` usages equals ``result.usage``
equals the ledger's own count."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import code
from unbounded import RLM, Budget
from unbounded.errors import ModelError
from unbounded.models import Message, ScriptedLM, Usage
from unbounded.trace import Event


@dataclass
class Node:
    id: int
    ops: list[tuple[Any, ...]] = field(default_factory=list)


def _tree(draw: Any, counter: list[int], depth: int) -> Node:
    counter[0] += 1
    node = Node(counter[0])
    for _ in range(draw(st.integers(1 if depth == 0 else 0, 4))):
        kind = draw(st.sampled_from(["query", "batch", "child", "children"] if depth < 2 else ["query", "batch"]))
        if kind == "query":
            node.ops.append(("query",))
        elif kind == "batch":
            node.ops.append(("batch", draw(st.integers(0, 20))))
        elif kind == "child":
            node.ops.append(("child", _tree(draw, counter, depth + 1)))
        else:
            kids = [_tree(draw, counter, depth + 1) for _ in range(draw(st.integers(1, 3)))]
            node.ops.append(("children", kids))
    return node


@st.composite
def trees(draw: Any) -> Node:
    return _tree(draw, [0], 0)


def _index(node: Node, out: dict[int, Node]) -> dict[int, Node]:
    out[node.id] = node
    for op in node.ops:
        if op[0] == "child":
            _index(op[1], out)
        elif op[0] == "children":
            for kid in op[1]:
                _index(kid, out)
    return out


def _program(node: Node) -> str:
    lines = ["done = []"]
    for op in node.ops:
        if op[0] == "query":
            lines.append("try:\n    done.append(llm_query('q'))\nexcept Exception as e:\n    done.append(str(e))")
        elif op[0] == "batch":
            lines.append(f"done += llm_batch(['b{{}}'.format(i) for i in range({op[1]})])")
        elif op[0] == "child":
            lines.append(f"done.append(rlm_query('solve node-{op[1].id}', 'ctx {op[1].id}'))")
        else:
            pairs = ", ".join(f"('solve node-{k.id}', 'ctx {k.id}')" for k in op[1])
            lines.append(f"done += rlm_batch([{pairs}])")
    lines.append(f"FINAL('node-{node.id}: ' + str(len(done)))")
    return "\n".join(lines)


def _delay(text: str, salt: int, top: float) -> tuple[float, bool]:
    h = int(hashlib.sha256(f"{salt}:{text}".encode()).hexdigest()[:8], 16)
    return (h % 1000) / 1000 * top, h % 7 == 0


def check_run(tree: Node, limits: dict[str, Any], salt: int, repl: str) -> None:
    nodes = _index(tree, {})
    events: list[Event] = []
    seen_questions: list[str] = []

    async def root_reply(messages: list[Message]) -> str:
        ids = [int(m) for msg in messages for m in re.findall(r"node-(\d+)", msg.content)]
        node = nodes.get(ids[0], tree) if ids else tree
        seen_questions.append(f"node-{node.id}")
        await asyncio.sleep(_delay(str(len(messages)) + str(node.id), salt, 0.005)[0])
        return code(_program(node))

    async def sub_reply(messages: list[Message]) -> str:
        wait, fail = _delay(messages[-1].content + str(len(seen_questions)), salt, 0.01)
        await asyncio.sleep(wait)
        if fail:
            raise ModelError("flaky backend", kind="server")
        return "sub"

    root = ScriptedLM(root_reply, name="root", price=(1.0, 2.0, 0.5))
    sub = ScriptedLM(sub_reply, name="sub", price=(3.0, 4.0, 1.0))
    root.default_max_tokens = sub.default_max_tokens = 64
    budget = Budget(max_iterations=2, **limits)
    rlm = RLM(model=root, sub_model=sub, repl=repl, max_depth=2, budget=budget, on_event=events.append)
    result = rlm.run("solve node-1", "the context")

    requests = [e for e in events if e.type == "lm_request"]
    responses = [e for e in events if e.type == "lm_response"]
    end = events[-1]
    assert events[0].type == "run_start" and end.type == "run_end"
    assert result.status == "final" or result.status.startswith(("budget:", "max_iterations")), result
    assert len(requests) == len(responses) == end.data["ledger"]["calls"]
    assert end.data["ledger"]["in_flight"] == 0
    # Never past a limit.
    if budget.max_llm_calls is not None:
        assert len(responses) <= budget.max_llm_calls
    # Exact accounting: trace == result == ledger.
    from_trace: dict[str, Usage] = {}
    for e in responses:
        if "usage" in e.data:
            from_trace.setdefault(e.data["model"], Usage(cost_usd=0.0)).add(Usage.from_dict(e.data["usage"]))
    assert set(from_trace) == set(result.usage)
    for model, u in from_trace.items():
        r = result.usage[model]
        assert (u.calls, u.input_tokens, u.output_tokens) == (r.calls, r.input_tokens, r.output_tokens)
        assert math.isclose(u.cost_usd or 0.0, r.cost_usd or 0.0, abs_tol=1e-12)
    total = result.total_usage
    assert total.total_tokens == end.data["ledger"]["tokens"]
    assert math.isclose(total.cost_usd or 0.0, end.data["ledger"]["cost_usd"] or 0.0, abs_tol=1e-12)
    if budget.max_total_tokens is not None:
        assert total.total_tokens <= budget.max_total_tokens
    if budget.max_cost_usd is not None:
        assert (total.cost_usd or 0.0) <= budget.max_cost_usd + 1e-12
    failed = sum(1 for e in responses if "error" in e.data)
    assert total.calls + failed == len(responses)


limits_strategy = st.fixed_dictionaries(
    {
        "max_llm_calls": st.one_of(st.none(), st.integers(1, 40)),
        "max_total_tokens": st.one_of(st.none(), st.integers(2_000, 200_000)),
        "max_cost_usd": st.one_of(st.none(), st.floats(0.002, 0.5)),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(trees(), limits_strategy, st.integers(0, 2**16))
def test_budget_holds_on_random_trees_inprocess(tree: Node, limits: dict[str, Any], salt: int) -> None:
    check_run(tree, limits, salt, "inprocess")


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(trees(), limits_strategy, st.integers(0, 2**16))
def test_budget_holds_on_random_trees_process(tree: Node, limits: dict[str, Any], salt: int) -> None:
    check_run(tree, limits, salt, "process")
