"""An OpenAI-compatible ``llama_cpp.server`` on loopback, serving a local GGUF.

Methods that only speak OpenAI (the official ``rlms`` library) reach the embedded model through it,
so they run on the same weights as every other method. The server is a child process with its own
copy of the model context; it listens on 127.0.0.1 only, on a free port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..errors import ConfigError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_available() -> str | None:
    """None when ``llama_cpp.server`` can be started here, else why not."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed (pip install 'unbounded[local]')"
    missing = []
    for module in ("fastapi", "uvicorn", "sse_starlette", "pydantic_settings", "starlette_context"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        return f"llama_cpp.server needs {', '.join(missing)} (pip install 'llama-cpp-python[server]')"
    return None


@dataclass
class LlamaServer:
    """``python -m llama_cpp.server`` for one GGUF; ``start()`` waits until it answers."""

    model_path: Path
    n_ctx: int = 32_768
    n_threads: int | None = None
    alias: str = "local-model"
    port: int | None = None
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
        ]
        if self.n_threads:
            cmd += ["--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads)]
        return cmd

    def start(self, timeout: float = 300.0) -> str:
        """Start the server and return its base URL; raise ConfigError with its log if it does not come up."""
        problem = server_available()
        if problem:
            raise ConfigError(problem)
        if self.process is not None:
            return self.base_url
        self.port = self.port or free_port()
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(os.environ)
            )
        finally:
            if self.log_path:
                log.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigError(f"llama_cpp.server exited with code {self.process.returncode}{self._log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return self.base_url
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise ConfigError(f"llama_cpp.server did not answer within {timeout:g} s{self._log_tail()}")

    def _log_tail(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace")[-2_000:]
        return f"; its log ({self.log_path}) ends:\n{tail}"

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
