import pytest

from unbounded.budget import Budget, Ledger
from unbounded.errors import BudgetExceeded
from unbounded.models import Usage


def test_reservations_hold_limits() -> None:
    ledger = Ledger(Budget(max_llm_calls=2, max_total_tokens=100))
    r1 = ledger.reserve(40, 0.0)
    r2 = ledger.reserve(40, 0.0)
    with pytest.raises(BudgetExceeded) as err:
        ledger.reserve(1, 0.0)
    assert err.value.limit == "max_llm_calls" and ledger.exhausted == "max_llm_calls"
    ledger.settle(r1, "m", Usage(calls=1, input_tokens=10, output_tokens=5))
    ledger.settle(r2, "m", None)
    assert ledger.calls == 2 and ledger.tokens == 15 and ledger.reserved_calls == 0
    assert ledger.by_model["m"].calls == 1


def test_token_and_cost_limits() -> None:
    ledger = Ledger(Budget(max_total_tokens=100))
    ledger.reserve(60, None)
    with pytest.raises(BudgetExceeded, match="max_total_tokens"):
        ledger.reserve(50, None)
    ledger = Ledger(Budget(max_cost_usd=1.0))
    with pytest.raises(BudgetExceeded, match="price unknown"):
        ledger.reserve(10, None)
    ledger = Ledger(Budget(max_cost_usd=1.0))
    r = ledger.reserve(10, 0.6)
    with pytest.raises(BudgetExceeded):
        ledger.reserve(10, 0.6)
    ledger.exhausted = None
    ledger.settle(r, "m", Usage(calls=1, cost_usd=0.1))
    ledger.reserve(10, 0.6)


def test_settle_twice_is_harmless_and_unknown_cost_propagates() -> None:
    ledger = Ledger(Budget())
    r = ledger.reserve(1, None)
    ledger.settle(r, "m", Usage(calls=1, input_tokens=1, cost_usd=None))
    ledger.settle(r, "m", Usage(calls=1, input_tokens=1, cost_usd=None))
    assert ledger.calls == 1 and ledger.total_usage().cost_usd is None


def test_invalid_budget() -> None:
    with pytest.raises(ValueError):
        Budget(max_iterations=0)
    with pytest.raises(ValueError):
        Budget(max_llm_calls=-1)


def test_a_batch_the_call_budget_cannot_finish_is_refused_before_it_spends_anything() -> None:
    """A 1.5B root mapped a yes/no question over 482 records with 198 calls left: the batch spent them all
    on the first 198 and the run ended with no answer. Refused up front, the calls stay for the answer."""
    from unbounded import RLM, Budget
    from unbounded.models.scripted import ScriptedLM

    root = ScriptedLM([
        '```python\nr = llm_batch(["is this a game?"] * 20)\n```',
        '```python\nr = llm_batch(["is this a game?"] * 3)\nprint(r)\n```',
        'FINAL("3 asked")',
    ])
    sub = ScriptedLM(["yes"])
    result = RLM(model=root, sub_model=sub, repl="inprocess", prompt_style="full",
                 budget=Budget(max_llm_calls=10)).run("How many games?", "a game\n" * 10)
    assert result.status.kind.value == "final" and result.answer == "3 asked"
    assert len(sub.calls) == 3  # none for the refused batch of 20
    refused = root.calls[1][-1].content
    assert "llm_batch of 20 prompts needs 20 model calls" in refused and "nothing was asked" in refused
