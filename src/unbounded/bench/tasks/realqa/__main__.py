"""``python -m unbounded.bench.tasks.realqa``: the set as this machine builds it, and what it took.

One line per question (half, shape, id, input, size, answer kind, gold answer), then the counts per
shape and half, the size range and the build time. ``--json`` prints one JSON object per question.
Exits 3 when an input is missing (the message names it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter

from . import SHAPES, SPLITS, build, select, split_of
from .sources import MissingInputError


def _short(value: object, limit: int = 70) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m unbounded.bench.tasks.realqa", description=__doc__.splitlines()[0])
    p.add_argument("--split", choices=SPLITS, default="all", help="which half to show (default all)")
    p.add_argument("--json", action="store_true", help="one JSON object per question")
    args = p.parse_args(argv)
    started = time.perf_counter()
    rows = []
    try:
        for q in select(args.split):
            b = build(q.qid)
            rows.append((q, b))
    except MissingInputError as exc:
        print(str(exc), file=sys.stderr)
        return 3
    seconds = time.perf_counter() - started
    for q, b in rows:
        if args.json:
            entry = {"qid": q.qid, "split": split_of(q.qid), "shape": q.shape, "source": q.source, "kind": q.kind}
            entry.update(size_tokens=b.size_tokens, question=q.text, answer=b.answer)
            print(json.dumps(entry, ensure_ascii=False))
        else:
            print(
                f"{split_of(q.qid):<4} {q.shape:<8} {q.qid:<40} {q.source:<22} {b.size_tokens:>10,} tok  "
                f"{q.kind:<9} {_short(b.answer)}"
            )
    if args.json:
        return 0
    counts = Counter((q.shape, split_of(q.qid)) for q, _ in rows)
    print()
    print("shape     " + "  ".join(f"{s:>8}" for s in SHAPES))
    for half in ("dev", "test"):
        print(f"{half:<9} " + "  ".join(f"{counts[(s, half)]:>8}" for s in SHAPES))
    sizes = sorted(b.size_tokens for _, b in rows)
    print(
        f"\n{len(rows)} questions, contexts {sizes[0]:,} to {sizes[-1]:,} tokens "
        f"(median {sizes[len(sizes) // 2]:,}); built in {seconds:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
