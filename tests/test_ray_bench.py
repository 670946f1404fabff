"""``unbounded bench run --ray``: bench items on Ray workers of a real multi-node cluster on this machine.

The root model is ``scripted/`` (its replies are read from a file, so every Ray worker builds the
same model): one cell that finds the needle and answers with it, so an RLM unit scores 1 when it
really ran on its item. The driver alone writes results and traces; each record names its node.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'unbounded[ray]' to run the Ray tests")
from ray.cluster_utils import Cluster  # noqa: E402

from ray_cluster import running_cluster  # noqa: E402
from unbounded.bench.cli import main as bench_main  # noqa: E402
from unbounded.bench.results import read_results  # noqa: E402
from unbounded.bench.runner import BenchConfig, run_bench  # noqa: E402
from unbounded.trace import read_trace  # noqa: E402

pytestmark = pytest.mark.ray

FIND = (
    "import re\n"
    "text = context if isinstance(context, str) else str(context)\n"
    "m = re.search(r'special magic \\w+ for [\\w-]+ is: ([\\w-]+)\\.', text)\n"
)
ANSWER = "FINAL(m.group(1) if m else 'not found')\n"
#: The first unit to run anywhere kills its own worker process once (the REPL is in-process).
DIE_ONCE = (
    "import os, pathlib\n"
    "mark = pathlib.Path(MARKS) / 'killed'\n"
    "if not mark.exists():\n"
    "    mark.write_text(str(os.getpid()))\n"
    "    os.kill(os.getpid(), 9)\n"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(workers=2, node={"num_cpus": 1, "object_store_memory": 100 * 1024 * 1024}) as c:
        yield c


def scripted_model(tmp_path: Path, cell: str) -> str:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([f"```python\n{cell}```"]), encoding="utf-8")
    return f"scripted/{replies}"


def config(tmp_path: Path, model: str, **overrides: Any) -> BenchConfig:
    values: dict[str, Any] = dict(
        tasks=["niah"],
        sizes=[2048],
        methods=["rlm", "direct"],
        model=model,
        out=tmp_path / "out",
        n=6,
        repl="inprocess",
        model_options={"latency": 0.05},
        progress=False,
        verbose=False,
        ray="auto",  # the cluster this process is connected to
    )
    values.update(overrides)
    return BenchConfig(**values)


def worker_node_ids(c: Cluster) -> set[str]:
    return {n.node_id for n in c.worker_nodes}


def test_bench_items_run_on_both_nodes_once_each_with_traces_then_resume(tmp_path: Path, cluster: Cluster) -> None:
    cfg = config(tmp_path, scripted_model(tmp_path, FIND + ANSWER))
    summary = run_bench(cfg)
    assert summary.done == 12 and summary.errors == 0 and summary.planned == 12
    records = read_results(cfg.out / "results.jsonl")
    keys = [r.key for r in records]
    assert len(keys) == len(set(keys)) == 12
    rlm = [r for r in records if r.method == "rlm"]
    assert [r.score for r in rlm] == [1.0] * 6, [r.answer for r in rlm]  # each worker had its own item
    assert {r.notes["node"] for r in records} == worker_node_ids(cluster)
    assert {r.notes["cache"] for r in records} == {"shared"}  # OUT is on this machine, so the cache is shared
    for r in records:
        assert r.trace is not None and (cfg.out / r.trace).is_file()
    events = read_trace(cfg.out / rlm[0].trace)  # type: ignore[operator]
    assert events[0].type == "run_start" and events[-1].data["answer"] == rlm[0].answer
    calls = [json.loads(line) for line in (cfg.out / next(r for r in records if r.method == "direct").trace).open()]
    assert calls and calls[0]["type"] == "lm_call"

    again = run_bench(cfg)  # everything is in results.jsonl: nothing runs, nothing is appended
    assert again.done == 0 and again.skipped == 12
    assert len(read_results(cfg.out / "results.jsonl")) == 12


def test_a_worker_killed_mid_item_is_restarted_and_the_item_recorded_once(tmp_path: Path, cluster: Cluster) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    cell = DIE_ONCE.replace("MARKS", repr(str(marks))) + FIND + ANSWER
    cfg = config(tmp_path, scripted_model(tmp_path, cell), methods=["rlm"], n=4, cache=False)
    summary = run_bench(cfg)
    assert (marks / "killed").exists(), "a worker was killed mid-item"
    records = read_results(cfg.out / "results.jsonl")
    assert summary.errors == 0 and len(records) == 4
    assert len({r.key for r in records}) == 4
    assert [r.score for r in records] == [1.0] * 4
    assert {r.notes["cache"] for r in records} == {"off"}


def test_the_cli_runs_bench_items_on_a_ray_cluster(
    tmp_path: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    model = scripted_model(tmp_path, FIND + ANSWER)
    out = tmp_path / "cli"
    argv = ["run", "--task", "niah", "--sizes", "2k", "-n", "2", "--methods", "rlm", "--model", model]
    argv += ["--model-option", "latency=0.01", "--repl", "inprocess", "--out", str(out), "--ray", cluster.address]
    assert bench_main([*argv, "--no-progress", "--jobs", "2"]) == 0
    records = read_results(out / "results.jsonl")
    assert [r.score for r in records] == [1.0, 1.0]
    printed = capsys.readouterr().err
    assert "bench: 2 results written" in printed and "niah 2K rlm" in printed
    assert all(r.notes["node"] in worker_node_ids(cluster) for r in records)


def test_an_unknown_model_stops_the_run_with_its_reason(
    tmp_path: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--task", "niah", "--sizes", "2k", "-n", "1", "--methods", "rlm", "--model", "nosuch/model"]
    assert bench_main([*argv, "--out", str(tmp_path / "o"), "--no-progress", "--ray", cluster.address]) == 5
    err = capsys.readouterr().err
    assert "could not start on Ray" in err and "unknown model" in err
    assert not (tmp_path / "o" / "results.jsonl").exists() or not (tmp_path / "o" / "results.jsonl").read_text()


def test_a_node_removed_mid_item_loses_and_duplicates_nothing(tmp_path: Path, cluster: Cluster) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    mark = (
        "import os, pathlib, time, ray\n"
        f"marks = pathlib.Path({str(marks)!r})\n"
        "(marks / f'{m.group(1)}.{os.getpid()}').write_text(ray.get_runtime_context().get_node_id())\n"
        "time.sleep(1.0)\n"
    )
    cfg = config(tmp_path, scripted_model(tmp_path, FIND + mark + ANSWER), methods=["rlm"], n=8, jobs=2)
    victim_id: list[str] = []

    def remove_a_node_while_an_item_runs_there() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            started = [p.read_text() for p in marks.iterdir()]
            if started:
                victim = next(n for n in cluster.worker_nodes if n.node_id == started[0])
                victim_id.append(victim.node_id)
                cluster.remove_node(victim)
                return
            time.sleep(0.05)

    remover = threading.Thread(target=remove_a_node_while_an_item_runs_there)
    remover.start()
    try:
        summary = run_bench(cfg)
    finally:
        remover.join()
        cluster.add_node(num_cpus=1, object_store_memory=100 * 1024 * 1024)
        cluster.wait_for_nodes()
    assert victim_id, "a node was removed"
    records = read_results(cfg.out / "results.jsonl")
    assert summary.errors == 0 and len(records) == 8 and len({r.key for r in records}) == 8
    assert [r.score for r in records] == [1.0] * 8
    attempts: dict[str, set[str]] = {}
    for p in marks.iterdir():
        attempts.setdefault(p.name.rsplit(".", 1)[0], set()).add(p.read_text())
    rerun = [k for k, nodes in attempts.items() if len(nodes) == 2]
    assert rerun, f"the item caught on the removed node ran again on the other one: {attempts}"
    assert any(r.notes.get("worker_lost") for r in records)
    assert all(r.notes["node"] != victim_id[0] for r in records if r.notes.get("worker_lost"))
