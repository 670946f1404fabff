"""The MCP server through the ``mcp`` SDK's own client: over stdio (``unbounded mcp`` as a child
process) and over streamable HTTP (mounted under the OpenAI server at /mcp)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the MCP server needs pip install 'unbounded[mcp]'")

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from conftest import ROOT, code
from test_serve_support import answering, config, running

pytestmark = pytest.mark.network

REPLY_CODE = "print('reading')\nFINAL(context if isinstance(context, str) else ','.join(sorted(context)))"
REPLY = code(REPLY_CODE)
KEY_A, KEY_B = "mcp-key-aaaa", "mcp-key-bbbb"


def stdio_params(tmp_path: Path, allowed: Path) -> StdioServerParameters:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([REPLY]), encoding="utf-8")
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "unbounded.serve", "mcp", "--model", f"scripted/{replies}", "--allow-path", str(allowed),
              "--repl", "inprocess"],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "README.md").write_text("the answer is in here", encoding="utf-8")
    (tmp_path / "private.txt").write_text("NOT FOR YOU", encoding="utf-8")
    return folder


async def exercise(client: Client, allowed: Path) -> None:
    tools = {t.name for t in (await client.list_tools()).tools}
    assert tools == {"ask", "load_context", "ask_context"}
    seen: list[tuple[float, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, message))

    result = await client.call_tool("ask", {"question": "what is it?", "text": "plain words"}, progress_callback=progress)
    assert not result.is_error, result.content
    answer = result.structured_content
    assert answer["answer"] == "plain words" and answer["status"] == "final"
    assert answer["total_tokens"] > 0 and answer["usage"]
    assert len(seen) >= 5 and any("code ran" in (m or "") for _, m in seen)  # progress while it worked
    assert [v for v, _ in seen] == sorted(v for v, _ in seen)

    result = await client.call_tool("ask", {"question": "q", "paths": ["README.md"]})
    assert result.structured_content["answer"] == "the answer is in here"
    result = await client.call_tool("ask", {"question": "q", "paths": ["../private.txt"]})
    assert result.is_error and "outside the folders" in result.content[0].text and "NOT FOR YOU" not in str(result)
    result = await client.call_tool("ask", {"question": "q"})
    assert result.is_error and "exactly one of paths" in result.content[0].text

    loaded = await client.call_tool("load_context", {"paths": ["."]})
    assert not loaded.is_error, loaded.content
    info = loaded.structured_content
    assert info["context_id"].startswith("ctx_") and info["documents"] == 1
    for _ in range(2):
        again = await client.call_tool("ask_context", {"context_id": info["context_id"], "question": "files?"})
        assert again.structured_content["answer"] == "README.md"
    missing = await client.call_tool("ask_context", {"context_id": "ctx_0000", "question": "q"})
    assert missing.is_error and "no context" in missing.content[0].text

    trace = await client.read_resource(answer["trace"])
    events = [json.loads(line) for line in trace.contents[0].text.splitlines()]
    assert events[0]["type"] == "run_start" and events[-1]["type"] == "run_end"
    assert events[-1]["data"]["status"] == "final"


def test_mcp_over_stdio(tmp_path: Path, allowed: Path) -> None:
    async def go() -> None:
        async with Client(stdio_params(tmp_path, allowed)) as client:
            await exercise(client, allowed)

    asyncio.run(asyncio.wait_for(go(), 120))


def http_client(url: str, key: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    return Client(streamable_http_client(url, http_client=http))


def test_mcp_over_http_under_serve(allowed: Path) -> None:
    with running(config(answering(REPLY_CODE), mcp=True, allow_paths=[allowed], api_keys=[KEY_A, KEY_B])) as srv:
        url = srv.url + "/mcp"

        async def go() -> None:
            async with http_client(url, KEY_A) as client:
                await exercise(client, allowed)
                loaded = await client.call_tool("load_context", {"text": "only for A"})
                context_id = loaded.structured_content["context_id"]
                asked = await client.call_tool("ask", {"question": "q", "text": "t"})
                trace = asked.structured_content["trace"]
            async with http_client(url, KEY_B) as other:  # another key sees neither A's context nor its traces
                r = await other.call_tool("ask_context", {"context_id": context_id, "question": "q"})
                assert r.is_error and "no context" in r.content[0].text
                with pytest.raises(Exception, match="no trace"):
                    await other.read_resource(trace)
            unauthorised = httpx2.AsyncClient(timeout=10)
            async with unauthorised:
                r = await unauthorised.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
                assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"

        asyncio.run(asyncio.wait_for(go(), 120))


def test_a_cancelled_tool_call_stops_its_run(allowed: Path) -> None:
    from conftest import live_children
    from test_serve_support import wait_until

    before = set(live_children())
    sleeping = "import time\ntime.sleep(60)\nFINAL('too late')"
    with running(config(answering(sleeping), mcp=True, repl="process")) as srv:

        async def go() -> None:
            async with http_client(srv.url + "/mcp", "unused") as client:
                call = asyncio.ensure_future(client.call_tool("ask", {"question": "q", "text": "t"}))
                while not srv.service.gate.running or len(set(live_children()) - before) < 1:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.3)
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
                started = asyncio.get_running_loop().time()
                while set(live_children()) - before or srv.service.gate.running:
                    await asyncio.sleep(0.02)
                    assert asyncio.get_running_loop().time() - started < 1.5  # the worker is gone at once
                assert len((await client.list_tools()).tools) == 3  # the session goes on

        asyncio.run(asyncio.wait_for(go(), 60))
        assert wait_until(lambda: not (set(live_children()) - before))
