"""Which worked example the guided style shows: the one for the question's shape and wording."""

from __future__ import annotations

import pytest

import unbounded.styles  # noqa: F401  (registers the guided style before its module is imported)
from unbounded.guided import _variant
from unbounded.guided_examples import EXAMPLES, example_for
from unbounded.shapes import ContextKind, Shape


@pytest.mark.parametrize(
    ("shape", "kind", "question", "variant"),
    [
        (Shape.WHERE, ContextKind.CODE, "Which file defines the class `HeaderRegistry`?", None),
        (Shape.WHERE, ContextKind.CODE, "In the `email` package, which module folds long header lines?", "described"),
        (Shape.CLASSIFY, ContextKind.CODE, "How many classes in `errors.py` are exception classes?", "classes-file"),
        (Shape.CLASSIFY, ContextKind.CODE, "How many of the package's classes derive from an exception?", "classes"),
        (Shape.CLASSIFY, ContextKind.CODE, "Which of the classes in `errors.py` are exceptions?", "classes-list"),
        (Shape.CLASSIFY, ContextKind.CODE, "How many functions of the package are generators?", None),
        (Shape.COUNT, ContextKind.DOCUMENTS, "How many lines of the `GPL-2` text mention `Program`?", "lines"),
        (Shape.COUNT, ContextKind.DOCUMENTS, "In how many documents is the office mentioned?", None),
        (Shape.COUNT, ContextKind.DOCUMENTS,
         "In how many of these texts is the FSF mentioned? Give the number alone on the last line, as `Answer: <n>`.",
         None),  # an answer format's "last line" is no question about lines
        (Shape.COUNT, ContextKind.DOCUMENTS, "Count the lines that mention a refund.", "lines"),
        (Shape.LIST, ContextKind.CODE, "Which members of the `Color` enum are primary?", "members"),
        (Shape.CHAIN, ContextKind.CODE, "`LoggingServer` takes its locking from a base class: which module has it?", "bases"),
        (Shape.CHAIN, ContextKind.CODE, "Which number does `zipfile` use, in turn, for its default level?", None),
    ],
)
def test_the_variant_follows_the_wording(shape: Shape, kind: ContextKind, question: str, variant: str | None) -> None:
    assert _variant(shape, kind, question) == variant
    if variant is not None:
        assert example_for(shape, kind, variant) is EXAMPLES[(shape, kind, variant)]


def test_every_example_ends_in_a_final_and_reads_with_the_toolkit() -> None:
    for key, example in EXAMPLES.items():
        assert example.final.startswith("FINAL("), key
        assert example.turns and all(code.strip() and output.strip() for code, output in example.turns), key


def test_which_of_the_things_asks_to_judge_each() -> None:
    from unbounded.shapes import question_shape

    assert question_shape("Which of the classes defined in `a.py` are exception classes?") is Shape.CLASSIFY
    assert question_shape("Which file defines `Foo`?") is Shape.WHERE
