#!/usr/bin/env python3
"""Fuzz the reply parser and the worker protocol for a few minutes (CI runs a short version as tests).

    .venv/bin/python scripts/fuzz.py                 # 5 minutes
    .venv/bin/python scripts/fuzz.py --minutes 20 --examples 20000

Runs tests/test_fuzz_parsing.py and tests/test_fuzz_protocol.py (hypothesis) in rounds, each with a
fresh seed and ``UNBOUNDED_FUZZ_EXAMPLES`` examples per property, until the time is up. A failure stops
the run and prints hypothesis' shrunk example and the seed to replay it with.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["tests/test_fuzz_parsing.py", "tests/test_fuzz_protocol.py"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--examples", type=int, default=5000, help="examples per property per round")
    args = ap.parse_args(argv)
    deadline = time.monotonic() + args.minutes * 60
    env = {**os.environ, "UNBOUNDED_FUZZ_EXAMPLES": str(args.examples)}
    rounds = 0
    while time.monotonic() < deadline:
        seed = random.randrange(2**32)
        rounds += 1
        print(f"round {rounds}: seed {seed}, {args.examples} examples per property", flush=True)
        cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", f"--hypothesis-seed={seed}"]
        proc = subprocess.run([*cmd, *TARGETS], cwd=ROOT, env=env)
        if proc.returncode != 0:
            print(f"FAILED in round {rounds}; replay with: UNBOUNDED_FUZZ_EXAMPLES={args.examples} {' '.join(cmd)} "
                  + " ".join(TARGETS), file=sys.stderr)  # fmt: skip
            return 1
    print(f"no failure in {rounds} round(s), {args.minutes:g} minutes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
