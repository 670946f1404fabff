"""The sub-call pool on a real Ray cluster (Ray's own multi-node test cluster, started here).

Actors hold a latency model: a ``ScriptedLM`` that echoes its prompt after a delay, with usage a
pure function of the prompt (input = prompt length, output = reply length), so every ledger
figure can be checked exactly. The model factory lives in this module and reaches the actors by
value (``register_pickle_by_value``), as any user's own factory would.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'unbounded[ray]' to run the Ray tests")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from ray import cloudpickle  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from ray_cluster import NODE, running_cluster  # noqa: E402
from unbounded import RLM, Budget  # noqa: E402
from unbounded.batch import JobDefaults, RayModelPool, run_batch  # noqa: E402
from unbounded.batch.errors import PoolError  # noqa: E402
from unbounded.budget import Ledger  # noqa: E402
from unbounded.calls import ModelCaller  # noqa: E402
from unbounded.errors import BudgetExceeded, ModelError  # noqa: E402
from unbounded.models import Message, ScriptedLM, Usage  # noqa: E402
from unbounded.trace import Tracer  # noqa: E402

pytestmark = pytest.mark.ray
cloudpickle.register_pickle_by_value(sys.modules[__name__])

PRICE = (1.0, 2.0, 0.0)  # USD per million input / output / cached tokens


def echo(messages: list[Message]) -> str:
    return "echo:" + messages[-1].content


def echo_usage(messages: list[Message], text: str) -> Usage:
    return Usage(calls=1, input_tokens=len(messages[-1].content), output_tokens=len(text))


def echo_model(latency: float) -> ScriptedLM:
    return ScriptedLM(echo, name="echo", latency=latency, price=PRICE, usage_fn=echo_usage)


def tokens_of(prompt: str) -> int:
    return len(prompt) + len("echo:" + prompt)


def code(src: str) -> str:
    return f"```python\n{src.strip()}\n```"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as c:
        yield c


@pytest.fixture(scope="module")
def pool(cluster: Cluster) -> Iterator[RayModelPool]:
    """Two actors per node at half a CPU each: one CPU per node stays free for the tests' own pools."""
    p = RayModelPool(functools.partial(echo_model, 0.05), actors_per_node=2, cpus_per_actor=0.5, slots_per_actor=4)
    try:
        yield p
    finally:
        p.shutdown()


def worker_node_ids(c: Cluster) -> set[str]:
    return {n.node_id for n in c.worker_nodes}


def served_per_node(p: RayModelPool) -> dict[str, int]:
    """Calls each node's actors served, as the actors themselves count them."""
    counts = ray.get([h.served_calls.remote() for h in p.actor_handles])
    out: dict[str, int] = {}
    for member, n in zip(p.members(), counts, strict=True):
        out[member.node_id] = out.get(member.node_id, 0) + n
    return out


def test_the_pool_has_actors_on_every_node(cluster: Cluster, pool: RayModelPool) -> None:
    assert set(pool.nodes) == worker_node_ids(cluster)
    assert len(pool.members()) == 4 and pool.max_concurrency == 16
    assert pool.name == "echo" and pool.price() == PRICE
    assert repr(pool) == "RayModelPool('echo', actors=4/4, nodes=2)"


def test_an_llm_batch_of_100_uses_both_nodes_and_the_ledger_is_exact(cluster: Cluster, pool: RayModelPool) -> None:
    before = served_per_node(pool)
    prompts = [f"item {i}" for i in range(100)]
    root = ScriptedLM([code(f"out = llm_batch({prompts!r})\nFINAL('\\n'.join(out))")])
    result = RLM(model=root, sub_model=pool, repl="inprocess").run("Echo every item.", "context text")
    assert result.status == "final"
    assert result.answer == "\n".join("echo:" + p for p in prompts), "results in order, none swapped"
    usage = result.usage["echo"]
    assert usage.calls == 100
    assert usage.input_tokens + usage.output_tokens == sum(tokens_of(p) for p in prompts)
    expected_cost = sum(len(p) * PRICE[0] + len("echo:" + p) * PRICE[1] for p in prompts) / 1e6
    assert usage.cost_usd == pytest.approx(expected_cost)
    after = served_per_node(pool)
    delta = {n: after.get(n, 0) - before.get(n, 0) for n in after}
    assert sum(delta.values()) == 100, "every item served once, by the actors"
    assert set(delta) == worker_node_ids(cluster) and min(delta.values()) >= 20, delta


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=12), min_size=1, max_size=4),
    max_calls=st.none() | st.integers(0, 40),
    max_tokens=st.none() | st.integers(0, 900),
    max_cost=st.none() | st.floats(0, 0.002),
)
def test_concurrent_batches_never_exceed_the_budget_and_the_ledger_is_exact(
    pool: RayModelPool,
    batches: list[list[int]],
    max_calls: int | None,
    max_tokens: int | None,
    max_cost: float | None,
) -> None:
    ledger = Ledger(Budget(max_llm_calls=max_calls, max_total_tokens=max_tokens, max_cost_usd=max_cost))
    caller = ModelCaller(ledger, Tracer(None))
    outcomes: list[tuple[str, str | None, Usage | None]] = []

    async def one(prompt: str) -> None:
        try:
            done = await caller.complete(pool, [Message("user", prompt)], purpose="sub", parent=None, max_tokens=64)
        except BudgetExceeded:
            outcomes.append((prompt, None, None))
        else:
            outcomes.append((prompt, done.text, done.usage))

    async def go() -> None:
        prompts = [[f"b{b}-{i}-" + "x" * n for i, n in enumerate(batch)] for b, batch in enumerate(batches)]
        await asyncio.gather(*(one(p) for batch in prompts for p in batch))

    asyncio.run(go())
    served = [(p, text, u) for p, text, u in outcomes if text is not None]
    assert all(text == "echo:" + p for p, text, _ in served)
    assert ledger.calls == len(served), "every call that got past its reservation was settled once"
    assert (ledger.reserved_calls, ledger.reserved_tokens) == (0, 0) and ledger.reserved_cost == pytest.approx(0)
    assert ledger.tokens == sum(tokens_of(p) for p, _, _ in served)
    if served:
        assert ledger.by_model["echo"].calls == len(served)
        assert ledger.cost_usd == pytest.approx(sum(u.cost_usd or 0 for _, _, u in served))
    if max_calls is not None:
        assert ledger.calls <= max_calls
    if max_tokens is not None:
        assert ledger.tokens <= max_tokens
    if max_cost is not None:
        assert ledger.cost_usd <= max_cost + 1e-12


def small_pool(latency: float) -> RayModelPool:
    """One actor per node on the CPU the module's pool leaves free."""
    return RayModelPool(
        functools.partial(echo_model, latency), actors_per_node=1, cpus_per_actor=0.5, slots_per_actor=4
    )


async def run_and_kill(rlm: RLM, pool: RayModelPool, kill: list[int], after: float) -> Any:
    task = asyncio.create_task(rlm.arun("Echo every item.", "context text"))
    await asyncio.sleep(after)
    for index in kill:
        ray.kill(pool.actor_handles[index])
    return await task


def test_an_actor_killed_mid_batch_has_its_items_retried_and_the_ledger_stays_exact(cluster: Cluster) -> None:
    p = small_pool(latency=0.4)
    try:
        prompts = [f"q{i}" for i in range(40)]
        root = ScriptedLM([code(f"out = llm_batch({prompts!r})\nFINAL('\\n'.join(out))")])
        rlm = RLM(model=root, sub_model=p, repl="inprocess")
        result = asyncio.run(run_and_kill(rlm, p, kill=[0], after=1.0))
        assert result.status == "final"
        assert result.answer == "\n".join("echo:" + q for q in prompts), (
            "the dead actor's items were answered elsewhere"
        )
        usage = result.usage["echo"]
        assert usage.calls == 40 and usage.input_tokens + usage.output_tokens == sum(tokens_of(q) for q in prompts)
        dead, alive = p.members()
        assert not dead.alive and alive.alive
        assert alive.served > 20, "the survivor took over"
    finally:
        p.shutdown()


def test_all_actors_killed_turns_items_into_marked_failures_and_the_ledger_stays_exact(cluster: Cluster) -> None:
    p = small_pool(latency=0.4)
    try:
        prompts = [f"q{i}" for i in range(40)]
        root = ScriptedLM([code(f"out = llm_batch({prompts!r})\nFINAL('\\n'.join(out))")])
        rlm = RLM(model=root, sub_model=p, repl="inprocess")
        result = asyncio.run(run_and_kill(rlm, p, kill=[0, 1], after=1.0))
        assert result.status == "final"
        answers = (result.answer or "").split("\n")
        assert len(answers) == 40
        ok = [q for q, a in zip(prompts, answers, strict=True) if a == "echo:" + q]
        failed = [a for a in answers if a.startswith("[error:")]
        assert ok and failed and len(ok) + len(failed) == 40, "each item is an answer or a marked failure"
        assert all("Ray model pool for echo" in a and "0 of 2 actors alive" in a for a in failed)
        usage = result.usage["echo"]
        assert usage.calls == len(ok), "failed attempts are not billed"
        assert usage.input_tokens + usage.output_tokens == sum(tokens_of(q) for q in ok)
        with pytest.raises(ModelError, match="no live actor"):
            asyncio.run(p.complete([Message("user", "late")]))
    finally:
        p.shutdown()


def test_a_node_lost_mid_batch_moves_its_calls_and_the_ledger_stays_exact(cluster: Cluster) -> None:
    extra = cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    keep = sorted(worker_node_ids(cluster) - {extra.node_id})[0]
    p = RayModelPool(
        functools.partial(echo_model, 0.4),
        actors_per_node=1,
        cpus_per_actor=0.5,
        slots_per_actor=4,
        node_ids=[keep, extra.node_id],
    )
    try:
        assert set(p.nodes) == {keep, extra.node_id}
        prompts = [f"n{i}" for i in range(40)]
        root = ScriptedLM([code(f"out = llm_batch({prompts!r})\nFINAL('\\n'.join(out))")])
        rlm = RLM(model=root, sub_model=p, repl="inprocess")

        async def run_and_lose_the_node() -> Any:
            task = asyncio.create_task(rlm.arun("Echo every item.", "context text"))
            await asyncio.sleep(1.0)
            await asyncio.to_thread(cluster.remove_node, extra, False)
            return await task

        result = asyncio.run(run_and_lose_the_node())
        assert result.answer == "\n".join("echo:" + q for q in prompts), (
            "calls on the lost node were answered elsewhere"
        )
        usage = result.usage["echo"]
        assert usage.calls == 40 and usage.input_tokens + usage.output_tokens == sum(tokens_of(q) for q in prompts)
        by_node = {m.node_id: m for m in p.members()}
        assert not by_node[extra.node_id].available, "the lost node's actor is passed over"
        assert by_node[keep].alive and by_node[keep].served > by_node[extra.node_id].served
    finally:
        p.shutdown()


def test_batch_jobs_share_the_pool_from_their_ray_tasks(tmp_path: Path, cluster: Cluster, pool: RayModelPool) -> None:
    before = served_per_node(pool)
    jobs = [
        {"id": f"job{j}", "question": "Echo the items.", "records": [f"j{j}-item{i}" for i in range(10)]}
        for j in range(10)
    ]
    reply = code("out = llm_batch(list(context))\nFINAL('|'.join(out))")
    replies = tmp_path / "root.json"
    replies.write_text(__import__("json").dumps([reply]), encoding="utf-8")
    defaults = JobDefaults(model=f"scripted/{replies}", sub_model=pool.spec, repl="inprocess")
    results = {
        r.id: r for r in run_batch(jobs, out=tmp_path / "out", ray=cluster.address, defaults=defaults, sub_pool=pool)
    }
    assert len(results) == 10
    for j in range(10):
        r = results[f"job{j}"]
        assert r.status == "final", r.error
        assert r.answer == "|".join(f"echo:j{j}-item{i}" for i in range(10))
        assert r.usage["echo"].calls == 10
        assert r.node is not None and r.node.node_id in {n["NodeID"] for n in ray.nodes()}
    after = served_per_node(pool)
    delta = {n: after.get(n, 0) - before.get(n, 0) for n in after}
    assert sum(delta.values()) == 100 and min(delta.values()) > 0, delta
    assert all(m.alive for m in pool.members()), "jobs' copies of the pool never kill its actors"


def test_a_pickled_pool_uses_the_actors_but_never_kills_them(pool: RayModelPool) -> None:
    copy = cloudpickle.loads(cloudpickle.dumps(pool))
    assert copy.spec == pool.spec and copy.max_concurrency == pool.max_concurrency
    copy.shutdown()
    done = asyncio.run(pool.complete([Message("user", "still there")]))
    assert done.text == "echo:still there" and done.extra["node_id"] in pool.nodes


def test_a_pool_that_cannot_start_says_why(cluster: Cluster) -> None:
    with pytest.raises(PoolError, match=r"no Ray node has 8 CPU\(s\) for a model actor"):
        RayModelPool("scripted/x.json", cpus_per_actor=8)
    started = time.monotonic()
    with pytest.raises(PoolError, match=r"no model actor of the pool could start.*unknown model 'nosuch/model'"):
        RayModelPool("nosuch/model", actors_per_node=1, cpus_per_actor=0.25)
    assert time.monotonic() - started < 60
    with pytest.raises(PoolError, match="no alive Ray node with id nope"):
        RayModelPool("scripted/x.json", node_ids=["nope"])
    with pytest.raises(ValueError, match="actors_per_node"):
        RayModelPool("scripted/x.json", actors_per_node=0)
