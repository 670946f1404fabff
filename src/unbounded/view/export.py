"""``unbounded view TRACE --html OUT.html``: one self-contained file to share.

The page is the live viewer's, with the answers it would fetch embedded as JSON: every node's row,
the timeline, the runs, and each node's full events (breadth first, so the top of the tree comes
first) until ``max_bytes`` of them; past the cap, nodes keep their rows and usage but not their
text, and the page says so. Works from ``file://`` with no network.
"""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import api
from .errors import EmptyTraceError, TraceFileError
from .index import TraceIndex
from .page import render_page

DEFAULT_MAX_BYTES = 64 << 20


@dataclass(slots=True)
class ExportResult:
    out: Path
    bytes: int
    nodes: int
    details: int
    capped: bool


def export_data(index: TraceIndex, max_bytes: int = DEFAULT_MAX_BYTES, name: str | None = None) -> dict[str, Any]:
    """What the static page needs, as one JSON-ready dict."""
    index.refresh()
    nodes = {k: index.summary(n) for k, n in index.nodes.items()}
    children = {"": list(index.roots)}
    for k, n in index.nodes.items():
        if n.children:
            children[k] = list(n.children)
    details: dict[str, Any] = {}
    used = 0
    capped = False
    queue = deque(index.roots)
    while queue:
        key = queue.popleft()
        node = index.nodes[key]
        queue.extend(node.children)
        if capped:
            continue
        d = api.detail(index, key)
        size = len(json.dumps(d, ensure_ascii=False))
        if used + size > max_bytes:
            capped = True
            continue
        used += size
        details[key] = d
    return {
        "meta": api.meta(index, name),
        "timeline": api.timeline(index),
        "nodes": nodes,
        "children": children,
        "details": details,
        "capped": capped,
        "max_bytes": max_bytes,
    }


def export_html(
    trace: str | os.PathLike[str], out: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES
) -> ExportResult:
    """Write the static viewer for ``trace`` to ``out``. Raises TraceFileError / EmptyTraceError."""
    trace, out = Path(trace), Path(out)
    if not trace.is_file():
        raise TraceFileError(f"{trace}: no such trace file")
    index = TraceIndex(trace)
    if index.events == 0:
        raise EmptyTraceError(f"{trace}: the trace holds no events, so there is nothing to export")
    data = export_data(index, max_bytes, trace.name)
    config = {"mode": "static", "view": "trace", "title": trace.name}
    page = render_page(config, data, title=f"{trace.name} · unbounded")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise TraceFileError(f"{out}: cannot write ({exc.strerror})") from exc
    return ExportResult(out, len(page.encode("utf-8")), len(data["nodes"]), len(data["details"]), data["capped"])
