"""One result line per (task, size, method, item, model): the record, its key, and the JSONL file.

``results.jsonl`` is append-only: a run writes one line as soon as an item finishes, so an
interrupted run loses at most the items in flight. When a key appears more than once (an errored
item retried with ``--retry-errors``) the last line wins.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.jsonl"
ANSWER_CHARS = 500
GOLD_CHARS = 500

Key = tuple[str, int, str, str, str]


@dataclass(slots=True)
class ResultRecord:
    """What one method did on one item.

    ``size_tokens`` is the size asked for (the group the item belongs to); ``context_tokens`` the
    size actually generated. ``status`` is ``ok`` (baselines), the engine's status for RLM methods
    (``final``, ``max_iterations``, ``budget:<limit>``), ``error`` (the method raised; ``error``
    says what) or ``timeout``. ``cost_usd`` is None when the model's price is unknown.
    """

    task: str
    size_tokens: int
    method: str
    item_id: str
    model: str
    score: float
    answer: str | None
    gold: Any
    status: str
    seconds: float
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    context_tokens: int | None = None
    seed: int | None = None
    error: str | None = None
    trace: str | None = None
    finished_at: float | None = None

    @property
    def key(self) -> Key:
        return (self.task, self.size_tokens, self.method, self.item_id, self.model)

    @property
    def failed(self) -> bool:
        return self.status in ("error", "timeout")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def truncate(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit:,} more characters]"


def gold_value(answer: Any) -> Any:
    """The gold answer as JSON: pairs become lists; a long rendering is cut like answers are."""
    if isinstance(answer, list):
        value: Any = [list(p) if isinstance(p, tuple) else p for p in answer]
        text = json.dumps(value)
        return value if len(text) <= GOLD_CHARS else truncate(text, GOLD_CHARS)
    if isinstance(answer, str):
        return truncate(answer, GOLD_CHARS)
    return answer


def read_results(path: str | Path) -> list[ResultRecord]:
    """Every record in the file, in order. A torn last line (a killed run) is skipped."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.exists():
        return []
    out: list[ResultRecord] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(ResultRecord.from_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                continue
    return out


def latest(records: Iterable[ResultRecord]) -> list[ResultRecord]:
    """One record per key, the last one written."""
    by_key: dict[Key, ResultRecord] = {}
    for r in records:
        by_key.pop(r.key, None)
        by_key[r.key] = r
    return list(by_key.values())


class ResultsFile:
    """Appends records, one flushed line each."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._ensure_line_start()

    def _ensure_line_start(self) -> None:
        """After a kill mid-write the file may end without a newline; start the next line cleanly."""
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as fh:
                fh.seek(-1, 2)
                last = fh.read(1)
            if last != b"\n":
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write("\n")

    def append(self, record: ResultRecord) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record.to_dict(), ensure_ascii=False, default=str) + "\n")
            fh.flush()

    def __iter__(self) -> Iterator[ResultRecord]:
        return iter(read_results(self.path))


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")


def parse_size(text: str) -> int:
    """``8k`` → 8192, ``1m`` → 1048576, ``5000`` → 5000 (binary multiples, as RULER and the paper use)."""
    m = _SIZE.match(text)
    if m is None:
        raise ValueError(f"bad size {text!r}: use a number of tokens, optionally with k or m (8k, 128k, 1m)")
    value = float(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2}[m.group(2).lower()]
    return int(value)


def size_label(tokens: int) -> str:
    """8192 → ``8K``, 1048576 → ``1M``, 5000 → ``5000``."""
    for unit, scale in (("M", 1024**2), ("K", 1024)):
        if tokens >= scale and tokens % scale == 0:
            return f"{tokens // scale}{unit}"
    if tokens >= 1024**2:
        return f"{tokens / 1024**2:.1f}M"
    if tokens >= 10_000:
        return f"{tokens / 1024:.0f}K"
    return str(tokens)


def compaction_line(records: list[ResultRecord]) -> str | None:
    """How much compaction saved over a run's records, or None when no history was compacted."""
    compacted = [r for r in records if r.notes.get("compactions")]
    if not compacted:
        return None
    saved = sum(int(r.notes.get("compaction_tokens_saved", 0)) for r in compacted)
    sent = sum(r.input_tokens for r in compacted)
    share = f" ({saved / (saved + sent):.0%} of what those items would have sent)" if saved + sent else ""
    return (
        f"compaction: {len(compacted)} of {len(records)} items compacted their history "
        f"{sum(int(r.notes['compactions']) for r in compacted)} times, ~{saved:,} input tokens saved{share}"
    )
