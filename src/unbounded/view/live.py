"""A live tree of a running RLM in the terminal (``rich.live``), fed by trace events.

``LiveTree`` is a trace listener (``RLM(on_event=tree)``): every event updates a small model of
the run — RLMs by depth, their turns, the sub-calls in flight and the child RLMs they started —
and a ``rich.live.Live`` redraws it a few times a second with tokens, cost and elapsed time. On a
console that is not a terminal it draws nothing at all, so ``ask 2>log`` stays clean.

A cell's event is written when the cell ends, after its sub-calls; until then a sub-call names a
cell the tree has not seen. It is shown under the RLM that is running code (the one whose last
model call came just before the cell's id was taken, when several are).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from ..parsing import parse_reply

_NUM = re.compile(r"(\d+)$")


def _num(event_id: str | None) -> int | None:
    m = _NUM.search(event_id or "")
    return int(m.group(1)) if m else None


def _first_line(text: str, limit: int = 70) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(slots=True)
class _Sub:
    id: str
    kind: str
    summary: dict[str, Any]
    started: float
    done: bool = False
    ok: bool = True
    calls: int = 0
    calls_done: int = 0
    children: list[str] = field(default_factory=list)  # child RLM ids


@dataclass(slots=True)
class _Turn:
    n: int
    purpose: str
    started: float
    state: str = "model"  # model → code → done
    code: str = ""
    tokens: int = 0
    error: str | None = None
    final: bool = False
    subs: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _RLM:
    id: str
    depth: int
    question: str
    started: float
    turns: list[_Turn] = field(default_factory=list)
    status: str | None = None
    last_request: int = -1
    cells: set[str] = field(default_factory=set)


class LiveTree:
    """Events in, a ``rich.live`` tree out. Call it with events; ``stop()`` when the run ends."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        enabled: bool = True,
        refresh_per_second: float = 8.0,
        max_turns: int = 4,
        max_subs: int = 4,
        transient: bool = True,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self.max_turns = max_turns
        self.max_subs = max_subs
        self._lock = threading.RLock()
        self._started = time.monotonic()
        self._rlms: dict[str, _RLM] = {}
        self._order: list[str] = []
        self._subs: dict[str, _Sub] = {}
        self._owner: dict[str, str] = {}  # sub-call id / cell id → RLM id
        self._sub_turn: dict[str, _Turn] = {}
        self._question = ""
        self._status: str | None = None
        self.tokens = 0
        self.cost: float | None = 0.0
        self.calls = 0
        self.calls_in_flight = 0
        self.subcalls = 0
        self.subcalls_in_flight = 0
        self._live: Live | None = None
        if self.enabled:
            self._live = Live(
                get_renderable=self.renderable,
                console=self.console,
                refresh_per_second=refresh_per_second,
                transient=transient,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()

    @classmethod
    def for_stderr(cls, enabled: bool = True) -> LiveTree:
        """The tree ``ask`` shows: on stderr when it is a terminal, else nothing (even with FORCE_COLOR set)."""
        return cls(Console(stderr=True), enabled=enabled and sys.stderr.isatty())

    def __enter__(self) -> LiveTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        with self._lock:
            live, self._live = self._live, None
        if live is not None:
            live.stop()

    # -- events ------------------------------------------------------------------------------
    def __call__(self, event: Any) -> None:
        with self._lock:
            self._apply(event.type, event.id, event.parent, event.data if isinstance(event.data, dict) else {})

    def _apply(self, kind: str, eid: str, parent: str | None, d: dict[str, Any]) -> None:
        now = time.monotonic()
        if kind == "run_start":
            self._question = str(d.get("question", ""))
        elif kind == "run_end":
            self._status = str(d.get("status"))
        elif kind == "rlm_start":
            depth = d.get("depth") if isinstance(d.get("depth"), int) else 0
            self._rlms[eid] = _RLM(eid, depth, str(d.get("question", "")), now)
            self._order.append(eid)
            sub = self._subs.get(parent or "")
            if sub is not None:
                sub.children.append(eid)
        elif kind == "rlm_end":
            rlm = self._rlms.get(eid)
            if rlm is not None:
                rlm.status = str(d.get("status"))
                for turn in rlm.turns:
                    turn.state = "done"
        elif kind == "lm_request":
            self.calls += 1
            self.calls_in_flight += 1
            rlm = self._rlms.get(parent or "")
            if rlm is not None:  # a root call: a new turn
                for turn in rlm.turns:
                    turn.state = "done"
                rlm.turns.append(_Turn(len(rlm.turns) + 1, str(d.get("purpose", "root")), now))
                rlm.last_request = _num(eid) or rlm.last_request
            else:
                sub = self._subs.get(parent or "")
                if sub is not None:
                    sub.calls += 1
        elif kind == "lm_response":
            self.calls_in_flight = max(0, self.calls_in_flight - 1)
            usage = d.get("usage") if isinstance(d.get("usage"), dict) else {}
            tokens = int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)
            self.tokens += tokens
            cost = usage.get("cost_usd")
            if usage:
                self.cost = None if cost is None or self.cost is None else self.cost + float(cost)
            rlm = self._rlms.get(parent or "")
            if rlm is not None and rlm.turns:
                turn = rlm.turns[-1]
                turn.tokens += tokens
                if d.get("error"):
                    turn.error = _first_line(str(d["error"]))
                else:
                    parsed = parse_reply(str(d.get("text") or ""))
                    turn.code = _first_line(parsed.code_blocks[0]) if parsed.code_blocks else ""
                    turn.state = "code" if parsed.code_blocks else "done"
                    turn.final = parsed.final is not None and not parsed.code_blocks
            else:
                sub = self._subs.get(parent or "")
                if sub is not None:
                    sub.calls_done += 1
        elif kind == "subcall_start":
            self.subcalls += 1
            self.subcalls_in_flight += 1
            sub = _Sub(eid, str(d.get("kind")), d.get("summary") if isinstance(d.get("summary"), dict) else {}, now)
            self._subs[eid] = sub
            owner = self._owner_of(parent)
            if owner is not None:
                rlm = self._rlms[owner]
                if rlm.turns:
                    rlm.turns[-1].subs.append(eid)
                    self._sub_turn[eid] = rlm.turns[-1]
        elif kind == "subcall_end":
            self.subcalls_in_flight = max(0, self.subcalls_in_flight - 1)
            sub = self._subs.get(eid)
            if sub is not None:
                sub.done = True
                sub.ok = bool(d.get("ok"))
        elif kind == "cell":
            rlm = self._rlms.get(parent or "")
            if rlm is not None and rlm.turns:
                rlm.cells.add(eid)
                turn = rlm.turns[-1]
                if d.get("error"):
                    turn.error = _first_line(str(d["error"]))
                if d.get("final") is not None:
                    turn.final = True

    def _owner_of(self, cell_or_rlm: str | None) -> str | None:
        """The RLM running the cell ``cell_or_rlm`` names (or that RLM itself)."""
        if cell_or_rlm is None:
            return None
        if cell_or_rlm in self._rlms:
            return cell_or_rlm
        if cell_or_rlm in self._owner:
            return self._owner[cell_or_rlm]
        running = [r for r in self._rlms.values() if r.status is None and r.turns and r.turns[-1].state == "code"]
        if not running:
            return None
        number = _num(cell_or_rlm)
        owner = running[-1]
        if number is not None:
            before = [r for r in running if r.last_request < number]
            if before:
                owner = max(before, key=lambda r: r.last_request)
        self._owner[cell_or_rlm] = owner.id
        return owner.id

    # -- drawing -----------------------------------------------------------------------------
    def renderable(self) -> RenderableType:
        with self._lock:
            cost = "cost ?" if self.cost is None else f"${self.cost:.4f}"
            root_turns = sum(len(r.turns) for r in self._rlms.values() if r.depth == 0)
            head = Text.assemble(
                ("run ", "bold"),
                (f"{self._status} " if self._status else "", "green" if self._status == "final" else "yellow"),
                f"· turn {root_turns} · {self.calls} model calls ({self.calls_in_flight} in flight) · ",
                f"{self.subcalls} sub-calls ({self.subcalls_in_flight} in flight) · {self.tokens:,} tokens · {cost} · ",
                f"{time.monotonic() - self._started:.1f}s",
            )
            tree = Tree(head)
            for rid in self._order:
                rlm = self._rlms[rid]
                if rlm.depth == 0:
                    self._draw_rlm(tree, rlm)
            return Group(tree)

    def _draw_rlm(self, parent: Tree, rlm: _RLM) -> None:
        state = f"[green]{escape(rlm.status)}[/green]" if rlm.status == "final" else escape(rlm.status or "")
        branch = parent.add(
            f"[bold cyan]RLM depth {rlm.depth}[/bold cyan] {state} [dim]{escape(_first_line(rlm.question, 60))}[/dim]"
        )
        hidden = len(rlm.turns) - self.max_turns
        if hidden > 0:
            branch.add(f"[dim]… {hidden} earlier turns[/dim]")
        for turn in rlm.turns[-self.max_turns :]:
            self._draw_turn(branch, turn)

    def _draw_turn(self, parent: Tree, turn: _Turn) -> None:
        if turn.state == "model":
            what = "[yellow]waiting for the model[/yellow]"
        elif turn.state == "code":
            what = "[magenta]running code[/magenta]"
        else:
            what = "[green]done[/green]"
        label = "forced final" if turn.purpose == "forced_final" else f"turn {turn.n}"
        extra = f" [dim]{escape(turn.code)}[/dim]" if turn.code else ""
        flags = (" [red]error[/red]" if turn.error else "") + (" [green]FINAL[/green]" if turn.final else "")
        branch = parent.add(f"[bold]{label}[/bold] {what} · {turn.tokens:,} tokens{flags}{extra}")
        subs = [self._subs[s] for s in turn.subs]
        active = [s for s in subs if not s.done]
        finished = [s for s in subs if s.done]
        shown = active + finished[-max(0, self.max_subs - len(active)) :] if self.max_subs > len(active) else active
        if len(subs) > len(shown):
            branch.add(f"[dim]… {len(subs) - len(shown)} more sub-calls done[/dim]")
        for sub in sorted(shown, key=lambda s: s.started):
            self._draw_sub(branch, sub)

    def _draw_sub(self, parent: Tree, sub: _Sub) -> None:
        if sub.kind in ("llm_batch", "rlm_batch"):
            total = sub.summary.get("n")
            what = f"{sub.calls_done}/{total if total is not None else sub.calls} done"
        elif sub.kind == "rlm_query":
            what = escape(_first_line(str(sub.summary.get("question", "")), 50))
        elif sub.kind == "tool":
            what = escape(str(sub.summary.get("name")))
        else:
            what = f"{sub.calls_done}/{sub.calls} calls"
        state = "[blue]⋯ in flight[/blue]" if not sub.done else ("[green]✓[/green]" if sub.ok else "[red]failed[/red]")
        branch = parent.add(f"[blue]{escape(sub.kind)}[/blue] {what} {state}")
        for child in sub.children:
            rlm = self._rlms.get(child)
            if rlm is not None:
                self._draw_rlm(branch, rlm)
