"""``python -m unbounded.batch JOBS.jsonl --out DIR ...`` (the same as ``unbounded batch``)."""

import sys

from .cli import main

sys.exit(main())
