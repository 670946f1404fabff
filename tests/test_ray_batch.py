"""Batches on a real Ray cluster: Ray's own multi-node test cluster, started and stopped here.

The head node has no CPUs (the driver only), two worker nodes have 2 CPUs each, so every job runs
on a worker node and the node each result records tells which. Jobs use a ``scripted/`` root model
whose replies compute the answer from the context and leave a marker per attempt (file name =
context + worker pid, content = the worker's node id), so retries are seen on disk, not inferred.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'unbounded[ray]' to run the Ray tests")
from ray.cluster_utils import Cluster  # noqa: E402

from ray_cluster import NODE, running_cluster  # noqa: E402
from unbounded.batch import JobDefaults, run_batch  # noqa: E402
from unbounded.budget import Budget  # noqa: E402
from unbounded.trace import read_trace  # noqa: E402

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[1]

KEY = """c = context
if isinstance(c, str):
    key = c.strip()
elif isinstance(c, list):
    key = "|".join(map(str, c))
else:
    key = "|".join(f"{k}={v.strip()}" for k, v in sorted(c.items()))
"""
MARK = """import os, pathlib
marks = pathlib.Path(MARKS)
name = key.replace("/", "_")[:100]
"""
START = """import ray
(marks / f"{name}.{os.getpid()}").write_text(ray.get_runtime_context().get_node_id())
if key.startswith("die"):
    died = marks / f"{key}.died"
    if key == "die-always" or not died.exists():
        died.touch()
        os.kill(os.getpid(), 9)
"""
#: Three turns: mark the attempt ``<key>.<pid>`` holding the node id (and die, for ``die…``
#: contexts); mark ``<key>.mid``;
#: answer. Between the two marks a job has two model calls left, so it is surely still running.
REPLIES = [
    f"```python\n{KEY}{MARK}{START}```",
    f'```python\n{KEY}{MARK}(marks / f"{{name}}.mid").touch()\n```',
    f"```python\n{KEY}FINAL(key.upper())\n```",
]


def attempts(marks: Path) -> dict[str, dict[int, str]]:
    """Key -> {pid of a worker process that started it: the id of that worker's node}."""
    out: dict[str, dict[int, str]] = {}
    for mark in marks.iterdir():
        key, _, suffix = mark.name.rpartition(".")
        if suffix.isdigit():
            out.setdefault(key, {})[int(suffix)] = mark.read_text()
    return out


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as c:
        yield c


def worker_nodes(c: Cluster) -> list[Any]:
    return list(c.worker_nodes)


@pytest.fixture
def two_nodes(cluster: Cluster) -> list[str]:
    """The ids of two live worker nodes (a node removed by an earlier test is replaced)."""
    while len(worker_nodes(cluster)) < 2:
        cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    deadline = time.monotonic() + 60
    ids = {n.node_id for n in worker_nodes(cluster)}
    while time.monotonic() < deadline:
        alive = {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")}
        if ids <= alive:
            break
        time.sleep(0.2)
    return sorted(ids)


def scripted(tmp_path: Path, latency: float) -> JobDefaults:
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([r.replace("MARKS", repr(str(marks))) for r in REPLIES]), encoding="utf-8")
    return JobDefaults(
        model=f"scripted/{replies}",
        repl="inprocess",
        model_options={"latency": latency},
        budget=Budget(max_iterations=5),
    )


def write_jobs(path: Path, jobs: list[object]) -> Path:
    path.write_text("".join((j if isinstance(j, str) else json.dumps(j)) + "\n" for j in jobs), encoding="utf-8")
    return path


def text_jobs(n: int) -> list[dict[str, object]]:
    return [{"id": f"j{i:03d}", "question": "In capitals?", "text": f"doc {i}"} for i in range(n)]


def lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_200_jobs_over_two_nodes_each_once_and_on_both(tmp_path: Path, cluster: Cluster, two_nodes: list[str]) -> None:
    (tmp_path / "shared.txt").write_text("on the shared file system\n")
    jobs = [*text_jobs(196)]
    jobs += [
        {"id": "rec", "question": "q?", "records": ["a", "b"]},
        {"id": "file", "question": "q?", "paths": "shared.txt"},
        {"id": "dict", "question": "q?", "records": {"k": "v"}},
        {"id": "big", "question": "q?", "text": "x" * 2_000_000},  # through the object store, once
    ]
    path = write_jobs(tmp_path / "jobs.jsonl", jobs)
    out = tmp_path / "out"
    run = run_batch(path, out=out, ray=cluster.address, defaults=scripted(tmp_path, latency=0.02))
    results = list(run)
    ids = [r.id for r in results]
    assert len(ids) == len(set(ids)) == 200
    by_id = {r.id: r for r in results}
    assert all(by_id[f"j{i:03d}"].answer == f"DOC {i}" for i in range(196))
    assert by_id["rec"].answer == "A|B" and by_id["dict"].answer == "K=V"
    assert by_id["file"].answer == "ON THE SHARED FILE SYSTEM"
    assert by_id["big"].answer == "X" * 2_000_000
    ran_on = {r.node.node_id for r in results if r.node}
    assert ran_on == set(two_nodes), "jobs ran on both worker nodes (and only there)"
    per_node = {n: sum(1 for r in results if r.node and r.node.node_id == n) for n in two_nodes}
    assert min(per_node.values()) >= 20, per_node
    recorded = [line["id"] for line in lines(out)]
    assert len(recorded) == len(set(recorded)) == 200
    for r in results[:5]:
        assert r.trace == f"traces/{r.id}.jsonl" and r.attempts is None
        events = read_trace(out / r.trace)
        assert events[0].type == "run_start" and events[-1].data["answer"] == r.answer
    summary = json.loads((out / "summary.json").read_text())
    assert summary["answered"] == 200 and summary["nodes"] == 2


def test_a_node_removed_mid_batch_loses_and_duplicates_nothing(
    tmp_path: Path, cluster: Cluster, two_nodes: list[str]
) -> None:
    n = 60  # three turns of 0.25 s each, four CPUs: about 12 s
    path = write_jobs(tmp_path / "jobs.jsonl", text_jobs(n))
    out = tmp_path / "out"
    marks = tmp_path / "marks"
    run = run_batch(path, out=out, ray=cluster.address, defaults=scripted(tmp_path, latency=0.25))
    victim = worker_nodes(cluster)[1]
    survivor = next(x for x in two_nodes if x != victim.node_id)
    caught: set[str] = set()
    results: list[Any] = []
    removed_after: list[int] = []

    def remove_when_a_job_is_mid_run() -> None:
        """Remove the victim while one of its jobs is surely running: started there, not yet at turn 2."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(results) < n:
            started_there = {k for k, starts in attempts(marks).items() if victim.node_id in starts.values()}
            mid_run = {k for k in started_there if not (marks / f"{k}.mid").exists()}
            if mid_run and len(results) >= 4:
                caught.update(mid_run)
                removed_after.append(len(results))
                cluster.remove_node(victim, allow_graceful=False)
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=remove_when_a_job_is_mid_run)
    watcher.start()
    for result in run:
        results.append(result)
    watcher.join()
    assert caught and removed_after and removed_after[0] < n - 10, "the victim was removed while the batch ran"
    removed_at = removed_after[0]
    ids = [r.id for r in results]
    assert len(ids) == len(set(ids)) == n, "nothing lost, nothing duplicated"
    assert all(r.status == "final" for r in results)
    assert {r.answer for r in results} == {f"DOC {i}" for i in range(n)}
    later = results[removed_at + 4 :]
    assert later and all(r.node and r.node.node_id == survivor for r in later)
    by_answer = {r.answer: r for r in results}
    tries = attempts(marks)
    for key in caught:
        assert sorted(tries[key].values()) == sorted([victim.node_id, survivor]), f"{key} started again elsewhere"
        assert by_answer[key.upper()].node.node_id == survivor  # type: ignore[union-attr]
    recorded = [line["id"] for line in lines(out)]
    assert len(recorded) == len(set(recorded)) == n


def test_a_job_that_kills_its_worker_is_retried_then_recorded_lost(
    tmp_path: Path, cluster: Cluster, two_nodes: list[str]
) -> None:
    jobs = [*text_jobs(6), {"id": "once", "question": "q?", "text": "die-once"}]
    jobs.append({"id": "always", "question": "q?", "text": "die-always"})
    path = write_jobs(tmp_path / "jobs.jsonl", jobs)
    results = {
        r.id: r for r in run_batch(path, out=tmp_path / "out", ray=cluster.address, defaults=scripted(tmp_path, 0.01))
    }
    assert len(results) == 8
    assert results["once"].status == "final" and results["once"].answer == "DIE-ONCE"
    assert results["always"].status == "error:lost"
    assert "Ray task running this job was lost" in (results["always"].error or "")
    assert len(list((tmp_path / "marks").glob("die-always.*[0-9]"))) == 4, "the first run and Ray's 3 retries"
    assert all(results[f"j{i:03d}"].status == "final" for i in range(6))


def test_bad_input_on_ray_is_per_job(tmp_path: Path, cluster: Cluster, two_nodes: list[str]) -> None:
    path = write_jobs(
        tmp_path / "jobs.jsonl",
        [
            *text_jobs(4),
            '{"id": "broken", "question": ',
            {"id": "nopath", "question": "q?", "paths": "not/there.txt"},
            {"id": "nomodel", "question": "q?", "text": "x", "model": "nosuch/model"},
        ],
    )
    results = {
        r.id: r for r in run_batch(path, out=tmp_path / "out", ray=cluster.address, defaults=scripted(tmp_path, 0))
    }
    assert results["<line 5>"].status == "invalid" and "jobs.jsonl:5" in (results["<line 5>"].error or "")
    assert results["nopath"].status == "error:context" and "not/there.txt" in (results["nopath"].error or "")
    assert results["nopath"].node is not None and results["nopath"].node.node_id in two_nodes
    assert results["nomodel"].status == "error:config"
    assert [results[f"j{i:03d}"].answer for i in range(4)] == ["DOC 0", "DOC 1", "DOC 2", "DOC 3"]


def test_a_killed_driver_resumes_with_the_remainder_only(
    tmp_path: Path, cluster: Cluster, two_nodes: list[str]
) -> None:
    n = 60
    defaults = scripted(tmp_path, latency=0.1)
    path = write_jobs(tmp_path / "jobs.jsonl", [{**j, "model_options": {"latency": 0.1}} for j in text_jobs(n)])
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "unbounded.batch", str(path), "--out", str(out), "--ray", cluster.address,
        "--model", defaults.model, "--repl", "inprocess", "-q",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results_file = out / "results.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if results_file.exists() and len(results_file.read_text().splitlines()) >= 8:
                break
            time.sleep(0.02)
        assert proc.poll() is None, (
            f"the batch ended before it could be killed: {proc.stderr.read() if proc.stderr else ''}"
        )
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    complete = [x for x in results_file.read_text().splitlines(keepends=True) if x.endswith("\n")]
    done_before = {json.loads(x)["id"] for x in complete}
    assert 8 <= len(done_before) < n
    rerun = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["skipped"] == len(done_before) and summary["ran"] == n - len(done_before)
    assert summary["answered"] == n and summary["nodes"] == 2
    recorded = [x["id"] for x in lines(out)]
    assert len(recorded) == len(set(recorded)) == n, "every job once, none duplicated"
