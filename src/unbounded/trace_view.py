"""Render a trace file as a tree with per-node usage (``unbounded trace FILE [--full]``).

By default a cell shows the first line of its code; ``--full`` shows the whole cell: its code
(highlighted), its output, its error and its final answer. ``unbounded view`` is the browser
version of the same tree.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from rich.tree import Tree

from .cli.exitcodes import EXIT_CONTEXT, EXIT_EMPTY, EXIT_OK, fail
from .models.base import Usage
from .trace import Event, TraceNode, read_trace

#: Characters of a cell's output shown with ``--full`` (the rest is summarised).
FULL_OUTPUT_CHARS = 20_000
#: End events and the start they close (the same id).
END_OF = {"run_end": "run_start", "rlm_end": "rlm_start", "subcall_end": "subcall_start", "lm_response": "lm_request"}


def subtree_usage(node: TraceNode) -> Usage:
    total = Usage(cost_usd=0.0)
    for n in node.walk():
        if n.event.type == "lm_request" and n.end is not None and "usage" in n.end.data:
            total.add(Usage.from_dict(n.end.data["usage"]))
    return total


def build_forest(events: list[Event]) -> list[TraceNode]:
    """Events as a forest, with end events attached to their start (same id).

    Unlike a single pass, a child written before its parent (sub-calls come before the cell that
    made them, which is written when it ends) still hangs under it. Ids repeated by runs appended
    to one file (schema 1: ``run-1`` … again) are resolved within their own run.
    """
    starts = [e for e in events if not (e.type in END_OF and e.id is not None)]
    ids = [e.id for e in starts]
    segments: list[list[Event]] = []
    if len(set(ids)) == len(ids):
        segments = [events]
    else:
        for ev in events:
            if ev.type == "run_start" or not segments:
                segments.append([])
            segments[-1].append(ev)
    roots: list[TraceNode] = []
    for segment in segments:
        nodes: dict[str, TraceNode] = {}
        order: list[TraceNode] = []
        for ev in segment:
            if ev.type in END_OF and ev.id in nodes and nodes[ev.id].end is None:
                nodes[ev.id].end = ev
                continue
            node = TraceNode(ev)
            order.append(node)
            if ev.id not in nodes:
                nodes[ev.id] = node
        for node in order:
            parent = nodes.get(node.event.parent) if node.event.parent else None
            if parent is None or parent is node:
                roots.append(node)
            else:
                parent.children.append(node)
    return roots


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


def _cell_body(d: dict[str, Any]) -> RenderableType:
    """The whole cell for ``--full``: code, output (as the model was shown it, when the trace has it), error, final."""
    parts: list[RenderableType] = [Syntax(str(d.get("code", "")).rstrip("\n") or " ", "python", theme="ansi_dark")]
    shown = d.get("shown")
    out = shown if isinstance(shown, str) else d.get("stdout")
    if isinstance(out, str) and out:
        text = (
            out
            if len(out) <= FULL_OUTPUT_CHARS
            else out[:FULL_OUTPUT_CHARS] + f"\n… {len(out) - FULL_OUTPUT_CHARS:,} more characters"
        )
        parts.append(Text("output" + (" (as shown to the model)" if isinstance(shown, str) else "") + ":", style="dim"))
        parts.append(Text(text))
    total = d.get("stdout_total")
    if isinstance(d.get("cut"), int) and d["cut"]:
        parts.append(Text(f"{d['cut']:,} characters were cut from what the model saw", style="yellow"))
    elif isinstance(total, int) and isinstance(d.get("stdout"), str) and total > len(d["stdout"]):
        parts.append(
            Text(f"the cell printed {total:,} characters; the trace keeps {len(d['stdout']):,}", style="yellow")
        )
    if d.get("error"):
        parts.append(Text("error:", style="dim"))
        parts.append(Text(str(d["error"]), style="red"))
    if d.get("final") is not None:
        parts.append(Text(f"FINAL: {d['final']}", style="green"))
    return Group(*parts)


def _add(tree: Tree, node: TraceNode, max_children: int, full: bool) -> None:
    label = _label(node)
    if label is None:
        return
    branch = tree.add(label)
    if full and node.event.type == "cell":
        branch.add(_cell_body(node.event.data))
    kids = node.children
    lm_kids = [k for k in kids if k.event.type == "lm_request"]
    other = [k for k in kids if k.event.type != "lm_request"]
    # Sub-call batches produce many identical lm children: summarise them beyond a few.
    shown = lm_kids if len(lm_kids) <= max_children else lm_kids[:max_children]
    for k in sorted(shown + other, key=lambda n: n.event.ts):
        _add(branch, k, max_children, full)
    if len(lm_kids) > len(shown):
        branch.add(f"[dim]… {len(lm_kids) - len(shown)} more lm calls[/dim]")


def render_trace(path: str | Path, console: Console | None = None, max_children: int = 8, full: bool = False) -> bool:
    """Print the trace as a tree. Returns False (after saying so) when the file holds no events."""
    console = console or Console()
    events = read_trace(path)
    if not events:
        console.print(f"[red]{path}: no events[/red]")
        return False
    root = Tree(f"[bold]{path}[/bold]")
    for node in build_forest(events):
        _add(root, node, max_children, full)
    console.print(root)
    return True


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "trace",
        help="show a trace file as a tree with per-node usage",
        description="Print a trace as a tree: runs, RLMs, model calls, cells and sub-calls, with usage per node.",
    )
    p.add_argument("file", help="a trace file written by --trace")
    p.add_argument("--max-children", type=int, default=8, help="model calls shown per node before summarising")
    p.add_argument("--full", action="store_true", help="show whole cells: code, output, errors, final answers")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        return fail(EXIT_CONTEXT, f"no such trace file: {path}")
    try:
        shown = render_trace(path, max_children=args.max_children, full=args.full)
    except (OSError, UnicodeDecodeError) as exc:
        return fail(EXIT_CONTEXT, f"cannot read {path}: {exc}")
    except KeyError as exc:
        return fail(
            EXIT_CONTEXT,
            f"{path} is not a trace written by --trace (a line has no {exc.args[0]!r}); "
            "'unbounded view' shows other JSONL records",
        )
    return EXIT_OK if shown else EXIT_EMPTY
