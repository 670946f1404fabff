"""The viewer in a real headless Chromium: tree, details, numbers, keyboard, search, live, file://, bench.

Screenshots of the main views are written to docs/img/viewer/ (linked from the README).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from unbounded.bench.results import ResultRecord, ResultsFile
from unbounded.view.export import export_html
from unbounded.view.server import create_app
from view_support import (
    BATCH,
    CHILD_QUESTION,
    chromium,
    needs_browser,
    new_page,
    record_engine_trace,
    screenshot,
    serve,
    synthetic_trace,
    trace_lines,
    usage_totals,
    write_schema2_trace,
)

pytestmark = [needs_browser, pytest.mark.network]


def money(c: float) -> str:
    return "$0" if c == 0 else f"${c:.4f}"


@pytest.fixture(scope="module")
def browser() -> Any:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Any:
    with new_page(browser) as p:
        yield p


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "run.jsonl"
    record_engine_trace(path, latency=0.05)
    return path


def ready(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("[data-viewer][data-ready]", timeout=15_000)


def row(page: Any, key: str) -> Any:
    return page.locator(f'[role="treeitem"][data-key="{key}"] > .row').first


def focused_key(page: Any) -> str | None:
    return page.evaluate("document.activeElement && document.activeElement.dataset.key")


def root_keys(trace: Path) -> dict[str, Any]:
    lines = trace_lines(trace)
    run = next(e for e in lines if e["type"] == "run_start")
    rlm = next(e for e in lines if e["type"] == "rlm_start" and e["parent"] == run["id"])
    cells = [e for e in lines if e["type"] == "cell" and e["parent"] == rlm["id"]]
    root_lms = [e for e in lines if e["type"] == "lm_request" and e["parent"] == rlm["id"]]
    return {"run": run["id"], "rlm": rlm["id"], "cells": cells, "root_lms": root_lms, "lines": lines}


def test_tree_details_and_numbers_match_the_trace(page: Any, trace: Path) -> None:
    k = root_keys(trace)
    calls, tin, tout, cost = usage_totals(k["lines"])
    with serve(create_app(trace)) as url:
        ready(page, url + "/")
        # header totals are the sums over every model call of the trace
        assert page.text_content('[data-role="totals"] [data-f="calls"]') == f"{calls:,}"
        assert page.text_content('[data-role="totals"] [data-f="in"]') == f"{tin:,}"
        assert page.text_content('[data-role="totals"] [data-f="out"]') == f"{tout:,}"
        assert page.text_content('[data-role="totals"] [data-f="cost"]') == money(cost)
        # the run and its root RLM open at once, with one row per turn
        turns = page.locator(f'[data-key="{k["rlm"]}"] > [role="group"] > [data-type="turn"]')
        assert turns.count() == 4
        turn1 = f"{k['rlm']}/turn-1"
        row(page, turn1).click()
        page.wait_for_selector(f'[data-role="detail"][data-key="{turn1}"] [data-role="code"]')
        cell = k["cells"][0]["data"]
        assert page.text_content('[data-role="detail"] [data-role="code"] pre') == cell["code"]
        assert page.text_content('[data-role="detail"] pre.output') == cell.get("shown", cell["stdout"])
        reply = next(e for e in k["lines"] if e["type"] == "lm_response" and e["id"] == k["root_lms"][0]["id"])
        assert page.text_content('[data-role="detail"] pre.reply') == reply["data"]["text"]
        shown_next = k["root_lms"][1]["data"]["last_message"]
        assert page.text_content('[data-role="detail"] pre.shown') == shown_next
        screenshot(page, "turn")
        # down to the batch's sub-calls: each shows its own prompt, reply and token counts
        page.keyboard.press("ArrowRight")
        cell_key = k["cells"][0]["id"]
        page.wait_for_selector(f'[data-key="{cell_key}"]')
        row(page, cell_key).click()
        page.keyboard.press("ArrowRight")
        batch = next(e for e in k["lines"] if e["type"] == "subcall_start" and e["parent"] == cell_key)
        page.wait_for_selector(f'[data-key="{batch["id"]}"]')
        row(page, batch["id"]).click()
        page.keyboard.press("ArrowRight")
        subs = [e for e in k["lines"] if e["type"] == "lm_request" and e["parent"] == batch["id"]]
        assert len(subs) == BATCH
        for s in subs:
            page.wait_for_selector(f'[data-key="{s["id"]}"]')
        last = subs[-1]
        resp = next(e for e in k["lines"] if e["type"] == "lm_response" and e["id"] == last["id"])
        row(page, last["id"]).click()
        page.wait_for_selector(f'[data-role="detail"][data-key="{last["id"]}"]')
        assert (
            page.text_content('[data-role="detail"] [data-f="lm.in"]') == f"{resp['data']['usage']['input_tokens']:,}"
        )
        assert (
            page.text_content('[data-role="detail"] [data-f="lm.out"]') == f"{resp['data']['usage']['output_tokens']:,}"
        )
        assert page.text_content('[data-role="detail"] pre.prompt') == last["data"]["last_message"]
        assert page.text_content('[data-role="detail"] pre.reply') == resp["data"]["text"]
        screenshot(page, "tree")


def test_keyboard_navigation(page: Any, trace: Path) -> None:
    k = root_keys(trace)
    turn1, turn2 = f"{k['rlm']}/turn-1", f"{k['rlm']}/turn-2"
    with serve(create_app(trace)) as url:
        ready(page, url + "/")
        page.focus('[data-role="tree"]')
        assert focused_key(page) == k["run"]
        page.keyboard.press("ArrowDown")
        assert focused_key(page) == k["rlm"]
        page.keyboard.press("ArrowDown")
        assert focused_key(page) == turn1
        assert page.get_attribute(f'[data-key="{turn1}"]', "aria-expanded") == "false"
        page.keyboard.press("ArrowRight")
        page.wait_for_selector(f'[data-key="{turn1}"][aria-expanded="true"] [role="treeitem"]')
        page.keyboard.press("ArrowRight")  # into the first child: the model call
        assert focused_key(page) == k["root_lms"][0]["id"]
        page.wait_for_selector(f'[data-role="detail"][data-key="{k["root_lms"][0]["id"]}"]')
        page.keyboard.press("ArrowLeft")  # a leaf: up to its parent
        assert focused_key(page) == turn1
        page.keyboard.press("ArrowLeft")  # collapse
        assert page.get_attribute(f'[data-key="{turn1}"]', "aria-expanded") == "false"
        page.keyboard.press("ArrowDown")
        assert focused_key(page) == turn2
        page.keyboard.press("Enter")
        page.wait_for_selector(f'[data-key="{turn2}"][aria-expanded="true"]')
        page.keyboard.press("End")
        last = page.evaluate(
            """() => { const items = [...document.querySelectorAll('[role="treeitem"]')]
                 .filter(el => !el.closest('[role="group"][hidden]')); return items[items.length - 1].dataset.key; }"""
        )
        assert focused_key(page) == last
        page.keyboard.press("Home")
        assert focused_key(page) == k["run"]
        # "/" jumps to search; arrows and Enter pick a result; the tree opens down to it
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.dataset.role") == "search"
        page.keyboard.type("part one says")
        page.wait_for_selector('[data-role="results"] [role="option"]')
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        page.wait_for_function("document.activeElement && document.activeElement.getAttribute('role') === 'treeitem'")
        key = focused_key(page)
        events = [e for e in k["lines"] if e["id"] == key]  # the start and, if any, the end event
        assert "part one says" in json.dumps(events).lower()
        # the revealed node is deep: every ancestor row is open
        assert page.evaluate(
            """(key) => { let el = document.querySelector(`[data-key="${key}"]`).parentElement.closest('[role="treeitem"]');
                 while (el) { if (el.getAttribute('aria-expanded') !== 'true') return false;
                   el = el.parentElement.closest('[role="treeitem"]'); } return true; }""",
            key,
        )


def test_search_finds_the_child_rlm(page: Any, trace: Path) -> None:
    lines = trace_lines(trace)
    child = next(e for e in lines if e["type"] == "rlm_start" and e["data"]["depth"] == 1)
    with serve(create_app(trace)) as url:
        ready(page, url + "/")
        page.fill('[data-role="search"]', CHILD_QUESTION)
        page.wait_for_selector('[data-role="results"] [role="option"]')
        options = page.locator('[data-role="results"] [role="option"]')
        keys = [options.nth(i).get_attribute("data-key") for i in range(options.count())]
        assert child["id"] in keys
        page.locator(f'[data-role="results"] [data-key="{child["id"]}"]').dispatch_event("mousedown")
        page.wait_for_selector(f'[data-role="detail"][data-key="{child["id"]}"]')
        assert page.text_content('[data-role="detail"] [data-f="status"]') == "final"
        screenshot(page, "search")


def test_live_mode_picks_up_appended_events(page: Any, trace: Path, tmp_path: Path) -> None:
    raw = trace.read_bytes().splitlines(keepends=True)
    lines = trace_lines(trace)
    calls = usage_totals(lines)[0]
    # stop inside turn 1's cell: its sub-calls are written, the cell is not
    cut = next(i for i, e in enumerate(lines) if e["type"] == "subcall_start") + 3
    live = tmp_path / "live.jsonl"
    live.write_bytes(b"".join(raw[:cut]))
    with serve(create_app(live)) as url:
        ready(page, url + "/")
        k = root_keys(trace)
        row(page, f"{k['rlm']}/turn-1").click()
        page.keyboard.press("ArrowRight")
        page.wait_for_selector('[data-type="pending"]')
        assert "live" in (page.text_content(".live") or "")
        before = page.text_content('[data-role="totals"] [data-f="calls"]')
        assert before != f"{calls:,}"
        started = time.monotonic()
        with live.open("ab") as fh:
            fh.write(b"".join(raw[cut:]))
        page.wait_for_function(
            '(n) => document.querySelector(\'[data-role="totals"] [data-f="calls"]\').textContent === n',
            arg=f"{calls:,}",
            timeout=10_000,
        )
        took = time.monotonic() - started
        page.wait_for_selector(f'[data-key="{k["rlm"]}/turn-4"]')
        assert page.locator('[data-type="pending"]').count() == 0
        assert page.text_content(".live") == "finished"
        print(f"live update shown {took:.2f} s after the append")


def test_static_html_works_from_file_url(page: Any, trace: Path, tmp_path: Path) -> None:
    out = tmp_path / "share" / "trace.html"
    result = export_html(trace, out)
    assert result.capped is False and result.details == result.nodes
    requested: list[str] = []

    def block(route: Any) -> None:
        requested.append(route.request.url)
        route.abort()

    page.route("http*://**", block)
    k = root_keys(trace)
    ready(page, out.as_uri())
    assert page.locator(f'[data-key="{k["rlm"]}"] > [role="group"] > [data-type="turn"]').count() == 4
    row(page, f"{k['rlm']}/turn-1").click()
    page.wait_for_selector('[data-role="detail"] [data-role="code"]')
    assert page.text_content('[data-role="detail"] [data-role="code"] pre') == k["cells"][0]["data"]["code"]
    page.fill('[data-role="search"]', "undefined_name")
    page.wait_for_selector('[data-role="results"] [role="option"]')
    page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement && document.activeElement.getAttribute('role') === 'treeitem'")
    found = [e for e in k["lines"] if e["id"] == focused_key(page)]
    assert "undefined_name" in json.dumps(found)
    screenshot(page, "static")
    assert requested == []  # nothing was fetched from the network


def test_static_export_over_the_cap_is_marked(page: Any, tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    synthetic_trace(big, 3000)
    out = tmp_path / "capped.html"
    result = export_html(big, out, max_bytes=200_000)
    assert result.capped and 0 < result.details < result.nodes
    ready(page, out.as_uri())
    banner = page.text_content('[data-role="banner"]') or ""
    assert "full text of the first nodes only" in banner
    # a node past the cap still has its row and usage, and says its text is not embedded
    last_turn = page.evaluate(
        """() => { const t = [...document.querySelectorAll('[data-type="turn"]')]; return t[t.length-1].dataset.key; }"""
    )
    row(page, last_turn).click()
    page.wait_for_selector('[data-role="detail"] .note.warn')


def test_timeline_and_config_tabs(page: Any, trace: Path) -> None:
    lines = trace_lines(trace)
    config = lines[0]["data"]["config"]
    with serve(create_app(trace)) as url:
        ready(page, url + "/")
        page.click('[data-tab="timeline"]')
        page.wait_for_selector('[data-role="timeline"]')
        # The canvas is drawn after the tab opens: wait for the paint (a busy machine may take a while).
        page.wait_for_function(
            """() => { const c = document.querySelector('[data-role="timeline"]');
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n > 500; }""",
            timeout=15_000,
        )
        info = page.text_content('[data-panel="timeline"] .controls') or ""
        calls = sum(1 for e in lines if e["type"] == "lm_request")
        assert f"{calls} model calls" in info and "at most" in info
        screenshot(page, "timeline")
        page.click('[data-tab="config"]')
        panel = page.locator('[data-panel="config"]')
        assert panel.locator('[data-f="model"]').first.text_content() == config["model"]
        assert panel.locator('[data-f="repl"]').first.text_content() == config["repl"]
        assert panel.locator('[data-f="budget.max_iterations"]').first.text_content() == str(
            config["budget"]["max_iterations"]
        )
        screenshot(page, "config")


def test_schema2_shown_output_cut_and_checks(page: Any, tmp_path: Path) -> None:
    path = tmp_path / "s2.jsonl"
    ids = write_schema2_trace(path)
    with serve(create_app(path)) as url:
        ready(page, url + "/")
        row(page, f"{ids['rlm']}/turn-1").click()
        page.wait_for_selector('[data-role="detail"] [data-role="cut"]')
        assert "1,234 characters were cut" in (page.text_content('[data-role="detail"] [data-role="cut"]') or "")
        assert page.text_content('[data-role="detail"] pre.output').startswith("[match at 4100]")
        turn2 = f"{ids['rlm']}/turn-2"
        assert page.locator(f'[data-key="{turn2}"] > .row .badge').count() == 0
        row(page, turn2).click()
        page.keyboard.press("ArrowRight")
        page.wait_for_selector(f'[data-key="{ids["chk"]}"]')
        assert "refused" in (row(page, ids["chk"]).text_content() or "")
        assert page.locator('[data-type="custom_probe"]').count() == 1
        # an unpriced sub-call makes the run's cost unknown, not zero
        assert page.text_content('[data-role="totals"] [data-f="cost"]') == "cost ?"


def test_big_trace_loads_lazily_and_pages_children(page: Any, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    n = synthetic_trace(path, 10_000, batch=250)
    with serve(create_app(path)) as url:
        started = time.monotonic()
        ready(page, url + "/")
        took = time.monotonic() - started
        rows_in_dom = page.locator('[role="treeitem"]').count()
        assert rows_in_dom < 100, "rows are fetched as nodes open, not all at once"
        first_turn = page.locator('[data-type="turn"]').first
        key = first_turn.get_attribute("data-key")
        row(page, key).click()
        page.keyboard.press("ArrowRight")
        cell = page.locator(f'[data-key="{key}"] [data-type="cell"]').first
        cell_key = cell.get_attribute("data-key")
        row(page, cell_key).click()
        page.keyboard.press("ArrowRight")
        batch = page.locator(f'[data-key="{cell_key}"] [data-type="subcall_start"]').first
        batch_key = batch.get_attribute("data-key")
        row(page, batch_key).click()
        page.keyboard.press("ArrowRight")
        page.wait_for_selector(f'[data-key="{batch_key}"] .more')
        assert page.locator(f'[data-key="{batch_key}"] [data-type="lm_request"]').count() == 200
        page.click(f'[data-key="{batch_key}"] .more > .row')
        page.wait_for_function(
            f"""document.querySelectorAll('[data-key="{batch_key}"] [data-type="lm_request"]').length === 250"""
        )
        print(f"{n} events: interactive {took:.2f} s after navigation")


def test_bench_folder_table_and_side_by_side(page: Any, trace: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs" / "a"
    (root / "traces").mkdir(parents=True)
    (root / "traces" / "rlm.jsonl").write_bytes(trace.read_bytes())
    other = tmp_path / "other.jsonl"
    write_schema2_trace(other)
    (root / "traces" / "direct.jsonl").write_bytes(other.read_bytes())
    results = ResultsFile(root / "results.jsonl")
    for i in range(3):
        common = {
            "task": "niah",
            "size_tokens": 8192,
            "item_id": f"niah-8192-s0-{i}",
            "model": "test/model",
            "gold": "42",
            "answer": "42",
            "seconds": 2.0 + i,
        }
        results.append(
            ResultRecord(
                method="rlm", score=1.0, status="final", trace="traces/rlm.jsonl", calls=9, cost_usd=0.01, **common
            )
        )
        results.append(
            ResultRecord(
                method="direct",
                score=0.0 if i else 1.0,
                status="ok",
                trace="traces/direct.jsonl",
                calls=1,
                cost_usd=0.002,
                **common,
            )
        )
    outer = Starlette(routes=[Mount("/ui", app=create_app(root))])
    with serve(outer) as url:
        page.goto(url + "/ui/")
        page.wait_for_selector('[data-role="bench-table"] tbody tr')
        assert page.locator('[data-role="bench-table"] tbody tr').count() == 6
        summary = page.locator('[data-role="bench-summary"] tbody tr')
        assert summary.count() == 2
        texts = [summary.nth(i).text_content() or "" for i in range(2)]
        assert any("direct" in t and "0.33" in t for t in texts)
        assert any("rlm" in t and "1.00" in t for t in texts)
        screenshot(page, "bench")
        page.locator('[data-role="bench-table"] a', has_text="⇄ direct").first.click()
        page.wait_for_selector('[data-role="compare"] [data-viewer][data-ready]')
        page.wait_for_function(
            "document.querySelectorAll('[data-role=\"compare\"] [data-viewer][data-ready]').length === 2"
        )
        titles = page.locator('[data-role="compare"] header h1')
        assert "rlm" in (titles.nth(0).text_content() or "") and "direct" in (titles.nth(1).text_content() or "")
        screenshot(page, "compare")
        page.click('text="← bench"')
        page.wait_for_selector('[data-role="bench-table"]')


def test_live_from_a_file_not_yet_written(page: Any, trace: Path, tmp_path: Path) -> None:
    live = tmp_path / "new.jsonl"
    live.write_text("")  # what `ask --trace` leaves before its first event
    k = root_keys(trace)
    with serve(create_app(live)) as url:
        ready(page, url + "/")
        assert page.locator('[role="treeitem"]').count() == 0
        live.write_bytes(trace.read_bytes())
        page.wait_for_selector(f'[data-key="{k["run"]}"]', timeout=10_000)
        row(page, k["run"]).click()
        page.keyboard.press("ArrowRight")
        page.wait_for_selector(f'[data-key="{k["rlm"]}"]')


def test_live_while_the_engine_is_still_running(page: Any, tmp_path: Path) -> None:
    """A real run writes its trace while the page watches: rows and totals arrive as it goes."""
    import threading

    path = tmp_path / "running.jsonl"
    results: list[Any] = []
    runner = threading.Thread(target=lambda: results.append(record_engine_trace(path, latency=0.4)), daemon=True)
    runner.start()
    deadline = time.monotonic() + 20
    while not (path.exists() and b"rlm_start" in path.read_bytes()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with serve(create_app(path)) as url:
        ready(page, url + "/")
        assert page.text_content(".live").startswith("live")
        page.wait_for_selector('[data-type="run_start"] > .row .badge.fly')  # the run is shown as running
        page.wait_for_selector('[data-key$="/turn-2"]', timeout=20_000)
        assert runner.is_alive(), "the run should still be going when turn 2 shows up"
        page.wait_for_selector('[data-key$="/turn-4"]', timeout=20_000)
        runner.join(30)
        page.wait_for_function("document.querySelector('.live').textContent === 'finished'", timeout=10_000)
        calls = usage_totals(trace_lines(path))[0]
        page.wait_for_function(
            '(n) => document.querySelector(\'[data-role="totals"] [data-f="calls"]\').textContent === n',
            arg=f"{calls:,}",
        )
        assert results and results[0].status == "final"
        assert page.locator('[data-type="run_start"] > .row .badge.ok').text_content() == "final"
