"""Trace viewer figures: how fast a 10,000-event trace becomes interactive in headless Chromium, and
what a 100 MB trace costs to index and open.

    python benchmarks/viewer.py              # 10,000 events and 100 MB
    python benchmarks/viewer.py --big-mb 20  # a smaller big trace
    python benchmarks/viewer.py --no-big     # only the 10,000-event figures

Needs Chromium at /usr/bin/chromium (scripts/install_browser.sh) and Playwright for Python; the
browser is driven with the system binary, never a downloaded one. Traces are generated in the
engine's shape (turns whose cells fan out an llm_batch) into a temporary folder.
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import sys
import tempfile
import threading
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from unbounded.view.export import export_html  # noqa: E402
from unbounded.view.index import TraceIndex  # noqa: E402
from unbounded.view.server import create_app  # noqa: E402
from view_support import CHROMIUM, LAUNCH_ARGS, synthetic_trace  # noqa: E402

TARGET_S = 1.0


@contextmanager
def served(path: Path) -> Any:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    app = create_app(path)  # indexes the file
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def browser_figures(browser: Any, url: str, query: str) -> dict[str, float]:
    """Seconds from navigation to an interactive tree, to open a node, to search, to draw the timeline."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("[data-viewer][data-ready]", timeout=120_000)
    interactive = page.evaluate("performance.now()") / 1000
    turn = page.locator('[data-type="turn"]').last.get_attribute("data-key")
    page.locator(f'[data-key="{turn}"] > .row').click()
    t = time.perf_counter()
    page.keyboard.press("ArrowRight")
    page.wait_for_selector(f'[data-key="{turn}"] [data-type="cell"]')
    expand = time.perf_counter() - t
    t = time.perf_counter()
    page.fill('[data-role="search"]', query)
    page.wait_for_selector('[data-role="results"] [role="option"]', timeout=120_000)
    search = time.perf_counter() - t - 0.18  # the box waits 180 ms after the last key before asking
    t = time.perf_counter()
    page.keyboard.press("Escape")
    page.click('[data-tab="timeline"]')
    page.wait_for_selector('[data-role="timeline"]', timeout=120_000)
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    timeline = time.perf_counter() - t
    context.close()
    return {"interactive": interactive, "expand": expand, "search": max(0.0, search), "timeline": timeline}


def index_figures(path: Path) -> dict[str, float]:
    gc.collect()
    t = time.perf_counter()
    ix = TraceIndex(path)
    seconds = time.perf_counter() - t
    events, nodes = ix.events, len(ix.nodes)
    del ix
    gc.collect()
    tracemalloc.start()
    ix = TraceIndex(path)
    _, peak = tracemalloc.get_traced_memory()
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del ix
    return {"seconds": seconds, "events": events, "nodes": nodes, "held_mb": current / 2**20, "peak_mb": peak / 2**20}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--big-mb", type=float, default=100.0)
    ap.add_argument("--no-big", action="store_true")
    args = ap.parse_args(argv)
    if not os.access(CHROMIUM, os.X_OK):
        print(f"needs Chromium at {CHROMIUM}: run scripts/install_browser.sh", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        small = Path(tmp) / "small.jsonl"
        n = synthetic_trace(small, args.events)
        ix = index_figures(small)
        with served(small) as url:
            browser_figures(browser, url, "topic 42")  # warm the browser once
            live = browser_figures(browser, url, "topic 42")
        html = Path(tmp) / "small.html"
        t = time.perf_counter()
        exported = export_html(small, html)
        export_s = time.perf_counter() - t
        static = browser_figures(browser, html.as_uri(), "topic 42")
        mb = small.stat().st_size / 2**20
        print(f"{n:,}-event trace ({mb:.1f} MB, {ix['nodes']:,} nodes)")
        print(f"  index in Python                  {ix['seconds']:.3f} s   holds {ix['held_mb']:.1f} MB")
        ok = "ok" if live["interactive"] <= TARGET_S else "OVER TARGET"
        print(f"  served: interactive after        {live['interactive']:.3f} s   (target <= {TARGET_S:.0f} s: {ok})")
        print(f"          open a turn              {live['expand'] * 1000:.0f} ms")
        print(f"          search the whole trace   {live['search'] * 1000:.0f} ms")
        print(f"          draw the timeline        {live['timeline'] * 1000:.0f} ms")
        print(f"  --html: export                   {export_s:.2f} s   {exported.bytes / 2**20:.1f} MB file")
        ok = "ok" if static["interactive"] <= TARGET_S else "OVER TARGET"
        print(f"          interactive from file:// {static['interactive']:.3f} s   (target <= {TARGET_S:.0f} s: {ok})")
        print(f"          open a turn              {static['expand'] * 1000:.0f} ms")
        print(f"          search                   {static['search'] * 1000:.0f} ms")
        if not args.no_big:
            big = Path(tmp) / "big.jsonl"
            target = int(args.big_mb * 2**20)
            # ~20 KB of output per cell, as much as the engine keeps; size the event count from a probe
            synthetic_trace(big, 2_000, stdout_chars=20_000, batch=8)
            per_event = big.stat().st_size / 2_000
            synthetic_trace(big, int(target / per_event), stdout_chars=20_000, batch=8)
            bix = index_figures(big)
            t = time.perf_counter()
            with served(big) as url:
                start_s = time.perf_counter() - t
                fig = browser_figures(browser, url, "topic 42")
            size = big.stat().st_size / 2**20
            print(f"{bix['events']:,}-event trace ({size:.0f} MB, {bix['nodes']:,} nodes)")
            print(
                f"  index in Python                  {bix['seconds']:.2f} s   holds {bix['held_mb']:.1f} MB "
                f"(peak {bix['peak_mb']:.1f} MB) of a {size:.0f} MB file"
            )
            print(f"  server start (indexing)          {start_s:.2f} s")
            print(f"  served: interactive after        {fig['interactive']:.3f} s")
            print(f"          open a turn              {fig['expand'] * 1000:.0f} ms")
            print(f"          search the whole trace   {fig['search'] * 1000:.0f} ms")
            print(f"          draw the timeline        {fig['timeline'] * 1000:.0f} ms")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
