"""Everything the detail pane shows for one node, read back from the trace file.

A node's detail is its events as written (start and end) plus what the browser should not have
to compute: highlighted code and replies, and for a turn the keys of its members and what the
model was shown after it (the next root call's last message).
"""

from __future__ import annotations

from typing import Any

from .highlight import code_html, reply_html
from .index import TraceIndex

#: Schema 1 traces keep this many characters of a call's last message (``calls.PREVIEW``).
SCHEMA1_PREVIEW = 400


def node_detail(index: TraceIndex, key: str) -> dict[str, Any]:
    node = index.node(key)
    start, end = index.read_events(node)
    out: dict[str, Any] = {"summary": index.summary(node), "start": start, "end": end}
    sdata = _data(start)
    edata = _data(end)
    if node.type == "cell":
        code = sdata.get("code")
        if isinstance(code, str):
            out["code_html"] = code_html(code)
    elif node.type == "lm_request":
        text = edata.get("text")
        if isinstance(text, str):
            out["reply_html"] = reply_html(text)
        out["prompt_complete"] = _complete(sdata)
    elif node.type == "turn":
        members = [k for k in node.children if index.nodes[k].type in ("lm_request", "cell", "warning", "check")]
        out["members"] = members
        out["shown_next"] = _shown_next(index, key)
    elif node.type == "pending":
        out["note"] = (
            "this node's own event has not been written yet (a cell is written when it ends); "
            "the sub-calls below it are in flight"
        )
    return out


def _data(event: dict[str, Any] | None) -> dict[str, Any]:
    data = event.get("data") if event else None
    return data if isinstance(data, dict) else {}


def _complete(request_data: dict[str, Any]) -> bool:
    """Schema 2 writes a call's last message in full (and names its prompt style); schema 1 kept a preview."""
    if "prompt_style" in request_data:
        return True
    last = request_data.get("last_message")
    return not (isinstance(last, str) and len(last) >= SCHEMA1_PREVIEW)


def _shown_next(index: TraceIndex, turn_key: str) -> dict[str, Any] | None:
    """The message that followed this turn: the next turn's model call's last message."""
    turn = index.node(turn_key)
    if turn.parent is None:
        return None
    siblings = [k for k in index.node(turn.parent).children if index.nodes[k].type == "turn"]
    try:
        nxt = siblings[siblings.index(turn_key) + 1]
    except (ValueError, IndexError):
        return None
    for k in index.nodes[nxt].children:
        member = index.nodes[k]
        if member.type == "lm_request":
            start, _ = index.read_events(member)
            data = _data(start)
            return {
                "key": k,
                "text": data.get("last_message"),
                "complete": _complete(data),
                "messages": data.get("messages"),
            }
    return None
