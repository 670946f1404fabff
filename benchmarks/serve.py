"""Figures for ``unbounded serve``: what the server adds to a run, what a warm session costs, and how
soon a question about a registered 400 MB context starts answering.

    python benchmarks/serve.py                      # all three (about two minutes; 400 MB of RAM twice over)
    python benchmarks/serve.py --context-mb 100     # a smaller registered context
    python benchmarks/serve.py --skip-ttft          # only the overhead and memory figures

1. **Overhead per request** at 20 concurrent scripted runs (the root model replies after
   ``--latency`` seconds; ``--repl inprocess`` by default, since a worker's start costs the same on
   both paths and its noise on a small machine would hide the server's part). The same runs are made
   by calling the library directly (``await RLM(...).arun``) and through the server with an HTTP
   client (a minimal one on asyncio streams, so an HTTP library's own cost is not counted).
   Printed: latency p50/p99 of both, their difference, the server's own overhead per request from its
   ``Server-Timing`` header (time in the server that is not the run or the queue), and CPU per run.
2. **Memory per idle warm session**: contexts registered with ``POST /v1/contexts`` (process REPL),
   the resident memory of the server and of its workers before and after.
3. **Time to first token** of a streamed question about a registered context of ``--context-mb``
   (read from a file in an allowed folder): the first SSE chunk, the first progress event, the
   answer's first content, and the whole; and the same question asked without registering first.

The server runs in a child process (this script with ``--child``), so client and server do not share
an event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

REPLY = "```python\nFINAL(str(len(context)))\n```"


def scripted(latency: float):
    from unbounded.models import ScriptedLM

    return ScriptedLM(lambda ms: REPLY, latency=latency)


# -- the child: a server ------------------------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    import uvicorn

    from unbounded.serve import ServeConfig, create_app
    from unbounded.serve.cli import bind

    config = ServeConfig(
        model=scripted(args.latency),
        repl=args.child_repl,
        allow_paths=[Path(args.allow_path)],
        max_concurrent=args.concurrency,
        max_queue=10_000,
        context_memory_chars=4 * 1024**3,
        max_contexts=64,
    )
    app = create_app(config)
    sock = bind("127.0.0.1", 0)
    print(sock.getsockname()[1], flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")).run(sockets=[sock])


class Server:
    def __init__(self, repl: str, args: argparse.Namespace, allow: Path) -> None:
        cmd = [sys.executable, __file__, "--child", "--child-repl", repl, "--latency", str(args.latency),
               "--concurrency", str(args.concurrency), "--allow-path", str(allow)]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        port = self.proc.stdout.readline().strip()
        if not port:
            raise SystemExit("the server did not start")
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


# -- /proc memory ------------------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for kid in parents.get(todo.pop(), []):
            out.append(kid)
            todo.append(kid)
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


# -- 1. overhead ---------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def direct_latencies(args: argparse.Namespace) -> tuple[list[float], float]:
    from unbounded import RLM

    lm = scripted(args.latency)
    context = "x" * 100
    latencies: list[float] = []

    async def worker(n: int) -> None:
        for _ in range(n):
            started = time.perf_counter()
            await RLM(model=lm, repl=args.repl).arun("q", context)
            latencies.append(time.perf_counter() - started)

    per = args.requests // args.concurrency
    await worker(2)  # warm up
    latencies.clear()
    cpu = time.process_time()
    await asyncio.gather(*(worker(per) for _ in range(args.concurrency)))
    return latencies, (time.process_time() - cpu) / len(latencies)


class RawClient:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams: a Python HTTP library's own cost at 20
    concurrent requests (tens of ms on a small machine) would otherwise be counted as the server's."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
        self.writer.write(head + body)
        await self.writer.drain()
        status_line, *lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        data = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def server_latencies(url: str, args: argparse.Namespace, pid: int | None = None) -> tuple[list[float], list[float], float]:
    body = json.dumps({"model": "rlm", "messages": [{"role": "system", "content": "x" * 100},
                                                    {"role": "user", "content": "q"}]}).encode()  # fmt: skip
    latencies: list[float] = []
    overheads: list[float] = []

    async def worker(n: int) -> None:
        client = RawClient(url)
        try:
            for _ in range(n):
                started = time.perf_counter()
                status, headers, _data = await client.post("/v1/chat/completions", body)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    raise SystemExit(f"the server answered {status}: {_data[:300]!r}")
                timing = dict(part.strip().split(";dur=") for part in headers["server-timing"].split(","))
                overheads.append((float(timing["total"]) - float(timing["run"]) - float(timing["queue"])) / 1000)
        finally:
            await client.close()

    await worker(4)  # warm up
    latencies.clear()
    overheads.clear()
    per = args.requests // args.concurrency
    cpu = cpu_seconds(pid) if pid else 0.0
    await asyncio.gather(*(worker(per) for _ in range(args.concurrency)))
    cpu = (cpu_seconds(pid) - cpu) / len(latencies) if pid else 0.0
    return latencies, overheads, cpu


def ms(x: float) -> str:
    return f"{x * 1000:7.2f} ms"


def overhead(args: argparse.Namespace, allow: Path) -> None:
    print(f"\n1. Overhead per request: {args.requests} scripted runs, {args.concurrency} at a time, root model "
          f"latency {args.latency * 1000:.0f} ms, repl={args.repl}")  # fmt: skip
    direct, direct_cpu = asyncio.run(direct_latencies(args))
    server = Server(args.repl, args, allow)
    try:
        through, own, server_cpu = asyncio.run(server_latencies(server.url, args, server.proc.pid))
    finally:
        server.stop()
    print(f"   {'':34} {'p50':>10} {'p99':>10} {'mean':>10}")
    for name, values in (("library, called directly", direct), ("through the server (HTTP)", through)):
        print(f"   {name:34} {ms(pct(values, 50))} {ms(pct(values, 99))} {ms(statistics.mean(values))}")
    d50, d99 = pct(through, 50) - pct(direct, 50), pct(through, 99) - pct(direct, 99)
    print(f"   {'difference (server - library)':34} {ms(d50)} {ms(d99)} {ms(statistics.mean(through) - statistics.mean(direct))}")
    print(f"   {'server overhead (Server-Timing)':34} {ms(pct(own, 50))} {ms(pct(own, 99))} {ms(statistics.mean(own))}")
    print(f"   CPU per run: library {direct_cpu * 1000:.2f} ms, server process {server_cpu * 1000:.2f} ms "
          f"(+{(server_cpu - direct_cpu) * 1000:.2f} ms: HTTP, JSON, checks, the trace file)")  # fmt: skip
    verdict = "met" if pct(own, 50) <= 0.005 and pct(own, 99) <= 0.020 else "NOT met"
    e2e = "met" if d50 <= 0.005 and d99 <= 0.020 else "NOT met"
    print(f"   target p50 <= 5 ms, p99 <= 20 ms: server overhead {verdict}; end-to-end difference {e2e}")


# -- 2. memory per idle warm session ------------------------------------------------------------------
def memory(args: argparse.Namespace, allow: Path) -> None:
    import httpx

    size = args.session_mb * 1024 * 1024
    print(f"\n2. Memory per idle warm session (process REPL): {args.sessions} contexts of {args.session_mb} MB each")
    server = Server("process", args, allow)
    try:
        time.sleep(0.5)
        host0 = rss_mb(server.proc.pid)
        workers0 = sum(rss_mb(p) for p in descendants(server.proc.pid))
        ids = []
        for i in range(args.sessions):
            r = httpx.post(server.url + "/v1/contexts", content=(chr(97 + i) * size).encode(),
                           headers={"Content-Type": "text/plain"}, timeout=300)  # fmt: skip
            r.raise_for_status()
            ids.append(r.json()["id"])
        time.sleep(0.5)
        kids = descendants(server.proc.pid)
        host1 = rss_mb(server.proc.pid)
        workers1 = sum(rss_mb(p) for p in kids)
        per_worker = (workers1 - workers0) / args.sessions
        per_host = (host1 - host0) / args.sessions
        print(f"   server process: {host0:.0f} MB -> {host1:.0f} MB  ({per_host:+.1f} MB per session; it keeps each context)")
        print(f"   workers ({len(kids)} processes): {workers0:.0f} MB -> {workers1:.0f} MB  ({per_worker:.1f} MB per session)")
        print(f"   per idle warm session: {per_host + per_worker:.1f} MB in all, "
              f"{per_host + per_worker - 2 * args.session_mb:.1f} MB beyond two copies of its context")  # fmt: skip
    finally:
        server.stop()


# -- 3. time to first token ---------------------------------------------------------------------------
async def streamed(url: str, body: dict) -> dict[str, float]:
    import httpx

    marks: dict[str, float] = {}
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=900) as client, client.stream("POST", url + "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            now = time.perf_counter() - started
            marks.setdefault("first chunk", now)
            if line == "data: [DONE]":
                marks["done"] = now
                break
            chunk = json.loads(line[6:])
            if "progress" in chunk.get("unbounded", {}):
                marks.setdefault("first progress event", now)
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                marks.setdefault("first answer content", now)
                marks["answer"] = chunk["choices"][0]["delta"]["content"]  # type: ignore[assignment]
    return marks


def ttft(args: argparse.Namespace, allow: Path) -> None:
    import httpx

    print(f"\n3. Time to first token, a question about a registered {args.context_mb} MB context (process REPL)")
    big = allow / "big.txt"
    line = "2024-05-01 12:00:00 INFO request served in 12 ms from the cache\n"
    with big.open("w", encoding="utf-8") as fh:
        for _ in range(args.context_mb * 1024 * 1024 // len(line)):
            fh.write(line)
    server = Server("process", args, allow)
    try:
        started = time.perf_counter()
        r = httpx.post(server.url + "/v1/contexts", json={"paths": ["big.txt"]}, timeout=900)
        r.raise_for_status()
        ctx = r.json()
        took = time.perf_counter() - started
        print(f"   registering (load once, start its worker): {took:.2f} s for {ctx['chars'] / 1e6:.0f}M characters; "
              f"server RSS {rss_mb(server.proc.pid):.0f} MB, workers {sum(rss_mb(p) for p in descendants(server.proc.pid)):.0f} MB")  # fmt: skip
        body = {"model": "rlm", "messages": [{"role": "user", "content": "How many characters?"}], "stream": True,
                "context_id": ctx["id"]}  # fmt: skip
        for attempt in (1, 2):
            marks = asyncio.run(streamed(server.url, body))
            shown = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in marks.items() if k != "answer")
            print(f"   question {attempt}: {shown}  (answer {marks.get('answer')})")
        if not args.skip_oneshot:
            body = {"model": "rlm", "messages": [{"role": "user", "content": "How many characters?"}], "stream": True,
                    "paths": ["big.txt"]}  # fmt: skip
            marks = asyncio.run(streamed(server.url, body))
            print(f"   the same question without registering (paths): first answer content "
                  f"{marks.get('first answer content', float('nan')) * 1000:.0f} ms, done {marks.get('done', float('nan')) * 1000:.0f} ms")  # fmt: skip
    finally:
        server.stop()
        big.unlink(missing_ok=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--latency", type=float, default=0.5,
                   help="the scripted root model's reply time, seconds (default 0.5: a fast real model; much less "
                   "and 20 runs saturate a small machine's CPU, so latency measures the queue for it)")  # fmt: skip
    p.add_argument("--repl", default="inprocess", choices=["inprocess", "process"], help="for the overhead figure")
    p.add_argument("--sessions", type=int, default=4)
    p.add_argument("--session-mb", type=int, default=1)
    p.add_argument("--context-mb", type=int, default=400)
    p.add_argument("--skip-ttft", action="store_true")
    p.add_argument("--skip-oneshot", action="store_true", help="in 3, leave out the question without registering")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child-repl", default="inprocess", help=argparse.SUPPRESS)
    p.add_argument("--allow-path", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    print(f"unbounded serve benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="unbounded-bench-serve-") as tmp:
        allow = Path(tmp)
        overhead(args, allow)
        memory(args, allow)
        if not args.skip_ttft:
            ttft(args, allow)


if __name__ == "__main__":
    main()
