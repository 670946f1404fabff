"""The command tree: every command and subcommand answers --help, and nothing offered is refused."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from unbounded.cli import build_parser


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(build_parser()))


def test_the_tree_has_every_command() -> None:
    names = {" ".join(c) for c in COMMANDS}
    for expected in ("ask", "trace", "view", "models", "bench", "bench run", "bench report", "bench export", "bench overhead"):
        assert expected in names
    assert "bench local" not in names  # offered once by the help and refused by the parser


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "unbounded")
def test_every_command_answers_help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: unbounded" + "".join(f" {c}" for c in command))


def test_every_subcommand_listed_in_a_help_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    for command in COMMANDS:
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command, "--help"])
        out = capsys.readouterr().out
        for listed in COMMANDS:
            if len(listed) == len(command) + 1 and listed[: len(command)] == command:
                assert listed[-1] in out


def test_an_unknown_subcommand_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "unbounded", "bench", "local"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_deprecated_option_names_still_work() -> None:
    args = build_parser().parse_args(["ask", "q", "-", "--max-tokens", "100", "--timeout", "5"])
    assert (args.max_total_tokens, args.max_seconds) == (100, 5.0)
