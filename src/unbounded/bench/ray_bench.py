"""``bench run --ray``: bench units as calls on Ray actors spread over a cluster.

The driver keeps everything that makes a bench run a bench run: the plan, resuming, item
generation, the results file and the traces folder. What moves to the cluster is the work of one
unit (one method on one item):

* Each worker is an async Ray actor that builds the models once (a local model is loaded once per
  worker, not per item) and runs units one at a time on its own event loop.
* Items are generated on the driver, once per (task, size) group, and each is put in the object
  store once: every method on that item reads the same object.
* A unit's trace is written on the worker to a private folder and comes back with its record; only
  the driver writes ``results.jsonl`` and ``traces/``, so a retried unit still has one result line.
* The response cache is ``OUT/cache.sqlite`` where the worker can see ``OUT`` (the same machine or a
  shared file system); elsewhere each worker keeps a private cache for its lifetime. The record
  says which (``notes["cache"]``), and which node ran the unit (``notes["node"]``).
* A unit whose worker dies (its process or its whole node) goes back in the queue for the next free
  worker, up to ``MAX_RETRIES`` times, then is recorded as an error naming the loss; the lost
  worker's slot gets a new worker, which Ray places wherever CPUs are free.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from ..batch.ray_support import cluster_cpus, connect, error_reason, import_ray
from ..errors import ConfigError
from .results import ResultRecord

#: How often a unit is started again after the worker running it died (its process or its node).
MAX_RETRIES = 3
#: How long a slot whose worker was lost waits for Ray to place a new one before it gives up.
REPLACE_PATIENCE_S = 300.0


@dataclasses.dataclass(slots=True)
class UnitOutcome:
    """What a worker sends back for one unit: the record, the trace text and where it ran."""

    record: ResultRecord
    trace_text: str | None


class BenchWorker:
    """The actor body (made a Ray actor by ``start_workers``): one set of models, one unit at a time."""

    def __init__(self, config: Any) -> None:
        from .runner import CACHE_FILE, _Models

        self._tmp = tempfile.mkdtemp(prefix="unbounded-bench-")
        shared = _writable_dir(config.out)
        self.cache_where = "shared" if shared else "worker"
        cache_path = (config.out if shared else Path(self._tmp)) / CACHE_FILE
        self.config = dataclasses.replace(config, out=Path(self._tmp), progress=False, verbose=False)
        self.models = _Models(self.config, cache_path=cache_path)
        self.runners: dict[str, Any] = {}
        self.node = _node_id()

    async def run(self, unit: Any, item: Any) -> UnitOutcome:
        from .runner import _method_runner, run_unit

        runner = self.runners.get(unit.method)
        if runner is None:
            runner = self.runners[unit.method] = _method_runner(unit.method, self.config, self.models)
        record = await run_unit(unit, item, self.config, self.models, runner)
        record.notes["node"] = self.node
        record.notes["cache"] = self.cache_where if self.config.cache else "off"
        trace_text = None
        if record.trace is not None:
            path = self.config.out / record.trace
            trace_text = path.read_text(encoding="utf-8", errors="replace")
            path.unlink(missing_ok=True)
        return UnitOutcome(record, trace_text)

    async def close(self) -> None:
        await self.models.aclose()


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


def _node_id() -> str:
    ray = import_ray()
    try:
        return str(ray.get_runtime_context().get_node_id())
    except Exception:
        return socket.gethostname()


class WorkerLost(Exception):
    """The worker running a unit died (its process or its node); the unit did not finish."""


class RayWorkers:
    """The driver's side: the actors, one per slot, and a new one for a slot whose worker was lost.

    Ray does not restart a lost worker itself: a restarted actor waits for free CPUs, and after a
    node is gone there may be none, so its unit would wait for ever. The driver requeues the unit for
    whichever worker is free and gives the slot a new actor, which takes units once Ray has placed it.
    """

    def __init__(self, config: Any, count: int | None, cpus_per_worker: float) -> None:
        self.ray = import_ray()
        self.owns = connect(config.ray)
        self.config = config
        self.cpus = cpus_per_worker
        biggest = max((n.get("Resources", {}).get("CPU", 0.0) for n in self.ray.nodes() if n.get("Alive")), default=0)
        if cpus_per_worker > biggest:
            self._disconnect()
            raise ConfigError(
                f"no node of the Ray cluster has {cpus_per_worker:g} CPUs for a bench worker (the largest has "
                f"{biggest:g}); lower --ray-cpus-per-worker"
            )
        self._actor_class = self.ray.remote(BenchWorker).options(
            num_cpus=cpus_per_worker, max_restarts=0, max_task_retries=0, scheduling_strategy="SPREAD"
        )
        total = cluster_cpus()
        default = int(total // cpus_per_worker) if cpus_per_worker > 0 else int(total)
        self.count = max(1, count if count is not None else default)
        self._config_ref = self.ray.put(config)
        self.actors: list[Any] = []
        self._ready: list[Any] = []  # per slot: a future that is done once Ray has placed and built the worker
        for _ in range(self.count):
            self._add()

    def _add(self, slot: int | None = None) -> Any:
        actor = self._actor_class.remote(self._config_ref)
        future = actor.__ray_ready__.remote().future()
        if slot is None:
            self.actors.append(actor)
            self._ready.append(future)
        else:
            self.actors[slot], self._ready[slot] = actor, future
        return future

    def _placed(self, slot: int) -> bool:
        future = self._ready[slot]
        return future.done() and not future.cancelled() and future.exception() is None

    async def started(self, timeout: float = 300.0) -> None:
        """Wait until the first worker is up; a worker whose set-up fails (an unknown model, weights
        that will not load) stops the run here with its reason, as the local runner would."""
        pending = {asyncio.wrap_future(f): f for f in self._ready}
        deadline = asyncio.get_running_loop().time() + timeout
        while pending:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise ConfigError(
                    f"no bench worker started on the Ray cluster within {timeout:g} s "
                    f"({self.count} workers of {self.cpus:g} CPUs each asked for)"
                )
            done, _ = await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                pending.pop(fut)
                exc = fut.exception()
                if exc is not None:
                    raise ConfigError(f"the bench workers could not start on Ray: {error_reason(exc)}") from None
                return

    def put(self, value: Any) -> Any:
        return self.ray.put(value)

    async def run(self, slot: int, unit: Any, item_ref: Any) -> UnitOutcome:
        """Run ``unit`` on the worker of ``slot``; ``WorkerLost`` when that worker died meanwhile."""
        try:
            return await self.actors[slot].run.remote(unit, item_ref)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise WorkerLost(f"{type(exc).__name__}: {error_reason(exc)}") from exc

    async def replace(self, slot: int, still_wanted: Any, patience: float = REPLACE_PATIENCE_S) -> bool:
        """Give ``slot`` a new worker and wait until Ray has placed it, while ``still_wanted()`` and
        for at most ``patience`` seconds. False when the slot is no longer wanted, or its new worker
        could not start or be placed (no node has the CPUs free)."""
        try:
            self.ray.kill(self.actors[slot], no_restart=True)
        except Exception:
            pass
        ready = asyncio.wrap_future(self._add(slot))
        deadline = asyncio.get_running_loop().time() + patience
        while still_wanted() and asyncio.get_running_loop().time() < deadline:
            done, _ = await asyncio.wait({ready}, timeout=0.5)
            if done:
                return ready.exception() is None
        return False

    async def aclose(self) -> None:
        placed = [a for slot, a in enumerate(self.actors) if self._placed(slot)]  # the rest never ran a unit
        try:
            closing = [asyncio.wrap_future(a.close.remote().future()) for a in placed]
            if closing:
                await asyncio.wait(closing, timeout=30)
        except Exception:
            pass
        finally:
            for actor in self.actors:
                try:
                    self.ray.kill(actor, no_restart=True)
                except Exception:
                    pass
            self._disconnect()

    def _disconnect(self) -> None:
        if self.owns:
            self.ray.shutdown()
            self.owns = False


def lost_record(base: ResultRecord, reason: str) -> ResultRecord:
    base.status = "error"
    base.error = reason[:2_000]
    base.trace = None
    return base
