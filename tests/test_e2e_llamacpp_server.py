"""The OpenAI-compatible path end to end, against a real server: llama-cpp-python's own
``python -m llama_cpp.server`` serving the embedded small model on loopback.

The server runs as a subprocess for the whole module. Between it and the backend sits a tiny
recording proxy, so the tests can compare what the server really sent (its ``usage`` blocks) with
what the run reports. The point is the protocol path, not model quality: with the 0.5B model the
tests assert protocol facts only; the answer is asserted only with the 1.5B model
(``UNBOUNDED_E2E_SERVER_MODEL=qwen2.5-coder-1.5b``).

Needs the ``llama-cpp-python[server]`` extra (fastapi, uvicorn, sse-starlette, starlette-context,
pydantic-settings) and the embedded weights; skipped when either is missing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from unbounded import RLM, Budget
from unbounded.models import Message, Usage
from unbounded.models.registry import resolve_model
from unbounded.trace import read_trace

pytestmark = [pytest.mark.network, pytest.mark.slow]

MODEL = os.environ.get("UNBOUNDED_E2E_SERVER_MODEL", "qwen2.5-coder-0.5b")
#: llama.cpp threads; the server's default is half the cores, which also behaves on a busy machine.
THREADS = os.environ.get("UNBOUNDED_E2E_SERVER_THREADS")
STARTUP_TIMEOUT = 90.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a recording pass-through proxy -------------------------------------------------------------


@dataclass
class Exchange:
    path: str
    request: Any
    status: int
    response: Any


@dataclass
class _ProxyState:
    upstream: str
    exchanges: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    state: _ProxyState


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _forward(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else None
        req = urllib.request.Request(self.server.state.upstream + self.path, data=raw, method=method)
        req.add_header("Content-Type", self.headers.get("Content-Type", "application/json"))
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:
                status, data, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, data, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
        try:
            body: Any = json.loads(data)
        except ValueError:
            body = data.decode("utf-8", "replace")
        with self.server.state.lock:
            self.server.state.exchanges.append(Exchange(self.path, json.loads(raw) if raw else None, status, body))
        self.send_response(status)
        self.send_header("Content-Type", ctype or "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self._forward("POST")

    def do_GET(self) -> None:
        self._forward("GET")


class RecordingProxy:
    def __init__(self, upstream: str) -> None:
        self._httpd = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self._httpd.state = _ProxyState(upstream.rstrip("/"))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def completions(self) -> list[Exchange]:
        with self._httpd.state.lock:
            return [e for e in self._httpd.state.exchanges if e.path.endswith("/chat/completions")]

    def clear(self) -> None:
        with self._httpd.state.lock:
            self._httpd.state.exchanges.clear()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


# -- the llama.cpp server -----------------------------------------------------------------------


@dataclass
class LlamaServer:
    url: str  # http://127.0.0.1:<port>
    alias: str
    proxy: RecordingProxy

    @property
    def base_url(self) -> str:
        """The OpenAI base URL through the recording proxy."""
        return f"{self.proxy.url}/v1"


def _model_file() -> Path:
    try:
        from unbounded.models.weights import ensure_model_file

        return Path(ensure_model_file(MODEL))
    except Exception as exc:  # weights packages not installed
        pytest.skip(f"embedded weights for {MODEL} not available: {exc}")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    try:
        import llama_cpp.server.app  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"llama_cpp.server needs the server extra: pip install 'llama-cpp-python[server]' ({exc})")
    gguf = _model_file()
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "8192",
        "--seed",
        "0",
        "--verbose",
        "false",
    ]
    if THREADS:
        cmd += ["--n_threads", THREADS]
    log = open(log_path, "wb")  # noqa: SIM115
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    proxy = None
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                log.flush()
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as resp:
                    models = json.loads(resp.read())
                break
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"llama_cpp.server not ready after {STARTUP_TIMEOUT:.0f}s:\n{log_path.read_text()[-3000:]}"
                    )
                time.sleep(0.2)
        assert [m["id"] for m in models["data"]] == [MODEL]
        proxy = RecordingProxy(url)
        yield LlamaServer(url, MODEL, proxy)
    finally:
        if proxy is not None:
            proxy.close()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture
def server(llama_server: LlamaServer) -> LlamaServer:
    llama_server.proxy.clear()
    return llama_server


def _server_usage(exchanges: list[Exchange]) -> Usage:
    total = Usage(cost_usd=0.0)
    for e in exchanges:
        assert e.status == 200, e.response
        u = e.response["usage"]
        assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
        total.add(Usage(1, u["prompt_tokens"], u["completion_tokens"], 0, 0.0))
    return total


# -- tests --------------------------------------------------------------------------------------


async def test_complete_reports_the_servers_usage(server: LlamaServer) -> None:
    lm = resolve_model(f"llamacpp/{server.alias}", base_url=server.base_url, read_timeout=120, max_attempts=2)
    assert lm.name == f"llamacpp/{server.alias}"
    messages = [Message("system", "You are terse."), Message("user", "Reply with the word: pong")]
    try:
        c = await lm.complete(messages, temperature=0.0, max_tokens=12, seed=0)
    finally:
        await lm.aclose()
    (ex,) = server.proxy.completions  # one request, no retries
    sent = ex.request
    assert sent["model"] == server.alias
    assert sent["messages"] == [m.to_dict() for m in messages]
    assert sent["max_tokens"] == 12 and sent["temperature"] == 0.0
    assert c.text.strip() and c.text == ex.response["choices"][0]["message"]["content"]
    assert c.model == ex.response["model"] == server.alias
    assert c.finish_reason == ex.response["choices"][0]["finish_reason"]
    assert c.extra["attempts"] == 1 and not c.cached
    u = ex.response["usage"]
    assert (c.usage.calls, c.usage.input_tokens, c.usage.output_tokens) == (
        1,
        u["prompt_tokens"],
        u["completion_tokens"],
    )
    assert c.usage.input_tokens > 10 and 0 < c.usage.output_tokens <= 12
    assert c.usage.cost_usd == 0.0  # a local server is free, so a cost limit can be enforced

    # The same call through the generic spec string: same request on the wire, same greedy answer.
    spec = resolve_model(f"openai-compatible/{server.alias}@{server.base_url}", read_timeout=120, max_attempts=2)
    assert spec.name == f"openai-compatible/{server.alias}@{server.base_url}"
    assert spec.price() == (0.0, 0.0, 0.0)  # loopback: free
    try:
        again = await spec.complete(messages, temperature=0.0, max_tokens=12, seed=0)
    finally:
        await spec.aclose()
    first, second = server.proxy.completions
    assert second.request == first.request
    assert again.text == c.text
    u2 = second.response["usage"]
    assert (again.usage.input_tokens, again.usage.output_tokens) == (u2["prompt_tokens"], u2["completion_tokens"])
    assert again.usage.input_tokens == c.usage.input_tokens


def test_rlm_run_over_the_server(server: LlamaServer, tmp_path: Path) -> None:
    lines = [f"row {i:05d}: status=idle load={i % 97} region=eu-{i % 7}" for i in range(1200)]
    lines[777] = "The access code for the vault is 58213."
    context = "\n".join(lines)
    assert 50_000 <= len(context) <= 70_000
    lm = resolve_model(f"llamacpp/{server.alias}", base_url=server.base_url, read_timeout=120, max_attempts=2)
    trace = tmp_path / "t.jsonl"
    rlm = RLM(
        model=lm,
        repl="process",
        budget=Budget(max_iterations=6),
        prompt_style="compact",
        trace=trace,
        model_options={"max_tokens": 160, "seed": 0},
    )
    result = rlm.run("What is the access code for the vault?", context)

    assert result.status in ("final", "max_iterations"), (result.status, result.error)
    if MODEL == "qwen2.5-coder-1.5b":
        assert result.answer is not None and "58213" in result.answer
    # Usage is exactly the sum of the usage blocks the server sent, for every call the run made.
    exchanges = server.proxy.completions
    sent = _server_usage(exchanges)
    assert set(result.usage) == {lm.name}
    u = result.usage[lm.name]
    assert (u.calls, u.input_tokens, u.output_tokens) == (sent.calls, sent.input_tokens, sent.output_tokens)
    assert u.calls >= 1 and u.input_tokens > 0 and u.output_tokens > 0
    assert u.cost_usd == 0.0
    # Every request the server saw was sent as the engine asked: greedy, capped, compact-style stops.
    for ex in exchanges:
        assert ex.request["model"] == server.alias
        assert ex.request["temperature"] == 0.0 and ex.request["max_tokens"] == 160
        assert ex.request["stop"]
        assert len(json.dumps(ex.request)) < 20_000  # the context itself never travels to the root model
    # The trace: one lm_response per lm_request, with the server's usage on each.
    events = read_trace(trace)
    reqs = [e for e in events if e.type == "lm_request"]
    resps = {e.id: e for e in events if e.type == "lm_response"}
    assert len(reqs) == len(resps) == len(exchanges) == u.calls
    for req, ex in zip(reqs, exchanges, strict=True):
        resp = resps[req.id]
        assert "error" not in resp.data and resp.data["cached"] is False
        assert resp.data["model"] == lm.name
        assert resp.data["usage"]["input_tokens"] == ex.response["usage"]["prompt_tokens"]
        assert resp.data["usage"]["output_tokens"] == ex.response["usage"]["completion_tokens"]
        assert resp.data["finish_reason"] == ex.response["choices"][0]["finish_reason"]
    if MODEL == "qwen2.5-coder-1.5b":  # model behaviour, not protocol: only for the model that can do it
        assert [e for e in events if e.type == "cell"], "the model's replies should hold code that ran in the REPL"
    (end,) = [e for e in events if e.type == "run_end"]
    assert end.data["ledger"]["calls"] == u.calls
    assert end.data["ledger"]["tokens"] == u.input_tokens + u.output_tokens
