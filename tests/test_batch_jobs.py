"""The job file, the output folder and the summary: parsing, validation, repair, percentiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unbounded.batch import BatchOutput, Job, JobDefaults, JobResult, load_jobs, parse_job
from unbounded.batch.errors import DuplicateJobIdError, EmptyJobFileError, MissingJobFileError
from unbounded.batch.results import trace_name
from unbounded.batch.summary import percentile, summarize
from unbounded.budget import Budget
from unbounded.models.base import Usage


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def test_the_three_context_forms_and_the_optional_fields(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    path = write_lines(
        tmp_path / "jobs.jsonl",
        [
            {"id": "t", "question": "q?", "text": "inline"},
            {"id": 7, "question": "q?", "records": [{"a": 1}, "two"]},
            {"id": "p", "question": "q?", "paths": "docs", "model": "openai/gpt-5-mini", "max_depth": 2},
            {
                "id": "full",
                "question": "q?",
                "paths": ["docs", "/abs/file.txt"],
                "sub_model": "scripted/x.json",
                "budget": {"max_llm_calls": 5, "max_seconds": 1.5, "max_tokens": 900},
                "model_options": {"latency": 0.1},
                "output": {"type": "object", "properties": {"n": {"type": "integer"}}},
                "metadata": {"source": "nightly"},
            },
        ],
    )
    jf = load_jobs(path)
    assert jf.invalid == []
    t, r, p, full = jf.jobs
    assert (t.id, t.text, t.line) == ("t", "inline", 1)
    assert r.id == "7" and r.records == [{"a": 1}, "two"]
    assert p.paths == (str(tmp_path / "docs"),), "relative paths resolve against the job file's folder"
    assert p.model == "openai/gpt-5-mini" and p.max_depth == 2
    assert full.paths == (str(tmp_path / "docs"), "/abs/file.txt")
    assert full.output == {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert full.metadata == {"source": "nightly"}
    defaults = JobDefaults(model="scripted/root.json", budget=Budget(max_iterations=3, max_llm_calls=50))
    budget = full.budget_for(defaults)
    assert (budget.max_iterations, budget.max_llm_calls, budget.max_seconds) == (3, 5, 1.5)
    assert budget.max_total_tokens == 900, "the old key max_tokens still means the run's token limit"
    assert t.budget_for(defaults) is defaults.budget
    assert full.model_opts(defaults) == {"latency": 0.1}
    assert full.effective_sub_model_spec(defaults) == "scripted/x.json"
    assert t.effective_sub_model_spec(defaults) == "scripted/root.json"
    assert p.depth_for(defaults) == 2 and t.depth_for(defaults) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "must be a JSON object, not array"),
        ({"question": "q?", "text": "x"}, "'id' must be a string or a whole number (missing)"),
        ({"id": True, "question": "q?", "text": "x"}, "'id' must be a string or a whole number"),
        ({"id": "a", "text": "x"}, "'question' must be a non-empty string"),
        ({"id": "a", "question": "  ", "text": "x"}, "'question' must be a non-empty string"),
        ({"id": "a", "question": "q?"}, "give exactly one context"),
        ({"id": "a", "question": "q?", "text": "x", "paths": ["f"]}, "got 'text' and 'paths'"),
        ({"id": "a", "question": "q?", "text": 5}, "'text' must be a string, not number"),
        ({"id": "a", "question": "q?", "records": "x"}, "'records' must be an array or an object"),
        ({"id": "a", "question": "q?", "paths": []}, "'paths' must be a path or a non-empty array"),
        ({"id": "a", "question": "q?", "paths": [1]}, "'paths' must be a path or a non-empty array"),
        ({"id": "a", "question": "q?", "text": "x", "contxt": 1}, "unknown field(s) 'contxt'"),
        ({"id": "a", "question": "q?", "text": "x", "budget": {"max_calls": 1}}, "unknown budget key(s) 'max_calls'"),
        ({"id": "a", "question": "q?", "text": "x", "budget": {"max_llm_calls": -1}}, "invalid budget"),
        ({"id": "a", "question": "q?", "text": "x", "budget": {"max_total_tokens": 1.5}}, "must be a whole number"),
        (
            {"id": "a", "question": "q?", "text": "x", "budget": {"max_tokens": 2.5}},
            "'max_total_tokens' must be a whole",
        ),
        ({"id": "a", "question": "q?", "text": "x", "budget": {"max_iterations": None}}, "cannot be unlimited"),
        ({"id": "a", "question": "q?", "text": "x", "budget": 3}, "'budget' must be an object"),
        ({"id": "a", "question": "q?", "text": "x", "output": "json"}, "'output' must be a JSON schema"),
        ({"id": "a", "question": "q?", "text": "x", "output": ["type"]}, "not array"),
        ({"id": "a", "question": "q?", "text": "x", "model": ""}, "'model' must be a model spec string"),
        ({"id": "a", "question": "q?", "text": "x", "max_depth": -1}, "'max_depth' must be a whole number >= 0"),
        ({"id": "a", "question": "q?", "text": "x", "model_options": [1]}, "'model_options' must be an object"),
    ],
)
def test_a_bad_line_is_reported_with_its_number_and_the_rest_loads(tmp_path: Path, line: object, message: str) -> None:
    path = write_lines(
        tmp_path / "jobs.jsonl",
        [{"id": "first", "question": "q?", "text": "x"}, line, {"id": "last", "question": "q?", "text": "y"}],
    )
    jf = load_jobs(path)
    assert [j.id for j in jf.jobs] == ["first", "last"]
    assert len(jf.invalid) == 1
    bad = jf.invalid[0]
    assert bad.line == 2
    assert bad.error.startswith(f"{path}:2: ")
    assert message in bad.error


def test_blank_lines_are_skipped_and_line_numbers_stay_true(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_bytes(
        b'\n{"id": "a", "question": "q?", "text": "x"}\n\n   \n\xff\xfe not utf-8\n{"id": "b", "question": "q?", "text": "y"}'
    )
    jf = load_jobs(path)
    assert [(j.id, j.line) for j in jf.jobs] == [("a", 2), ("b", 6)]
    assert [b.line for b in jf.invalid] == [5]
    assert "not UTF-8" in jf.invalid[0].error


def test_duplicate_ids_are_an_error_naming_the_lines(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "jobs.jsonl",
        [
            {"id": "a", "question": "q?", "text": "x"},
            {"id": "b", "question": "q?", "text": "x"},
            {"id": "a", "question": "q?", "text": "x"},
            {"id": "b", "question": "q?"},  # invalid, but its id still collides
        ],
    )
    with pytest.raises(DuplicateJobIdError) as info:
        load_jobs(path)
    assert "'a' on lines 1, 3" in str(info.value)
    assert "'b' on lines 2, 4" in str(info.value)


def test_missing_empty_and_folder_job_files(tmp_path: Path) -> None:
    with pytest.raises(MissingJobFileError, match="no such job file"):
        load_jobs(tmp_path / "nope.jsonl")
    with pytest.raises(MissingJobFileError, match="is a folder"):
        load_jobs(tmp_path)
    (tmp_path / "empty.jsonl").write_text("\n\n  \n")
    with pytest.raises(EmptyJobFileError, match="holds no job"):
        load_jobs(tmp_path / "empty.jsonl")
    with pytest.raises(EmptyJobFileError):
        load_jobs([])


def test_an_iterable_of_dicts_and_jobs(tmp_path: Path) -> None:
    jf = load_jobs(
        [{"id": "a", "question": "q?", "paths": "rel.txt"}, Job(id="b", question="q?", text="t"), {"id": "c"}],
        base_dir=tmp_path,
    )
    assert [j.id for j in jf.jobs] == ["a", "b"]
    assert jf.jobs[0].paths == (str(tmp_path.resolve() / "rel.txt"),)
    assert jf.jobs[1].line == 2
    assert jf.invalid[0].line == 3 and jf.invalid[0].error.startswith("job 3: ")


def test_inline_context_travels_apart() -> None:
    job = parse_job({"id": "a", "question": "q?", "records": ["x", "y"]})
    assert job.has_inline_context and job.inline_context() == ["x", "y"]
    light = job.without_inline_context()
    assert not light.has_inline_context and light.records is None and light.id == "a"
    path_job = parse_job({"id": "p", "question": "q?", "paths": "/data/x.txt"})
    assert not path_job.has_inline_context and path_job.inline_context() is None


def test_defaults_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="repl must be one of"):
        JobDefaults(repl="docker")
    with pytest.raises(ValueError, match="max_depth"):
        JobDefaults(max_depth=-1)


def test_trace_names_are_safe_and_distinct() -> None:
    assert trace_name("job-1.a_b") == "job-1.a_b.jsonl"
    unsafe = ["../etc/passwd", "a/b", "a b", ".hidden", "é", "x" * 200, "a/b "]
    names = [trace_name(i) for i in unsafe]
    assert len(set(names)) == len(names)
    for n in names:
        assert "/" not in n and not n.startswith(".") and len(n) < 100 and n.endswith(".jsonl")


def result(job_id: str, status: str = "final", elapsed: float = 1.0, **kw: object) -> JobResult:
    return JobResult(id=job_id, status=status, elapsed=elapsed, **kw)  # type: ignore[arg-type]


def test_results_round_trip_and_a_partial_last_line_is_cut(tmp_path: Path) -> None:
    out = BatchOutput(tmp_path / "out")
    with out:
        out.append(result("a", usage={"m": Usage(1, 10, 2, 0, 0.5)}, answer="A", metadata={"k": 1}))
        out.append(result("b", status="error:context", error="no such file"))
    with open(out.results_path, "a", encoding="utf-8") as fh:
        fh.write('{"id": "c", "status": "fin')  # a crash mid-write
    latest = out.read_results()
    assert sorted(latest) == ["a", "b"]
    a = latest["a"]
    assert a.answer == "A" and a.usage["m"].input_tokens == 10 and a.usage["m"].cost_usd == 0.5
    assert a.metadata == {"k": 1} and a.answered and latest["b"].failed
    with out:  # reopening repairs the file, so the next line is not glued to the partial one
        out.append(result("c"))
    lines = out.results_path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b", "c"]
    with out:
        out.append(result("b", answer="again"))
    assert out.read_results()["b"].answer == "again", "a later line for an id wins"


def test_a_file_that_is_only_a_partial_line_is_emptied(tmp_path: Path) -> None:
    out = BatchOutput(tmp_path)
    out.results_path.write_text('{"id": "x", "sta')
    with out:
        pass
    assert out.results_path.read_text() == ""


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(list(reversed(values)), 100) == 100.0


def test_summary_counts_tokens_cost_and_times() -> None:
    rows = [
        result("a", usage={"m": Usage(2, 100, 10, 5, 0.25)}, elapsed=1.0),
        result("b", status="max_iterations", usage={"m": Usage(1, 50, 5, 0, 0.5)}, elapsed=3.0),
        result("c", status="error:context", elapsed=2.0),
        JobResult(id="<line 4>", status="invalid", error="bad"),
    ]
    s = summarize(rows, ran=3, skipped=0, wall_seconds=4.0)
    assert s.jobs == 4 and s.invalid == 1 and s.answered == 2 and s.failed == 2
    assert s.statuses == {"final": 1, "max_iterations": 1, "error:context": 1, "invalid": 1}
    assert (s.model_calls, s.input_tokens, s.output_tokens, s.cached_input_tokens) == (3, 150, 15, 5)
    assert s.cost_usd == pytest.approx(0.75)
    assert (s.p50_seconds, s.p95_seconds) == (2.0, 3.0)
    text = s.render()
    assert "4 jobs" in text and "2 failed" in text and "$0.7500" in text and "p95 3.00s" in text
    unknown = summarize([*rows, result("d", usage={"x": Usage(1, 1, 1, 0, None)})], ran=4, skipped=0, wall_seconds=1)
    assert unknown.cost_usd is None and "cost unknown" in unknown.render()
