"""Engine overhead, as a development checkout measures it: every case of ``unbounded bench overhead``
(scripted models: turns, ``llm_batch`` fan-out, time to first call and peak memory for big contexts)
plus the case those cannot show, a real HTTP backend.

    python benchmarks/overhead.py                 # all cases
    python benchmarks/overhead.py --http-only     # only the HTTP-backend case
    python benchmarks/overhead.py --turns 200 --http-turns 31

The HTTP case: an OpenAI-compatible server in a separate process on loopback answers instantly with
scripted code (one cell per turn, then ``FINAL``). The engine runs ``--http-turns`` turns against it
through the real ``openai-compatible`` backend (the ``openai`` SDK). What the engine adds per turn is
the CPU time of the run from its first root call to its last (the host's threads and the REPL
worker), less the CPU spent inside the SDK's calls, per turn: everything but the SDK, the wire and
the server — message building, budget reservations, the trace, the answer guard, the REPL round
trip, event-loop hops. (CPU, not wall time: wall time on a busy 2-core machine swings by
milliseconds.) As a cross-check the same requests are also replayed on a bare ``openai.AsyncOpenAI``
client and that replay's CPU is subtracted instead.
When the authors' library (``pip install rlms``) is installed, the same server and turns are run
through it, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TARGET_MS = 0.5


# -- the loopback server (run in its own process: `overhead.py --serve PORTFILE TURNS`) ---------------
def _reply_for(body: dict[str, Any], turns: int) -> str:
    """Turn i (the number of assistant messages so far) gets cell i; the last turn gives the answer."""
    done = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
    if done + 1 >= turns:
        return "```python\nFINAL('done')\n```"
    return f"```python\nx{done} = {done} * 2\nprint(x{done})\n```"


def serve(port_file: str, turns: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            text = _reply_for(body, turns)
            payload = json.dumps(
                {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "bench"),
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


class LoopbackServer:
    """The scripted server in a child process, for the duration of a ``with`` block."""

    def __init__(self, turns: int, workdir: Path) -> None:
        self.turns = turns
        self.port_file = workdir / "port"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LoopbackServer:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(self.port_file), str(self.turns)])
        deadline = time.monotonic() + 20
        while not (self.port_file.exists() and self.port_file.read_text()):
            if time.monotonic() > deadline:
                raise RuntimeError("the loopback server did not start")
            time.sleep(0.02)
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port_file.read_text()}/v1"

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


# -- the HTTP case ----------------------------------------------------------------------------------
def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (0 for any that is gone)."""
    import os

    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    from unbounded.bench.overhead import _descendants as below

    return below(pid)


def _engine_run(base_url: str, turns: int, repl: str, server_pid: int) -> tuple[Span, list[list[dict[str, str]]]]:
    """One RLM run through the real backend, measured from its first root call to its last (so REPL
    start and shutdown are not counted as turns); returns that span and the requests sent in it."""
    import os

    from unbounded import RLM, Budget
    from unbounded.models import resolve_model

    lm = resolve_model(f"openai-compatible/bench@{base_url}")
    sent: list[list[dict[str, str]]] = []
    original = lm.build_request

    def recording(messages: Any, **opts: Any) -> Any:
        request = original(messages, **opts)
        sent.append(request["messages"])
        return request

    lm.build_request = recording  # type: ignore[method-assign]
    in_sdk = [0.0, 0.0]  # wall and CPU seconds inside the SDK call (the wire and the server included)
    send = lm._send

    async def timed_send(client: Any, request: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return await send(client, request)
        finally:
            if len(marks) < turns:  # only calls inside the measured span
                in_sdk[0] += time.perf_counter() - wall
                in_sdk[1] += time.thread_time() - cpu

    lm._send = timed_send  # type: ignore[method-assign]
    marks: list[tuple[float, float, float]] = []
    workers: list[int] = []

    def on_event(event: Any) -> None:
        if event.type != "lm_request":
            return
        if not workers:  # the REPL worker's processes (not the loopback server)
            workers.extend(p for p in _descendants(os.getpid()) if p != server_pid)
            workers.append(-1)
        if len(marks) in (0, turns - 1):
            marks.append((time.perf_counter(), time.process_time(), _cpu_seconds(workers)))
        else:
            marks.append(marks[-1])

    rlm = RLM(
        model=lm, repl=repl, budget=Budget(max_iterations=turns + 1, max_llm_calls=turns + 5), on_event=on_event
    )
    result = rlm.run("benchmark", "context " * 1000)
    assert result.answer == "done" and len(marks) == turns, result
    (w0, c0, k0), (w1, c1, k1) = marks[0], marks[-1]
    # From the first request to the last: turns - 1 whole turns, each with one model call.
    return Span(w1 - w0, (c1 - c0) + (k1 - k0), in_sdk[0], in_sdk[1]), sent[:-1]


@dataclass
class Span:
    """A measured stretch of a run: wall and CPU seconds (host threads and REPL worker), and how much
    of each was spent inside the SDK's calls (the SDK, the wire and the server)."""

    wall: float
    cpu: float
    sdk_wall: float = 0.0
    sdk_cpu: float = 0.0


def _replay(base_url: str, requests: list[list[dict[str, str]]]) -> Span:
    """The same requests, one after another, on a bare SDK client: what the SDK and server cost."""
    import openai

    async def go() -> Span:
        # Like the engine's backend, the client is made inside the measured span (its first call).
        wall, cpu = time.perf_counter(), time.process_time()
        client = openai.AsyncOpenAI(api_key="sk-no-key-required", base_url=base_url, max_retries=0)
        try:
            for messages in requests:
                await client.chat.completions.create(model="bench", messages=messages, max_tokens=1024, temperature=0)
            return Span(time.perf_counter() - wall, time.process_time() - cpu)
        finally:
            await client.close()

    return asyncio.run(go())


def _rlms_run(base_url: str, turns: int) -> float | None:
    """The authors' library on the same server and turns (None when it is not installed)."""
    try:
        import rlm
    except ImportError:
        return None
    engine = rlm.RLM(
        backend="openai",
        backend_kwargs={"base_url": base_url, "model_name": "bench", "api_key": "sk-no-key-required"},
        environment="local",
        max_iterations=turns + 1,
    )
    started = time.perf_counter()
    engine.completion("context " * 1000, root_prompt="benchmark")
    return time.perf_counter() - started  # includes its setup: an upper bound per turn


def bench_http(turns: int, repeats: int, repls: list[str]) -> dict[str, Any]:
    import tempfile

    out: dict[str, Any] = {"turns": turns}
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(turns, Path(tmp)) as server:
        assert server.proc is not None
        for repl in repls:
            cpu, wall, replayed = [], [], []
            _engine_run(server.base_url, turns, repl, server.proc.pid)  # warm: imports, first connection
            for _ in range(repeats):
                span, sent = _engine_run(server.base_url, turns, repl, server.proc.pid)
                replay = _replay(server.base_url, sent)
                cpu.append((span.cpu - span.sdk_cpu) / len(sent) * 1000)
                wall.append((span.wall - span.sdk_wall) / len(sent) * 1000)
                replayed.append((span.cpu - replay.cpu) / len(sent) * 1000)
            out[repl] = {
                "cpu_ms": statistics.median(cpu),
                "wall_ms": statistics.median(wall),
                "replay_cpu_ms": statistics.median(replayed),
                "cpu_runs_ms": [round(x, 3) for x in cpu],
            }
        rlms_walls = []
        for _ in range(repeats):
            wall_s = _rlms_run(server.base_url, turns)
            if wall_s is None:
                break
            rlms_walls.append(wall_s)
        if rlms_walls:
            # Our replay stands in for theirs: the same server and the same number of calls.
            _, sent = _engine_run(server.base_url, turns, "inprocess", server.proc.pid)
            replay = _replay(server.base_url, sent)
            out["rlms"] = {"wall_ms": statistics.median((w - replay.wall) / len(sent) * 1000 for w in rlms_walls)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--http-only", action="store_true", help="only the HTTP-backend case")
    ap.add_argument("--http-turns", type=int, default=31, help="turns per HTTP run (default 31)")
    ap.add_argument("--http-repeats", type=int, default=5, help="runs per REPL mode (default 5; the median is shown)")
    args, rest = ap.parse_known_args(argv)
    if not args.http_only:
        # In a process of their own: their 200-turn runs must not leave this one's heap bigger.
        subprocess.run([sys.executable, "-m", "unbounded.bench.overhead", *rest], check=True)
    result = bench_http(args.http_turns, args.http_repeats, ["process", "inprocess"])
    print()
    print(f"{'HTTP backend (loopback, zero-latency server)':<56} {'value':>16}   {'target':<12}")
    print("-" * 92)
    for repl in ("process", "inprocess"):
        ms = result[repl]["cpu_ms"]
        mark = "PASS" if ms <= TARGET_MS else "MISS"
        print(f"{f'engine overhead per turn, {repl} REPL (CPU, median)':<56} {ms:>13.2f} ms   {'<= 0.5 ms':<12} {mark}")
        print(f"{'   same, wall clock (noisy on a busy machine)':<56} {result[repl]['wall_ms']:>13.2f} ms")
        print(f"{'   same, SDK cost taken from a replay of the requests':<56} {result[repl]['replay_cpu_ms']:>13.2f} ms")
    if "rlms" in result:
        label = "rlms (authors' library), same server, wall (median)"
        print(f"{label:<56} {result['rlms']['wall_ms']:>13.2f} ms")
    else:
        print("rlms (the authors' library) is not installed (pip install rlms): no side-by-side row")
    print(
        f"({result['turns']} turns a run; the SDK's own cost, measured around each of its calls in the run, is "
        "subtracted; the replay row takes it from the same requests sent again on a bare client)"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(main())
