"""See a run: the trace viewer in the browser (``unbounded view``) and the live tree in the terminal.

* ``create_app(path)`` — the viewer as an ASGI app (Starlette) for a trace file or a bench folder;
  mountable under another app (``/ui`` of a server).
* ``export_html(trace, out)`` — one self-contained HTML file, no network needed.
* ``TraceIndex`` — byte offsets and the tree of a trace, refreshed as the file grows.
* ``LiveTree`` — a trace listener that draws the running tree with ``rich.live`` on a terminal.
* ``add_parser(subparsers)`` — the ``view`` subcommand.

Exports load lazily: the terminal tree must not import the web server.
"""

from __future__ import annotations

from .._lazy import TYPE_CHECKING, lazy_exports

_EXPORTS = {
    "create_app": ".server",
    "export_html": ".export",
    "ExportResult": ".export",
    "TraceIndex": ".index",
    "LiveTree": ".live",
    "add_parser": ".cli",
    "ViewError": ".errors",
    "TraceFileError": ".errors",
    "EmptyTraceError": ".errors",
    "UnknownNodeError": ".errors",
}

if TYPE_CHECKING:
    from .cli import add_parser
    from .errors import EmptyTraceError, TraceFileError, UnknownNodeError, ViewError
    from .export import ExportResult, export_html
    from .index import TraceIndex
    from .live import LiveTree
    from .server import create_app

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "EmptyTraceError",
    "ExportResult",
    "LiveTree",
    "TraceFileError",
    "TraceIndex",
    "UnknownNodeError",
    "ViewError",
    "add_parser",
    "create_app",
    "export_html",
]
