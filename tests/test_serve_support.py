"""Helpers for the server tests (this module holds no tests): a real uvicorn server on loopback,
in a thread of this process or as a child process, and scripted models for it."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client", reason="the server needs pip install 'unbounded[serve]'")
pytest.importorskip("uvicorn", reason="the server needs pip install 'unbounded[serve]'")

import uvicorn

from conftest import ROOT, code
from unbounded.models import Message, ScriptedLM
from unbounded.serve import ServeConfig, create_app
from unbounded.serve.cli import bind


@dataclass
class Running:
    url: str  # http://127.0.0.1:PORT
    app: Any
    server: uvicorn.Server

    @property
    def base(self) -> str:
        return self.url + "/v1"

    @property
    def service(self) -> Any:
        return self.app.service


@contextlib.contextmanager
def running(config: ServeConfig) -> Iterator[Running]:
    """``config`` served by uvicorn on a free loopback port, in a thread; stopped (lifespan run) after."""
    app = create_app(config)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield Running(f"http://127.0.0.1:{port}", app, server)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@dataclass
class Child:
    proc: subprocess.Popen[str]
    url: str
    stderr_lines: list[str]

    @property
    def base(self) -> str:
        return self.url + "/v1"


@contextlib.contextmanager
def child_server(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Iterator[Child]:
    """``python -m unbounded.serve serve --port 0 ARGS`` as a child process, until it says where it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "unbounded.serve", "serve", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
        cwd=cwd,
    )
    lines: list[str] = []
    url = None
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"listening on (http://\S+?)/v1", line)
        if m:
            url = m.group(1)
    if url is None:
        proc.kill()
        raise RuntimeError("the server did not start: " + "".join(lines))
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()  # type: ignore[arg-type]
    try:
        yield Child(proc, url, lines)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def question_of(messages: list[Message]) -> str:
    """The question a root prompt carries (its last user message)."""
    return next(m.content for m in reversed(messages) if m.role == "user")


def answering(src: str, **kwargs: Any) -> ScriptedLM:
    """A root model whose every reply is one cell of ``src``."""
    return ScriptedLM(lambda ms: code(src), **kwargs)


def config(model: Any, **kwargs: Any) -> ServeConfig:
    kwargs.setdefault("repl", "inprocess")
    return ServeConfig(model=model, **kwargs)


def children_of(pid: int) -> list[int]:
    from conftest import live_children

    return live_children(pid)


def wait_until(predicate: Any, timeout: float = 5.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
