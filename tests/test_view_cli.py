"""``unbounded view`` and ``unbounded trace`` through their own add_parser, and ``python -m unbounded.view``."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from unbounded import trace_view
from unbounded.view import add_parser
from view_support import ROOT, record_engine_trace, trace_lines


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "run.jsonl"
    record_engine_trace(path, latency=0.0)
    return path


def run_view(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="unbounded")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["view", *argv])
    return args.func(args)


def run_trace(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="unbounded")
    trace_view.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["trace", *argv])
    return args.func(args)


def test_html_export_writes_one_self_contained_file(
    trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "view.html"
    assert run_view(str(trace), "--html", str(out)) == 0
    text = out.read_text(encoding="utf-8")
    assert "wrote" in capsys.readouterr().err
    assert '<script id="ub-data" type="application/json">' in text
    assert not re.search(r"""(src|href)=["']https?://""", text)  # no CDN, no network
    data = json.loads(text.split('<script id="ub-data" type="application/json">')[1].split("</script>")[0])
    assert data["meta"]["events"] == len(trace_lines(trace)) and data["capped"] is False
    assert "</script" not in json.dumps(data)  # embedded text cannot close the script element


def test_view_exit_codes_say_what_is_wrong(trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_view(str(tmp_path / "missing.jsonl"), "--html", str(tmp_path / "x.html")) == 3
    assert "no such trace file or folder" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert run_view(str(empty), "--html", str(tmp_path / "x.html")) == 4
    assert "holds no events" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
    assert run_view(str(tmp_path), "--html", str(tmp_path / "x.html")) == 2
    assert "give a trace" in capsys.readouterr().err
    assert run_view(str(trace), "--html", str(tmp_path / "x.html"), "--max-embed-mb", "0") == 2
    assert run_view(str(trace), "--port", "70000", "--no-browser") == 2
    assert "--port must be" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert run_view(str(trace), "--port", str(port), "--no-browser") == 2
        assert "pick another --port" in capsys.readouterr().err


@pytest.mark.network
def test_python_m_unbounded_view_serves_on_loopback(trace: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "unbounded.view", str(trace), "--no-browser", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        assert m, line
        url = m.group(1)
        deadline = time.monotonic() + 20
        while True:
            try:
                meta = httpx.get(url + "api/t/0/meta", timeout=2).json()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert meta["events"] == len(trace_lines(trace))
        assert "ub-config" in httpx.get(url).text
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0


def test_trace_text_view_and_full_cells(trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = trace_lines(trace)
    first_cell = next(e for e in lines if e["type"] == "cell")
    assert run_trace(str(trace)) == 0
    short = capsys.readouterr().out
    assert "cell turn 1" in short and "llm_batch" in short
    code_lines = first_cell["data"]["code"].strip().splitlines()
    assert code_lines[-1] not in short  # only the first line of each cell
    assert run_trace(str(trace), "--full") == 0
    full = capsys.readouterr().out
    for code_line in code_lines:
        assert code_line.strip() in full
    assert "NameError" in full  # turn 2's error, in full
    # sub-calls hang under the cell that made them (written before it), not at the top
    tree_lines = full.splitlines()
    batch_at = next(i for i, ln in enumerate(tree_lines) if "llm_batch" in ln)
    cell_at = next(i for i, ln in enumerate(tree_lines) if "cell turn 1" in ln)
    indent = lambda ln: len(ln) - len(ln.lstrip("│ ├└─"))  # noqa: E731
    assert batch_at > cell_at and indent(tree_lines[batch_at]) > indent(tree_lines[cell_at])


def test_trace_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_trace(str(tmp_path / "none.jsonl")) == 3
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    assert run_trace(str(empty)) == 4
    other = tmp_path / "o.jsonl"
    other.write_text(json.dumps({"type": "lm_call", "index": 1}) + "\n")
    assert run_trace(str(other)) == 3
    assert "not a trace written by --trace" in capsys.readouterr().err
