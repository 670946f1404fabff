"""An index of a JSONL trace: byte offsets per event, the tree, usage per subtree.

The viewer never holds a trace's text. One pass over the file records, for every event, where its
line starts and how long it is, and builds the tree from small briefs (``brief.py``); the full
event is read back by offset when a node is opened. ``refresh`` indexes only the bytes appended
since the last call, so a trace that a running ``ask --trace`` is writing is followed live, and a
file that shrank or was replaced is indexed afresh.

The tree it builds is the one people debug by: run → RLM → turns → (model call, cells) → sub-calls
→ child RLMs. Turns are not events: a root model call opens one and the cells of that iteration
join it. Two things of the trace format are handled here:

* A cell's event is written when the cell ends, after the sub-calls it made, which name it as their
  parent. A reference to an id not seen yet gets a ``pending`` placeholder (under the run) that the
  real event fills in and moves to its place.
* Schema 1 ids (``run-1``, ``cell-4``) repeat when several runs append to one file. Every
  ``run_start`` opens a new scope; an id is looked up in the current scope first, then across the
  file (schema 2 ids are unique, so runs written concurrently still resolve).
"""

from __future__ import annotations

import heapq
import json
import os
import threading
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .brief import end_brief, start_brief
from .errors import TraceFileError, UnknownNodeError

END_OF = {
    "run_end": "run_start",
    "rlm_end": "rlm_start",
    "subcall_end": "subcall_start",
    "lm_response": "lm_request",
}
#: Event types that belong to the turn they happen in when their parent is an RLM.
TURN_MEMBERS = frozenset({"lm_request", "cell", "warning", "check"})
_CHUNK = 4 << 20


_DECODER = json.JSONDecoder(parse_constant=lambda _name: None)


def loads(raw: bytes | str) -> Any:
    """``json.loads`` with NaN and Infinity read as null, so what the browser gets is valid JSON."""
    return _DECODER.decode(raw.decode("utf-8") if isinstance(raw, bytes) else raw)


@dataclass(slots=True)
class Totals:
    """Usage of a node's subtree: model calls, tokens, cost (``unpriced`` calls had no known cost)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0
    errors: int = 0

    @classmethod
    def from_usage(cls, usage: Any, error: bool = False) -> Totals:
        u = usage if isinstance(usage, dict) else {}
        cost = u.get("cost_usd")
        priced = isinstance(cost, int | float) and not isinstance(cost, bool)
        return cls(
            calls=_int(u.get("calls")) or (0 if error else 1),
            input_tokens=_int(u.get("input_tokens")),
            output_tokens=_int(u.get("output_tokens")),
            cached_input_tokens=_int(u.get("cached_input_tokens")),
            cost_usd=float(cost) if priced else 0.0,
            unpriced=0 if priced or error else 1,
            errors=1 if error else 0,
        )

    def add(self, other: Totals, sign: int = 1) -> None:
        self.calls += sign * other.calls
        self.input_tokens += sign * other.input_tokens
        self.output_tokens += sign * other.output_tokens
        self.cached_input_tokens += sign * other.cached_input_tokens
        self.cost_usd += sign * other.cost_usd
        self.unpriced += sign * other.unpriced
        self.errors += sign * other.errors

    def empty(self) -> bool:
        return not (self.calls or self.input_tokens or self.output_tokens or self.errors)

    def to_list(self) -> list[Any]:
        """Compact form for the browser: [calls, in, out, cached, cost or None if unknown, errors]."""
        cost = None if self.unpriced else round(self.cost_usd, 10)
        return [self.calls, self.input_tokens, self.output_tokens, self.cached_input_tokens, cost, self.errors]


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _id_number(event_id: str | None) -> int | None:
    """The counter at the end of an engine id (``3f9a1c-cell-12`` → 12)."""
    if not event_id:
        return None
    tail = event_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(slots=True)
class Node:
    """One row of the tree: an event (with its end event, if any), a turn, or a pending placeholder."""

    key: str
    type: str
    id: str | None
    parent: str | None
    ts: float
    seq: int
    offset: int = -1
    length: int = 0
    end_offset: int = -1
    end_length: int = 0
    end_ts: float | None = None
    brief: dict[str, Any] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    own: Totals | None = None
    depth: int = 0
    version: int = 0

    @property
    def open(self) -> bool:
        """A start event whose end has not been written (yet): in flight, or cut off by a crash."""
        return self.end_ts is None and (self.type in END_OF.values() or self.type == "pending")

    def duration(self) -> float | None:
        if self.type in ("cell", "lm_request"):
            d = self.brief.get("dur")
            if isinstance(d, int | float):
                return float(d)
        if self.type == "run_start" and isinstance(self.brief.get("elapsed"), int | float):
            return float(self.brief["elapsed"])
        if self.end_ts is not None:
            return max(0.0, self.end_ts - self.ts)
        return None


@dataclass(slots=True)
class _Turns:
    """Per RLM: the turn now open and turns by number."""

    current: str | None = None
    number: int = 0
    by_number: dict[int, str] = field(default_factory=dict)
    request: int | None = None  # the number in the id of the current turn's model call


class TraceIndex:
    """Index of one trace file. Thread-safe; every public method first indexes appended bytes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._reset()
        self.refresh()

    # -- building ----------------------------------------------------------------------------
    def _reset(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.roots: list[str] = []
        self.version = getattr(self, "version", 0)  # monotonic across resets, so clients see them
        self.events = 0
        self.bad_lines = 0
        self._pos = 0
        self._identity: tuple[int, int] | None = None
        self._seq = 0
        self._scope: dict[str, str] = {}
        self._global: dict[str, str] = {}
        self._unique_ids = False
        self._run: str | None = None
        self._turns: dict[str, _Turns] = {}
        self._calls: list[str] = []
        self._runs: list[str] = []
        self._line_offsets: list[int] = []
        self._line_lengths: list[int] = []
        self._line_keys: list[str] = []
        self._changes: list[tuple[int, str]] = []
        self._log_from = 0
        self._logging = False
        self._pending = 0

    def refresh(self) -> bool:
        """Index what was appended since the last call. Returns True when anything changed."""
        with self._lock:
            try:
                st = os.stat(self.path)
            except FileNotFoundError as exc:
                raise TraceFileError(f"{self.path}: no such trace file") from exc
            except OSError as exc:
                raise TraceFileError(f"{self.path}: cannot read ({exc.strerror})") from exc
            identity = (st.st_dev, st.st_ino)
            reset = self._identity is not None and (identity != self._identity or st.st_size < self._pos)
            if reset:
                self._reset()
            self._identity = identity
            if st.st_size == self._pos:
                return reset
            before = self.version
            first = self._pos == 0
            self._logging = not first
            if first:
                self._log_from = self.version
            try:
                with open(self.path, "rb") as fh:
                    fh.seek(self._pos)
                    self._consume(fh, st.st_size)
            except OSError as exc:
                raise TraceFileError(f"{self.path}: cannot read ({exc.strerror})") from exc
            if first:
                self._log_from = self.version
            return reset or self.version != before

    def _consume(self, fh: Any, size: int) -> None:
        pos = self._pos
        rest = b""
        while pos + len(rest) < size:
            chunk = fh.read(min(_CHUNK, size - pos - len(rest)))
            if not chunk:
                break
            buf = rest + chunk
            start = 0
            while True:
                nl = buf.find(b"\n", start)
                if nl < 0:
                    break
                if nl > start:
                    self._line(buf[start:nl], pos + start, nl - start)
                start = nl + 1
            pos += start
            rest = buf[start:]
        self._pos = pos  # a torn last line stays unread until its newline arrives

    def _line(self, raw: bytes, offset: int, length: int) -> None:
        if raw.isspace():
            return
        try:
            d = loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            self.bad_lines += 1
            return
        if not isinstance(d, dict):
            self.bad_lines += 1
            return
        self.events += 1
        self._seq += 1
        self.version += 1
        kind = str(d.get("type") or "record")
        rid = d.get("id")
        rid = None if rid is None else str(rid)
        pid = d.get("parent")
        pid = None if pid is None else str(pid)
        ts = _float(d.get("ts")) or 0.0
        data = d.get("data")
        if not isinstance(data, dict):  # a record of another format (a baseline's call log): show its fields
            data = {k: v for k, v in d.items() if k not in ("type", "id", "parent", "ts")}
        key = self._end(kind, rid, ts, data, offset, length)
        if key is None:
            key = self._start(kind, rid, pid, ts, data, offset, length)
        self._line_offsets.append(offset)
        self._line_lengths.append(length)
        self._line_keys.append(key)

    def _lookup(self, rid: str | None) -> str | None:
        if rid is None:
            return None
        found = self._scope.get(rid)
        if found is None and self._unique_ids:
            found = self._global.get(rid)
        return found

    def _end(self, kind: str, rid: str | None, ts: float, data: dict[str, Any], offset: int, length: int) -> str | None:
        start_kind = END_OF.get(kind) or (kind[:-4] + "_start" if kind.endswith("_end") else None)
        key = self._lookup(rid) if start_kind else None
        if key is None:
            return None
        node = self.nodes[key]
        if node.type != start_kind or node.end_ts is not None:
            return None
        node.end_ts = ts
        node.end_offset, node.end_length = offset, length
        node.brief.update(end_brief(kind, data))
        self._touch(node)
        if kind == "lm_response":
            error = bool(data.get("error"))
            own = Totals.from_usage(data.get("usage"), error=error)
            node.own = own
            self._add_up(node, own)
            parent = self.nodes.get(node.parent) if node.parent else None
            if parent is not None and parent.type == "turn":
                parent.brief["lm_error"] = error
                if node.brief.get("reply"):
                    parent.brief["reply"] = node.brief["reply"]
                self._touch(parent)
        return key

    def _start(
        self, kind: str, rid: str | None, pid: str | None, ts: float, data: dict[str, Any], offset: int, length: int
    ) -> str:
        if kind == "run_start":
            self._scope = {}
            schema = data.get("schema")
            self._unique_ids = isinstance(schema, int) and schema >= 2
        brief = start_brief(kind, data)
        existing = self._lookup(rid)
        placeholder = self.nodes.get(existing) if existing else None
        if placeholder is not None and placeholder.type == "pending":
            node = placeholder
            node.type, node.ts, node.brief = kind, ts, brief
            node.offset, node.length = offset, length
            self._pending -= 1
        else:
            key = self._new_key(rid)
            node = Node(key, kind, rid, None, ts, self._seq, offset, length, brief=brief)
            self.nodes[key] = node
            if rid is not None:
                self._scope[rid] = key
                self._global[rid] = key
        if kind == "cell" and isinstance(brief.get("dur"), float):
            node.ts = ts - brief["dur"]  # written when the cell ends; rows and the timeline use its start
        if kind == "run_start":
            self._run = node.key
            self._runs.append(node.key)
        elif kind == "lm_request":
            self._calls.append(node.key)
        parent_key = self._lookup(pid)
        if pid is not None and parent_key is None:
            parent_key = self._placeholder(pid, ts)
        self._place(node, parent_key)
        self._touch(node)
        return node.key

    def _new_key(self, rid: str | None) -> str:
        if rid is None:
            return f"line-{self._seq}"
        if rid not in self.nodes:
            return rid
        n = 2
        while f"{rid}~{n}" in self.nodes:
            n += 1
        return f"{rid}~{n}"

    def _placeholder(self, rid: str, ts: float) -> str:
        key = self._new_key(rid)
        node = Node(key, "pending", rid, None, ts, self._seq, brief={})
        self.nodes[key] = node
        self._scope[rid] = key
        self._global[rid] = key
        self._pending += 1
        self._place(node, self._running_turn(rid) or self._run)
        return key

    def _running_turn(self, rid: str) -> str | None:
        """The turn a not-yet-written cell ``rid`` most likely belongs to.

        Ids count up across a run, and a cell's id is taken right after its turn's model call
        returns, so among the RLMs still running it is the one whose current call has the highest
        number below the cell's.
        """
        number = _id_number(rid)
        if number is None:
            return None
        best: tuple[int, str] | None = None
        for rlm_key, turns in self._turns.items():
            if turns.current is None or turns.request is None or turns.request >= number:
                continue
            if self.nodes[rlm_key].end_ts is not None:
                continue
            if best is None or turns.request > best[0]:
                best = (turns.request, turns.current)
        return best[1] if best else None

    def _place(self, node: Node, parent_key: str | None) -> None:
        """Hang ``node`` under ``parent_key`` (through a turn when the parent is an RLM); move it if it hung elsewhere."""
        target = parent_key
        parent = self.nodes.get(parent_key) if parent_key else None
        if parent is not None and parent.type == "rlm_start" and node.type in TURN_MEMBERS:
            target = self._turn_for(parent, node)
        if node.parent == target and (target is not None or node.key in self.roots):
            if target is not None:
                self._note_cell(self.nodes[target], node)  # a placeholder filled where it already hung
            return
        if node.parent is not None or node.key in self.roots:
            self._detach(node)
        node.parent = target
        if target is None:
            self.roots.append(node.key)
        else:
            tnode = self.nodes[target]
            tnode.children.append(node.key)
            self._touch(tnode)
            self._note_cell(tnode, node)
            if not node.totals.empty():
                self._add_up(tnode, node.totals, include_self=True)
        self._set_depth(node)

    def _note_cell(self, turn: Node, node: Node) -> None:
        """A turn's row shows its first cell's code, whether a cell failed, and the final answer."""
        if node.type != "cell" or turn.type != "turn":
            return
        turn.brief["cells"] = turn.brief.get("cells", 0) + 1
        if node.brief.get("err"):
            turn.brief["err"] = True
        if node.brief.get("final") is not None:
            turn.brief["final"] = node.brief["final"]
        if not turn.brief.get("code"):
            turn.brief["code"] = node.brief.get("code")
        self._touch(turn)

    def _detach(self, node: Node) -> None:
        if node.parent is None:
            self.roots.remove(node.key)
            return
        old = self.nodes[node.parent]
        old.children.remove(node.key)
        self._touch(old)
        if not node.totals.empty():
            self._add_up(old, node.totals, include_self=True, sign=-1)

    def _turn_for(self, rlm: Node, node: Node) -> str:
        turns = self._turns.setdefault(rlm.key, _Turns())
        if node.type == "cell":
            it = node.brief.get("it")
            if isinstance(it, int) and it in turns.by_number:
                return turns.by_number[it]
            if turns.current is not None:
                return turns.current
            return self._new_turn(rlm, turns, it if isinstance(it, int) else None, "root")
        if node.type == "lm_request":
            cur = self.nodes.get(turns.current) if turns.current else None
            turns.request = _id_number(node.id)
            if cur is not None and not cur.brief.get("cells") and cur.brief.get("lm_error"):
                return cur.key  # a retried call (the history trimmed after a context overflow)
            return self._new_turn(rlm, turns, None, str(node.brief.get("purpose") or "root"))
        if turns.current is not None:
            return turns.current
        return rlm.key

    def _new_turn(self, rlm: Node, turns: _Turns, number: int | None, purpose: str) -> str:
        n = number if number is not None else turns.number + 1
        turns.number = max(turns.number, n)
        key = f"{rlm.key}/turn-{n}"
        while key in self.nodes:
            key += "+"
        node = Node(key, "turn", None, None, rlm.ts, self._seq, brief={"n": n, "purpose": purpose})
        self.nodes[key] = node
        turns.current = key
        turns.by_number[n] = key
        node.parent = rlm.key
        node.depth = rlm.depth
        rlm.children.append(key)
        self._touch(rlm)
        self._touch(node)
        return key

    def _set_depth(self, node: Node) -> None:
        parent = self.nodes.get(node.parent) if node.parent else None
        base = parent.depth if parent is not None else 0
        depth = node.brief.get("depth") if node.type == "rlm_start" else base
        depth = depth if isinstance(depth, int) else base
        if depth == node.depth:
            return
        node.depth = depth
        for child in node.children:
            self._set_depth(self.nodes[child])

    def _add_up(self, node: Node, totals: Totals, *, include_self: bool = True, sign: int = 1) -> None:
        cur: Node | None = node if include_self else (self.nodes.get(node.parent) if node.parent else None)
        while cur is not None:
            cur.totals.add(totals, sign)
            self._touch(cur)
            cur = self.nodes.get(cur.parent) if cur.parent else None

    def _touch(self, node: Node) -> None:
        if node.version != self.version:
            node.version = self.version
            if self._logging:
                self._changes.append((self.version, node.key))
        # a turn spans its members: its start is its first member's, its end its last member's
        if node.parent is not None and node.type != "turn":
            parent = self.nodes.get(node.parent)
            if parent is not None and parent.type == "turn":
                if not parent.children or parent.children[0] == node.key:
                    parent.ts = node.ts
                end = node.end_ts if node.end_ts is not None else node.ts + (node.duration() or 0.0)
                if parent.end_ts is None or end > parent.end_ts:
                    parent.end_ts = end

    # -- reading -----------------------------------------------------------------------------
    def node(self, key: str) -> Node:
        with self._lock:
            node = self.nodes.get(key)
            if node is None:
                raise UnknownNodeError(f"no node {key!r} in {self.path.name}")
            return node

    def summary(self, node: Node) -> dict[str, Any]:
        """What a tree row needs, in a compact form for the browser."""
        out: dict[str, Any] = {
            "k": node.key,
            "t": node.type,
            "id": node.id,
            "p": node.parent,
            "ts": node.ts,
            "te": node.end_ts,
            "n": len(node.children),
            "b": node.brief,
            "d": node.depth,
            "dur": node.duration(),
            "open": node.open,
        }
        if not node.totals.empty():
            out["u"] = node.totals.to_list()
        if node.own is not None:
            out["own"] = node.own.to_list()
        return out

    def children(self, key: str | None, offset: int = 0, limit: int = 200) -> dict[str, Any]:
        with self._lock:
            self.refresh()
            keys = self.roots if key is None else self.node(key).children
            page = keys[max(0, offset) : max(0, offset) + max(1, limit)]
            return {
                "key": key,
                "total": len(keys),
                "offset": offset,
                "items": [self.summary(self.nodes[k]) for k in page],
                "version": self.version,
            }

    def ancestors(self, key: str) -> list[str]:
        """Keys from the root down to ``key``'s parent."""
        with self._lock:
            out: list[str] = []
            cur = self.node(key).parent
            while cur is not None:
                out.append(cur)
                cur = self.nodes[cur].parent
            out.reverse()
            return out

    def position(self, key: str) -> int:
        """Index of ``key`` among its parent's children (to page to it)."""
        with self._lock:
            node = self.node(key)
            siblings = self.roots if node.parent is None else self.nodes[node.parent].children
            return siblings.index(key)

    def read_events(self, node: Node) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The node's start and end events as written, read back from the file by offset."""
        with self._lock, open(self.path, "rb") as fh:
            return self._read(fh, node.offset, node.length), self._read(fh, node.end_offset, node.end_length)

    @staticmethod
    def _read(fh: Any, offset: int, length: int) -> dict[str, Any] | None:
        if offset < 0:
            return None
        fh.seek(offset)
        try:
            value = loads(fh.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return value if isinstance(value, dict) else None

    def changes(self, since: int, limit: int = 2000) -> dict[str, Any]:
        """Summaries of the nodes changed after version ``since``; ``reset`` when the client must reload."""
        with self._lock:
            self.refresh()
            if since < self._log_from or since > self.version:
                return {"version": self.version, "reset": True, "nodes": []}
            i = bisect_left(self._changes, (since + 1, ""))
            keys = list(dict.fromkeys(k for _, k in self._changes[i:]))
            if len(keys) > limit:
                return {"version": self.version, "reset": True, "nodes": []}
            return {"version": self.version, "reset": False, "nodes": [self.summary(self.nodes[k]) for k in keys]}

    def runs(self) -> list[Node]:
        with self._lock:
            return [self.nodes[k] for k in self._runs]

    def calls(self) -> list[Node]:
        with self._lock:
            return [self.nodes[k] for k in self._calls]

    def lines(self) -> list[tuple[int, int, str]]:
        """(offset, length, node key) of every event line, in file order."""
        with self._lock:
            return list(zip(self._line_offsets, self._line_lengths, self._line_keys, strict=True))

    def line_key(self, offset: int) -> str | None:
        """The node whose event line contains byte ``offset``."""
        with self._lock:
            i = bisect_left(self._line_offsets, offset + 1) - 1
            return self._line_keys[i] if i >= 0 else None

    @property
    def size(self) -> int:
        return self._pos

    @property
    def pending(self) -> int:
        return self._pending

    def timeline(self) -> dict[str, Any]:
        """Every model call as a bar, packed into lanes so that overlapping calls never share one."""
        with self._lock:
            self.refresh()
            calls = [self.nodes[k] for k in self._calls]
            last = max((n.end_ts or n.ts for n in self.nodes.values()), default=0.0)
            models: dict[str, int] = {}
            purposes: dict[str, int] = {}
            rows: list[list[Any]] = []
            busy: list[tuple[float, int]] = []  # (time the lane frees up, lane)
            free: list[int] = []  # lanes free now, lowest first
            lanes = 0
            for node in sorted(calls, key=lambda n: n.ts):
                end = node.end_ts if node.end_ts is not None else last
                while busy and busy[0][0] <= node.ts:
                    heapq.heappush(free, heapq.heappop(busy)[1])
                if free:
                    lane = heapq.heappop(free)
                else:
                    lane = lanes
                    lanes += 1
                heapq.heappush(busy, (end, lane))
                model = str(node.brief.get("model"))
                purpose = str(node.brief.get("purpose"))
                state = (
                    2 if node.end_ts is None else 1 if node.brief.get("error") else 3 if node.brief.get("cached") else 0
                )
                rows.append(
                    [
                        node.key,
                        node.ts,
                        end,
                        lane,
                        node.depth,
                        purposes.setdefault(purpose, len(purposes)),
                        models.setdefault(model, len(models)),
                        state,
                    ]
                )
            first = min((n.ts for n in self.nodes.values() if n.ts), default=0.0)
            return {
                "t0": first,
                "t1": last,
                "lanes": lanes,
                "models": list(models),
                "purposes": list(purposes),
                "calls": rows,
                "version": self.version,
            }
