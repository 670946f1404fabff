"""Jupyter notebooks (``.ipynb``, nbformat 3 and 4) as text in the percent format, never executed.

Each cell starts with a line ``# %% [code] cell N`` (or ``[markdown]``, ``[raw]``); with
``notebook_outputs`` (the default) a code cell's text outputs follow under ``# %% [output] cell N``
(streams, ``text/plain`` results, errors without their ANSI colours; images as ``[image/png output]``).
The notebook is plain JSON, read with the standard library: nothing in it runs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ContextError
from .base import DocumentInfo, LoadResult, LoadState, Source, single
from .text import decode_text

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_OUTPUT_CHARS = 20_000


def _joined(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


def _outputs(outputs: list[Any]) -> str:
    parts = []
    for out in outputs:
        if not isinstance(out, dict):
            continue
        kind = out.get("output_type")
        if kind == "stream":
            parts.append(_joined(out.get("text")))
        elif kind in ("execute_result", "display_data", "pyout"):
            data = out.get("data") or {}
            if "text/plain" in data:
                parts.append(_joined(data["text/plain"]))
            elif "text" in out:  # nbformat 3
                parts.append(_joined(out["text"]))
            else:
                parts.extend(f"[{mime} output]" for mime in data if not mime.startswith("text/"))
        elif kind in ("error", "pyerr"):
            trace = _ANSI.sub("", "\n".join(_joined(t) for t in out.get("traceback") or []))
            parts.append(trace or f"{out.get('ename', 'Error')}: {out.get('evalue', '')}")
    text = "\n".join(p.rstrip("\n") for p in parts if p)
    if len(text) > MAX_OUTPUT_CHARS:
        text = text[:MAX_OUTPUT_CHARS] + f"\n[… output cut at {MAX_OUTPUT_CHARS:,} characters]"
    return text


def load_notebook(src: Source, state: LoadState) -> LoadResult:
    notes: list[str] = []
    raw = decode_text(src.read(), state, notes)
    try:
        nb = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ContextError(f"not a valid notebook: not JSON ({exc})") from exc
    if not isinstance(nb, dict):
        raise ContextError("not a valid notebook: the top level is not a JSON object")
    cells = nb.get("cells")
    if cells is None:  # nbformat 3 keeps cells in worksheets
        cells = [c for ws in nb.get("worksheets") or [] if isinstance(ws, dict) for c in ws.get("cells") or []]
    if not isinstance(cells, list):
        raise ContextError("not a valid notebook: 'cells' is not a list")
    lines: list[str] = []
    counts = {"code": 0, "markdown": 0, "raw": 0}
    for n, cell in enumerate((c for c in cells if isinstance(c, dict)), 1):
        kind = str(cell.get("cell_type") or "raw")
        kind = "markdown" if kind == "heading" else kind
        counts[kind] = counts.get(kind, 0) + 1
        source = _joined(cell.get("source", cell.get("input")))
        lines.append(f"# %% [{kind}] cell {n}")
        lines.append(source.rstrip("\n"))
        if kind == "code" and state.options.notebook_outputs:
            output = _outputs(cell.get("outputs") or [])
            if output:
                lines.append(f"# %% [output] cell {n}")
                lines.append(output)
        lines.append("")
    text = "\n".join(lines).strip()
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    language = (
        ((meta.get("kernelspec") or {}).get("language") or (meta.get("language_info") or {}).get("name"))
        if meta
        else None
    )
    doc = DocumentInfo(src.name, "notebook", len(text), src.size, notes=notes)
    doc.notes.append(", ".join(f"{v} {k} cell(s)" for k, v in counts.items() if v) or "no cells")
    if language:
        doc.notes.append(f"kernel language: {language}")
    return single(text, doc)
