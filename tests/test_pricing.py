"""The price table, snapshot matching, user overrides and the cost arithmetic."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from unbounded.errors import ConfigError
from unbounded.models import Usage
from unbounded.models.openai_backend import OpenAIChatLM
from unbounded.models.pricing import (
    PRICES_CHECKED,
    known_prices,
    lookup_context_window,
    lookup_price,
    normalize_model,
    parse_price,
)


@pytest.fixture(autouse=True)
def _no_user_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNBOUNDED_PRICES", raising=False)


def test_table_is_dated_and_covers_the_common_models() -> None:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", PRICES_CHECKED)
    table = known_prices()
    for model in (
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-4o",
        "gpt-4o-mini",
        "o3",
        "o4-mini",
        "claude-opus-4-1",
        "claude-opus-4-5",
        "claude-sonnet-4",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
        "claude-3-5-haiku",
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
    ):
        pin, pout, pcached = table[model]
        assert 0 < pcached <= pin < pout, model


@pytest.mark.parametrize(
    ("model", "price"),
    [
        ("gpt-5-mini", (0.25, 2.0, 0.025)),
        ("gpt-5-mini-2025-08-07", (0.25, 2.0, 0.025)),
        ("gpt-5-2025-08-07", (1.25, 10.0, 0.125)),
        ("gpt-4o-2024-08-06", (2.5, 10.0, 1.25)),
        ("gpt-4o-mini-2024-07-18", (0.15, 0.6, 0.075)),
        ("o3-2025-04-16", (2.0, 8.0, 0.5)),
        ("claude-sonnet-4-5-20250929", (3.0, 15.0, 0.3)),
        ("claude-sonnet-4-20250514", (3.0, 15.0, 0.3)),
        ("claude-opus-4-20250514", (15.0, 75.0, 1.5)),
        ("claude-opus-4-6", (5.0, 25.0, 0.5)),
        ("claude-3-5-haiku-latest", (0.8, 4.0, 0.08)),
        ("claude-haiku-4-5@20251001", (1.0, 5.0, 0.1)),
        ("gemini-2.5-flash-preview-09-2025", (0.3, 2.5, 0.03)),
        ("gemini-2.5-flash-lite", (0.1, 0.4, 0.01)),
        ("models/gemini-2.5-pro", (1.25, 10.0, 0.125)),
        ("openai/gpt-5-nano", (0.05, 0.4, 0.005)),  # OpenRouter / LiteLLM style ids
        ("anthropic/claude-sonnet-4.5", (3.0, 15.0, 0.3)),
    ],
)
def test_longest_prefix_with_snapshot_suffix(model: str, price: tuple[float, float, float]) -> None:
    assert lookup_price(model) == price


@pytest.mark.parametrize(
    "model",
    [
        "o3-pro",
        "gpt-5.2",
        "gpt-4o-audio-preview-x",
        "claude-opus-4-9",
        "claude-sonnet-5",
        "llama3.2",
        "chatgpt-4o-latest",
    ],
)
def test_different_models_are_not_priced_by_a_shorter_prefix(model: str) -> None:
    # o3-pro is not o3 (ten times dearer); an unknown model gets no price rather than a wrong one
    assert lookup_price(model) is None


def test_normalize_model() -> None:
    assert normalize_model("OpenAI/GPT-5") == "gpt-5"
    assert normalize_model("anthropic/claude-opus-4.1") == "claude-opus-4-1"


def test_context_windows() -> None:
    assert lookup_context_window("gpt-4.1-mini-2025-04-14") == 1_047_576
    assert lookup_context_window("gpt-5") == 400_000
    assert lookup_context_window("unknown-model") is None


def test_cost_with_cached_discount() -> None:
    lm = OpenAIChatLM("gpt-5-mini", price=lookup_price("gpt-5-mini"))
    usage = Usage(calls=1, input_tokens=1_000_000, output_tokens=100_000, cached_input_tokens=400_000)
    # 600k fresh x $0.25 + 400k cached x $0.025 + 100k out x $2.00
    assert lm.cost(usage) == pytest.approx(0.15 + 0.01 + 0.20)
    no_cache = Usage(calls=1, input_tokens=1_000_000, output_tokens=100_000)
    assert lm.cost(no_cache) == pytest.approx(0.25 + 0.20)


def test_unknown_price_means_unknown_cost_not_zero() -> None:
    lm = OpenAIChatLM("mystery", base_url="https://api.example.com/v1", price=None)
    assert lm.price() is None
    assert lm.cost(Usage(calls=1, input_tokens=10, output_tokens=10)) is None
    total = Usage(calls=1, input_tokens=1, cost_usd=0.5)
    total.add(Usage(calls=1, input_tokens=1, cost_usd=None))
    assert total.cost_usd is None


def test_price_option_overrides_the_table() -> None:
    from unbounded.models.openai_backend import create_openai

    lm = create_openai("gpt-5-mini", {"api_key": "k", "price": (1, 2, 0.5)})
    assert lm.price() == (1.0, 2.0, 0.5)
    lm2 = create_openai("gpt-5-mini", {"api_key": "k", "price": {"input": 3, "output": 4}})
    assert lm2.price() == (3.0, 4.0, 3.0)  # no cached price: cached input costs full price
    with pytest.raises(ConfigError):
        create_openai("gpt-5-mini", {"api_key": "k", "price": (1,)})
    with pytest.raises(ConfigError):
        parse_price((1, -2, 0))


def test_user_prices_from_inline_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "UNBOUNDED_PRICES",
        json.dumps({"gpt-5-mini": [9, 9, 9], "together/meta-llama/llama-3.3-70b": {"input": 0.88, "output": 0.88}}),
    )
    assert lookup_price("gpt-5-mini-2025-08-07") == (9.0, 9.0, 9.0)
    assert lookup_price("meta-llama/Llama-3.3-70B", backend="together", use_table=False) == (0.88, 0.88, 0.88)
    assert lookup_price("gpt-4o") == (2.5, 10.0, 1.25)  # the rest of the table still applies


def test_user_prices_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"my-finetune": [1.5, 6, 0.75]}))
    monkeypatch.setenv("UNBOUNDED_PRICES", str(f))
    assert lookup_price("my-finetune") == (1.5, 6.0, 0.75)
    f.write_text(json.dumps({"my-finetune": [2, 8, 1]}))
    import os

    os.utime(f, (f.stat().st_atime, f.stat().st_mtime + 5))
    assert lookup_price("my-finetune") == (2.0, 8.0, 1.0)  # re-read when the file changes


def test_user_prices_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UNBOUNDED_PRICES", "{not json")
    with pytest.raises(ConfigError, match="UNBOUNDED_PRICES"):
        lookup_price("gpt-5")
    monkeypatch.setenv("UNBOUNDED_PRICES", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="UNBOUNDED_PRICES"):
        lookup_price("gpt-5")
    monkeypatch.setenv("UNBOUNDED_PRICES", json.dumps({"m": "cheap"}))
    with pytest.raises(ConfigError, match="m"):
        lookup_price("m")


def test_local_backends_are_free() -> None:
    from unbounded.models.openai_backend import create_llamacpp

    lm = create_llamacpp("qwen", {})
    assert lm.price() == (0.0, 0.0, 0.0)
    assert lm.cost(Usage(calls=1, input_tokens=10**6, output_tokens=10**6)) == 0.0
