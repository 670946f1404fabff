"""``bench export``: a folder made by ``run_bench`` with a scripted model, written out as chat JSONL and
read back; the conversation must be what the model was sent, turn by turn."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from unbounded.bench.cli import main as bench_main
from unbounded.bench.export import (
    SCHEMA1_PREVIEW,
    ExportError,
    add_parser,
    export_trajectories,
)
from unbounded.bench.results import RESULTS_FILE, read_results
from unbounded.bench.runner import BenchConfig, run_bench
from unbounded.models import Message, ScriptedLM
from unbounded.models.base import Abilities

SRC = Path(__file__).resolve().parents[1] / "src"
NEEDLE_CODE = (
    "import re\n"
    "m = re.search(r'special magic \\w+ for [\\w-]+ is: ([\\w-]+)\\.', context)\n"
    "FINAL(m.group(1) if {right} else 'wrong')\n"
)


class Agent:
    """Scripted replies for every method; the RLM root takes four turns (a long output, a sub-call,
    a reply without code, the answer), which is right unless ``right`` is False."""

    def __init__(self) -> None:
        self.lm = ScriptedLM(self.reply, name="scripted/agent", context_window=16_384)

    @staticmethod
    def turn(messages: list[Message]) -> int:
        """Replies so far to the real question (a worked example's replies come before it)."""
        start = max(
            i for i, m in enumerate(messages) if m.role == "user" and m.content.startswith(("Context:", "The context"))
        )
        return sum(m.role == "assistant" for m in messages[start:])

    def reply(self, messages: list[Message]) -> str:
        first = messages[0].content
        if len(messages) == 1:
            return "a sub-model's answer"
        if "persistent Python session" in first:  # codeact
            if len(messages) == 2:
                return "```python\nprint(len(search('special magic', k=2)))\n```"
            return "Answer: from the search"
        if "REPL" not in first and "`context`" not in first:  # direct
            return "Answer: unknown"
        turn = self.turn(messages)
        if turn == 0:
            return "```python\nprint(context[:1500])\nprint(len(context))\n```"
        if turn == 1:
            return "```python\nprint(llm_query('Summarise: ' + context[:200]))\n```"
        if turn == 2:
            return "Let me think about it."
        return "```python\n" + NEEDLE_CODE.format(right="True" if self.right else "False") + "```"

    right = True


def make_folder(tmp_path: Path, agent: Agent, methods: list[str], *, n: int = 2, max_iterations: int = 20) -> Path:
    out = tmp_path / "run"
    config = BenchConfig(
        tasks=["niah"],
        sizes=[8_192],
        methods=methods,
        model=agent.lm,
        out=out,
        n=n,
        repl="inprocess",
        jobs=1,
        progress=False,
        verbose=False,
        cache=False,
        max_iterations=max_iterations,
    )
    assert run_bench(config).errors == 0
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def strip_weights(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def root_calls(lm: ScriptedLM) -> list[list[Message]]:
    return [call for call in lm.calls if len(call) > 1 and "REPL" in call[0].content]


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, Agent]:
    agent = Agent()
    return make_folder(tmp_path, agent, ["rlm", "codeact", "direct"], n=1), agent


def test_rlm_trajectories_round_trip_as_the_model_saw_them(folder: tuple[Path, Agent], tmp_path: Path) -> None:
    out, agent = folder
    target = tmp_path / "sft.jsonl"
    summary = export_trajectories(out, target)
    assert summary.written == 1 and summary.skipped["other method"] == 2
    (line,) = read_jsonl(target)
    meta = line["metadata"]
    assert meta["method"] == "rlm" and meta["score"] == 1.0 and meta["status"] == "final"
    assert meta["fidelity"] == "exact" and meta["lost"] == [] and meta["trace_schema"] >= 2
    assert meta["turns"] == 4 and meta["task"] == "niah" and meta["gold"] == meta["answer"]
    calls = root_calls(agent.lm)
    assert len(calls) == 4
    messages = line["messages"]
    # What the last root call was sent, then the reply it gave: the whole conversation.
    assert strip_weights(messages[:-1]) == [m.to_dict() for m in calls[-1]]
    assert messages[-1]["role"] == "assistant" and "FINAL(" in messages[-1]["content"]
    assert messages[0]["role"] == "system" and "REPL" in messages[0]["content"]
    assert [m["role"] for m in messages[1:]] == ["user"] + ["assistant", "user"] * 3 + ["assistant"]
    assert all(m["weight"] == 1 for m in messages if m["role"] == "assistant")
    long_output = messages[3]["content"]
    assert len(long_output) > SCHEMA1_PREVIEW and "characters" not in long_output.split("\n")[0]


def test_baseline_call_logs_export_whole(folder: tuple[Path, Agent], tmp_path: Path) -> None:
    out, _ = folder
    target = tmp_path / "all.jsonl"
    summary = export_trajectories(out, target, methods=None, min_score=0.0)
    lines = read_jsonl(target)
    by = {line["metadata"]["method"]: line for line in lines}
    assert set(by) == {"rlm", "codeact", "direct"} and summary.written == 3
    codeact = by["codeact"]["messages"]
    assert [m["role"] for m in codeact] == ["system", "user", "assistant", "user", "assistant"]
    assert codeact[3]["content"].startswith("Output:") and codeact[-1]["content"] == "Answer: from the search"
    trace = read_jsonl(out / by["codeact"]["metadata"]["trace"])
    assert strip_weights(codeact[:-1]) == trace[-1]["messages"]
    assert [m["role"] for m in by["direct"]["messages"]] == ["system", "user", "assistant"]


def downgrade_to_schema1(trace: Path) -> None:
    """Rewrite a trace as the engine of schema 1 wrote it: no prompt, no style, 400-character previews."""
    events = read_jsonl(trace)
    for e in events:
        d = e["data"]
        if e["type"] == "run_start":
            d["schema"] = 1
            d["config"].pop("shown_output_chars", None)
        elif e["type"] == "rlm_start":
            d.pop("prompt", None)
            d.pop("style", None)
        elif e["type"] == "lm_request":
            d["last_message"] = d["last_message"][:SCHEMA1_PREVIEW]
        elif e["type"] == "cell":
            d.pop("shown", None)
            d.pop("cut", None)
    trace.write_text("".join(json.dumps(e) + "\n" for e in events))


def test_schema1_traces_are_rebuilt_and_checked(folder: tuple[Path, Agent], tmp_path: Path) -> None:
    out, _ = folder
    exact = read_jsonl(export_and_return(out, tmp_path / "v2.jsonl"))[0]
    old = tmp_path / "old"
    shutil.copytree(out, old)
    record = next(r for r in read_results(old) if r.method == "rlm")
    downgrade_to_schema1(old / str(record.trace))
    (rebuilt,) = read_jsonl(export_and_return(old, tmp_path / "v1.jsonl"))
    assert rebuilt["messages"] == exact["messages"]
    meta = rebuilt["metadata"]
    assert meta["trace_schema"] == 1 and meta["fidelity"] == "exact"
    assert "prompt rebuilt with the installed prompt style" in meta["rebuilt"]
    assert any("output rebuilt from the cells" in x for x in meta["rebuilt"])

    # A preview that no rebuild can complete is approximate: left out unless asked for.
    events = read_jsonl(old / str(record.trace))
    cells = [e for e in events if e["type"] == "cell"]
    cells[0]["data"]["stdout"] = "something else " * 50
    (old / str(record.trace)).write_text("".join(json.dumps(e) + "\n" for e in events))
    summary = export_trajectories(old, tmp_path / "none.jsonl")
    assert summary.written == 0 and summary.skipped["approximate"] == 1
    export_trajectories(old, tmp_path / "approx.jsonl", allow_approximate=True)
    (approx,) = read_jsonl(tmp_path / "approx.jsonl")
    assert approx["metadata"]["fidelity"] == "approximate"
    assert any("preview" in x for x in approx["metadata"]["lost"])


def export_and_return(out: Path, target: Path) -> Path:
    assert export_trajectories(out, target).written == 1
    return target


def test_filters_min_score_held_out_and_broken_traces(tmp_path: Path) -> None:
    agent = Agent()
    agent.right = False
    out = make_folder(tmp_path, agent, ["rlm"], n=1)
    summary = export_trajectories(out, tmp_path / "a.jsonl")
    assert summary.written == 0 and summary.skipped["below min score"] == 1
    assert export_trajectories(out, tmp_path / "b.jsonl", min_score=0.0).written == 1

    # A result of the held-out task is refused unless asked for.
    results = out / RESULTS_FILE
    record = json.loads(results.read_text().splitlines()[0])
    record.update(task="realqa-test", item_id="realqa-test-x", score=1.0)
    with results.open("a") as fh:
        fh.write(json.dumps(record) + "\n")
    summary = export_trajectories(out, tmp_path / "c.jsonl", min_score=0.0)
    assert summary.skipped["held-out task"] == 1 and summary.written == 1
    assert export_trajectories(out, tmp_path / "d.jsonl", min_score=0.0, include_held_out=True).written == 2
    assert export_trajectories(out, tmp_path / "e.jsonl", min_score=0.0, tasks=["niah"]).skipped["other task"] == 1

    # A trace cut before its last model call answered is left out, with the reason.
    trace = out / record["trace"]
    lines = trace.read_text().splitlines()
    last_response = max(i for i, x in enumerate(lines) if '"lm_response"' in x and '"root"' in x)
    trace.write_text("\n".join(lines[:last_response]) + "\n")
    summary = export_trajectories(out, tmp_path / "f.jsonl", min_score=0.0)
    assert summary.written == 0 and summary.skipped["a root model call did not finish"] == 1
    (out / record["trace"]).unlink()
    assert export_trajectories(out, tmp_path / "g.jsonl", min_score=0.0).skipped["trace file missing"] == 1


def test_missing_or_empty_folders_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no such bench folder"):
        export_trajectories(tmp_path / "nope", tmp_path / "x.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match=r"has no results\.jsonl"):
        export_trajectories(tmp_path / "empty", tmp_path / "x.jsonl")


def test_command_line(folder: tuple[Path, Agent], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = folder
    target = tmp_path / "cli.jsonl"
    assert bench_main(["export", str(out), "--out", str(target)]) == 0
    assert "wrote 1 trajectories" in capsys.readouterr().err and len(read_jsonl(target)) == 1
    assert bench_main(["export", str(out), "--out", str(target), "--methods", "summarize"]) == 4
    assert bench_main(["export", str(tmp_path / "missing"), "--out", str(target)]) == 3
    assert "no such bench folder" in capsys.readouterr().err
    assert bench_main(["export", str(out), "--out", str(target), "--min-score", "2"]) == 2
    with pytest.raises(SystemExit) as exc:
        bench_main(["export", str(out)])  # --out is required
    assert exc.value.code == 2

    parser = argparse.ArgumentParser(prog="unbounded bench")
    add_parser(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["export", str(out), "--out", str(target), "--methods", "rlm,codeact", "--min-score", "0"])
    assert args.func(args) == 0 and len(read_jsonl(target)) == 2

    # The bench group of the command tree carries export beside run and report.
    from unbounded.bench.cli import add_parser as add_bench

    tree = argparse.ArgumentParser(prog="unbounded")
    add_bench(tree.add_subparsers(dest="command"))
    args = tree.parse_args(["bench", "export", str(out), "--out", str(target), "--tasks", "niah"])
    assert args.func(args) == 0 and len(read_jsonl(target)) == 1
    assert tree.parse_args(["bench", "overhead", "--turns", "5"]).turns == 5

    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-m", "unbounded.bench.cli", "export", str(out), "--out", str(target), "--methods", "all"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "wrote 1 trajectories" in done.stderr  # min score 1.0: only the RLM answered right


class SmallAgent(Agent):
    """The same agent declared small, so the engine speaks to it in the guided style (a worked example,
    stop at the end of a code block)."""

    def __init__(self) -> None:
        super().__init__()

        self.lm = ScriptedLM(self.reply, name="scripted/small", context_window=16_384)
        self.lm.abilities = Abilities(small=True)

    def reply(self, messages: list[Message]) -> str:
        text = super().reply(messages)
        return text.removesuffix("```") if text.startswith("```python") else text  # the stop sequence ate it


@pytest.mark.parametrize("turns", [20, 3])
def test_compact_style_trajectories_mark_the_worked_example_and_close_fences(tmp_path: Path, turns: int) -> None:
    agent = SmallAgent()
    out = make_folder(tmp_path, agent, ["rlm"], n=1, max_iterations=turns)
    target = tmp_path / "compact.jsonl"
    assert export_trajectories(out, target).written == 1
    (line,) = read_jsonl(target)
    meta = line["metadata"]
    assert meta["prompt_style"] == "guided" and meta["fidelity"] == "exact" and meta["score"] == 1.0
    assert meta["status"] == ("final" if turns == 20 else "max_iterations")
    messages = line["messages"]
    calls = [c for c in agent.lm.calls if len(c) > 1 and c[0].role == "system"]
    assert len(calls) == 4
    assert strip_weights(messages[:-1]) == [m.to_dict() for m in calls[-1]]
    example = [m for m in messages if m["role"] == "assistant" and m["weight"] == 0]
    own = [m for m in messages if m["role"] == "assistant" and m["weight"] == 1]
    assert len(example) == 2 and len(own) == len(calls)
    assert all(m["content"].rstrip().endswith("```") for m in own if m["content"].startswith("```python"))
    if turns == 3:  # out of turns after a reply without code: the reminder, then the request for an answer
        assert [m["role"] for m in messages[-4:]] == ["assistant", "user", "user", "assistant"]
