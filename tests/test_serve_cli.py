"""``unbounded serve`` and ``unbounded mcp`` as commands: their parsers on a fresh argparse tree, the
settings they build, refusals with exit code 5, and a child server process answering the real client;
plus one slow test with the embedded model behind the server."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from conftest import ROOT, code
from test_serve_support import child_server
from unbounded.serve import cli, mcp_cli
from unbounded.serve.config import DEFAULT_MAX_SECONDS


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_parser(sub)
    mcp_cli.add_parser(sub)
    return parser.parse_args(list(argv))


def test_the_parsers_and_the_settings_they_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    args = parse("serve")
    assert args.func is cli.handle and (args.host, args.port, args.max_seconds) == ("127.0.0.1", 8000, DEFAULT_MAX_SECONDS)
    monkeypatch.setenv(cli.KEY_ENV, "env-key-111, env-key-222")
    args = parse("serve", "--allow-path", str(tmp_path), "--allow-model", "scripted/x.json", "--max-concurrent", "2",
                 "--max-calls", "50", "--max-body-mb", "1", "--mcp")  # fmt: skip
    conf = cli.config_from_args(args, mcp=args.mcp)
    assert conf.api_keys == ("env-key-111", "env-key-222") and conf.allow_paths == (tmp_path,)
    assert conf.allow_models == ("scripted/x.json",) and conf.max_concurrent == 2 and conf.mcp
    assert conf.budget.max_llm_calls == 50 and conf.max_body_bytes == 1 << 20
    assert cli.config_from_args(parse("serve", "--api-key", "flag-key-1")).api_keys == ("flag-key-1",)
    args = parse("mcp")
    assert args.func is mcp_cli.handle and args.transport == "stdio"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--allow-path", "/no/such/folder"], "not a folder"),
        (["--max-concurrent", "0"], "max_concurrent must be at least 1"),
        (["--model", "nosuch/model"], "unknown model"),
        (["--api-key", "short"], "at least 8 characters"),
    ],
)
def test_bad_settings_exit_5_with_a_reason(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("serve", "--port", "0", *argv)
    assert args.func(args) == 5
    assert message in capsys.readouterr().err


def test_a_budget_flag_out_of_range_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("serve", "mcp"):
        args = parse(command, "--max-iterations", "0")
        assert args.func(args) == 2
        assert "max_iterations" in capsys.readouterr().err


def test_python_m_serves_the_openai_api_with_a_key(tmp_path: Path) -> None:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([code("FINAL('served: ' + context)")]), encoding="utf-8")
    help_text = subprocess.run([sys.executable, "-m", "unbounded.serve", "serve", "--help"], capture_output=True,
                               text=True, env={"PYTHONPATH": str(ROOT / "src")}, timeout=60)  # fmt: skip
    assert help_text.returncode == 0 and "--allow-path" in help_text.stdout and "--api-key" in help_text.stdout
    with child_server("--model", f"scripted/{replies}", "--repl", "inprocess", env={cli.KEY_ENV: "child-key-1"}) as srv:
        client = openai.OpenAI(base_url=srv.base, api_key="child-key-1", max_retries=0)
        resp = client.chat.completions.create(
            model="rlm", messages=[{"role": "system", "content": "ctx"}, {"role": "user", "content": "q"}]
        )
        assert resp.choices[0].message.content == "served: ctx"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=srv.base, api_key="other-key-1", max_retries=0).models.list()


@pytest.mark.slow
def test_the_embedded_model_answers_through_the_server(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="needs pip install 'unbounded[local]'")
    filler = [f"Entry {i}: the weather was mild and nothing happened." for i in range(300)]
    filler[217] = "Entry 217: the magic number is 4817."
    with child_server("--model", "local/qwen2.5-coder-1.5b", "--max-iterations", "6") as srv:
        client = openai.OpenAI(base_url=srv.base, api_key="unused", max_retries=0, timeout=600)
        resp = client.chat.completions.create(
            model="rlm",
            messages=[{"role": "system", "content": "\n".join(filler)},
                      {"role": "user", "content": "What is the magic number?"}],
        )
    assert "4817" in (resp.choices[0].message.content or "")
    assert resp.usage.total_tokens > 0 and resp.model_extra["unbounded"]["status"] in ("final", "max_iterations")
