"""The viewer's one HTML page, with its CSS and JavaScript inlined from the package's ``static`` folder.

The same page serves both modes: from ``unbounded view`` it fetches from the server's JSON API;
exported with ``--html`` it carries the trace as embedded JSON and works from ``file://``.
Nothing is fetched from the network.
"""

from __future__ import annotations

import html
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from .highlight import stylesheet


@lru_cache(maxsize=4)
def asset(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def embed_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element: ``<`` never appears raw, so ``</script>`` cannot end it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_page(config: dict[str, Any], data: Any = None, title: str = "unbounded trace viewer") -> str:
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{asset('viewer.css')}\n{stylesheet()}</style>",
        "</head><body>",
        '<div id="app" aria-busy="true"><p class="loading">Loading…</p></div>',
        f'<script id="ub-config" type="application/json">{embed_json(config)}</script>',
    ]
    if data is not None:
        parts.append(f'<script id="ub-data" type="application/json">{embed_json(data)}</script>')
    parts.append(f"<script>{asset('viewer.js')}</script>")
    parts.append("</body></html>")
    return "\n".join(parts)
