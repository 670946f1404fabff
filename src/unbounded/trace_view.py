"""Render a trace file as a tree with per-node usage (``unbounded trace FILE``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.tree import Tree

from .models.base import Usage
from .trace import TraceNode, build_tree, read_trace


def subtree_usage(node: TraceNode) -> Usage:
    total = Usage(cost_usd=0.0)
    for n in node.walk():
        if n.event.type == "lm_request" and n.end is not None and "usage" in n.end.data:
            total.add(Usage.from_dict(n.end.data["usage"]))
    return total


def _fmt_usage(u: Usage) -> str:
    cost = "?" if u.cost_usd is None else f"${u.cost_usd:.4f}"
    return f"[dim]{u.calls} calls · {u.input_tokens:,} in / {u.output_tokens:,} out · {cost}[/dim]"


def _first_line(text: str, limit: int = 90) -> str:
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    return (line[:limit] + "…") if len(line) > limit else line


def _label(node: TraceNode) -> str | None:
    ev, end = node.event, node.end
    d = ev.data
    ed: dict[str, Any] = end.data if end else {}
    if ev.type == "run_start":
        status = ed.get("status", "[red]unfinished[/red]")
        answer = ed.get("answer")
        elapsed = ed.get("elapsed")
        took = f" · {elapsed:.2f}s" if isinstance(elapsed, int | float) else ""
        return f"[bold]run[/bold] {status}{took} · answer: {answer!r} · {_fmt_usage(subtree_usage(node))}"
    if ev.type == "rlm_start":
        status = ed.get("status", "[red]unfinished[/red]")
        return (
            f"[bold cyan]rlm[/bold cyan] depth {d.get('depth')} · {status} · {ed.get('iterations', '?')} turns · "
            f"q: {_first_line(str(d.get('question', '')), 60)!r} · {_fmt_usage(subtree_usage(node))}"
        )
    if ev.type == "lm_request":
        if end is None:
            return f"[yellow]lm[/yellow] {d.get('model')} ({d.get('purpose')}) [red]no reply[/red]"
        if "error" in ed:
            return f"[yellow]lm[/yellow] {d.get('model')} ({d.get('purpose')}) [red]{ed['error']}[/red]"
        u = Usage.from_dict(ed.get("usage", {}))
        cached = " [green]cached[/green]" if ed.get("cached") else ""
        return (
            f"[yellow]lm[/yellow] {d.get('model')} ({d.get('purpose')}) {ed.get('duration', 0):.2f}s · "
            f"{u.input_tokens:,} in / {u.output_tokens:,} out{cached}"
        )
    if ev.type == "cell":
        flag = " [red]error[/red]" if d.get("error") else ""
        fin = f" [green]FINAL {str(d.get('final'))[:40]!r}[/green]" if d.get("final") is not None else ""
        return f"[magenta]cell[/magenta] turn {d.get('iteration')} {d.get('duration', 0):.3f}s: {_first_line(str(d.get('code', '')))}{flag}{fin}"
    if ev.type == "subcall_start":
        ok = "" if end is None or ed.get("ok") else " [red]failed[/red]"
        return f"[blue]{d.get('kind')}[/blue] {d.get('summary', {})}{ok} · {_fmt_usage(subtree_usage(node))}"
    if ev.type == "budget":
        return f"[red]budget exhausted: {d.get('limit')}[/red] {d.get('message', '')}"
    return None


def _add(tree: Tree, node: TraceNode, max_children: int) -> None:
    label = _label(node)
    if label is None:
        return
    branch = tree.add(label)
    kids = node.children
    lm_kids = [k for k in kids if k.event.type == "lm_request"]
    other = [k for k in kids if k.event.type != "lm_request"]
    # Sub-call batches produce many identical lm children: summarise them beyond a few.
    shown = lm_kids if len(lm_kids) <= max_children else lm_kids[:max_children]
    for k in sorted(shown + other, key=lambda n: n.event.ts):
        _add(branch, k, max_children)
    if len(lm_kids) > len(shown):
        branch.add(f"[dim]… {len(lm_kids) - len(shown)} more lm calls[/dim]")


def render_trace(path: str | Path, console: Console | None = None, max_children: int = 8) -> None:
    console = console or Console()
    events = read_trace(path)
    if not events:
        console.print(f"[red]{path}: no events[/red]")
        return
    root = Tree(f"[bold]{path}[/bold]")
    for node in build_tree(events):
        _add(root, node, max_children)
    console.print(root)
