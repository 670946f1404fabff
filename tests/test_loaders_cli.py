"""The command line's input options, parsed by argparse and fed to ``load_inputs``."""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import pytest

from unbounded.context import load_inputs
from unbounded.errors import ConfigError
from unbounded.loaders.arguments import add_load_arguments, load_options


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="unbounded ask")
    parser.add_argument("paths", nargs="*")
    add_load_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_give_no_options() -> None:
    assert load_options(parse("src/")) == {}


def test_every_option_maps_to_a_load_option() -> None:
    args = parse(
        "a", "--include", "*.py", "--include", "docs/**", "--exclude", "tests/", "--no-gitignore",
        "--no-default-excludes", "--follow-symlinks", "--no-notebook-outputs", "--encoding", "cp1252",
        "--max-file-size", "512M", "--max-decompressed", "2G", "--max-total-size", "10g", "--max-rows", "5,000",
    )  # fmt: skip
    assert load_options(args) == {
        "include": ("*.py", "docs/**"),
        "exclude": ("tests/",),
        "gitignore": False,
        "skip_dirs": (),
        "follow_symlinks": True,
        "notebook_outputs": False,
        "fallback_encoding": "cp1252",
        "max_file_bytes": 512 * 1024**2,
        "max_decompressed_bytes": 2 * 1024**3,
        "max_total_bytes": 10 * 1024**3,
        "max_rows": 5000,
    }


@pytest.mark.parametrize(
    ("flag", "value"), [("--max-file-size", "lots"), ("--max-rows", "0"), ("--max-decompressed", "-1")]
)
def test_bad_values_are_usage_errors(flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse("x", flag, value)
    assert exc.value.code == 2 and flag in capsys.readouterr().err


def test_options_reach_the_loaders(tmp_path: Path) -> None:
    (tmp_path / "keep.py").write_text("x = 1")
    (tmp_path / "skip.md").write_text("# no")
    (tmp_path / "big.log.gz").write_bytes(gzip.compress(b"z" * 5000))
    args = parse(str(tmp_path), "--exclude", "*.md", "--max-decompressed", "1k")
    loaded = load_inputs(args.paths, **load_options(args))
    assert loaded.value == {"keep.py": "x = 1"}
    assert "expands past the cap of 1 KB" in loaded.info.skipped[0].reason
    args = parse("-", "--encoding", "latin-1")
    assert load_inputs(args.paths, stdin=io.BytesIO(b"caf\xe9"), **load_options(args)).value == "café"
    args = parse("-", "--encoding", "no-such-codec")
    with pytest.raises(ConfigError, match="unknown fallback_encoding"):
        load_inputs(args.paths, stdin=io.BytesIO(b"x"), **load_options(args))
