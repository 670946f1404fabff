"""The overhead benchmark's harness runs end to end (its figures are judged by hand, not here)."""

from __future__ import annotations

import json

import pytest

from unbounded.bench import overhead


@pytest.mark.parametrize("shape", overhead.SHAPES)
def test_the_context_measure_runs_in_a_fresh_process_and_reads_both_sides(shape: str) -> None:
    c = overhead.bench_context(2, shape)
    assert 1.99 < c["context_mb"] <= 2.0
    assert c["first_call_s"] > 0
    # The host holds the context, the worker tree (worker + any sandbox processes) a second copy.
    assert c["host_peak_mb"] > 2 and c["worker_peak_mb"] > 2
    assert c["peak_ratio"] == pytest.approx((c["host_peak_mb"] + c["worker_peak_mb"]) / c["context_mb"])


def test_the_cli_prints_every_figure_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--turns", "3", "--batch", "8", "--latency", "0.001", "--sizes", "1", "--shape-sizes", "1", "--json"]
    assert overhead.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {
        "turns_process",
        "turns_inprocess",
        "batch",
        "context_1mb",
        "context_1mb_latin1",
        "context_1mb_files",
    }
    assert out["batch"]["n"] == 8 and out["batch"]["max_in_flight"] >= 2
    assert out["turns_process"]["median_ms"] > 0
