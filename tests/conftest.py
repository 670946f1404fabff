from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def code(src: str) -> str:
    """A model reply holding one python block."""
    return f"```python\n{src.strip()}\n```"


@pytest.fixture(autouse=True, scope="session")
def _private_warm_start_states(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Saved llama.cpp prefix states of this test run only: a state from another run must not make a
    first call look warm."""
    os.environ.setdefault("UNBOUNDED_STATE_DIR", str(tmp_path_factory.mktemp("llama-state")))


@pytest.fixture(params=["process", "inprocess"])
def repl_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def haystack() -> str:
    lines = [f"line {i}: the quick brown fox jumps over the lazy dog" for i in range(20_000)]
    lines[13_337] = "The magic number is 4817."
    return "\n".join(lines)


#: multiprocessing's own helpers, which live as long as the process that started them (the batch
#: pool's forkserver and resource tracker): not leaks of the test that happened to start them.
_MULTIPROCESSING_HELPERS = (b"multiprocessing.resource_tracker", b"multiprocessing.forkserver")


def live_children(pid: int | None = None, *, helpers: bool = False) -> list[int]:
    """PIDs of a process's live (non-zombie) children; multiprocessing's helpers only with ``helpers``."""
    pid = pid or os.getpid()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            if not helpers and any(h in cmdline for h in _MULTIPROCESSING_HELPERS):
                continue
            out.append(int(entry.name))
    return out
