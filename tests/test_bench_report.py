"""``unbounded bench report``: tables and plots from results.jsonl files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unbounded.bench.cli import main as bench_main
from unbounded.bench.report import collect, markdown_tables, write_report
from unbounded.bench.results import ResultRecord, ResultsFile, read_results

PNG = b"\x89PNG\r\n\x1a\n"


def record(task: str, size: int, method: str, i: int, score: float, **kw: object) -> ResultRecord:
    base: dict[str, object] = {
        "task": task,
        "size_tokens": size,
        "method": method,
        "item_id": f"{task}-{size}-s0-{i}",
        "model": "test/model",
        "score": score,
        "answer": "Answer: x",
        "gold": "x",
        "status": "ok",
        "seconds": 1.0 + i,
        "calls": 1,
        "input_tokens": size,
        "output_tokens": 10,
        "cost_usd": 0.0,
    }
    base.update(kw)
    return ResultRecord(**base)  # type: ignore[arg-type]


def write(out: Path, records: list[ResultRecord]) -> Path:
    f = ResultsFile(out / "results.jsonl")
    for r in records:
        f.append(r)
    return out


def sample() -> list[ResultRecord]:
    out = []
    for size in (8192, 32768, 131072):
        for i in range(3):
            out.append(
                record("niah", size, "direct", i, 1.0 if size == 8192 else 0.0, notes={"truncated": size > 8192})
            )
            out.append(record("niah", size, "rlm", i, 1.0, status="final", calls=4))
            out.append(record("oolong", size, "retrieval", i, 0.5))
            out.append(
                record("oolong", size, "rlm", i, 0.75 if i else 0.0, status="max_iterations" if not i else "final")
            )
    return out


def test_tables_hold_scores_costs_and_notes() -> None:
    md = markdown_tables(collect(sample()), "T")
    assert md.startswith("# T")
    assert "| task | size | direct | retrieval | rlm |" in md  # methods in the preferred order
    assert "| niah | 8K | 100% ± 0 (n=3) |  | 100% ± 0 (n=3) |" in md
    assert "| niah | 128K | 0% ± 0 (n=3) |" in md
    assert "| oolong | 32K |  | 50% ± 0 (n=3) | 50% ± 25 (n=3) |" in md
    row = next(line for line in md.splitlines() if line.startswith("| niah | 32K | direct |"))
    assert "context cut in 100% of items" in row and "| $0 | $0 |" in row
    row = next(line for line in md.splitlines() if line.startswith("| oolong | 8K | rlm |"))
    assert "max_iterations: 1" in row
    assert "| 2.0 |" in row  # mean seconds of items taking 1, 2 and 3 s


def test_costs_unknown_and_priced() -> None:
    records = [record("niah", 8192, "direct", i, 1.0, cost_usd=c) for i, c in enumerate((0.01, 0.03, 0.02))]
    records.append(record("niah", 8192, "rlm", 0, 1.0, cost_usd=None))
    md = markdown_tables(collect(records))
    direct = next(line for line in md.splitlines() if line.startswith("| niah | 8K | direct |"))
    assert "| $0.0200 | $0.0200 |" in direct
    rlm = next(line for line in md.splitlines() if line.startswith("| niah | 8K | rlm |"))
    assert "| n/a | n/a |" in rlm


def test_write_report_makes_markdown_and_pngs(tmp_path: Path) -> None:
    out = write(tmp_path / "run", sample())
    report = write_report([out])
    names = sorted(p.name for p in report.files)
    assert names == ["cost_distribution.png", "report.md", "score_vs_context.png"]
    for p in report.files:
        assert p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == PNG and p.stat().st_size > 20_000
    assert "![score vs. context length](score_vs_context.png)" in (out / "report.md").read_text()


def test_priced_runs_get_a_usd_panel(tmp_path: Path) -> None:
    records = [r for r in sample()]
    for r in records:
        r.cost_usd = 0.001 * r.calls
    report = write_report([write(tmp_path / "run", records)])
    assert all(p.exists() for p in report.files)


def test_latest_record_wins_and_folders_merge(tmp_path: Path) -> None:
    a = write(tmp_path / "a", [record("niah", 8192, "direct", 0, 0.0, status="error")])
    write(a, [record("niah", 8192, "direct", 0, 1.0)])  # the retry
    b = write(tmp_path / "b", [record("niah", 8192, "rlm", 0, 1.0)])
    report = write_report([a, b], out=tmp_path / "merged", plots=False)
    cells = report.cells
    assert cells[("test/model", "niah", 8192, "direct")].score == 1.0
    assert cells[("test/model", "niah", 8192, "direct")].n == 1
    assert ("test/model", "niah", 8192, "rlm") in cells
    assert [p.name for p in report.files] == ["report.md"]


def test_two_models_get_their_own_sections_and_plots(tmp_path: Path) -> None:
    records = [*sample(), record("niah", 8192, "rlm", 0, 0.0, model="other/model")]
    report = write_report([write(tmp_path / "run", records)])
    assert "## test/model" in report.markdown and "## other/model" in report.markdown
    assert len([p for p in report.files if p.suffix == ".png"]) == 4


def test_torn_lines_are_skipped(tmp_path: Path) -> None:
    out = write(tmp_path / "run", sample()[:2])
    with (out / "results.jsonl").open("a") as fh:
        fh.write('{"task": "niah", "size_tok')
    assert len(read_results(out)) == 2
    write(out, sample()[2:3])  # the next append starts on a fresh line
    assert len(read_results(out)) == 3
    assert all(json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()[:2])


def test_cli_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = write(tmp_path / "run", sample())
    assert bench_main(["report", str(out), "--no-plots", "--title", "Mine"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("# Mine") and "report.md" in captured.err
    assert bench_main(["report", str(tmp_path / "missing")]) == 2
    (tmp_path / "empty").mkdir()
    assert bench_main(["report", str(tmp_path / "empty")]) == 1
    assert "no results" in capsys.readouterr().err


def test_claims_are_checked_against_the_targets() -> None:
    from unbounded.bench.report import claims

    verdicts = {
        target.split(":")[0]: (verdict, evidence)
        for target, verdict, evidence in claims(collect(sample()), "test/model")
    }
    beats_direct, beats_retrieval, niah = verdicts.values()
    # niah: rlm 100% vs direct 0% at 32K and 128K; oolong and oolong-pairs have no direct runs.
    assert beats_direct[0] == "met so far (not every case run)"
    assert "niah 32K: rlm 100% vs direct 0% (n=3) ✓" in beats_direct[1]
    assert beats_retrieval[0] == "met so far (not every case run)"  # 50% vs 50% is >=; oolong-pairs not run
    assert niah[0] == "met so far (not every case run)"  # 128K is short of 4M
    worse = [*sample(), *(record("oolong", 8192, "retrieval", i, 1.0) for i in range(3, 6))]
    verdict = {t: v for t, v, _ in claims(collect(worse), "test/model")}
    assert list(verdict.values())[1] == "missed"
    assert all(v == "not yet run" for v in (v for _, v, _ in claims(collect([]), "test/model")))
