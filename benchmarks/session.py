"""Sessions: the time to the first root call of a question, first vs. second, over a big context.

    python benchmarks/session.py                 # a 400 MB context
    python benchmarks/session.py --mb 40 --repl inprocess

The first question of a session loads the context into the REPL worker (the worker starts, the
context crosses to it once); the second finds it loaded, so its time to first root call is only the
engine's own set-up. The model is scripted (no model time is measured).
"""

from __future__ import annotations

import argparse
import statistics
import time

from unbounded import RLM
from unbounded.models import ScriptedLM


def code(src: str) -> str:
    return f"```python\n{src}\n```"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=400, help="context size in MB (default 400)")
    ap.add_argument("--repl", default="process", choices=["process", "inprocess"])
    ap.add_argument("--questions", type=int, default=4, help="questions asked in the session (default 4)")
    args = ap.parse_args()
    line = "The quick brown fox jumps over the lazy dog; nothing to see in this line at all.\n"
    context = line * (args.mb * 1024 * 1024 // len(line))
    marks: list[float] = []
    starts: list[float] = []

    def reply(messages: list) -> str:
        marks.append(time.perf_counter())
        return code("FINAL(str(len(context)))")

    rlm = RLM(model=ScriptedLM(reply), repl=args.repl)
    session = rlm.session(context)  # nothing is loaded yet: the first question starts the session
    ttfc = []
    try:
        for i in range(args.questions):
            starts.append(time.perf_counter())
            n = len(marks)
            result = session.ask(f"How long is it? ({i})")
            assert result.answer == str(len(context)), result
            ttfc.append(marks[n] - starts[-1])
    finally:
        session.close()
    first, rest = ttfc[0], ttfc[1:]
    print(f"context: {len(context) / 1024 / 1024:.0f} MB, REPL {args.repl}, {args.questions} questions")
    print(f"{'first question: time to first root call (loads the context)':<62} {first:9.3f} s")
    print(f"{'later questions: time to first root call (median)':<62} {statistics.median(rest):9.4f} s")
    ratio = statistics.median(rest) / first
    print(f"{'later / first':<62} {ratio * 100:8.2f} %   target <= 5 %   {'PASS' if ratio <= 0.05 else 'MISS'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
