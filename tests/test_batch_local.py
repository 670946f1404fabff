"""``run_batch`` and ``unbounded batch`` on the local process pool: real worker processes, real files.

The jobs' root model is ``scripted/<replies.json>``: its one reply is code that computes the answer
from the job's context (so every answer is checkable) and, for contexts named ``die…``, kills its
own worker process — the crash the pool must survive.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import live_children
from unbounded.batch import JobDefaults, add_parser, run_batch
from unbounded.batch.errors import BatchUsageError, DuplicateJobIdError, MissingJobFileError
from unbounded.budget import Budget
from unbounded.trace import read_trace

ROOT = Path(__file__).resolve().parents[1]

REPLY = """```python
import os, pathlib
c = context
if isinstance(c, str):
    key = c.strip()
elif isinstance(c, list):
    key = "|".join(map(str, c))
else:
    key = "|".join(f"{k}={v.strip()}" for k, v in sorted(c.items()))
marks = pathlib.Path(MARKS)
(marks / f"{key.replace('/', '_')[:100]}.{os.getpid()}").touch()
if key.startswith("die"):
    died = marks / f"{key}.died"
    if key == "die-always" or not died.exists():
        died.touch()
        os.kill(os.getpid(), 9)
FINAL(key.upper())
```"""


def scripted_model(tmp_path: Path) -> str:
    """A ``scripted/`` spec whose reply answers from the context and marks each attempt in ``marks/``."""
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([REPLY.replace("MARKS", repr(str(marks)))]), encoding="utf-8")
    return f"scripted/{replies}"


def defaults_for(tmp_path: Path, latency: float = 0.0, **kw: object) -> JobDefaults:
    return JobDefaults(
        model=scripted_model(tmp_path),
        repl="inprocess",
        model_options={"latency": latency} if latency else {},
        budget=Budget(max_iterations=3),
        **kw,  # type: ignore[arg-type]
    )


def write_jobs(path: Path, jobs: list[object]) -> Path:
    path.write_text("".join((j if isinstance(j, str) else json.dumps(j)) + "\n" for j in jobs), encoding="utf-8")
    return path


def text_jobs(n: int, prefix: str = "doc") -> list[dict[str, object]]:
    return [
        {"id": f"j{i:03d}", "question": "What does it say, in capitals?", "text": f"{prefix} {i}"} for i in range(n)
    ]


def result_lines(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_every_context_form_answered_once_with_its_trace(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("alpha\n")
    (tmp_path / "data" / "b.txt").write_text("beta\n")
    (tmp_path / "one.txt").write_text("  single file  \n")
    jobs = [
        *text_jobs(12),
        {"id": "records", "question": "q?", "records": ["r1", "r2"], "metadata": {"kind": "records"}},
        {"id": "folder", "question": "q?", "paths": "data"},
        {"id": "file", "question": "q?", "paths": ["one.txt"]},
        {"id": "two-paths", "question": "q?", "paths": ["one.txt", "data/b.txt"]},
    ]
    path = write_jobs(tmp_path / "jobs.jsonl", jobs)
    out = tmp_path / "out"
    run = run_batch(path, out=out, workers=2, defaults=defaults_for(tmp_path))
    results = list(run)
    by_id = {r.id: r for r in results}
    assert len(results) == len(jobs) == len(by_id)
    for i in range(12):
        assert by_id[f"j{i:03d}"].answer == f"DOC {i}"
    assert by_id["records"].answer == "R1|R2" and by_id["records"].metadata == {"kind": "records"}
    assert by_id["folder"].answer == "A.TXT=ALPHA|B.TXT=BETA"
    assert by_id["file"].answer == "SINGLE FILE"
    one, b = str(tmp_path / "one.txt"), str(tmp_path / "data" / "b.txt")
    assert by_id["two-paths"].answer == f"{b}=BETA|{one}=SINGLE FILE".upper()
    pids = {r.node.pid for r in results if r.node}
    assert pids and os.getpid() not in pids, "jobs ran in worker processes"
    assert all(r.node and r.node.node_id is None for r in results)
    for r in results:
        assert r.status == "final" and r.attempts == 1 and r.iterations == 1
        assert r.trace == f"traces/{r.id}.jsonl"
        events = read_trace(out / r.trace)
        assert events[0].type == "run_start" and events[-1].type == "run_end"
        assert events[-1].data["status"] == "final" and events[-1].data["answer"] == r.answer
        usage = r.usage[defaults_for(tmp_path).model]
        assert usage.calls == 1 and usage.input_tokens > 0
    lines = result_lines(out)
    assert sorted(line["id"] for line in lines) == sorted(by_id)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["jobs"] == len(jobs) and summary["answered"] == len(jobs) and summary["failed"] == 0
    assert summary["model_calls"] == len(jobs)
    assert summary["input_tokens"] == sum(r.total_usage.input_tokens for r in results)
    assert run.summary is not None and run.summary.to_dict() == summary
    assert not (out / "invalid.jsonl").exists()


def test_bad_lines_missing_paths_and_unknown_models_are_per_job_errors(tmp_path: Path) -> None:
    path = write_jobs(
        tmp_path / "jobs.jsonl",
        [
            *text_jobs(3),
            "{this is not json",
            {"id": "nopath", "question": "q?", "paths": ["missing/file.txt"]},
            {"id": "nomodel", "question": "q?", "text": "x", "model": "nosuchbackend/x"},
            {"id": "badopt", "question": "q?", "text": "x", "model": "scripted/does-not-exist.json"},
            {"id": "empty", "question": "q?", "text": ""},
            {"id": "noquestion", "text": "x"},
        ],
    )
    out = tmp_path / "out"
    results = {r.id: r for r in run_batch(path, out=out, defaults=defaults_for(tmp_path))}
    assert [results[f"j{i:03d}"].answer for i in range(3)] == ["DOC 0", "DOC 1", "DOC 2"]
    assert results["<line 4>"].status == "invalid" and "jobs.jsonl:4: invalid JSON" in (results["<line 4>"].error or "")
    assert results["noquestion"].status == "invalid" and ":9: 'question'" in (results["noquestion"].error or "")
    assert results["nopath"].status == "error:context"
    assert "missing/file.txt" in (results["nopath"].error or "") and "paths are read where the job runs" in (
        results["nopath"].error or ""
    )
    assert results["nomodel"].status == "error:config" and "unknown model 'nosuchbackend/x'" in (
        results["nomodel"].error or ""
    )
    assert results["badopt"].status == "error:config" and "does-not-exist.json" in (results["badopt"].error or "")
    assert results["empty"].status == "error:empty_context"
    invalid = [json.loads(line) for line in (out / "invalid.jsonl").read_text().splitlines()]
    assert [(i["line"], i["id"]) for i in invalid] == [(4, None), (9, "noquestion")]
    recorded = {line["id"]: line["status"] for line in result_lines(out)}
    assert set(recorded) == {"j000", "j001", "j002", "nopath", "nomodel", "badopt", "empty"}, (
        "invalid lines are not results to resume from"
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["statuses"]["invalid"] == 2 and summary["failed"] == 6 and summary["answered"] == 3


def test_a_rerun_skips_finished_jobs_and_retry_failed_reruns_only_failures(tmp_path: Path) -> None:
    jobs = [*text_jobs(5), {"id": "late", "question": "q?", "paths": "later.txt"}]
    path = write_jobs(tmp_path / "jobs.jsonl", jobs)
    out = tmp_path / "out"
    defaults = defaults_for(tmp_path)
    first = {r.id: r.status for r in run_batch(path, out=out, defaults=defaults)}
    assert first["late"] == "error:context" and len(first) == 6
    again = run_batch(path, out=out, defaults=defaults)
    assert list(again) == [] and again.skipped == 6
    assert again.summary is not None and again.summary.ran == 0 and again.summary.jobs == 6
    assert again.summary.statuses == {"final": 5, "error:context": 1}
    (tmp_path / "later.txt").write_text("now here")
    retried = run_batch(path, out=out, defaults=defaults, retry_failed=True)
    assert [(r.id, r.answer) for r in retried] == [("late", "NOW HERE")]
    assert retried.summary is not None and retried.summary.answered == 6 and retried.summary.skipped == 5
    ids = [line["id"] for line in result_lines(out)]
    assert sorted(ids) == sorted([*first, "late"]), "the retried job got one more line, nothing else did"
    # More jobs appended to the file: only they run.
    write_jobs(path, [*jobs, *[{"id": f"new{i}", "question": "q?", "text": f"new {i}"} for i in range(3)]])
    assert sorted(r.id for r in run_batch(path, out=out, defaults=defaults)) == ["new0", "new1", "new2"]


def test_a_worker_that_dies_is_replaced_and_its_job_retried(tmp_path: Path) -> None:
    jobs = [
        *text_jobs(8),
        {"id": "dies-once", "question": "q?", "text": "die-once"},
        {"id": "dies-always", "question": "q?", "text": "die-always"},
    ]
    path = write_jobs(tmp_path / "jobs.jsonl", jobs)
    out = tmp_path / "out"
    results = {r.id: r for r in run_batch(path, out=out, workers=2, defaults=defaults_for(tmp_path, latency=0.05))}
    assert len(results) == 10
    assert results["dies-once"].status == "final" and results["dies-once"].answer == "DIE-ONCE"
    assert results["dies-once"].attempts == 2
    assert len(list((tmp_path / "marks").glob("die-once.*[0-9]"))) == 2, "two worker processes ran it"
    lost = results["dies-always"]
    assert (
        lost.status == "error:lost" and lost.attempts == 3 and "died 3 times (last exit code -9" in (lost.error or "")
    )
    assert all(results[f"j{i:03d}"].answer == f"DOC {i}" for i in range(8)), "innocent jobs still finish"
    assert all(results[f"j{i:03d}"].attempts == 1 for i in range(8)), "only the dying job is charged an attempt"
    assert sorted(line["id"] for line in result_lines(out)) == sorted(results), "one line per job"


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``."""
    found, frontier = [], [pid]
    while frontier:
        kids = live_children(frontier.pop(), helpers=True)
        found += kids
        frontier += kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_driver_killed_mid_batch_resumes_with_the_remainder_only(tmp_path: Path) -> None:
    n = 60  # 0.2 s of model latency each, two workers: about 6 s in all
    jobs = [{**j, "model_options": {"latency": 0.2}} for j in text_jobs(n)]
    path = write_jobs(tmp_path / "jobs.jsonl", jobs)
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "unbounded.batch", str(path), "--out", str(out), "--model", scripted_model(tmp_path),
        "--repl", "inprocess", "--workers", "2", "-q",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results_file = out / "results.jsonl"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if results_file.exists() and len(results_file.read_text().splitlines()) >= 10:
                break
            time.sleep(0.02)
        assert proc.poll() is None, (
            f"the batch ended before it could be killed: {proc.stderr.read() if proc.stderr else ''}"
        )
        helpers = descendants(proc.pid)  # the fork server and the pool's workers
        assert len(helpers) >= 3
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(p) for p in helpers):
        time.sleep(0.05)
    assert not [p for p in helpers if alive(p)], "the killed driver's workers leave with it"
    done_before = {
        json.loads(line)["id"] for line in results_file.read_text().splitlines(keepends=True) if line.endswith("\n")
    }
    assert 10 <= len(done_before) < n
    rerun = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["skipped"] == len(done_before) and summary["ran"] == n - len(done_before)
    ids = [line["id"] for line in result_lines(out)]
    assert len(ids) == len(set(ids)) == n, "every job once, none duplicated"
    assert summary["answered"] == n


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="unbounded")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_the_cli_through_add_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jobs(tmp_path / "jobs.jsonl", [*text_jobs(4), "{oops", {"id": "x", "question": "q?", "paths": "nope"}])
    out = tmp_path / "out"
    spec = scripted_model(tmp_path)
    args = parse(["batch", str(path), "--out", str(out), "--model", spec, "--repl", "inprocess", "--workers", "2"])
    assert args.func(args) == 1, "failed jobs make the exit code 1"
    err = capsys.readouterr().err
    assert "6/6" in err and "4 done" in err and "2 failed" in err, "the progress bar counts done and failed"
    assert "jobs.jsonl:5: invalid JSON" in err and "x: error:context" in err
    assert "batch: 6 jobs · 4 answered · 2 failed" in err and "p50" in err and "p95" in err
    ok = write_jobs(tmp_path / "ok.jsonl", text_jobs(3))
    args = parse(
        ["batch", str(ok), "--out", str(tmp_path / "ok"), "--model", spec, "--repl", "inprocess", "--json", "-q"]
    )
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out)["answered"] == 3


@pytest.mark.parametrize(
    ("setup", "extra", "code", "message"),
    [
        ("missing", [], 3, "no such job file"),
        ("empty", [], 4, "holds no job"),
        ("dups", [], 2, "duplicate job ids"),
        ("ok", ["--sub-pool", "ray"], 2, "needs the Ray runner"),
        ("ok", ["--workers", "0"], 2, "workers must be at least 1"),
        ("ok", ["--max-iterations", "0"], 2, "max_iterations must be at least 1"),
    ],
)
def test_cli_exit_codes_for_unusable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, extra: list[str], code: int, message: str
) -> None:
    path = tmp_path / "jobs.jsonl"
    if setup == "empty":
        path.write_text("\n")
    elif setup == "dups":
        write_jobs(path, [*text_jobs(2), text_jobs(1)[0]])
    elif setup == "ok":
        write_jobs(path, text_jobs(1))
    args = parse(["batch", str(path), "--out", str(tmp_path / "out"), "--model", "scripted/x.json", *extra])
    assert args.func(args) == code
    assert message in capsys.readouterr().err


def test_api_errors_are_exceptions(tmp_path: Path) -> None:
    with pytest.raises(MissingJobFileError):
        run_batch(tmp_path / "none.jsonl")
    with pytest.raises(DuplicateJobIdError):
        run_batch([{"id": 1, "question": "q?", "text": "a"}, {"id": "1", "question": "q?", "text": "b"}])
    with pytest.raises(BatchUsageError, match="needs the Ray runner"):
        run_batch(text_jobs(1), sub_pool="ray")
    with pytest.raises(BatchUsageError, match="ray must be"):
        run_batch(text_jobs(1), ray="  ")


def test_without_out_nothing_is_written_and_results_still_come(tmp_path: Path) -> None:
    results = list(run_batch(text_jobs(3), defaults=defaults_for(tmp_path), workers=1))
    assert sorted(r.answer or "" for r in results) == ["DOC 0", "DOC 1", "DOC 2"]
    assert all(r.trace is None for r in results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marks", "replies.json"]


def test_ray_missing_names_the_install_command(tmp_path: Path) -> None:
    path = write_jobs(tmp_path / "jobs.jsonl", text_jobs(1))
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from unbounded.batch.cli import main\n"
        f"sys.exit(main([{str(path)!r}, '--out', {str(tmp_path / 'out')!r}, '--ray', '--model', 'scripted/x.json']))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 5
    assert "pip install 'unbounded[ray]'" in proc.stderr and "local process pool needs no Ray" in proc.stderr
    assert not (tmp_path / "out").exists(), "nothing ran, nothing was written"


def test_python_dash_m_runs_the_command(tmp_path: Path) -> None:
    path = write_jobs(tmp_path / "jobs.jsonl", text_jobs(2))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "unbounded.batch", str(path), "--out", str(tmp_path / "out"), "--model", scripted_model(tmp_path), "--repl", "inprocess", "--json", "-q"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["answered"] == 2
    help_text = subprocess.run([*cmd[:3], "--help"], env=env, capture_output=True, text=True, timeout=60).stdout
    assert "--ray" in help_text and "--sub-pool" in help_text and "--workers" in help_text


def test_a_local_batch_never_imports_ray(tmp_path: Path) -> None:
    path = write_jobs(tmp_path / "jobs.jsonl", text_jobs(2))
    code = (
        "import sys, json\n"
        "from unbounded.batch import run_batch, JobDefaults\n"
        "import unbounded.batch.pool, unbounded.batch.ray_runner\n"
        f"d = JobDefaults(model={scripted_model(tmp_path)!r}, repl='inprocess')\n"
        f"r = [x.answer for x in run_batch({str(path)!r}, out={str(tmp_path / 'out')!r}, defaults=d)]\n"
        "print(json.dumps([sorted(r), 'ray' in sys.modules]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [["DOC 0", "DOC 1"], False]


def test_the_package_is_callable_as_run_batch(tmp_path: Path) -> None:
    import unbounded
    import unbounded.batch
    import unbounded.batch.pool  # a submodule imported first must not change what the name means

    assert unbounded.batch.batch is unbounded.batch
    results = list(unbounded.batch(text_jobs(2), defaults=defaults_for(tmp_path), workers=1))
    assert sorted(r.answer or "" for r in results) == ["DOC 0", "DOC 1"]


def test_a_job_with_an_output_schema_gets_a_validated_value(tmp_path: Path) -> None:
    replies = tmp_path / "typed.json"
    replies.write_text(json.dumps(['```python\nFINAL({"words": len(context.split())})\n```']), encoding="utf-8")
    schema = {"type": "object", "properties": {"words": {"type": "integer"}}, "required": ["words"]}
    jobs = [
        {"id": "typed", "question": "How many words?", "text": "one two three", "output": schema},
        {"id": "plain", "question": "How many words?", "text": "one two"},
    ]
    out = tmp_path / "out"
    defaults = JobDefaults(model=f"scripted/{replies}", repl="inprocess", budget=Budget(max_iterations=3))
    results = {r.id: r for r in run_batch(jobs, defaults=defaults, workers=1, out=out)}
    assert results["typed"].status == "final" and results["typed"].value == {"words": 3}
    assert results["plain"].value is None and "2" in (results["plain"].answer or "")
    recorded = {line["id"]: line for line in result_lines(out)}
    assert recorded["typed"]["value"] == {"words": 3}
