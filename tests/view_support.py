"""Shared parts of the trace viewer's tests: recorded traces, a real server on loopback, Chromium.

Traces come from the real engine on a scripted model (``record_engine_trace``), or are written
event by event with the trace module's own ``Tracer`` / ``Event`` serialiser where a test needs a
shape the engine does not write today (schema 2 fields, interleaved runs, 10,000 events).
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from unbounded.trace import Event, Tracer

CHROMIUM = os.environ.get("UNBOUNDED_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "docs" / "img" / "viewer"


def have_chromium() -> bool:
    return os.access(CHROMIUM, os.X_OK)


def have_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


needs_browser = pytest.mark.skipif(
    not (have_chromium() and have_playwright()),
    reason=f"needs Chromium at {CHROMIUM} and Playwright for Python: run scripts/install_browser.sh "
    "(and pip install playwright)",
)

# ------------------------------------------------------------------ engine traces
ROOT_QUESTION = "How many lines mention a fox, and what does part one say?"
CHILD_QUESTION = "What does part one say?"
BATCH = 4


def scripted_reply(messages: list[Any]) -> str:
    """Replies for the root RLM, its child RLM and the sub-model, chosen from the conversation."""
    first = messages[0]
    if first.role != "system":  # a sub-call: one user message holding the prompt
        return f"summary of: {messages[-1].content[:40]}"
    user = next((m.content for m in messages if m.role == "user"), "")
    turns = sum(1 for m in messages if m.role == "assistant")
    if CHILD_QUESTION in user and ROOT_QUESTION not in user:
        return "```python\nFINAL('part one says: ' + context[:20])\n```"
    script = [
        "I will count first.\n```python\nlines = context.splitlines()\nfox = [l for l in lines if 'fox' in l]\n"
        f"print(len(fox))\nparts = llm_batch([f'summarise: {{l}}' for l in fox[:{BATCH}]])\nprint(parts)\n```",
        "```python\nprint(undefined_name)\n```",
        f"```python\nanswer = rlm_query({CHILD_QUESTION!r}, context[:200])\nprint(answer)\n```",
        "```python\nFINAL(f'{len(fox)} lines; ' + answer)\n```",
    ]
    return script[min(turns, len(script) - 1)]


def engine_context() -> str:
    return "\n".join(f"line {i}: the quick brown fox" if i % 3 == 0 else f"line {i}: a lazy dog" for i in range(60))


def record_engine_trace(path: Path, *, latency: float = 0.05, on_event: Any = None) -> Any:
    """Run the real engine (in-process REPL) on a scripted model; sub-calls overlap by ``latency``."""
    from unbounded import RLM
    from unbounded.models import ScriptedLM

    lm = ScriptedLM(scripted_reply, latency=latency, price=(1.0, 4.0, 0.5), name="scripted-model")
    rlm = RLM(model=lm, repl="inprocess", trace=str(path), max_depth=1, on_event=on_event)
    return rlm.run(ROOT_QUESTION, engine_context())


SCHEMA2_ONLY = {"rlm_start": ("prompt", "style"), "lm_request": ("prompt_style",), "cell": ("shown", "cut")}


def as_schema1(src: Path, dst: Path) -> Path:
    """Rewrite a trace as schema 1 wrote it: ids without the run prefix (``run-1``), last messages
    cut to 400 characters, none of the fields schema 2 added."""
    out = []
    for e in trace_lines(src):
        for k in ("id", "parent"):
            if isinstance(e.get(k), str) and "-" in e[k]:
                e[k] = e[k].split("-", 1)[1]
        d = e["data"]
        if e["type"] == "run_start":
            d["schema"] = 1
        for field_name in SCHEMA2_ONLY.get(e["type"], ()):
            d.pop(field_name, None)
        if e["type"] == "lm_request" and isinstance(d.get("last_message"), str):
            d["last_message"] = d["last_message"][:400]
        out.append(json.dumps(e, ensure_ascii=False))
    dst.write_text("\n".join(out) + "\n", encoding="utf-8")
    return dst


def trace_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def usage_totals(lines: list[dict[str, Any]]) -> tuple[int, int, int, float]:
    """(calls, input tokens, output tokens, cost) summed over every lm_response with usage."""
    calls = tin = tout = 0
    cost = 0.0
    for e in lines:
        if e["type"] == "lm_response" and "usage" in e["data"]:
            u = e["data"]["usage"]
            calls += u["calls"]
            tin += u["input_tokens"]
            tout += u["output_tokens"]
            cost += u["cost_usd"] or 0.0
    return calls, tin, tout, cost


# ------------------------------------------------------------------ schema 2 traces (Tracer)
PREFIX = "3f9a1c"


def write_schema2_trace(path: Path, prefix: str = PREFIX) -> dict[str, str]:
    """A small schema-2 run with everything the next schema adds; returns the ids used."""
    t = Tracer(path)
    ids = {k: f"{prefix}-{k}" for k in ("run", "rlm", "lm1", "cell1", "sub", "lm_sub", "lm2", "chk", "cmp", "lm3")}
    prompt = [
        {"role": "system", "content": "You are an RLM. Write code."},
        {"role": "user", "content": "Question: what is the code word?"},
    ]
    t.emit(
        "run_start",
        id=ids["run"],
        schema=2,
        question="what is the code word?",
        context={"type": "str", "total_chars": 50_000, "num_items": 1, "preview": "abc"},
        config={
            "model": "openai/gpt-5-mini",
            "sub_model": "openai/gpt-5-nano",
            "max_depth": 1,
            "budget": {"max_iterations": 5, "max_llm_calls": 50},
            "repl": "process",
            "limits": {"cell_timeout": 30.0, "sandbox": "bwrap"},
            "prompt_style": "full",
            "tools": [],
        },
    )
    t.emit("rlm_start", id=ids["rlm"], parent=ids["run"], depth=0, question="what is the code word?", prompt=prompt)
    t.emit(
        "lm_request",
        id=ids["lm1"],
        parent=ids["rlm"],
        model="openai/gpt-5-mini",
        purpose="root",
        messages=2,
        input_chars=80,
        last_message=prompt[-1]["content"],
        prompt_style="full",
    )
    t.emit(
        "lm_response",
        id=ids["lm1"],
        parent=ids["rlm"],
        model="openai/gpt-5-mini",
        purpose="root",
        text="```python\nhits = grep('code word')\nprint(hits)\n```",
        usage={"calls": 1, "input_tokens": 120, "output_tokens": 30, "cached_input_tokens": 0, "cost_usd": 0.0012},
        cached=False,
        attempts=1,
        finish_reason="stop",
        duration=0.8,
    )
    long_prompt = "Read this passage and name the code word.\n" + "passage text " * 200
    t.emit(
        "subcall_start",
        id=ids["sub"],
        parent=ids["cell1"],
        kind="llm_query",
        summary={"prompt_chars": len(long_prompt)},
    )
    t.emit(
        "lm_request",
        id=ids["lm_sub"],
        parent=ids["sub"],
        model="openai/gpt-5-nano",
        purpose="sub",
        messages=1,
        input_chars=len(long_prompt),
        last_message=long_prompt,
        prompt_style="full",
    )
    t.emit(
        "lm_response",
        id=ids["lm_sub"],
        parent=ids["sub"],
        model="openai/gpt-5-nano",
        purpose="sub",
        text="The code word is HERON.",
        usage={"calls": 1, "input_tokens": 700, "output_tokens": 8, "cached_input_tokens": 100, "cost_usd": None},
        cached=False,
        attempts=2,
        finish_reason="stop",
        duration=0.3,
    )
    t.emit("subcall_end", id=ids["sub"], parent=ids["cell1"], kind="llm_query", ok=True)
    shown = "[match at 4100] the code word is HERON\n… [1,234 characters cut] …\nend"
    t.emit(
        "cell",
        id=ids["cell1"],
        parent=ids["rlm"],
        iteration=1,
        code="hits = grep('code word')\nprint(hits)\n",
        stdout="x" * 3000,
        stdout_total=3000,
        error=None,
        final=None,
        notes=[],
        duration=0.4,
        timed_out=False,
        state_lost=False,
        shown=shown,
        cut=1234,
    )
    t.emit(
        "lm_request",
        id=ids["lm2"],
        parent=ids["rlm"],
        model="openai/gpt-5-mini",
        purpose="root",
        messages=4,
        input_chars=300,
        last_message=shown + "\n\n[turn 1 of 5; 4 left]",
        prompt_style="full",
    )
    t.emit(
        "lm_response",
        id=ids["lm2"],
        parent=ids["rlm"],
        model="openai/gpt-5-mini",
        purpose="root",
        text="The answer is HERON.\nFINAL(HERON)",
        usage={"calls": 1, "input_tokens": 200, "output_tokens": 12, "cached_input_tokens": 0, "cost_usd": 0.0009},
        cached=False,
        attempts=1,
        finish_reason="stop",
        duration=0.5,
    )
    t.emit(
        "check",
        id=ids["chk"],
        parent=ids["rlm"],
        answer="HERON",
        verdict="unsupported",
        reason="the answer was never printed by a cell",
        refused=True,
    )
    t.emit("compaction", id=ids["cmp"], parent=ids["rlm"], turns=2, tokens_before=9000, tokens_after=2500)
    t.emit("custom_probe", id=f"{prefix}-probe", parent=ids["rlm"], flavour="strange", level=3)
    t.emit("rlm_end", id=ids["rlm"], parent=ids["run"], status="final", answer="HERON", error=None, iterations=2)
    t.emit(
        "run_end",
        id=ids["run"],
        status="final",
        answer="HERON",
        error=None,
        iterations=2,
        usage={
            "openai/gpt-5-mini": {
                "calls": 2,
                "input_tokens": 320,
                "output_tokens": 42,
                "cached_input_tokens": 0,
                "cost_usd": 0.0021,
            },
            "openai/gpt-5-nano": {
                "calls": 1,
                "input_tokens": 700,
                "output_tokens": 8,
                "cached_input_tokens": 100,
                "cost_usd": None,
            },
        },
        ledger={"calls": 3},
        elapsed=2.5,
    )
    t.close()
    return ids


# ------------------------------------------------------------------ synthetic big traces (Event serialiser)
def synthetic_trace(
    path: Path, events: int = 10_000, *, batch: int = 8, stdout_chars: int = 400, seed: int = 0, prefix: str = "bench"
) -> int:
    """A long run in the engine's shape: turns with a model call and a cell whose llm_batch fans out
    ``batch`` overlapping sub-calls. Written with ``Event.to_json``; returns the events written."""
    rng = random.Random(seed)
    t0 = 1_700_000_000.0
    n = 0
    counter = 0

    def new(kind: str) -> str:
        nonlocal counter
        counter += 1
        return f"{prefix}-{kind}-{counter}"

    with path.open("w", encoding="utf-8") as fh:

        def put(etype: str, eid: str, parent: str | None, ts: float, **data: Any) -> None:
            nonlocal n
            fh.write(Event(etype, eid, parent, ts, data).to_json() + "\n")
            n += 1

        run, rlm = new("run"), new("rlm")
        put(
            "run_start",
            run,
            None,
            t0,
            schema=2,
            question="Summarise every section.",
            context={"type": "list", "total_chars": 5_000_000, "num_items": 900},
            config={
                "model": "openai/gpt-5-mini",
                "sub_model": "openai/gpt-5-nano",
                "max_depth": 1,
                "budget": {"max_iterations": 100000},
                "repl": "process",
                "limits": {},
                "prompt_style": "full",
            },
        )
        put("rlm_start", rlm, run, t0 + 0.01, depth=0, question="Summarise every section.")
        now = t0 + 0.02
        it = 0
        per_turn = 6 + 2 + 2 * batch
        while n + per_turn + 2 < events:
            it += 1
            lm = new("lm")
            put(
                "lm_request",
                lm,
                rlm,
                now,
                model="openai/gpt-5-mini",
                purpose="root",
                messages=2 * it,
                input_chars=1000 * it,
                last_message=f"output of turn {it - 1}",
                prompt_style="full",
            )
            now += 0.5 + rng.random()
            code = (
                f"part = context[{it}]\nres = llm_batch([f'summarise {{p}}' for p in chunks(part, 4000)])\nprint(res)\n"
            )
            put(
                "lm_response",
                lm,
                rlm,
                now,
                model="openai/gpt-5-mini",
                purpose="root",
                text=f"```python\n{code}```",
                usage={
                    "calls": 1,
                    "input_tokens": 250 * it,
                    "output_tokens": 40,
                    "cached_input_tokens": 0,
                    "cost_usd": 0.0001 * it,
                },
                cached=False,
                attempts=1,
                finish_reason="stop",
                duration=0.7,
            )
            cell = new("cell")
            sub = new("subcall")
            cell_start = now
            put("subcall_start", sub, cell, now, kind="llm_batch", summary={"n": batch, "model": None})
            ends = []
            for _ in range(batch):
                s = new("lm")
                st = now + rng.random() * 0.05
                put(
                    "lm_request",
                    s,
                    sub,
                    st,
                    model="openai/gpt-5-nano",
                    purpose="sub",
                    messages=1,
                    input_chars=4000,
                    last_message=f"summarise section {it}: " + "lorem ipsum " * 20,
                    prompt_style="full",
                )
                ends.append((s, st + 0.2 + rng.random()))
            for s, en in sorted(ends, key=lambda x: x[1]):
                put(
                    "lm_response",
                    s,
                    sub,
                    en,
                    model="openai/gpt-5-nano",
                    purpose="sub",
                    text=f"section {it} is about topic {rng.randint(1, 99)}",
                    usage={
                        "calls": 1,
                        "input_tokens": 1000,
                        "output_tokens": 20,
                        "cached_input_tokens": 0,
                        "cost_usd": 0.00002,
                    },
                    cached=False,
                    attempts=1,
                    finish_reason="stop",
                    duration=en - now,
                )
            now = max(en for _, en in ends) + 0.01
            put("subcall_end", sub, cell, now, kind="llm_batch", ok=True)
            out = (f"['section {it} is about …'] " * (stdout_chars // 28 + 1))[:stdout_chars]
            put(
                "cell",
                cell,
                rlm,
                now,
                iteration=it,
                code=code,
                stdout=out,
                stdout_total=len(out),
                error=None,
                final=None,
                notes=[],
                duration=now - cell_start,
                timed_out=False,
                state_lost=False,
                shown=out,
                cut=0,
            )
        put("rlm_end", rlm, run, now, status="final", answer="done", error=None, iterations=it)
        put(
            "run_end",
            run,
            None,
            now,
            status="final",
            answer="done",
            error=None,
            iterations=it,
            usage={},
            ledger={},
            elapsed=now - t0,
        )
    return n


# ------------------------------------------------------------------ a real server on loopback
@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the viewer's server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser: Any, width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A fresh page; errors thrown in it fail the test when the page closes."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"errors in the page: {errors}"


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(out))
    return out
