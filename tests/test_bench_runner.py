"""``unbounded bench run`` end to end on a scripted model: every task, every method, resume, failures."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from unbounded.bench.cli import main as bench_main
from unbounded.bench.methods import SYSTEM_PROMPT
from unbounded.bench.results import parse_size, read_results, size_label
from unbounded.bench.runner import BenchConfig, plan, run_bench, trace_name
from unbounded.bench.tasks import TASKS
from unbounded.models import Message, ScriptedLM, register_backend

ALL_METHODS = ["direct", "summarize", "retrieval", "rlm", "rlm-nosub"]
#: Tasks that generate a context of the size asked for (a fixed set such as realqa has its own tests).
SIZED_TASKS = [t for t in TASKS if TASKS[t].sized]
NEEDLE = re.compile(r"One of the special magic \w+ for [\w-]+ is: ([\w-]+)\.")
RECORD_FIELDS = {
    "task",
    "size_tokens",
    "method",
    "item_id",
    "model",
    "score",
    "answer",
    "gold",
    "status",
    "seconds",
    "calls",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "notes",
}


class Bench:
    """A registered ``benchtest/<name>`` backend whose instances and calls the test can inspect."""

    def __init__(self) -> None:
        self.instances: list[ScriptedLM] = []
        self.fail_on: str | None = None  # raise when a prompt contains this
        self.latency = 0.0

    def reply(self, messages: list[Message]) -> str:
        text = "\n".join(m.content for m in messages)
        if self.fail_on and self.fail_on in text:
            raise RuntimeError("scripted failure")
        if messages[0].content == SYSTEM_PROMPT:  # a baseline: answer from what it was shown
            if "Rewrite your notes" in messages[-1].content:
                found = NEEDLE.search(messages[-1].content)
                return found.group(0) if found else "nothing yet"
            found = NEEDLE.search(text)
            return f"Answer: {found.group(1)}" if found else "Answer: unknown"
        if len(messages) == 1:  # llm_query from model code
            return "sub-answer"
        # The RLM root: one cell that reads the context, makes a sub-call when it may, and answers.
        return (
            "```python\n"
            "import re\n"
            "text = context if isinstance(context, str) else str(context)\n"
            "m = re.search(r'special magic \\w+ for [\\w-]+ is: ([\\w-]+)\\.', text)\n"
            "try:\n"
            "    llm_query('say something')\n"
            "except NameError:\n"
            "    pass\n"
            "FINAL('Answer: ' + (m.group(1) if m else 'unknown'))\n"
            "```"
        )

    def factory(self, rest: str, options: dict[str, Any]) -> ScriptedLM:
        lm = ScriptedLM(self.reply, name=f"benchtest/{rest}", latency=self.latency)
        self.instances.append(lm)
        return lm

    @property
    def calls(self) -> int:
        return sum(len(lm.calls) for lm in self.instances)


@pytest.fixture
def bench() -> Bench:
    b = Bench()
    register_backend("benchtest", b.factory)
    return b


def run_cli(out: Path, *extra: str, tasks: str = "niah", methods: str = "direct,rlm") -> int:
    return bench_main(
        [
            "run",
            "--task",
            tasks,
            "--sizes",
            "8k",
            "--methods",
            methods,
            "--model",
            "benchtest/m",
            "-n",
            "1",
            "--repl",
            "inprocess",
            "--no-progress",
            "--out",
            str(out),
            *extra,
        ]
    )


def lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()]


def test_every_task_and_method_end_to_end_then_resume_then_report(
    bench: Bench, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert run_cli(out, tasks=",".join(SIZED_TASKS), methods=",".join(ALL_METHODS)) == 0
    records = lines(out)
    assert len(records) == len(SIZED_TASKS) * len(ALL_METHODS)
    keys = {(r["task"], r["size_tokens"], r["method"], r["item_id"], r["model"]) for r in records}
    assert len(keys) == len(records)
    assert {r["task"] for r in records} == set(SIZED_TASKS)
    assert {r["method"] for r in records} == set(ALL_METHODS)
    for r in records:
        assert set(r) >= RECORD_FIELDS, r
        assert r["size_tokens"] == 8192 and r["model"] == "benchtest/m"
        assert r["status"] in ("ok", "final"), r
        assert 0.0 <= r["score"] <= 1.0
        assert r["calls"] >= 1 and r["input_tokens"] > 0 and r["seconds"] >= 0
        assert r["cost_usd"] == 0.0
        trace = out / r["trace"]
        assert trace.name == f"{r['task']}-8K-{r['method']}-s0-0.jsonl" and trace.stat().st_size > 0
        events = [json.loads(x) for x in trace.read_text().splitlines()]
        if r["method"].startswith("rlm"):
            assert events[0]["type"] == "run_start" and events[-1]["type"] == "run_end"
        else:
            assert all(e["type"] == "lm_call" and e["answer"] for e in events)
            assert len(events) == r["calls"]
    by = {(r["task"], r["method"]): r for r in records}
    # The scripted model finds the needle when it is shown the whole context, and so does the RLM's code.
    assert by[("niah", "direct")]["score"] == 1.0
    assert by[("niah", "rlm")]["score"] == 1.0 and by[("niah", "rlm")]["calls"] == 2  # root + llm_query
    assert by[("niah", "rlm-nosub")]["calls"] == 1
    assert by[("niah", "direct")]["notes"]["truncated"] is False
    assert by[("oolong-pairs", "direct")]["gold"]  # pairs become JSON lists
    assert (out / "cache.sqlite").exists() and (out / "runs.jsonl").exists()

    # Resume: nothing new runs, nothing new is written, the model is not even called.
    calls_before = bench.calls
    capsys.readouterr()
    assert run_cli(out, tasks=",".join(SIZED_TASKS), methods=",".join(ALL_METHODS)) == 0
    assert len(lines(out)) == len(records)
    assert bench.calls == calls_before
    assert "nothing to do" in capsys.readouterr().err

    # Report: Markdown with every task and method, two valid PNGs.
    assert bench_main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert printed.strip() == report.strip()
    for task in SIZED_TASKS:
        assert f"| {task} | 8K |" in report
    for method in ALL_METHODS:
        assert f"| {method} |" in report
    for png in ("score_vs_context.png", "cost_distribution.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_an_interrupted_run_resumes_only_what_is_missing(bench: Bench, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_cli(out, "--no-cache", methods="direct,retrieval,rlm") == 0
    full = (out / "results.jsonl").read_text().splitlines()
    # Simulate a kill after the first item, mid-way through writing the second line.
    (out / "results.jsonl").write_text(full[0] + "\n" + full[1][:40])
    before = bench.calls
    assert run_cli(out, "--no-cache", methods="direct,retrieval,rlm") == 0
    records = read_results(out)
    assert sorted(r.method for r in records) == ["direct", "retrieval", "rlm"]
    assert bench.calls - before == 3  # retrieval (1 call) and rlm (root + sub-call), not direct
    # A new method or a new item count adds only the new units.
    assert run_cli(out, methods="direct,retrieval,rlm,summarize") == 0
    assert len(read_results(out)) == 4


def test_a_crash_is_recorded_and_the_run_goes_on_and_retry_errors_reruns_it(bench: Bench, tmp_path: Path) -> None:
    out = tmp_path / "run"
    bench.fail_on = "Passages:"  # only the retrieval prompt has this
    assert run_cli(out, methods="direct,retrieval,rlm") == 1  # exit 1: some items failed
    by = {r.method: r for r in read_results(out)}
    assert by["retrieval"].status == "error" and by["retrieval"].score == 0.0
    assert "RuntimeError: scripted failure" in (by["retrieval"].error or "")
    assert by["direct"].status == "ok" and by["rlm"].status == "final"
    # A plain rerun keeps the error; --retry-errors runs it again and the new line wins.
    assert run_cli(out, methods="direct,retrieval,rlm") == 0
    assert len(read_results(out)) == 3
    bench.fail_on = None
    assert run_cli(out, "--retry-errors", methods="direct,retrieval,rlm") == 0
    assert len(read_results(out)) == 4
    from unbounded.bench.results import latest

    assert {r.method: r.status for r in latest(read_results(out))}["retrieval"] == "ok"


def test_timeout_per_item(bench: Bench, tmp_path: Path) -> None:
    bench.latency = 2.0
    out = tmp_path / "run"
    assert run_cli(out, "--timeout-per-item", "0.3", methods="direct") == 1
    (record,) = read_results(out)
    assert record.status == "timeout" and record.score == 0.0 and "0.3" in (record.error or "")
    assert 0.25 < record.seconds < 2.0


def test_the_cache_answers_a_repeated_run_and_keeps_the_usage(bench: Bench, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_cli(out, methods="direct,rlm") == 0
    first = {r.method: r for r in read_results(out)}
    (out / "results.jsonl").unlink()
    before = bench.calls
    assert run_cli(out, methods="direct,rlm") == 0
    second = {r.method: r for r in read_results(out)}
    assert bench.calls == before  # every call came from OUT/cache.sqlite
    for method in ("direct", "rlm"):
        assert second[method].notes["cache_hits"] == first[method].calls
        assert second[method].input_tokens == first[method].input_tokens
        assert second[method].answer == first[method].answer

    out2 = tmp_path / "nocache"
    assert run_cli(out2, "--no-cache", methods="direct") == 0
    assert not (out2 / "cache.sqlite").exists()


def test_items_run_concurrently_up_to_jobs(bench: Bench, tmp_path: Path) -> None:
    bench.latency = 0.2
    config = BenchConfig(
        tasks=["niah"],
        sizes=[8192],
        methods=["direct"],
        model="benchtest/m",
        out=tmp_path / "run",
        n=6,
        jobs=3,
        progress=False,
        verbose=False,
    )
    summary = run_bench(config)
    assert summary.done == 6 and summary.errors == 0
    assert bench.instances[0].max_in_flight == 3


def test_default_jobs_serialise_local_models(tmp_path: Path) -> None:
    def config(model: str) -> BenchConfig:
        return BenchConfig(tasks=["niah"], sizes=[8192], methods=["direct"], model=model, out=tmp_path)

    assert config("local/qwen2.5-coder-1.5b").default_jobs() == 1
    assert config("openai/gpt-5-mini").default_jobs() == 8


def test_plan_orders_size_then_task_then_item_then_method(tmp_path: Path) -> None:
    config = BenchConfig(
        tasks=["niah", "oolong"], sizes=[8192, 16384], methods=["direct", "rlm"], model="m/x", out=tmp_path, n=2
    )
    units, skipped = plan(config, {("niah", 8192, "rlm", "niah-8192-s0-0", "m/x")})
    assert skipped == 1 and len(units) == 2 * 2 * 2 * 2 - 1
    assert [(u.size_tokens, u.task, u.index, u.method) for u in units[:4]] == [
        (8192, "niah", 0, "direct"),
        (8192, "niah", 1, "direct"),
        (8192, "niah", 1, "rlm"),
        (8192, "oolong", 0, "direct"),
    ]
    assert trace_name(units[0], 0) == "niah-8K-direct-s0-0.jsonl"


def test_bad_usage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["run", "--task", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown task" in capsys.readouterr().err
    assert bench_main(["run", "--task", "niah", "--methods", "magic", "--out", str(tmp_path)]) == 2
    assert bench_main(["frobnicate"]) == 2


def test_unknown_model_exits_5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = bench_main(["run", "--task", "niah", "--model", "nosuch/model", "--out", str(tmp_path), "--no-progress"])
    assert code == 5 and "unknown model" in capsys.readouterr().err


def test_ray_options_that_cannot_work_are_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["run", "--task", "niah", "--out", str(tmp_path / "o"), "--no-progress", "--ray"]
    assert bench_main([*base, "--methods", "rlm,rlms"]) == 2
    assert "rlms method starts its own model server" in capsys.readouterr().err
    assert bench_main([*base, "--ray-cpus-per-worker", "-1"]) == 2
    assert "CPUs per Ray worker" in capsys.readouterr().err
    lm = ScriptedLM(["x"])
    with pytest.raises(ValueError, match="spec strings"):
        BenchConfig(tasks=["niah"], sizes=[2048], methods=["rlm"], model=lm, out=tmp_path, ray="auto").validate()
    assert not (tmp_path / "o").exists()


def test_bench_on_ray_without_ray_installed_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = bench_main(["run", "--task", "niah", "--out", str(tmp_path), "--no-progress", "--ray"])
    err = capsys.readouterr().err
    assert code == 5 and "pip install 'unbounded[ray]'" in err


@pytest.mark.parametrize(
    ("text", "tokens", "label"),
    [("8k", 8192, "8K"), ("32K", 32768, "32K"), ("1m", 1048576, "1M"), ("4M", 4194304, "4M"), ("5000", 5000, "5000")],
)
def test_sizes(text: str, tokens: int, label: str) -> None:
    assert parse_size(text) == tokens
    assert size_label(tokens) == label


def test_bad_size() -> None:
    with pytest.raises(ValueError, match="bad size"):
        parse_size("eight")


def test_the_unbounded_command_routes_bench_run(bench: Bench, tmp_path: Path) -> None:
    from unbounded.cli import main as cli_main

    out = tmp_path / "run"
    code = cli_main(["bench", "run", "--task", "niah", "--sizes", "8k", "--methods", "direct", "--model", "benchtest/m",
                     "-n", "1", "--no-progress", "-q", "--out", str(out)])  # fmt: skip
    assert code == 0 and len(read_results(out)) == 1


# ----------------------------------------------------------------------------------------------- rlms


def test_rlms_endpoints() -> None:
    from unbounded.bench.rlms_method import endpoint_for
    from unbounded.errors import ConfigError
    from unbounded.models import resolve_model

    assert endpoint_for("local/qwen2.5-coder-1.5b", object(), {}) is None  # needs a loopback server
    lm = resolve_model("openai-compatible/qwen@http://127.0.0.1:9/v1")
    ep = endpoint_for(lm.name, lm, {})
    assert ep is not None and (ep.base_url, ep.model, ep.api_key) == ("http://127.0.0.1:9/v1", "qwen", "not-needed")
    ep = endpoint_for("anything/x", object(), {"base_url": "http://h/v1", "model": "m", "api_key": "k"})
    assert ep is not None and (ep.base_url, ep.model, ep.api_key) == ("http://h/v1", "m", "k")
    with pytest.raises(ConfigError, match="OpenAI"):
        endpoint_for("benchtest/m", object(), {})


def test_rlms_decoding_matches_for_a_loopback_llama_server() -> None:
    from unbounded.bench.methods import MethodConfig
    from unbounded.bench.rlms_method import Endpoint, RlmsMethod

    method = RlmsMethod("local/x", object(), {}, {}, timeout_per_item=60)
    kwargs = method.rlm_kwargs(
        Endpoint("http://127.0.0.1:1/v1", "local-model", "k", True), MethodConfig(max_iterations=7)
    )
    assert kwargs["max_iterations"] == 7 and kwargs["max_timeout"] == 60.0
    assert kwargs["sampling_args"]["temperature"] == 0.0
    assert kwargs["sampling_args"]["extra_body"] == {"max_tokens": 1024, "repeat_penalty": 1.0}

    from types import SimpleNamespace

    raw = SimpleNamespace(info=SimpleNamespace(defaults={"temperature": 0.0, "repeat_penalty": 1.05, "top_k": 20}))
    method = RlmsMethod("local/x", raw, {}, {})
    kwargs = method.rlm_kwargs(Endpoint("http://127.0.0.1:1/v1", "local-model", "k", True), MethodConfig())
    assert kwargs["sampling_args"]["extra_body"] == {"max_tokens": 1024, "repeat_penalty": 1.05, "top_k": 20}
    assert kwargs["backend_kwargs"] == {
        "model_name": "local-model",
        "base_url": "http://127.0.0.1:1/v1",
        "api_key": "k",
    }


def test_rlms_missing_fails_with_the_install_command(
    bench: Bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rlm", None)  # import rlm -> ImportError
    assert run_cli(tmp_path / "run", methods="direct,rlms") == 5
    assert "pip install rlms" in capsys.readouterr().err
    assert bench.calls == 0


def test_llama_server_command() -> None:
    from unbounded.bench.llama_server import LlamaServer

    server = LlamaServer(Path("/m.gguf"), n_ctx=8192, n_threads=2, port=1234)
    cmd = server.command()
    assert cmd[1:3] == ["-m", "llama_cpp.server"]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--n_ctx") + 1] == "8192"
    assert server.base_url == "http://127.0.0.1:1234/v1"


@pytest.mark.network
def test_rlms_end_to_end_through_an_openai_compatible_server(tmp_path: Path) -> None:
    pytest.importorskip("rlm")
    sys.path.insert(0, str(Path(__file__).parent))
    from fault_server import FaultServer, ok

    code = "```repl\nanswer['content'] = 'Answer: ' + str(len(context))\nanswer['ready'] = True\n```"
    with FaultServer(default=ok(code, input_tokens=100, output_tokens=20)) as server:
        out = tmp_path / "run"
        config = BenchConfig(
            tasks=["niah"],
            sizes=[8192],
            methods=["rlms"],
            model=f"openai-compatible/qwen@{server.openai_url}",
            out=out,
            n=1,
            progress=False,
            verbose=False,
        )
        summary = run_bench(config)
        assert server.count == 1
    (record,) = summary.records
    assert record.status == "final" and record.answer and record.answer.startswith("Answer: ")
    assert (record.calls, record.input_tokens, record.output_tokens) == (1, 100, 20)
    assert record.notes["endpoint_model"] == "qwen"
    trace = [json.loads(x) for x in (out / record.trace).read_text().splitlines()]  # type: ignore[operator]
    assert trace[0]["type"] == "metadata" and trace[1]["type"] == "iteration"
    # The question rlms saw is the one every method gets, answer format included.
    assert "special magic" in json.dumps(server.received[0].body)


def test_backend_options_are_part_of_the_model_key_but_secrets_are_not_logged(tmp_path: Path) -> None:
    config = BenchConfig(
        tasks=["niah"],
        sizes=[8192],
        methods=["direct"],
        model="local/qwen2.5-coder-1.5b",
        out=tmp_path,
        model_options={"n_ctx": 8192, "api_key": "sk-secret"},
    )
    assert config.model_name == "local/qwen2.5-coder-1.5b[n_ctx=8192]"
    assert config.default_jobs() == 1
    assert "sk-secret" not in json.dumps(config.to_dict())


@pytest.mark.slow
@pytest.mark.network
def test_rlms_on_the_embedded_model_through_llama_cpp_server(tmp_path: Path) -> None:
    """The real glue: rlms -> llama_cpp.server on loopback -> the same GGUF the other methods use."""
    pytest.importorskip("rlm")
    from unbounded.bench.llama_server import server_available
    from unbounded.models import weights

    if server_available():
        pytest.skip(server_available() or "")
    try:
        weights.resolve_model_file("qwen2.5-coder-0.5b")
    except Exception as exc:
        pytest.skip(f"embedded weights not available: {exc}")
    out = tmp_path / "run"
    config = BenchConfig(
        tasks=["niah"],
        sizes=[2048],
        methods=["rlms"],
        model="local/qwen2.5-coder-0.5b",
        model_options={"n_ctx": 8192},
        out=out,
        n=1,
        max_iterations=1,
        timeout_per_item=600,
        progress=False,
        verbose=False,
    )
    (record,) = run_bench(config).records
    assert record.status in ("final", "max_iterations"), record.error
    assert record.answer and record.calls >= 1 and record.input_tokens > 1_000
    assert record.notes["endpoint"].startswith("http://127.0.0.1:")
    assert (out / "llama_server.log").exists() and (out / record.trace).exists()  # type: ignore[operator]


def test_an_rlm_method_with_a_prompt_style_is_a_method_of_its_own(bench: Bench, tmp_path: Path) -> None:
    from unbounded.trace import read_trace

    out = tmp_path / "styles"
    assert run_cli(out, methods="rlm,rlm:compact,rlm-nosub:full") == 0
    records = {r.method: r for r in read_results(out)}
    assert set(records) == {"rlm", "rlm:compact", "rlm-nosub:full"}
    assert all(r.score == 1.0 for r in records.values())
    styles = {}
    for method, record in records.items():
        events = read_trace(out / record.trace)
        styles[method] = next(e for e in events if e.type == "rlm_start").data["style"]
    assert styles == {"rlm": "full", "rlm:compact": "compact", "rlm-nosub:full": "full"}
    assert "rlm_compact" in records["rlm:compact"].trace


@pytest.mark.parametrize("method", ["direct:compact", "rlm:nosuchstyle", "rlm:"])
def test_a_prompt_style_only_on_rlm_methods_and_only_a_known_one(
    method: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench_main(["run", "--task", "niah", "--methods", method, "--out", str(tmp_path)]) == 2
    assert "unknown method" in capsys.readouterr().err
