"""The few small fields of an event that a tree row shows (the full event is read on demand).

The index keeps one brief per node in memory, so a 100 MB trace costs a few hundred bytes a
node rather than its text. Event types this module does not know get their first scalar fields.
"""

from __future__ import annotations

from typing import Any

TEXT = 160  # characters of a question, answer or message kept in a brief
LINE = 120  # characters of a first line of code or reply


def first_line(text: Any, limit: int = LINE) -> str:
    """The first non-blank line of ``text``, cut to ``limit`` characters (with an ellipsis)."""
    if not isinstance(text, str):
        return "" if text is None else cut(repr(text), limit)
    for line in text.splitlines():
        if line.strip():
            return cut(line.rstrip(), limit)
    return ""


def cut(value: Any, limit: int = TEXT) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value


def _scalars(data: dict[str, Any], limit: int = 6) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if len(out) >= limit:
            break
        if isinstance(v, str | int | float | bool) or v is None:
            out[str(k)] = cut(v, 80)
    return out


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def start_brief(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Brief of a start (or standalone) event."""
    if kind == "run_start":
        cfg = data.get("config") if isinstance(data.get("config"), dict) else {}
        ctx = data.get("context") if isinstance(data.get("context"), dict) else {}
        return {
            "q": cut(data.get("question")),
            "model": cfg.get("model"),
            "sub_model": cfg.get("sub_model"),
            "schema": data.get("schema"),
            "ctx": {"type": ctx.get("type"), "chars": ctx.get("total_chars"), "items": ctx.get("num_items")},
        }
    if kind == "rlm_start":
        return {"depth": data.get("depth"), "q": cut(data.get("question"))}
    if kind == "lm_request":
        return {
            "model": data.get("model"),
            "purpose": data.get("purpose"),
            "msgs": data.get("messages"),
            "chars": data.get("input_chars"),
        }
    if kind == "cell":
        code = data.get("code") if isinstance(data.get("code"), str) else ""
        return {
            "it": data.get("iteration"),
            "code": first_line(code),
            "lines": len(code.splitlines()),
            "err": first_line(data.get("error")) if data.get("error") else None,
            "final": cut(data.get("final"), LINE) if data.get("final") is not None else None,
            "dur": _num(data.get("duration")),
            "timed_out": bool(data.get("timed_out")),
            "state_lost": bool(data.get("state_lost")),
            "out_total": data.get("stdout_total"),
            "cut": data.get("cut"),
        }
    if kind == "subcall_start":
        summary = data.get("summary") if isinstance(data.get("summary"), dict) else {}
        return {"kind": data.get("kind"), "summary": {str(k): cut(v, LINE) for k, v in summary.items()}}
    if kind == "warning":
        return {"source": data.get("source"), "msg": cut(data.get("message"), 300)}
    if kind == "budget":
        return {"limit": data.get("limit"), "msg": cut(data.get("message"), 300)}
    if kind == "check":
        return {
            "verdict": cut(data.get("verdict"), 80),
            "refused": bool(data.get("refused")),
            "answer": cut(data.get("answer"), LINE),
            "reason": cut(data.get("reason"), 300),
        }
    if kind == "compaction":
        return {k: data.get(k) for k in ("turns", "tokens_before", "tokens_after")}
    return _scalars(data)


def end_brief(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Fields an end event adds to its start's brief."""
    if kind == "run_end":
        return {
            "status": data.get("status"),
            "answer": cut(data.get("answer")),
            "error": cut(data.get("error")),
            "iterations": data.get("iterations"),
            "elapsed": _num(data.get("elapsed")),
        }
    if kind == "rlm_end":
        return {
            "status": data.get("status"),
            "answer": cut(data.get("answer")),
            "error": cut(data.get("error")),
            "iterations": data.get("iterations"),
        }
    if kind == "lm_response":
        out: dict[str, Any] = {
            "dur": _num(data.get("duration")),
            "cached": bool(data.get("cached")),
            "finish": data.get("finish_reason"),
            "attempts": data.get("attempts"),
            "reply": first_line(data.get("text")),
        }
        if data.get("error"):
            out["error"] = cut(data.get("error"), 300)
        return out
    if kind == "subcall_end":
        return {"ok": data.get("ok")}
    return {"end": _scalars(data, 4)}
