"""The batch's progress bar on stderr: done and failed counts, elapsed time and ETA (rich)."""

from __future__ import annotations

import sys
from typing import Any

from .results import JobResult


class BatchProgress:
    """``with BatchProgress(total, enabled=True) as bar: bar.advance(result)``.

    Disabled, it does nothing (the API default; the CLI enables it unless ``-q``).
    """

    def __init__(self, total: int, *, enabled: bool, skipped: int = 0, label: str = "batch") -> None:
        self.total = total
        self.enabled = enabled
        self.done = 0
        self.failed = 0
        self.skipped = skipped
        self.label = label
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> BatchProgress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[green]{task.fields[done]} done[/] [red]{task.fields[failed]} failed[/]"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self._description(), total=self.total, done=0, failed=0)
        return self

    def _description(self) -> str:
        return f"{self.label} ({self.skipped} done before)" if self.skipped else self.label

    def advance(self, result: JobResult) -> None:
        if result.failed:
            self.failed += 1
        else:
            self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, done=self.done, failed=self.failed)

    def print(self, message: str) -> None:
        """A line above the bar (or on stderr when the bar is off)."""
        if self._progress is not None:
            self._progress.console.print(message, highlight=False, markup=False, soft_wrap=True)
        else:
            print(message, file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
