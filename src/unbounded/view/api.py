"""The viewer's answers as plain JSON-ready dicts, shared by the server and the HTML export.

``meta`` (the runs: question, status, config, usage), ``children`` (a page of a node's rows),
``detail`` (one node's events), ``timeline`` (every model call), ``search`` and ``changes``
(what a live view must redraw since a version).
"""

from __future__ import annotations

from typing import Any

from .detail import node_detail
from .index import Totals, TraceIndex
from .search import search as search_trace

#: Runs whose config and context ``meta`` reads back in full (a file may hold thousands of appended runs).
MAX_RUNS = 50
PAGE = 200


def meta(index: TraceIndex, name: str | None = None) -> dict[str, Any]:
    index.refresh()
    runs = index.runs()
    total = Totals()
    for key in index.roots:
        total.add(index.nodes[key].totals)
    out_runs = []
    for node in runs[-MAX_RUNS:]:
        start, end = index.read_events(node)
        sdata = (start or {}).get("data") or {}
        edata = (end or {}).get("data") or {}
        out_runs.append(
            {
                "key": node.key,
                "question": sdata.get("question"),
                "schema": sdata.get("schema"),
                "config": sdata.get("config"),
                "context": sdata.get("context"),
                "status": edata.get("status"),
                "answer": edata.get("answer"),
                "error": edata.get("error"),
                "iterations": edata.get("iterations"),
                "elapsed": edata.get("elapsed"),
                "usage": edata.get("usage"),
                "ledger": edata.get("ledger"),
                "totals": node.totals.to_list(),
                "ts": node.ts,
                "te": node.end_ts,
                "open": node.open,
            }
        )
    in_flight = sum(1 for n in index.calls() if n.end_ts is None)
    return {
        "name": name or index.path.name,
        "bytes": index.size,
        "events": index.events,
        "bad_lines": index.bad_lines,
        "version": index.version,
        "pending": index.pending,
        "runs_total": len(runs),
        "runs": out_runs,
        "totals": total.to_list(),
        "calls_in_flight": in_flight,
        "live": any(r["open"] for r in out_runs),
    }


def children(index: TraceIndex, key: str | None, offset: int = 0, limit: int = PAGE) -> dict[str, Any]:
    return index.children(key or None, offset, limit)


def detail(index: TraceIndex, key: str) -> dict[str, Any]:
    index.refresh()
    return node_detail(index, key)


def timeline(index: TraceIndex) -> dict[str, Any]:
    return index.timeline()


def search(index: TraceIndex, query: str, limit: int = 200) -> dict[str, Any]:
    return search_trace(index, query, limit)


def changes(index: TraceIndex, since: int) -> dict[str, Any]:
    return index.changes(since)


def reveal(index: TraceIndex, key: str) -> dict[str, Any]:
    """The ancestors of ``key`` and its place among each parent's children, to open the tree down to it."""
    index.refresh()
    path = index.ancestors(key)
    chain = [*path, key]
    return {"key": key, "path": path, "positions": [index.position(k) for k in chain]}
