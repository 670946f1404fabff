"""A sub-call pool: an ``LM`` whose calls run on model actors spread over a Ray cluster's nodes.

    pool = RayModelPool("local/qwen2.5-coder-1.5b", cpus_per_actor=4)
    rlm = RLM(model="local/qwen2.5-coder-1.5b", sub_model=pool)

Each actor builds the model itself (a ``local/...`` spec loads llama.cpp inside the actor, with
``n_threads`` = its CPUs), so one ``llm_batch`` of many prompts is answered by every node at once.

Budgets stay exact because the pool is just an ``LM``: the engine's ``ModelCaller`` reserves in the
run's ledger before each ``complete`` and settles the usage the pool returns, on the process that
runs the engine. When an actor dies mid-call (its node was lost, it crashed), the pool sends the
call to another live actor; the dead attempt returns nothing, so nothing is billed twice. When no
actor is left, the call raises ``ModelError(kind="pool")``, which ``llm_batch`` returns as a marked
failure. A remote provider that died mid-call may still have billed that attempt; the pool cannot
see it. Remote-provider sub-calls (``openai/...``, ``anthropic/...``) need no pool: the provider
already serves them in parallel, and ``llm_batch`` fans out on one machine.

Actors are placed with a hard node affinity on every alive node with CPUs. For a ``local/`` model
the default is one actor per node holding all the node's CPUs (llama.cpp threads = those CPUs, one
copy of the weights and KV cache per node); otherwise, and whenever ``cpus_per_actor`` is given,
``actors_per_node`` actors of ``cpus_per_actor`` CPUs (default 1), as many as fit when not given.
Each actor builds and loads its model before the pool reports ready; an actor that is not ready
within ``ready_timeout`` seconds (its node is busy) is dropped. Dead actors are not restarted.
The pool pickles (its actor handles travel), so Ray tasks of the same driver can share it.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ModelError
from ..models.base import LM, Completion, LMBase, Message
from .errors import PoolError
from .ray_support import connect, error_reason, import_ray

ModelFactory = Callable[[], LM]

#: Seconds an actor that Ray reported unreachable is passed over (it may be on a node being lost).
UNAVAILABLE_COOLDOWN = 5.0
#: Concurrent calls per actor when not given: llama.cpp runs one generation at a time.
LOCAL_SLOTS = 1
DEFAULT_SLOTS = 8


class ModelActor:
    """The model inside one Ray actor (run as a Ray async actor; its methods are called remotely)."""

    def __init__(self, model: str | ModelFactory, options: Mapping[str, Any], cpus: float) -> None:
        import os
        import socket

        from ..models.registry import resolve_model

        opts = dict(options)
        if isinstance(model, str) and model.startswith("local/") and "n_threads" not in opts:
            opts["n_threads"] = max(1, math.floor(cpus))  # llama.cpp uses this actor's CPUs, not the node's
        from ..models.base import full_lm

        self.lm = full_lm(resolve_model(model, **opts) if isinstance(model, str) else model())
        if self.lm.abilities.lazy_load:
            self.lm.load()  # weights in memory before the pool says ready: a missing file fails the pool's start
        self.served = 0
        self.pid = os.getpid()
        self.hostname = socket.gethostname()

    def info(self) -> dict[str, Any]:
        import ray

        lm = self.lm
        return {
            "name": lm.name,
            "max_concurrency": int(lm.max_concurrency or 1),
            "context_window": lm.context_window,
            "default_max_tokens": int(lm.default_max_tokens or 1024),
            "price": lm.price(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "hostname": self.hostname,
            "pid": self.pid,
        }

    async def complete(self, messages: list[dict[str, str]], opts: dict[str, Any]) -> Completion:
        lm = self.lm
        if lm.abilities.lazy_load and not lm.loaded:
            await lm.aload()
        completion = await lm.complete([Message(m["role"], m["content"]) for m in messages], **opts)
        self.served += 1
        return completion

    def served_calls(self) -> int:
        return self.served


@dataclass(slots=True)
class _Member:
    """One actor as the pool (in this process) sees it."""

    index: int
    handle: Any
    node_id: str
    slots: int
    in_flight: int = 0
    alive: bool = True
    served: int = 0
    #: Until when (monotonic clock) the actor is skipped after Ray reported it unreachable.
    unavailable_until: float = 0.0

    @property
    def available(self) -> bool:
        return self.alive and time.monotonic() >= self.unavailable_until


@dataclass(frozen=True, slots=True)
class PoolMember:
    """A public view of one actor: where it runs, how many calls this process sent it, whether it lives."""

    index: int
    node_id: str
    slots: int
    alive: bool
    available: bool
    served: int
    in_flight: int


class RayModelPool(LMBase):
    """An ``LM`` answered by model actors on the nodes of a Ray cluster (see the module docstring).

    ``model`` is a spec string (resolved inside each actor with ``model_options``) or a picklable
    zero-argument factory returning an ``LM``. ``slots_per_actor`` is how many calls one actor runs
    at once (default: 1 for ``local/`` models, else 8); ``max_concurrency`` is the sum over actors.
    ``max_retries`` is how many other actors a call is tried on after its actor died (default:
    every other actor). ``address`` connects this process to Ray when it is not connected yet.
    ``node_ids`` keeps the actors to those nodes (default: every alive node).
    """

    def __init__(
        self,
        model: str | ModelFactory,
        *,
        model_options: Mapping[str, Any] | None = None,
        actors_per_node: int | None = None,
        cpus_per_actor: float | None = None,
        slots_per_actor: int | None = None,
        max_retries: int | None = None,
        ready_timeout: float = 300.0,
        address: str | None = None,
        node_ids: Sequence[str] | None = None,
    ) -> None:
        if cpus_per_actor is not None and cpus_per_actor < 0:
            raise ValueError("cpus_per_actor must be >= 0")
        if actors_per_node is not None and actors_per_node < 1:
            raise ValueError("actors_per_node must be at least 1")
        if slots_per_actor is not None and slots_per_actor < 1:
            raise ValueError("slots_per_actor must be at least 1")
        ray = import_ray()
        self._owns_ray = connect(address)
        self._owner = True
        self._closed = False
        spec = model if isinstance(model, str) else None
        slots = slots_per_actor or (LOCAL_SLOTS if spec and spec.startswith("local/") else DEFAULT_SLOTS)
        members = _start_actors(
            ray, model, dict(model_options or {}), actors_per_node, cpus_per_actor, slots, ready_timeout, node_ids
        )
        self._setup(members, max_retries, spec)

    def _setup(self, members: list[tuple[Any, dict[str, Any], int]], max_retries: int | None, spec: str | None) -> None:
        self._members = [_Member(i, h, str(info["node_id"]), s) for i, (h, info, s) in enumerate(members)]
        self._infos = [info for _, info, _ in members]
        first = self._infos[0]
        self.name = str(first["name"])
        #: The spec the actors were built from (for a factory: the model's name).
        self.spec = spec or self.name
        self.context_window = first["context_window"]
        self.default_max_tokens = int(first["default_max_tokens"])
        self._price = first["price"]
        self.max_concurrency = sum(m.slots for m in self._members)
        self.max_retries = len(self._members) - 1 if max_retries is None else max(0, max_retries)
        self._turn = itertools.count()

    # -- the LM protocol --------------------------------------------------------------
    def price(self) -> tuple[float, float, float] | None:
        return tuple(self._price) if self._price is not None else None  # type: ignore[return-value]

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        """Run the call on the least busy live actor; on an actor's death, on another one."""
        from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

        if self._closed:
            raise ModelError(f"the Ray model pool for {self.name} was shut down", kind="pool")
        payload = [{"role": m.role, "content": m.content} for m in messages]
        tried: set[int] = set()
        deaths: list[str] = []
        for _ in range(self.max_retries + 1):
            member = self._pick(tried)
            if member is None:
                break
            tried.add(member.index)
            member.in_flight += 1
            try:
                ref = member.handle.complete.remote(payload, dict(opts))
                try:
                    completion: Completion = await ref
                except asyncio.CancelledError:
                    _cancel(ref)
                    raise
            except ActorUnavailableError as exc:  # unreachable for now (its node may be going): try another
                member.unavailable_until = time.monotonic() + UNAVAILABLE_COOLDOWN
                deaths.append(f"actor {member.index} unavailable ({error_reason(exc)})")
                continue
            except RayActorError as exc:
                member.alive = False
                deaths.append(f"actor {member.index} on node {member.node_id[:12]} died ({error_reason(exc)})")
                continue
            except RayTaskError as exc:  # the model itself failed inside the actor: not the actor's fault
                cause = getattr(exc, "cause", None)
                if isinstance(cause, ModelError):
                    raise cause from None
                raise ModelError(f"{self.name} (pool actor {member.index}): {error_reason(cause or exc)}") from None
            finally:
                member.in_flight -= 1
            member.served += 1
            completion.extra = {**completion.extra, "node_id": member.node_id, "actor": member.index}
            return completion
        alive = sum(m.alive for m in self._members)
        why = "; ".join(deaths) if deaths else "no live actor"
        raise ModelError(
            f"Ray model pool for {self.name}: the call could not be served ({why}); {alive} of "
            f"{len(self._members)} actors alive. Start a new pool (or fix the nodes) to go on.",
            kind="pool",
            attempts=len(tried),
        )

    def _pick(self, tried: set[int]) -> _Member | None:
        """The live, untried actor with the most free slots; ties rotate so calls spread over nodes.
        Actors Ray just called unreachable are used only when no other is left."""
        live = [m for m in self._members if m.alive and m.index not in tried]
        live = [m for m in live if m.available] or live
        if not live:
            return None
        start = next(self._turn) % len(live)
        rotated = live[start:] + live[:start]
        return min(rotated, key=lambda m: m.in_flight / m.slots)

    # -- inspection and lifetime --------------------------------------------------------
    def members(self) -> list[PoolMember]:
        return [
            PoolMember(m.index, m.node_id, m.slots, m.alive, m.available, m.served, m.in_flight) for m in self._members
        ]

    @property
    def actor_handles(self) -> list[Any]:
        return [m.handle for m in self._members]

    @property
    def nodes(self) -> list[str]:
        return sorted({m.node_id for m in self._members})

    async def aclose(self) -> None:
        """Kept open: the engine closes its models after each run, and a pool outlives runs."""
        return None

    def shutdown(self) -> None:
        """Kill the actors (only the pool that started them does) and disconnect from Ray if it connected."""
        if self._closed:
            return
        self._closed = True
        if not self._owner:
            return
        ray = import_ray()
        for m in self._members:
            try:
                ray.kill(m.handle)
            except Exception:
                pass
        if self._owns_ray:
            ray.shutdown()

    def __enter__(self) -> RayModelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __reduce__(self) -> tuple[Any, ...]:
        members = [(m.handle, info, m.slots) for m, info in zip(self._members, self._infos, strict=True)]
        return (_attached_pool, (members, self.max_retries, self.spec))

    def __repr__(self) -> str:
        alive = sum(m.alive for m in self._members)
        return f"RayModelPool({self.name!r}, actors={alive}/{len(self._members)}, nodes={len(self.nodes)})"


def _attached_pool(members: list[tuple[Any, dict[str, Any], int]], max_retries: int, spec: str) -> RayModelPool:
    """A pool rebuilt in another process from pickled handles: it uses the actors, never kills them."""
    pool = RayModelPool.__new__(RayModelPool)
    pool._owns_ray = False
    pool._owner = False
    pool._closed = False
    pool._setup(members, max_retries, spec)
    return pool


def plan_actors(
    nodes: Sequence[Mapping[str, Any]], *, local: bool, actors_per_node: int | None, cpus: float | None
) -> list[tuple[str, float]]:
    """Where the actors go: ``(node id, CPUs)`` per actor, for ``ray.nodes()``-style node records.

    A local model (``cpus`` None) gets one actor per node with CPUs, holding all of them (or
    ``actors_per_node`` actors sharing them); otherwise actors of ``cpus`` CPUs (default 1), as many
    as fit in each node that has that much, or ``actors_per_node`` of them.
    """
    plan: list[tuple[str, float]] = []
    for node in sorted(nodes, key=lambda n: n["NodeID"]):
        node_cpus = float(node.get("Resources", {}).get("CPU", 0.0))
        if local and cpus is None:
            if node_cpus <= 0:
                continue
            count = actors_per_node or 1
            actor_cpus = node_cpus / count
        else:
            actor_cpus = 1.0 if cpus is None else cpus
            if node_cpus < actor_cpus:
                continue
            count = actors_per_node or (max(1, math.floor(node_cpus / actor_cpus)) if actor_cpus > 0 else 1)
        plan.extend((str(node["NodeID"]), actor_cpus) for _ in range(count))
    return plan


def _start_actors(
    ray: Any,
    model: str | ModelFactory,
    options: dict[str, Any],
    actors_per_node: int | None,
    cpus: float | None,
    slots: int,
    ready_timeout: float,
    node_ids: Sequence[str] | None,
) -> list[tuple[Any, dict[str, Any], int]]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    actor_cls = ray.remote(ModelActor)
    handles: list[Any] = []
    wanted = set(node_ids) if node_ids is not None else None
    nodes = [n for n in ray.nodes() if n.get("Alive") and (wanted is None or n["NodeID"] in wanted)]
    if wanted is not None and len(nodes) < len(wanted):
        missing = sorted(wanted - {n["NodeID"] for n in nodes})
        raise PoolError(f"no alive Ray node with id {', '.join(missing)}; see ray.nodes() for the ids")
    local = isinstance(model, str) and model.startswith("local/")
    for node_id, actor_cpus in plan_actors(nodes, local=local, actors_per_node=actors_per_node, cpus=cpus):
        strategy = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
        handles.append(
            actor_cls.options(
                num_cpus=actor_cpus,
                max_concurrency=slots,
                max_restarts=0,
                max_task_retries=0,
                scheduling_strategy=strategy,
            ).remote(model, options, actor_cpus)
        )
    if not handles:
        need = "a CPU" if cpus is None else f"{cpus:g} CPU(s)"
        raise PoolError(f"no Ray node has {need} for a model actor; lower cpus_per_actor or add nodes")
    refs = [h.info.remote() for h in handles]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=ready_timeout)
    ready_set = set(ready)
    members: list[tuple[Any, dict[str, Any], int]] = []
    errors: list[str] = []
    for handle, ref in zip(handles, refs, strict=True):
        if ref not in ready_set:
            errors.append(f"an actor was not placed within {ready_timeout:g} s")
            ray.kill(handle)
            continue
        try:
            info = ray.get(ref)
        except Exception as exc:  # the model could not be built (unknown spec, missing weights)
            errors.append(error_reason(getattr(exc, "cause", None) or exc))
            ray.kill(handle)
            continue
        members.append((handle, info, max(1, min(slots, int(info["max_concurrency"]) or slots))))
    if not members:
        raise PoolError(f"no model actor of the pool could start: {'; '.join(sorted(set(errors)))}")
    return members


def _cancel(ref: Any) -> None:
    try:
        import ray

        ray.cancel(ref)
    except Exception:
        pass


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """How ``run_batch(..., sub_pool=PoolOptions(...))`` sizes the pool it starts for the batch's sub-model."""

    actors_per_node: int | None = None
    cpus_per_actor: float | None = None
    slots_per_actor: int | None = None
    ready_timeout: float = 300.0

    def start(self, model: str, model_options: Mapping[str, Any] | None = None) -> RayModelPool:
        return RayModelPool(
            model,
            model_options=model_options,
            actors_per_node=self.actors_per_node,
            cpus_per_actor=self.cpus_per_actor,
            slots_per_actor=self.slots_per_actor,
            ready_timeout=self.ready_timeout,
        )
