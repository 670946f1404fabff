"""Run one cell of model-written code in a namespace: shared by both REPL implementations.

- Top-level definitions that would shadow the REPL's own names (``def FINAL``, ``llm_query = ...``)
  are dropped before running, with a note, because small models tend to redefine them.
- A trailing expression is displayed like in a notebook.
- Errors come back as a trimmed traceback of the cell's own frames.
"""

from __future__ import annotations

import ast
import collections
import io
import linecache
import time
import traceback

from .._lazy import TYPE_CHECKING
from .namespace import SHIELDED, FinalSignal

if TYPE_CHECKING:
    from typing import Any

    from .namespace import NamespaceState

MAX_TRACEBACK_CHARS = 3000


class CellInterrupted(BaseException):
    """Raised inside a cell when it runs past its time or CPU limit."""


class CappedWriter(io.TextIOBase):
    """A text sink that keeps the first and last ``limit/2`` characters and counts the rest.

    The tail is a queue of chunks trimmed from the left, so each write costs O(len(s)) however much
    was written before (a flood of small prints must not cost a copy of the whole tail each).
    """

    def __init__(self, limit: int = 1_000_000):
        self.limit = max(limit, 2)
        self.head: list[str] = []
        self.head_len = 0
        self._tail: collections.deque[str] = collections.deque()
        self._tail_len = 0
        self.total = 0

    @property
    def tail(self) -> str:
        half = self.limit // 2
        text = "".join(self._tail)
        return text[-half:] if len(text) > half else text

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            s = str(s)
        n = len(s)
        self.total += n
        half = self.limit // 2
        used = 0
        if self.head_len < half:
            take = s[: half - self.head_len]
            self.head.append(take)
            self.head_len += len(take)
            used = len(take)
        if used < n:
            # Slice only what the tail keeps: never copy the rest of a huge string.
            if n - used >= half:
                self._tail.clear()
                self._tail_len = 0
                piece = s[n - half :]
            else:
                piece = s[used:] if used else s
            self._tail.append(piece)
            self._tail_len += len(piece)
            while self._tail_len - len(self._tail[0]) >= half:
                self._tail_len -= len(self._tail.popleft())
        return n

    def flush(self) -> None:
        return None

    def getvalue(self) -> str:
        head = "".join(self.head)
        tail = self.tail
        kept = len(head) + len(tail)
        if self.total > kept:
            return f"{head}\n... [{self.total - kept:,} characters of output dropped] ...\n{tail}"
        return head + tail


class _Shield(ast.NodeTransformer):
    """Drop top-level statements that rebind a reserved name."""

    def __init__(self, reserved: set[str]):
        self.reserved = reserved
        self.dropped: list[str] = []

    def _binds_reserved(self, node: ast.stmt) -> str | None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name in self.reserved:
            return node.name
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id in self.reserved:
                    return t.id
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name.split(".")[0]) in self.reserved:
                    return alias.asname or alias.name
        return None

    def filter(self, tree: ast.Module) -> ast.Module:
        body = []
        for stmt in tree.body:
            name = self._binds_reserved(stmt)
            if name:
                self.dropped.append(name)
            else:
                body.append(stmt)
        tree.body = body
        return tree


def format_error(exc: BaseException, filename_prefix: str = "<cell") -> str:
    """A traceback limited to frames from model code, trimmed from the middle if long."""
    te = traceback.TracebackException.from_exception(exc, limit=None)
    own = [f for f in te.stack if f.filename.startswith(filename_prefix)]
    te.stack = traceback.StackSummary.from_list(own[-8:])
    text = "".join(te.format())
    if len(text) > MAX_TRACEBACK_CHARS:
        half = MAX_TRACEBACK_CHARS // 2
        text = text[:half] + "\n... [traceback trimmed] ...\n" + text[-half:]
    return text.rstrip()


def new_result(**fields: Any) -> dict[str, Any]:
    """A cell outcome in its wire form (the fields of ``CellResult``, which reads it back)."""
    result: dict[str, Any] = {
        "stdout": "",
        "stdout_total": 0,
        "error": None,
        "final": None,
        "duration": 0.0,
        "timed_out": False,
        "state_lost": False,
        "notes": [],
    }
    result.update(fields)
    return result


def run_cell(state: NamespaceState, code: str, cell_name: str, out: CappedWriter) -> dict[str, Any]:
    """Execute ``code`` in ``state.namespace`` with print output going to ``out`` (set up by the caller).

    Returns the outcome as a plain dict (``new_result``): the worker sends it as it is, the
    in-process REPL wraps it in a ``CellResult``.
    """
    started = time.perf_counter()
    result = new_result()
    state.final.answer = None
    linecache.cache[cell_name] = (len(code), None, code.splitlines(True), cell_name)
    try:
        tree = ast.parse(code, filename=cell_name, mode="exec")
    except SyntaxError as exc:
        result["error"] = format_error(exc)
        result["duration"] = time.perf_counter() - started
        return result
    shield = _Shield(set(state.builtins) & set(SHIELDED))
    tree = shield.filter(tree)
    if shield.dropped:
        result["notes"].append(
            "ignored your definition of "
            + ", ".join(sorted(set(shield.dropped)))
            + ": these names are built into the REPL already; call them directly"
        )
    display_expr: ast.Expression | None = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        display_expr = ast.Expression(tree.body.pop().value)
    ns = state.namespace
    try:
        exec(compile(tree, cell_name, "exec"), ns)
        if display_expr is not None:
            value = eval(compile(display_expr, cell_name, "eval"), ns)
            if value is not None:
                out.write(_display(value) + "\n")
    except FinalSignal as sig:
        result["final"] = sig.answer
    except CellInterrupted as exc:
        result["timed_out"] = True
        result["error"] = f"{exc.args[0] if exc.args else 'cell interrupted'}"
    except KeyboardInterrupt:
        result["timed_out"] = True
        result["error"] = "cell interrupted (time limit); variables defined so far are kept"
    except BaseException as exc:  # model code may raise anything, SystemExit included
        result["error"] = format_error(exc)
    finally:
        restored = state.restore_reserved()
        if restored:
            result["notes"].append("restored built-in name(s) " + ", ".join(restored) + " that the code replaced")
        if state.notes:
            result["notes"].extend(dict.fromkeys(state.notes))  # each note once, in order
            state.notes.clear()
    if result["final"] is None and state.final.answer is not None:
        result["final"] = state.final.answer
    result["duration"] = time.perf_counter() - started
    return result


def _display(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a hostile __repr__
        text = f"<unprintable {type(value).__name__}: {exc!r}>"
    return text
