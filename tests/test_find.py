"""``find(question)``: the places of the context most likely to answer a question."""

from __future__ import annotations

import pytest

from test_toolkit import SOURCES, namespace
from unbounded.repl.find import code_names, find
from unbounded.repl.search import search


def test_code_names_takes_quoted_names_then_words_written_as_code() -> None:
    q = "What does `Parcel.check_weight()` compare with MAX_WEIGHT in `shipping.parcel`, e.g. as a limit?"
    assert code_names(q) == ["Parcel.check_weight", "shipping.parcel", "MAX_WEIGHT"]
    assert code_names("How many days of notice does the travel policy require?") == []


def test_definitions_of_named_code_come_first() -> None:
    places = find(SOURCES, "How many times does a `Parcel` retry when you give it no count?")
    assert places[0].kind == "class" and places[0].name == "Parcel"
    assert len(places) == 2  # the class, then the one other passage with the question's words
    assert places[1].key == "shipping/parcel.py" and places[1].line == 1


def test_a_named_module_narrows_the_passages_to_its_file() -> None:
    context = {**SOURCES, "shipping/rates.py": "def quote_rate(weight):\n    # the weight limit of a parcel\n    return 2\n"}
    places = find(context, "What is the weight limit of a parcel in `shipping.const`?", k=2)
    assert [p.key for p in places] == ["shipping/const.py", "shipping/const.py"][: len(places)]
    assert places and all(p.key == "shipping/const.py" for p in places)


def test_a_question_without_code_names_gets_ranked_passages() -> None:
    docs = {"travel.txt": "Trips abroad need 14 days of notice.\n", "leave.txt": "Leave is booked a week ahead.\n"}
    places = find(docs, "How many days of notice does a trip abroad need?", k=1)
    assert [p.key for p in places] == ["travel.txt"]


def test_find_is_bound_in_the_namespace_and_refuses_an_empty_question() -> None:
    ns = namespace(SOURCES)
    assert ns["find"]("where is `quote` defined?")[0].name == "quote"
    with pytest.raises(ValueError, match="needs the question"):
        find(SOURCES, "  ")


def test_searching_a_part_keeps_the_context_index() -> None:
    from unbounded.repl import search as search_module

    search("parcel weight", SOURCES)
    part = {"shipping/const.py": SOURCES["shipping/const.py"]}
    search("normal", part)
    assert id(SOURCES) in search_module._INDEXES and id(part) in search_module._INDEXES


def test_a_search_for_one_code_name_puts_its_definition_first() -> None:
    hits = namespace(SOURCES)["search"]("Parcel", k=2)
    assert hits[0].kind == "class" and hits[0].key == "shipping/parcel.py" and hits[0].line == 7
    assert len(hits) == 2


def test_definitions_of_a_file_name_are_the_definitions_in_that_file() -> None:
    ns = namespace(SOURCES)
    found = ns["definitions"](name="parcel.py", kind="class")
    assert [d.name for d in found] == ["Parcel", "ParcelError"]


def test_a_long_prose_passage_is_cut_around_its_best_sentence() -> None:
    from unbounded.repl.find import focus

    filler = " ".join(f"Sentence {i} talks about the weather." for i in range(40))
    text = filler + " The vault code for the north gate is 7731. " + filler
    hit = find({"notes.txt": text}, "What is the vault code for the north gate?", k=1)[0]
    assert "7731" in hit.text and len(hit.text) <= 400
    assert text[hit.offset : hit.offset + len(hit.text)] == hit.text
    short = find({"a.txt": "The code is 12."}, "what is the code?", k=1)[0]
    assert focus(short, "code") is short


def test_llm_query_asked_only_the_question_says_it_could_not_see_the_context() -> None:
    from unbounded.repl.namespace import build_namespace

    state = build_namespace(SOURCES, lambda kind, payload: "76", {})
    question = "What weight limit does a parcel have by default?"
    state.namespace["question"] = question
    state.namespace["llm_query"](question)
    assert len(state.notes) == 1 and "cannot see `context`" in state.notes[0]
    state.namespace["llm_query"](question + "\n\n" + SOURCES["shipping/parcel.py"])
    assert len(state.notes) == 1, "a prompt that carries text to read gets no note"
