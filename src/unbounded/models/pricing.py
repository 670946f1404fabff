"""Prices (USD per million tokens) and context windows of common hosted models.

Each entry is ``(input, output, cached_input)``. Cached input is what a prompt-cache hit costs
(OpenAI "cached input", Anthropic "cache read", Gemini "context caching" for the ≤200k tier).
Anthropic's cache *writes* cost 1.25× input; the Anthropic backend adds that premium itself.
Gemini 2.5 Pro costs more for prompts over 200k tokens; the table holds the ≤200k tier.

The table is looked up by the longest key that the model name starts with, **where the rest of
the name is a snapshot suffix** (a date such as ``-2025-08-07``/``-20250514``/``@20250929``,
``-latest``, ``-preview…``, ``-exp…`` or a ``-001`` revision). Plain prefix matching would price
``o3-pro`` as ``o3`` (ten times too cheap) or ``claude-opus-4-6`` as ``claude-opus-4`` (three
times too dear); an unknown model gets no price (None), never a wrong one.

Users override prices with the backends' ``price=(in, out, cached)`` option, or with
``UNBOUNDED_PRICES``: inline JSON or the path of a JSON file mapping model names (bare, or with
the backend prefix, e.g. ``"openrouter/qwen/qwen3-coder"``) to ``[in, out, cached]`` or
``{"input": .., "output": .., "cached_input": ..}``. User entries win over the table.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError

Price = tuple[float, float, float]

#: When the table below was last checked against the providers' published price pages.
PRICES_CHECKED = "2026-11-24"

_PRICES: dict[str, Price] = {
    # OpenAI (platform.openai.com pricing, standard tier)
    "gpt-5": (1.25, 10.00, 0.125),
    "gpt-5-chat": (1.25, 10.00, 0.125),
    "gpt-5-mini": (0.25, 2.00, 0.025),
    "gpt-5-nano": (0.05, 0.40, 0.005),
    "gpt-5.1": (1.25, 10.00, 0.125),
    "gpt-4.1": (2.00, 8.00, 0.50),
    "gpt-4.1-mini": (0.40, 1.60, 0.10),
    "gpt-4.1-nano": (0.10, 0.40, 0.025),
    "gpt-4o": (2.50, 10.00, 1.25),
    "gpt-4o-mini": (0.15, 0.60, 0.075),
    "o1": (15.00, 60.00, 7.50),
    "o3": (2.00, 8.00, 0.50),
    "o3-mini": (1.10, 4.40, 0.55),
    "o4-mini": (1.10, 4.40, 0.275),
    # Anthropic (docs.claude.com pricing; cached = cache read, 0.1x input)
    "claude-opus-4": (15.00, 75.00, 1.50),
    "claude-opus-4-0": (15.00, 75.00, 1.50),
    "claude-opus-4-1": (15.00, 75.00, 1.50),
    "claude-opus-4-5": (5.00, 25.00, 0.50),
    "claude-opus-4-6": (5.00, 25.00, 0.50),
    "claude-opus-4-7": (5.00, 25.00, 0.50),
    "claude-opus-4-8": (5.00, 25.00, 0.50),
    "claude-sonnet-4": (3.00, 15.00, 0.30),
    "claude-sonnet-4-0": (3.00, 15.00, 0.30),
    "claude-sonnet-4-5": (3.00, 15.00, 0.30),
    "claude-sonnet-4-6": (3.00, 15.00, 0.30),
    "claude-haiku-4-5": (1.00, 5.00, 0.10),
    "claude-3-5-haiku": (0.80, 4.00, 0.08),
    "claude-3-7-sonnet": (3.00, 15.00, 0.30),
    # Google Gemini API (ai.google.dev pricing, paid tier, prompts <= 200k tokens)
    "gemini-2.5-pro": (1.25, 10.00, 0.125),
    "gemini-2.5-flash": (0.30, 2.50, 0.03),
    "gemini-2.5-flash-lite": (0.10, 0.40, 0.01),
}

_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-5": 400_000,
    "gpt-5-chat": 128_000,
    "gpt-5-mini": 400_000,
    "gpt-5-nano": 400_000,
    "gpt-5.1": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "o1": 200_000,
    "o3": 200_000,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
    "claude-opus-4": 200_000,
    "claude-opus-4-0": 200_000,
    "claude-opus-4-1": 200_000,
    "claude-opus-4-5": 200_000,
    "claude-opus-4-6": 200_000,
    "claude-opus-4-7": 200_000,
    "claude-opus-4-8": 200_000,
    "claude-sonnet-4": 200_000,
    "claude-sonnet-4-0": 200_000,
    "claude-sonnet-4-5": 200_000,
    "claude-sonnet-4-6": 200_000,
    "claude-haiku-4-5": 200_000,
    "claude-3-5-haiku": 200_000,
    "claude-3-7-sonnet": 200_000,
    "gemini-2.5-pro": 1_048_576,
    "gemini-2.5-flash": 1_048_576,
    "gemini-2.5-flash-lite": 1_048_576,
}

# What may follow a table key for the name to still denote that model: a dated snapshot,
# an alias, a preview or a revision number. Anything else is a different model.
_SNAPSHOT_SUFFIX = re.compile(
    r"^(?:"
    r"[-@]\d{4}-?\d{2}-?\d{2}.*"  # -2025-08-07, -20250514, @20250929
    r"|-\d{3}"  # -001
    r"|-latest"
    r"|-(?:preview|exp)(?:[-.].*)?"  # -preview-06-05, -exp-0827
    r")?$"
)


def normalize_model(model: str) -> str:
    """The bare model id: vendor namespaces dropped (``openai/gpt-5`` → ``gpt-5``), lower case,
    and OpenRouter-style dotted Claude versions (``claude-sonnet-4.5``) written with a dash."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    name = name.removeprefix("models/")
    return re.sub(r"^(claude-[a-z]+-\d+)\.(\d+)", r"\1-\2", name)


def match_key(model: str, keys: Iterable[str]) -> str | None:
    """The longest key that ``model`` starts with, followed only by a snapshot suffix."""
    best: str | None = None
    for key in keys:
        k = key.lower()
        matches = model.startswith(k) and _SNAPSHOT_SUFFIX.match(model[len(k) :])
        if matches and (best is None or len(k) > len(best)):
            best = key
    return best


def parse_price(value: Any, where: str = "price") -> Price:
    """Validate a user-given price: ``(in, out)``, ``(in, out, cached)`` or a mapping."""
    if isinstance(value, Mapping):
        try:
            pin = value["input"]
            pout = value["output"]
        except KeyError as exc:
            raise ConfigError(f"{where}: a price mapping needs 'input' and 'output' keys") from exc
        items: list[Any] = [pin, pout, value.get("cached_input", pin)]
    elif isinstance(value, list | tuple) and len(value) in (2, 3):
        items = list(value) if len(value) == 3 else [value[0], value[1], value[0]]
    else:
        raise ConfigError(f"{where}: expected (input, output, cached_input) USD per million tokens, got {value!r}")
    try:
        pin, pout, pcached = (float(x) for x in items)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: prices must be numbers, got {value!r}") from exc
    if min(pin, pout, pcached) < 0:
        raise ConfigError(f"{where}: prices must not be negative, got {value!r}")
    return (pin, pout, pcached)


_user_lock = threading.Lock()
_user_cache: tuple[tuple[str, float], dict[str, Price]] | None = None


def user_prices() -> dict[str, Price]:
    """Prices from ``UNBOUNDED_PRICES`` (inline JSON or a JSON file path), re-read when it changes."""
    global _user_cache
    raw = os.environ.get("UNBOUNDED_PRICES", "").strip()
    if not raw:
        return {}
    mtime = 0.0
    if not raw.startswith("{"):
        path = Path(raw).expanduser()
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            raise ConfigError(f"UNBOUNDED_PRICES points at {raw!r}, which cannot be read: {exc}") from exc
    key = (raw, mtime)
    with _user_lock:
        if _user_cache is not None and _user_cache[0] == key:
            return _user_cache[1]
    text = raw if raw.startswith("{") else Path(raw).expanduser().read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"UNBOUNDED_PRICES is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("UNBOUNDED_PRICES must be a JSON object mapping model names to prices")
    prices = {str(name).strip().lower(): parse_price(v, f"UNBOUNDED_PRICES[{name!r}]") for name, v in data.items()}
    with _user_lock:
        _user_cache = (key, prices)
    return prices


def lookup_price(model: str, *, backend: str | None = None, use_table: bool = True) -> Price | None:
    """USD per million (input, output, cached input) tokens for ``model``; None when unknown.

    ``backend`` is the spec prefix (``openai``, ``openrouter``…): user entries may be keyed by
    ``"<backend>/<model>"`` to price one route differently. ``use_table=False`` consults only
    the user's prices (for hosts whose prices differ from the model maker's list prices).
    """
    full = model.strip().lower()
    bare = normalize_model(model)
    user = user_prices()
    if user:
        candidates = [f"{backend}/{full}"] if backend else []
        candidates += [full, bare]
        for name in candidates:
            hit = match_key(name, user)
            if hit is not None:
                return user[hit]
    if not use_table:
        return None
    hit = match_key(bare, _PRICES)
    return _PRICES[hit] if hit is not None else None


def lookup_context_window(model: str) -> int | None:
    """The model's context window in tokens, where the table knows it."""
    hit = match_key(normalize_model(model), _CONTEXT_WINDOWS)
    return _CONTEXT_WINDOWS[hit] if hit is not None else None


def known_prices() -> dict[str, Price]:
    """A copy of the built-in table (for docs and ``unbounded models``-style listings)."""
    return dict(_PRICES)
