"""Load and disconnects: 50 concurrent requests all answered or cleanly 429'd with nothing lost and no
worker left; a client that goes away mid-run (a real socket closed) cancels the run within a second."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import code, live_children
from test_serve_support import answering, child_server, children_of, config, running, wait_until
from unbounded.models import ScriptedLM
from unbounded.trace import read_trace

pytestmark = pytest.mark.network


def test_fifty_concurrent_requests_are_answered_or_cleanly_refused() -> None:
    before = set(live_children())
    root = answering("FINAL('echo:' + context)", latency=0.2)
    with running(config(root, repl="process", max_concurrent=4, max_queue=8)) as srv:

        async def one(client: httpx.AsyncClient, i: int) -> httpx.Response:
            body = {"model": "rlm", "messages": [{"role": "system", "content": f"req-{i}"},
                                                 {"role": "user", "content": "echo"}]}  # fmt: skip
            return await client.post(srv.base + "/chat/completions", json=body)

        async def go() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=60)
            async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                return await asyncio.gather(*(one(client, i) for i in range(50)))

        responses = asyncio.run(go())
        ok = [(i, r) for i, r in enumerate(responses) if r.status_code == 200]
        refused = [r for r in responses if r.status_code == 429]
        assert len(ok) + len(refused) == 50, [r.status_code for r in responses]
        assert len(ok) >= 12  # every slot and queue place was used
        for i, r in ok:  # each answer is its own request's
            assert r.json()["choices"][0]["message"]["content"] == f"echo:req-{i}"
        for r in refused:
            err = r.json()["error"]
            assert err["type"] == "rate_limit_error" and err["code"] == "overloaded"
            assert int(r.headers["retry-after"]) >= 1
        assert wait_until(lambda: srv.service.gate.running == 0 and srv.service.gate.queued == 0)
        assert wait_until(lambda: not (set(live_children()) - before))  # no worker left
        metrics = httpx.get(srv.url + "/metrics").text
        assert f'unbounded_runs_total{{status="final"}} {float(len(ok))}' in metrics
        assert f'unbounded_errors_total{{kind="overloaded"}} {float(len(refused))}' in metrics
        assert "unbounded_runs_in_flight 0.0" in metrics and "unbounded_runs_queued 0.0" in metrics
        assert 'unbounded_run_seconds_count' in metrics and 'unbounded_tokens_total{kind="input",model="scripted"}' in metrics
        # after the burst the server takes new work at once
        assert httpx.post(srv.base + "/chat/completions", json={"model": "rlm", "messages": [
            {"role": "system", "content": "late"}, {"role": "user", "content": "q"}]}).status_code == 200  # fmt: skip


def raw_stream(port: int, body: dict) -> socket.socket:
    """A real socket with a streaming chat request sent on it."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    return sock


def read_until(sock: socket.socket, marker: bytes, timeout: float = 20) -> bytes:
    sock.settimeout(timeout)
    seen = b""
    while marker not in seen:
        piece = sock.recv(65536)
        if not piece:
            break
        seen += piece
    return seen


SLEEPING_CELL = code("import time\ntime.sleep(60)\nFINAL('too late')")


@pytest.mark.parametrize("stream", [True, False])
def test_a_client_that_disconnects_cancels_its_run_within_a_second(stream: bool) -> None:
    before = set(live_children())
    root = ScriptedLM([SLEEPING_CELL])
    with running(config(root, repl="process")) as srv:
        port = int(srv.url.rsplit(":", 1)[1])
        sock = raw_stream(port, {"model": "rlm", "messages": [{"role": "user", "content": "q"}], "stream": stream})
        if stream:
            assert b'"lm_response"' in read_until(sock, b'"lm_response"')  # the model replied: its cell now runs
        else:
            assert wait_until(lambda: len(root.calls) == 1, timeout=20)
        assert wait_until(lambda: len(set(live_children()) - before) == 1, timeout=20)  # the worker is busy
        time.sleep(0.3)
        closed = time.monotonic()
        sock.close()
        assert wait_until(lambda: not (set(live_children()) - before), timeout=3)
        assert wait_until(lambda: srv.service.gate.running == 0, timeout=3)
        took = time.monotonic() - closed
        assert took < 1.0, took
        entry = srv.service.traces.owned("local")[-1]
        ends = [e for e in read_trace(entry.path) if e.type == "run_end"]
        assert ends and ends[-1].data["status"] == "interrupted"
        assert 'unbounded_runs_total{status="cancelled"} 1.0' in httpx.get(srv.url + "/metrics").text


def test_disconnecting_during_sub_calls_cancels_them() -> None:
    root = ScriptedLM([code("out = llm_batch(['p'] * 100)\nFINAL(str(len(out)))")])
    sub = ScriptedLM(lambda ms: "ok", latency=0.5, name="sub", max_concurrency=8)
    with running(config(root, sub_model=sub, repl="process")) as srv:
        port = int(srv.url.rsplit(":", 1)[1])
        sock = raw_stream(port, {"model": "rlm", "messages": [{"role": "user", "content": "q"}], "stream": True})
        read_until(sock, b'"subcall_start"')
        assert wait_until(lambda: sub.in_flight > 0)
        sock.close()
        assert wait_until(lambda: sub.in_flight == 0, timeout=1.0)
        assert len(sub.calls) < 100


def test_a_request_waiting_in_the_queue_gives_its_place_back_when_its_client_leaves() -> None:
    root = answering("FINAL('done')", latency=1.5)
    with running(config(root, max_concurrent=1, max_queue=1)) as srv:
        port = int(srv.url.rsplit(":", 1)[1])
        first = raw_stream(port, {"model": "rlm", "messages": [{"role": "user", "content": "q"}], "stream": True})
        assert wait_until(lambda: srv.service.gate.running == 1)
        second = raw_stream(port, {"model": "rlm", "messages": [{"role": "user", "content": "q"}]})
        assert wait_until(lambda: srv.service.gate.queued == 1)
        second.close()
        assert wait_until(lambda: srv.service.gate.queued == 0, timeout=1.0)
        assert b"data: [DONE]" in read_until(first, b"data: [DONE]")
        first.close()


def test_a_child_server_process_kills_the_worker_of_a_dropped_run(tmp_path: Path) -> None:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([SLEEPING_CELL]), encoding="utf-8")
    trace_dir = tmp_path / "traces"
    with child_server("--model", f"scripted/{replies}", "--trace-dir", str(trace_dir)) as srv:
        body = json.dumps({"model": "rlm", "messages": [{"role": "user", "content": "q"}], "stream": True})
        curl = subprocess.Popen(["curl", "-sS", "-N", "-H", "Content-Type: application/json", "-d", body,
                                 srv.base + "/chat/completions"], stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert curl.stdout is not None
        for line in curl.stdout:
            if '"lm_response"' in line:
                break
        assert wait_until(lambda: len(children_of(srv.proc.pid)) == 1, timeout=20)  # the REPL worker
        time.sleep(0.3)
        curl.kill()
        curl.wait()
        closed = time.monotonic()
        assert wait_until(lambda: not children_of(srv.proc.pid), timeout=3)
        assert time.monotonic() - closed < 1.0
        (trace,) = trace_dir.glob("run_*.jsonl")
        assert wait_until(lambda: any(e.type == "run_end" for e in read_trace(trace)), timeout=3)
        assert [e.data["status"] for e in read_trace(trace) if e.type == "run_end"] == ["interrupted"]
        assert srv.proc.poll() is None  # the server lives on
        assert httpx.get(srv.url + "/healthz").json()["in_flight"] == 0
