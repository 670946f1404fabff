"""``bench export``: the successful trajectories of a bench folder as chat-format JSONL, for fine-tuning.

    unbounded bench export runs/realqa-dev --out rlm-sft.jsonl --min-score 1.0 --methods rlm

One JSON object per line: ``{"messages": [...], "metadata": {...}}``. ``messages`` is the root model's
conversation as it was built: the system prompt, any worked example of the prompt style, the first
user message (context description and question), then each turn's assistant reply (its code) and the
user message that followed it (the code's output, or the engine's note), ending with the reply that
gave the answer. Messages of the prompt's worked example carry ``"weight": 0``, the model's own
replies ``"weight": 1`` (the convention of OpenAI-style fine-tuning files: train on weight-1 turns).

Where the conversation comes from:

* RLM methods (the engine's trace): ``rlm_start.prompt`` (schema 2) gives the starting messages;
  each root ``lm_request`` gives the user message it ended with (``last_message``, whole in schema 2)
  and its ``lm_response`` the reply. Traces of schema 1 kept only the question and a 400-character
  preview of each message: the prompt is rebuilt with the installed prompt style, long outputs from
  the ``cell`` events. Every message is checked against what the trace recorded (message counts and
  ``input_chars`` of each request); a trajectory passes only when everything matches (``fidelity``
  ``exact``), otherwise it is ``approximate`` and kept only with ``allow_approximate``.
* Baselines (``codeact``, ``direct``, ...): the bench logs every call's whole messages, so each
  call that the next one does not extend is one conversation, exactly as sent.

Only the depth-0 conversation of an RLM is exported (child RLMs' and sub-calls' are not), and only
the history the engine kept: where it trimmed old turns to fit a small window, the model saw fewer.
Items of a held-out task (``realqa-test``) are never exported unless asked for, so the set stays unseen.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import UnboundedError
from ..trace import Event, read_trace
from .results import ResultRecord, latest, read_results

#: Tasks whose items must not become training data (their point is that no model has seen them).
HELD_OUT_TASKS = frozenset({"realqa-test"})
#: How much of ``lm_request.last_message`` schema-1 traces kept.
SCHEMA1_PREVIEW = 400
ROOT_PURPOSES = ("root", "forced_final")

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_MISSING = 3
EXIT_EMPTY = 4


class ExportError(UnboundedError):
    """A bench folder cannot be exported (missing, or without results)."""


@dataclass(slots=True)
class Trajectory:
    """One conversation in chat format, with where it came from."""

    messages: list[dict[str, Any]]
    metadata: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps({"messages": self.messages, "metadata": self.metadata}, ensure_ascii=False)


@dataclass(slots=True)
class ExportSummary:
    """What an export wrote and why the other results were left out (reason → count)."""

    out: Path
    written: int = 0
    items: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        return f"wrote {self.written} trajectories from {self.items} results to {self.out}" + (
            f" (left out: {why})" if why else ""
        )


class Skip(Exception):
    """A result whose trajectory is not exported; the message is the reason."""


# --------------------------------------------------------------------------- engine traces


def _message(role: str, content: str, weight: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"role": role, "content": content}
    if weight is not None:
        out["weight"] = weight
    return out


def _style(name: str) -> Any | None:
    """The installed prompt style of that name, or None (a style this version does not have)."""
    try:
        from ..styles import resolve_style

        return resolve_style(name, None)  # type: ignore[arg-type]
    except Exception:
        return None


def _reply_text(style: Any | None, style_name: str, text: str) -> str:
    """The reply as the engine kept it in the history (the compact style closes a stopped code fence)."""
    if style is not None:
        return style.reply_text(text)
    if style_name == "compact":
        from ..prompts import close_code_fence

        return close_code_fence(text)
    return text


def _rebuild_prompt(run: Event, root: Event, style: Any | None) -> list[dict[str, str]] | None:
    """Schema 1: the starting messages rebuilt with the installed style (None when it cannot be)."""
    if style is None:
        return None
    try:
        from ..context import ContextInfo, SkippedFile
        from ..prompts import PromptConfig

        config = run.data.get("config") or {}
        names = {f.name for f in fields(ContextInfo)}
        ctx = {k: v for k, v in dict(run.data["context"]).items() if k in names}
        ctx["skipped"] = [SkippedFile(s["path"], s["reason"]) for s in ctx.get("skipped") or []]
        info = ContextInfo(**ctx)
        if config.get("tools"):
            return None  # tool signatures and docs are not in the trace
        cfg = PromptConfig(
            max_iterations=int((config.get("budget") or {}).get("max_iterations", 20)),
            sub_calls=bool(config.get("sub_calls", True)),
            can_recurse=int(root.data.get("depth", 0)) < int(config.get("max_depth", 1)),
        )
        messages = style.initial_messages(cfg, root.data["question"], info, [])
        return [m.to_dict() for m in messages]
    except Exception:
        return None


def _rebuild_output(
    style: Any,
    config: dict[str, Any],
    cells: list[Event],
    iteration: int,
    question: str,
    code: list[str],
    earlier: list[list[str]],
) -> str | None:
    """Schema 1: the output message of one turn rebuilt from its cells (None when it cannot be)."""
    try:
        from ..repl.base import CellResult

        limit = int(config.get("shown_output_chars") or style.shown_output_chars)
        parts = []
        for i, cell in enumerate(cells, 1):
            d = cell.data
            result = CellResult(
                stdout=str(d.get("stdout") or ""),
                stdout_total=int(d.get("stdout_total") or 0),
                error=d.get("error"),
                final=d.get("final"),
                notes=[str(n) for n in d.get("notes") or []],
            )
            shown = d.get("shown")
            if shown is None:
                shown = style.format_cell(result, limit)[0]
            parts.append((f"[block {i}]\n" if len(cells) > 1 else "") + shown)
        parts.extend(style.turn_notes(code, question, earlier))
        max_it = int((config.get("budget") or {}).get("max_iterations", 20))
        return style.output_message(parts, iteration, max_it)
    except Exception:
        return None


def engine_trajectory(events: list[Event], record: ResultRecord) -> Trajectory:
    """The depth-0 conversation of an engine trace; raises ``Skip`` with the reason when there is none."""
    run = next((e for e in events if e.type == "run_start"), None)
    if run is None:
        raise Skip("trace without run_start")
    root = next((e for e in events if e.type == "rlm_start" and e.parent == run.id), None)
    if root is None:
        raise Skip("trace without a root rlm_start")
    schema = int(run.data.get("schema") or 1)
    config = run.data.get("config") or {}
    style_name = str(root.data.get("style") or config.get("prompt_style") or "full")
    style = _style(style_name)
    responses = {e.id: e for e in events if e.type == "lm_response"}
    requests = [e for e in events if e.type == "lm_request" and e.parent == root.id]
    requests = [e for e in requests if e.data.get("purpose") in ROOT_PURPOSES]
    if not requests:
        raise Skip("trace without root model calls")
    if any(r.id not in responses for r in requests):
        raise Skip("a root model call did not finish")
    # A failed attempt (the engine retries a too-long prompt with a shorter history) is not a turn.
    requests = [r for r in requests if "text" in responses[r.id].data]
    if not requests:
        raise Skip("every root model call failed")
    cells: dict[int, list[Event]] = {}
    for e in events:
        if e.type == "cell" and e.parent == root.id and e.data.get("iteration") is not None:
            cells.setdefault(int(e.data["iteration"]), []).append(e)

    lost: list[str] = []
    rebuilt: list[str] = []
    prompt = root.data.get("prompt")
    if prompt:
        prompt = [{"role": m["role"], "content": m["content"]} for m in prompt]
    else:
        prompt = _rebuild_prompt(run, root, style)
        if prompt is None:
            raise Skip("schema-1 trace whose prompt cannot be rebuilt")
        rebuilt.append("prompt rebuilt with the installed prompt style")
    first = requests[0].data
    if first.get("messages") != len(prompt) or first.get("input_chars") != sum(len(m["content"]) for m in prompt):
        lost.append("the prompt does not match the first call's size")
    if not prompt[-1]["content"].startswith(str(first.get("last_message", ""))):
        lost.append("the first user message does not match the trace")

    messages = [_message(m["role"], m["content"], 0 if m["role"] == "assistant" else None) for m in prompt]
    turn = _Turns(style, config, cells, str(root.data["question"]), schema)
    previous: Event | None = None
    previous_reply = ""
    for k, request in enumerate(requests):
        response = responses[request.id]
        if previous is not None:
            forced = request.data.get("purpose") == "forced_final"
            users = turn.users(k, request, previous, previous_reply, forced, lost, rebuilt)
            messages.extend(_message("user", u) for u in users)
        reply = _reply_text(style, style_name, str(response.data["text"]))
        messages.append(_message("assistant", reply, 1))
        turn.replied(reply)
        previous, previous_reply = request, reply

    return Trajectory(
        messages,
        _metadata(record, schema=schema, style=style_name, turns=len(requests), lost=lost, rebuilt=rebuilt),
    )


class _Turns:
    """The user messages between two root calls, from the trace (and, for schema 1, rebuilt and checked).

    After each turn the engine appends one user message (the output, a reminder, or a refused answer's
    note); before the forced last call it appends a second one (``FORCE_FINAL``), so that call ends
    with two, of which the trace holds only the last.
    """

    def __init__(
        self, style: Any | None, config: dict[str, Any], cells: dict[int, list[Event]], question: str, schema: int
    ):
        self.style, self.config, self.cells, self.question, self.schema = style, config, cells, question, schema
        self.code_earlier: list[list[str]] = []  # the code of each earlier turn that had some, oldest first
        self.code_last: list[str] = []
        self.last_reply = ""

    def replied(self, reply: str) -> None:
        from ..parsing import parse_reply

        if self.code_last:
            self.code_earlier.append(self.code_last)
        self.code_last = parse_reply(reply).code_blocks
        self.last_reply = reply

    def output(self, iteration: int) -> str | None:
        if self.style is None:
            return None
        return _rebuild_output(
            self.style,
            self.config,
            self.cells.get(iteration, []),
            iteration,
            self.question,
            self.code_last,
            self.code_earlier,
        )

    def candidates(self, iteration: int) -> list[str]:
        """What the engine may have appended after this turn's reply, most likely first."""
        from ..answer_guard import literal_final
        from ..parsing import parse_reply
        from ..prompts import NO_CODE_REMINDER, PREMATURE_FINAL_NOTE, UNGROUNDED_FINAL_NOTE

        out: list[str] = []
        parsed = parse_reply(self.last_reply)
        if self.cells.get(iteration):
            rebuilt = self.output(iteration)
            if rebuilt is not None:
                out.append(rebuilt)
        literal = literal_final(parsed)
        if literal is not None:
            out += [PREMATURE_FINAL_NOTE, UNGROUNDED_FINAL_NOTE.format(value=literal[:200])]
        if not parsed.code_blocks:
            out.append(NO_CODE_REMINDER)
        return out

    def users(
        self,
        k: int,
        request: Event,
        previous: Event,
        previous_reply: str,
        forced: bool,
        lost: list[str],
        rebuilt: list[str],
    ) -> list[str]:
        last = str(request.data.get("last_message", ""))
        added = 3 if forced else 2
        expected = None
        if request.data.get("messages") == previous.data.get("messages", 0) + added:
            expected = int(request.data["input_chars"]) - int(previous.data["input_chars"]) - len(previous_reply)
        if forced:
            options = self.candidates(k)
            fitting = [c for c in options if expected is not None and len(c) + len(last) == expected]
            if fitting:
                return [fitting[0], last]
            if options:
                lost.append(f"turn {k + 1}: the message before the forced answer is a guess")
                return [options[0], last]
            lost.append(f"turn {k + 1}: the message before the forced answer is not in the trace")
            return [last]
        whole = self.schema >= 2 or len(last) < SCHEMA1_PREVIEW or expected == len(last)
        if not whole:
            candidate = self.output(k)
            if candidate is not None and candidate.startswith(last) and expected in (None, len(candidate)):
                last, whole = candidate, True
                rebuilt.append(f"turn {k + 1}: output rebuilt from the cells")
                if expected is None:
                    lost.append(f"turn {k + 1}: output rebuilt from the cells, its length unchecked")
        if not whole:
            lost.append(f"turn {k + 1}: only a {len(last)}-character preview of the message is in the trace")
        elif expected is not None and expected != len(last):
            lost.append(f"turn {k + 1}: the message does not match the call's size")
        return [last]


# --------------------------------------------------------------------------- baseline call logs


def call_log_trajectories(lines: list[dict[str, Any]], record: ResultRecord) -> list[Trajectory]:
    """Each conversation in a baseline's call log: a call that no later call extends, with its answer."""
    chains: list[list[dict[str, Any]]] = []
    for line in lines:
        if line.get("type") != "lm_call" or "answer" not in line:
            continue
        full = [_message(m["role"], m["content"]) for m in line["messages"]]
        full.append(_message("assistant", str(line["answer"])))
        sent = full[:-1]
        for i, chain in enumerate(chains):
            if sent[: len(chain)] == chain:
                chains[i] = full
                break
        else:
            chains.append(full)
    out = []
    for i, chain in enumerate(chains):
        for m in chain:
            if m["role"] == "assistant":
                m["weight"] = 1
        turns = sum(m["role"] == "assistant" for m in chain)
        meta = _metadata(record, schema=None, style=None, turns=turns, lost=[], rebuilt=[])
        if len(chains) > 1:
            meta["part"] = f"{i + 1} of {len(chains)}"
        out.append(Trajectory(chain, meta))
    return out


def _metadata(
    record: ResultRecord, *, schema: int | None, style: str | None, turns: int, lost: list[str], rebuilt: list[str]
) -> dict[str, Any]:
    return {
        "task": record.task,
        "item_id": record.item_id,
        "method": record.method,
        "model": record.model,
        "score": record.score,
        "status": record.status,
        "answer": record.answer,
        "gold": record.gold,
        "turns": turns,
        "trace": record.trace,
        "trace_schema": schema,
        "prompt_style": style,
        "fidelity": "approximate" if lost else "exact",
        "rebuilt": rebuilt,
        "lost": lost,
    }


# --------------------------------------------------------------------------- the folder


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a torn last line of a killed run
    return out


def record_trajectories(runs_dir: Path, record: ResultRecord) -> list[Trajectory]:
    """The trajectories of one result; raises ``Skip`` with the reason when there are none."""
    if not record.trace:
        raise Skip("no trace")
    path = runs_dir / record.trace
    if not path.is_file():
        raise Skip("trace file missing")
    lines = _read_jsonl(path)
    if not lines:
        raise Skip("empty trace")
    if lines[0].get("type") == "lm_call":
        found = call_log_trajectories(lines, record)
        if not found:
            raise Skip("no finished call in the trace")
        return found
    if any(x.get("type") == "run_start" for x in lines):
        return [engine_trajectory(read_trace(path), record)]
    raise Skip(f"unknown trace format ({lines[0].get('type', 'no type')!r})")


def select(
    records: Iterable[ResultRecord],
    *,
    min_score: float,
    methods: set[str] | None,
    tasks: set[str] | None,
    include_held_out: bool,
    skipped: Counter[str],
) -> Iterator[ResultRecord]:
    for r in records:
        if methods is not None and r.method not in methods:
            skipped["other method"] += 1
        elif tasks is not None and r.task not in tasks:
            skipped["other task"] += 1
        elif r.task in HELD_OUT_TASKS and not include_held_out:
            skipped["held-out task"] += 1
        elif r.failed:
            skipped["failed"] += 1
        elif r.score < min_score:
            skipped["below min score"] += 1
        else:
            yield r


def export_trajectories(
    runs_dir: str | Path,
    out: str | Path,
    *,
    min_score: float = 1.0,
    methods: Iterable[str] | None = ("rlm",),
    tasks: Iterable[str] | None = None,
    include_held_out: bool = False,
    allow_approximate: bool = False,
) -> ExportSummary:
    """Write the trajectories of the results that pass the filters to ``out`` (JSONL, overwritten)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ExportError(f"no such bench folder: {runs_dir}")
    records = latest(read_results(runs_dir))
    if not records:
        raise ExportError(
            f"{runs_dir} has no results.jsonl with results; run `unbounded bench run --out {runs_dir}` first"
        )
    summary = ExportSummary(Path(out), items=len(records))
    chosen = select(
        records,
        min_score=min_score,
        methods=None if methods is None else set(methods),
        tasks=None if tasks is None else set(tasks),
        include_held_out=include_held_out,
        skipped=summary.skipped,
    )
    lines = []
    for record in chosen:
        try:
            found = record_trajectories(runs_dir, record)
        except Skip as exc:
            summary.skipped[str(exc)] += 1
            continue
        kept = [t for t in found if allow_approximate or t.metadata["fidelity"] == "exact"]
        if not kept:
            summary.skipped["approximate"] += 1
        lines.extend(t.to_json() for t in kept)
    summary.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = summary.out.with_name(summary.out.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(summary.out)
    summary.written = len(lines)
    return summary


# --------------------------------------------------------------------------- command line


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs_dir", type=Path, metavar="RUNS_DIR", help="a bench run folder (results.jsonl and traces/)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.jsonl", help="where the JSONL goes (overwritten)")
    p.add_argument("--min-score", type=float, default=1.0, help="export results scoring at least this (default 1.0)")
    p.add_argument(
        "--methods", type=_csv, default=["rlm"], help="comma list of methods to export, or 'all' (default rlm)"
    )
    p.add_argument("--tasks", type=_csv, default=None, help="comma list of tasks to export (default all)")
    p.add_argument(
        "--include-held-out",
        action="store_true",
        help=f"also export held-out tasks ({', '.join(sorted(HELD_OUT_TASKS))}); never for training on them",
    )
    p.add_argument(
        "--allow-approximate",
        action="store_true",
        help="also export trajectories that could not be checked against the trace (old traces)",
    )


def handle(args: argparse.Namespace) -> int:
    methods = None if args.methods == ["all"] else args.methods
    if not 0.0 <= args.min_score <= 1.0:
        print("unbounded bench export: --min-score must be between 0 and 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        summary = export_trajectories(
            args.runs_dir,
            args.out,
            min_score=args.min_score,
            methods=methods,
            tasks=args.tasks,
            include_held_out=args.include_held_out,
            allow_approximate=args.allow_approximate,
        )
    except ExportError as exc:
        print(f"unbounded bench export: {exc}", file=sys.stderr)
        return EXIT_MISSING
    print(summary.describe(), file=sys.stderr)
    return EXIT_OK if summary.written else EXIT_EMPTY


def add_parser(subparsers: Any) -> None:
    """``export`` under a ``bench`` command of an argparse tree."""
    p = subparsers.add_parser(
        "export",
        help="successful trajectories of a bench folder as chat JSONL",
        description="Write the successful trajectories of a bench run folder as chat-format JSONL for fine-tuning.",
    )
    add_arguments(p)
    p.set_defaults(func=handle)
