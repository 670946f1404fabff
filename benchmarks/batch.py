"""Batch runs and the sub-call pool: local process pool vs one Ray node vs two, on this machine.

    python benchmarks/batch.py                      # the figures below
    python benchmarks/batch.py --jobs 200 --latency 0.1 --sub-calls 200 --json

1. **Jobs**: ``--jobs`` scripted jobs, each one root-model call of ``--latency`` seconds that
   answers with ``FINAL`` (the model is ``scripted/<replies.json>`` with a ``latency`` option), in
   the in-process REPL so the figures are the batch machinery's, not the sandbox's. Run on the local
   process pool (one worker per core), on a Ray cluster with one worker node (2 CPUs) and with two.
   Each configuration runs twice: the first run includes starting workers (the local pool's
   processes, the Ray workers' first import of unbounded), the second is warm.
   Overhead per job = (wall x slots - jobs x latency) / jobs: what each job costs beyond its model
   time, with ``slots`` jobs running at once.
2. **Sub-call pool**: one RLM whose code calls ``llm_batch`` with ``--sub-calls`` prompts; the
   sub-model is a ``RayModelPool`` of latency models (one call at a time per actor, as llama.cpp
   runs, one actor per node CPU), on one node and on two. Overhead per call likewise.

The Ray cluster is Ray's own ``ray.cluster_utils.Cluster`` on this machine (a head node without
CPUs for the driver, worker nodes added one at a time), so "two nodes" shares this machine's cores:
the jobs wait on model latency, not CPU, so slots scale the way separate machines would.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from unbounded import RLM, Budget  # noqa: E402
from unbounded.batch import JobDefaults, RayModelPool, run_batch  # noqa: E402
from unbounded.models import Message, ScriptedLM  # noqa: E402

MB = 1024 * 1024
NODE_CPUS = 2
FINAL_REPLY = "```python\nFINAL(context.strip().upper())\n```"


def echo(messages: list[Message]) -> str:
    return "echo:" + messages[-1].content


def latency_model(latency: float) -> ScriptedLM:
    """The pool's model: replies after ``latency`` seconds (defined here, sent to the actors by value)."""
    return ScriptedLM(echo, name="latency-model", latency=latency)


def job_defaults(folder: Path, latency: float) -> JobDefaults:
    replies = folder / "replies.json"
    replies.write_text(json.dumps([FINAL_REPLY]), encoding="utf-8")
    return JobDefaults(
        model=f"scripted/{replies}",
        repl="inprocess",
        model_options={"latency": latency},
        budget=Budget(max_iterations=2),
    )


def jobs_for(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"id": f"{tag}-{i}", "question": "In capitals?", "text": f"document {i}"} for i in range(n)]


def time_batch(n: int, defaults: JobDefaults, *, ray: str | None, workers: int | None, tag: str) -> dict[str, Any]:
    started = time.perf_counter()
    results = list(run_batch(jobs_for(n, tag), ray=ray, workers=workers, defaults=defaults))
    wall = time.perf_counter() - started
    failed = [r for r in results if r.status != "final"]
    if len(results) != n or failed:
        raise SystemExit(f"batch {tag}: {len(results)} results, {len(failed)} failed: {failed[:1]}")
    nodes = {r.node.node_id or r.node.hostname for r in results if r.node}
    return {"wall": wall, "nodes": len(nodes)}


def row(label: str, slots: int, n: int, latency: float, wall: float, nodes: int) -> dict[str, Any]:
    ideal = n * latency / slots
    return {
        "config": label,
        "slots": slots,
        "nodes_used": nodes,
        "wall_s": round(wall, 2),
        "ideal_s": round(ideal, 2),
        "overhead_ms": round((wall * slots - n * latency) / n * 1000, 1),
        "per_s": round(n / wall, 1),
    }


def bench_jobs(args: argparse.Namespace, cluster: Any, folder: Path) -> list[dict[str, Any]]:
    from unbounded.batch.local_runner import default_workers

    defaults = job_defaults(folder, args.latency)
    rows: list[dict[str, Any]] = []
    workers = default_workers()
    for run in (1, 2):
        t = time_batch(args.jobs, defaults, ray=None, workers=workers, tag=f"local{run}")
        rows.append(
            row(f"local pool, {workers} workers (run {run})", workers, args.jobs, args.latency, t["wall"], t["nodes"])
        )
    for n_nodes in (1, 2):
        while len(cluster.worker_nodes) < n_nodes:
            cluster.add_node(num_cpus=NODE_CPUS, object_store_memory=100 * MB)
        cluster.wait_for_nodes()
        wait_for_cpus(n_nodes * NODE_CPUS)
        for run in (1, 2):
            t = time_batch(args.jobs, defaults, ray=cluster.address, workers=None, tag=f"ray{n_nodes}-{run}")
            label = f"Ray, {n_nodes} node{'s' if n_nodes > 1 else ''} (run {run})"
            rows.append(row(label, n_nodes * NODE_CPUS, args.jobs, args.latency, t["wall"], t["nodes"]))
    return rows


def wait_for_cpus(cpus: int) -> None:
    import ray

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if ray.cluster_resources().get("CPU", 0) >= cpus:
            return
        time.sleep(0.1)
    raise SystemExit(f"the cluster did not reach {cpus} CPUs")


def bench_pool(args: argparse.Namespace, cluster: Any) -> list[dict[str, Any]]:
    import asyncio

    rows: list[dict[str, Any]] = []
    prompts = [f"prompt {i}" for i in range(args.sub_calls)]
    code = f"```python\nout = llm_batch({prompts!r})\nFINAL(str(len(out)))\n```"
    for n_nodes in (1, 2):
        nodes = sorted(n.node_id for n in cluster.worker_nodes)[:n_nodes]
        pool = RayModelPool(
            functools.partial(latency_model, args.latency),
            actors_per_node=NODE_CPUS,  # one actor per CPU, one call at a time each: llama.cpp's shape
            cpus_per_actor=1.0,
            slots_per_actor=1,
            node_ids=nodes,
        )
        try:
            warm = f"```python\nout = llm_batch({prompts[: pool.max_concurrency]!r})\nFINAL('ok')\n```"
            asyncio.run(RLM(model=ScriptedLM([warm]), sub_model=pool, repl="inprocess").arun("Warm up.", "context"))
            rlm = RLM(model=ScriptedLM([code]), sub_model=pool, repl="inprocess", budget=Budget(max_llm_calls=None))
            started = time.perf_counter()
            result = asyncio.run(rlm.arun("Echo them.", "context"))
            wall = time.perf_counter() - started
            if result.answer != str(args.sub_calls) or result.usage["latency-model"].calls != args.sub_calls:
                raise SystemExit(f"pool run failed: {result.status} {result.error}")
            label = f"pool, {n_nodes} node{'s' if n_nodes > 1 else ''}, {len(pool.members())} actors"
            rows.append(row(label, pool.max_concurrency, args.sub_calls, args.latency, wall, len(pool.nodes)))
        finally:
            pool.shutdown()
    return rows


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    header = f"{'configuration':<34} {'slots':>5} {'nodes':>5} {'wall s':>7} {'ideal s':>8} {'overhead/item ms':>17} {'items/s':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['config']:<34} {r['slots']:>5} {r['nodes_used']:>5} {r['wall_s']:>7.2f} {r['ideal_s']:>8.2f} "
            f"{r['overhead_ms']:>17.1f} {r['per_s']:>8.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--sub-calls", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1, help="model latency per call, seconds")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        print("Ray is not installed: pip install 'unbounded[ray]'", file=sys.stderr)
        return 1
    print(f"machine: {os.cpu_count()} CPUs; model latency {args.latency * 1000:.0f} ms per call")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "object_store_memory": 100 * MB, "include_dashboard": False},
    )
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="unbounded-batch-bench-") as tmp:
            job_rows = bench_jobs(args, cluster, Path(tmp))
        pool_rows = bench_pool(args, cluster)
    finally:
        ray.shutdown()
        cluster.shutdown()
    print_table(f"{args.jobs} scripted jobs, one {args.latency * 1000:.0f} ms model call each", job_rows)
    print_table(
        f"one llm_batch of {args.sub_calls} sub-calls of {args.latency * 1000:.0f} ms (RayModelPool)", pool_rows
    )
    if args.json:
        print(json.dumps({"jobs": job_rows, "pool": pool_rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
