"""The trace index behind the viewer: tree, usage, live growth, odd files, search, details."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

from unbounded.trace import Event
from unbounded.view import api
from unbounded.view.errors import TraceFileError, UnknownNodeError
from unbounded.view.index import TraceIndex
from unbounded.view.search import search
from view_support import (
    BATCH,
    CHILD_QUESTION,
    PREFIX,
    as_schema1,
    record_engine_trace,
    synthetic_trace,
    trace_lines,
    usage_totals,
    write_schema2_trace,
)


@pytest.fixture(scope="module")
def engine_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("engine") / "run.jsonl"
    result = record_engine_trace(path)
    assert result.status == "final"
    return path


def kids(ix: TraceIndex, key: str | None) -> list[dict]:
    return ix.children(key, 0, 1000)["items"]


def walk(ix: TraceIndex, key: str | None = None):
    for s in kids(ix, key):
        yield s
        yield from walk(ix, s["k"])


def test_engine_trace_builds_run_rlm_turns_cells_subcalls(engine_trace: Path) -> None:
    ix = TraceIndex(engine_trace)
    lines = trace_lines(engine_trace)
    [run] = kids(ix, None)
    assert run["t"] == "run_start" and run["b"]["status"] == "final"
    [rlm] = kids(ix, run["k"])
    assert rlm["t"] == "rlm_start" and rlm["b"]["depth"] == 0
    turns = kids(ix, rlm["k"])
    assert [t["t"] for t in turns] == ["turn"] * 4
    assert [t["b"]["n"] for t in turns] == [1, 2, 3, 4]
    # turn 1: the model call, then the cell that holds the llm_batch and its calls
    members = kids(ix, turns[0]["k"])
    assert [m["t"] for m in members] == ["lm_request", "cell"]
    [batch] = kids(ix, members[1]["k"])
    assert batch["t"] == "subcall_start" and batch["b"]["kind"] == "llm_batch"
    assert len(kids(ix, batch["k"])) == BATCH
    # turn 2's cell failed; turn 3 started a child RLM at depth 1 under its rlm_query
    assert turns[1]["b"]["err"] is True
    [cell3] = [m for m in kids(ix, turns[2]["k"]) if m["t"] == "cell"]
    [query] = kids(ix, cell3["k"])
    [child] = kids(ix, query["k"])
    assert child["t"] == "rlm_start" and child["b"]["q"] == CHILD_QUESTION and child["d"] == 1
    assert turns[3]["b"]["final"] is not None
    # nothing was left pending and every event line is indexed
    assert ix.pending == 0 and ix.events == len(lines)
    assert not any(s["t"] == "pending" for s in walk(ix))


def test_usage_per_subtree_matches_the_trace(engine_trace: Path) -> None:
    ix = TraceIndex(engine_trace)
    lines = trace_lines(engine_trace)
    calls, tin, tout, cost = usage_totals(lines)
    [run] = kids(ix, None)
    u = run["u"]
    assert u[:3] == [calls, tin, tout]
    assert u[4] == pytest.approx(cost)
    run_end = next(e for e in lines if e["type"] == "run_end")
    by_model = run_end["data"]["usage"]["scripted-model"]
    assert u[:3] == [by_model["calls"], by_model["input_tokens"], by_model["output_tokens"]]
    # every node's total is its own call plus its children's totals
    for s in walk(ix):
        children = kids(ix, s["k"])
        own = s.get("own") or [0, 0, 0, 0, 0.0, 0]
        total = [own[i] + sum((c.get("u") or [0] * 6)[i] for c in children) for i in range(3)]
        assert (s.get("u") or [0, 0, 0])[:3] == total, s["k"]


def test_a_growing_file_is_followed_and_pending_cells_are_filled(engine_trace: Path, tmp_path: Path) -> None:
    raw = engine_trace.read_bytes().splitlines(keepends=True)
    # cut right after the first sub-call's first model request: its cell has not been written
    cut = next(i for i, line in enumerate(raw) if json.loads(line)["type"] == "subcall_start") + 2
    live = tmp_path / "live.jsonl"
    live.write_bytes(b"".join(raw[:cut]) + raw[cut][:25])  # and a torn half line
    ix = TraceIndex(live)
    assert ix.pending == 1
    pending = [s for s in walk(ix) if s["t"] == "pending"]
    assert len(pending) == 1 and pending[0]["open"]
    # it waits in the turn whose model call came just before it, where the cell will go
    assert pending[0]["p"].endswith("/turn-1")
    assert ix.events == cut  # the torn line is not read yet
    version = ix.version
    with live.open("ab") as fh:
        fh.write(raw[cut][25:])
        fh.write(b"".join(raw[cut + 1 :]))
    changes = ix.changes(version)
    assert not changes["reset"]
    changed = {s["k"]: s for s in changes["nodes"]}
    assert pending[0]["k"] in changed and changed[pending[0]["k"]]["t"] == "cell"
    assert ix.pending == 0
    full = TraceIndex(engine_trace)
    assert [s["k"] for s in walk(ix)] == [s["k"] for s in walk(full)]
    assert kids(ix, None)[0]["u"] == kids(full, None)[0]["u"]


def test_a_replaced_or_truncated_file_is_indexed_afresh(engine_trace: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(engine_trace.read_bytes())
    ix = TraceIndex(path)
    before = ix.version
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:5]))
    assert ix.changes(before)["reset"] is True
    assert ix.events == 5 and ix.version > before


def test_appended_schema1_runs_with_repeated_ids_stay_apart(engine_trace: Path, tmp_path: Path) -> None:
    single = as_schema1(engine_trace, tmp_path / "one.jsonl")
    assert json.loads(single.read_text().splitlines()[0])["id"] == "run-1"
    path = tmp_path / "two.jsonl"
    path.write_bytes(single.read_bytes() * 2)  # the same ids twice, as two appended schema-1 runs wrote them
    ix = TraceIndex(path)
    runs = kids(ix, None)
    assert [r["t"] for r in runs] == ["run_start", "run_start"]
    assert runs[0]["k"] != runs[1]["k"]
    one = TraceIndex(single)
    expected = [s["t"] for s in walk(one)]
    for run in runs:
        below = [s["t"] for s in walk(ix, run["k"])]
        assert ["run_start", *below] == expected
        assert run["u"] == kids(one, None)[0]["u"]
    assert len({s["k"] for s in walk(ix)}) == 2 * len(expected)


def test_schema2_runs_interleaved_in_one_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_schema2_trace(a, "aaaa01")
    write_schema2_trace(b, "bbbb02")
    la, lb = a.read_text().splitlines(), b.read_text().splitlines()
    mixed = tmp_path / "mixed.jsonl"
    merged = [x for pair in zip(la, lb, strict=True) for x in pair]
    mixed.write_text("\n".join(merged) + "\n")
    ix = TraceIndex(mixed)
    runs = kids(ix, None)
    assert {r["k"] for r in runs} == {"aaaa01-run", "bbbb02-run"}
    single = TraceIndex(a)
    for run in runs:
        prefix = run["k"].split("-")[0]
        keys = [s["k"] for s in walk(ix, run["k"])]
        assert all(k.startswith(prefix) for k in keys)
        assert len(keys) == len(list(walk(single, "aaaa01-run")))
        assert ix.pending == 0


def test_schema2_fields_checks_compaction_and_unknown_events(tmp_path: Path) -> None:
    path = tmp_path / "s2.jsonl"
    ids = write_schema2_trace(path)
    ix = TraceIndex(path)
    rlm = ids["rlm"]
    rows = kids(ix, rlm)
    types = [r["t"] for r in rows]
    assert types == ["turn", "turn", "compaction", "custom_probe"]
    probe = rows[3]
    assert probe["b"] == {"flavour": "strange", "level": 3}
    turn2 = kids(ix, rows[1]["k"])
    assert [m["t"] for m in turn2] == ["lm_request", "check"]
    assert turn2[1]["b"]["refused"] is True
    # the cell's detail has the output as shown and the cut; the sub-call prompt is complete
    cell = api.detail(ix, ids["cell1"])
    assert cell["start"]["data"]["shown"].startswith("[match at 4100]")
    assert cell["start"]["data"]["cut"] == 1234
    assert '<span class="n">grep</span>' in cell["code_html"]
    sub = api.detail(ix, ids["lm_sub"])
    assert sub["prompt_complete"] is True and len(sub["start"]["data"]["last_message"]) > 400
    rlm_detail = api.detail(ix, rlm)
    assert rlm_detail["start"]["data"]["prompt"][0]["role"] == "system"
    # an unpriced call makes the cost unknown all the way up
    run = kids(ix, None)[0]
    assert run["u"][4] is None and run["u"][:3] == [3, 1020, 50]
    meta = api.meta(ix)
    assert meta["runs"][0]["config"]["limits"]["sandbox"] == "bwrap"
    assert meta["runs"][0]["schema"] == 2
    assert [k for k in ix.nodes if k.startswith(PREFIX)]


def test_turn_detail_lists_members_and_what_was_shown_next(engine_trace: Path) -> None:
    ix = TraceIndex(engine_trace)
    [run] = kids(ix, None)
    [rlm] = kids(ix, run["k"])
    turns = kids(ix, rlm["k"])
    d = api.detail(ix, turns[0]["k"])
    assert [ix.nodes[k].type for k in d["members"]] == ["lm_request", "cell"]
    lines = trace_lines(engine_trace)
    root_requests = [e for e in lines if e["type"] == "lm_request" and e["parent"] == rlm["k"]]
    assert d["shown_next"]["text"] == root_requests[1]["data"]["last_message"]
    assert api.detail(ix, turns[-1]["k"])["shown_next"] is None
    lm = api.detail(ix, d["members"][0])
    assert "```" in lm["end"]["data"]["text"] and '<span class="fence">' in lm["reply_html"]


def test_schema1_previews_are_marked_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    long = "y" * 400
    path.write_text(
        Event("run_start", "run-1", None, 1.0, {"schema": 1}).to_json()
        + "\n"
        + Event("rlm_start", "rlm-2", "run-1", 1.0, {"depth": 0}).to_json()
        + "\n"
        + Event("lm_request", "lm-3", "rlm-2", 1.0, {"model": "m", "purpose": "root", "last_message": long}).to_json()
        + "\n"
    )
    ix = TraceIndex(path)
    assert api.detail(ix, "lm-3")["prompt_complete"] is False
    assert ix.node("lm-3").open


def test_odd_lines_other_formats_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text(
        "\n".join(
            [
                "not json at all",
                json.dumps([1, 2, 3]),
                json.dumps({"type": "lm_call", "index": 1, "model": "m", "answer": "hi", "seconds": 0.5}),
                '{"type": "weird", "id": "w-1", "ts": NaN, "data": {"x": Infinity}}',
                "",
                json.dumps({"type": "subcall_end", "id": "nobody", "data": {"ok": True}}),
            ]
        )
        + "\n"
    )
    ix = TraceIndex(path)
    assert ix.bad_lines == 2 and ix.events == 3
    rows = kids(ix, None)
    assert [r["t"] for r in rows] == ["lm_call", "weird", "subcall_end"]
    assert rows[0]["b"]["answer"] == "hi"
    detail = api.detail(ix, "w-1")
    assert detail["start"]["ts"] is None and detail["start"]["data"]["x"] is None  # valid JSON for the browser
    with pytest.raises(UnknownNodeError):
        ix.node("missing")
    with pytest.raises(TraceFileError, match="no such trace file"):
        TraceIndex(tmp_path / "absent.jsonl")
    os.unlink(path)
    with pytest.raises(TraceFileError):
        ix.refresh()


def test_search_values_not_keys_fast_and_slow_paths(engine_trace: Path, tmp_path: Path) -> None:
    ix = TraceIndex(engine_trace)
    res = search(ix, "UNDEFINED_NAME")  # case-insensitive: the failing cell's code and its error
    keys = {h["k"] for h in res["hits"]}
    assert any(ix.nodes[k].type == "cell" for k in keys)
    hit = next(h for h in res["hits"] if ix.nodes[h["k"]].type == "cell")
    assert "undefined_name" in hit["snippet"][hit["at"] :].lower()
    assert search(ix, "stdout_total")["hits"] == []  # a key, not a value
    assert search(ix, "   ")["hits"] == []
    # quotes and non-ASCII take the decoding path
    path = tmp_path / "u.jsonl"
    path.write_text(
        Event("warning", "w-1", None, 1.0, {"message": 'Zürich said "hello"\tthere'}).to_json()
        + "\n"
        + Event("warning", "w-2", None, 1.0, {"message": "nothing here"}).to_json()
        + "\n"
    )
    small = TraceIndex(path)
    assert [h["k"] for h in search(small, "zürich")["hits"]] == ["w-1"]
    assert [h["k"] for h in search(small, 'said "hello"')["hits"]] == ["w-1"]
    assert [h["k"] for h in search(small, '"\tthere')["hits"]] == ["w-1"]
    assert search(small, "x", limit=0)["more"] is False


def test_search_limit_and_more(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text(
        "".join(Event("warning", f"w-{i}", None, 1.0, {"message": "same text"}).to_json() + "\n" for i in range(30))
    )
    res = search(TraceIndex(path), "same", limit=10)
    assert len(res["hits"]) == 10 and res["more"] is True


def test_timeline_lanes_never_overlap(engine_trace: Path, tmp_path: Path) -> None:
    ix = TraceIndex(engine_trace)
    tl = ix.timeline()
    lines = trace_lines(engine_trace)
    assert len(tl["calls"]) == sum(1 for e in lines if e["type"] == "lm_request")
    assert tl["lanes"] >= 2  # the llm_batch calls overlapped
    by_lane: dict[int, list[tuple[float, float]]] = {}
    for _key, start, end, lane, *_ in tl["calls"]:
        by_lane.setdefault(lane, []).append((start, end))
    for spans in by_lane.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    big = tmp_path / "big.jsonl"
    synthetic_trace(big, 2000, batch=8)
    assert TraceIndex(big).timeline()["lanes"] >= 8


def test_children_pages_and_reveal(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    synthetic_trace(path, 3000, batch=300)
    ix = TraceIndex(path)
    batch = next(n for n in ix.nodes.values() if n.type == "subcall_start")
    page = ix.children(batch.key, 200, 200)
    assert page["total"] == 300 and len(page["items"]) == 100 and page["offset"] == 200
    last = batch.children[-1]
    r = api.reveal(ix, last)
    assert r["path"][-1] == batch.key and r["positions"][-1] == 299
    assert r["path"][0] == ix.roots[0]
