"""``python -m unbounded.view TRACE.jsonl [--html OUT.html] ...``: the same as ``unbounded view``."""

from .cli import main

raise SystemExit(main())
