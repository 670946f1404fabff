"""Which words a small model is pointed to when it copies the worked example."""

from __future__ import annotations

import pytest

from unbounded.coaching import EXAMPLE_TERMS, distinctive_terms, echoed_example_terms, example_echo_note
from unbounded.prompts import COMPACT_EXAMPLE_SEARCH_STR, COMPACT_EXAMPLE_TERMS


@pytest.mark.parametrize(
    ("question", "terms"),
    [
        (
            "Question: The context is a collection of documents. In which region is the city where the "
            "company that makes the Thaglae Lite has its headquarters?\n\nGive only the short answer on "
            "the last line as `Answer: <answer>`.",
            ["Thaglae", "Lite"],
        ),
        (
            "How many parameters does the method `Textbox._end_of_line` in `curses/textpad.py` declare?",
            ["Textbox._end_of_line", "curses/textpad.py"],
        ),
        ("What is the special magic number for woven-falcon? e.g. `Answer: 1234`", ["woven-falcon"]),
        ("Which release added get_user_by_id and the Q3 report?", ["get_user_by_id", "Q3"]),
        ("Who founded Acme Corp? When? Where did Maria Olsen study", ["Acme", "Corp", "Maria", "Olsen"]),
        ("how many lines mention an error?", []),
    ],
)
def test_distinctive_terms(question: str, terms: list[str]) -> None:
    assert distinctive_terms(question) == terms


def test_the_examples_terms_are_read_from_the_prompt_itself() -> None:
    assert EXAMPLE_TERMS == ("Rhodes-Ward", "Ward", "Rhodes")
    example_code = COMPACT_EXAMPLE_SEARCH_STR.format(terms=COMPACT_EXAMPLE_TERMS)
    assert echoed_example_terms([example_code], "What is the code of the Zorbel vault?") == list(EXAMPLE_TERMS)


def test_terms_the_question_itself_uses_are_not_echoes() -> None:
    assert echoed_example_terms(['grep("Ward")'], "Which ward of the hospital is closed?") == []
    assert echoed_example_terms(['grep("Zorbel")'], "Where is Zorbel?") == []
    assert example_echo_note(['grep("Zorbel")'], "Where is Zorbel?") is None


def test_the_note_names_copied_and_suggested_words() -> None:
    note = example_echo_note(['grep("Rhodes")'], "what does the Zorbel manual say?")
    assert note is not None and "'Rhodes'" in note and "such as 'Zorbel'" in note
    bare = example_echo_note(['grep("Rhodes")'], "what does it say?")
    assert bare is not None and bare.endswith("of THIS question.")


def test_the_guided_style_notices_its_own_examples_names() -> None:
    """Sent back by the answer check, a 1.5B root asked llm_query the example's question (about
    `quote_rate`) instead of its own, and answered with the made-up path the sub-model gave."""
    from unbounded.guided import GuidedStyle
    from unbounded.guided_examples import EXAMPLE_NAMES

    assert "quote_rate" in EXAMPLE_NAMES and "def" not in EXAMPLE_NAMES
    question = "Which source file holds the definition of the function `urlsplit`?"
    copied = ['llm_query("Which file defines the function `quote_rate`, and on which line?")']
    (note,) = GuidedStyle().turn_notes(copied, question, [])
    assert "'quote_rate'" in note and "'urlsplit'" in note
    assert GuidedStyle().turn_notes(['print(definitions("urlsplit"))'], question, []) == []
    own = "Where is `quote_rate` defined?"  # the question's own name is no echo
    assert GuidedStyle().turn_notes(['print(definitions("quote_rate"))'], own, []) == []


def test_the_guided_style_notes_code_that_goes_back_to_an_earlier_turn() -> None:
    from unbounded.guided import GuidedStyle, turns_since_same_code

    question = "Which file defines `urlsplit`?"
    first = ['print(find("urlsplit"))']
    second = ['print(read("urllib/parse.py", 400))']
    again = ['print(find("urlsplit"))  \n\n']  # the same code, laid out a little differently
    assert turns_since_same_code(again, [first, second]) == 2
    assert turns_since_same_code(second, [first, second]) == 1
    assert turns_since_same_code(['print(find("urlparse"))'], [first, second]) is None
    (note,) = GuidedStyle().turn_notes(again, question, [first, second])
    assert "2 turns ago" in note and "circle" in note
    (note,) = GuidedStyle().turn_notes(second, question, [first, second])
    assert "previous reply" in note
    assert GuidedStyle().turn_notes(['print(find("urlparse"))'], question, [first, second]) == []


def test_a_run_that_goes_back_to_the_code_of_two_turns_ago_is_told_so() -> None:
    from unbounded import RLM, Budget
    from unbounded.models.scripted import ScriptedLM

    a = '```python\nprint(len(context))\n```'
    b = '```python\nprint(context[:20])\n```'
    lm = ScriptedLM([a, b, a, 'FINAL("done")'])
    rlm = RLM(model=lm, sub_model=ScriptedLM(["yes"]), repl="inprocess", prompt_style="guided",
              budget=Budget(max_iterations=6))
    rlm.run("How long is the text?", "some text " * 50)
    after_third = lm.calls[3][-1].content
    assert "same code as your reply 2 turns ago" in after_third
    assert "same code" not in lm.calls[2][-1].content


def test_after_a_repeated_cell_the_next_root_call_samples_instead_of_decoding_greedily() -> None:
    """A 1.5B root at temperature 0 ran one cell eighteen times in a row; the same prompt plus a note
    gave the same code each time. One call at the style's loop temperature, seeded, breaks the circle."""
    from unbounded import RLM, Budget
    from unbounded.guided import GuidedStyle
    from unbounded.models.scripted import ScriptedLM

    a = '```python\nprint(len(context))\n```'
    lm = ScriptedLM([a, a, '```python\nprint(context[:20])\n```', 'FINAL("done")'])
    rlm = RLM(model=lm, sub_model=ScriptedLM(["yes"]), repl="inprocess", prompt_style="guided",
              budget=Budget(max_iterations=6))
    rlm.run("How long is the text?", "some text " * 50)
    temps = [o.get("temperature") for o in lm.options]
    assert temps[:4] == [0.0, 0.0, GuidedStyle.loop_temperature, 0.0]
    assert lm.options[2]["seed"] == 2
    # a style without a loop temperature keeps greedy decoding
    lm2 = ScriptedLM([a, a, 'FINAL("done")'])
    RLM(model=lm2, repl="inprocess", prompt_style="compact", budget=Budget(max_iterations=4)).run("q?", "x " * 50)
    assert all(o.get("temperature") == 0.0 for o in lm2.options)


def test_a_root_that_runs_the_same_cell_four_turns_in_a_row_is_asked_for_its_answer() -> None:
    """Sampled or not, a 1.5B root ran `find(question)` fifteen turns in a row: 120 s spent on one circle.
    After three turns that only re-ran earlier code, the engine asks for the answer as when the turns run out."""
    from unbounded import RLM, Budget
    from unbounded.models.scripted import ScriptedLM

    same = '```python\nprint(len(context))\n```'

    def reply(messages):
        return 'FINAL("500")' if "out of turns" in messages[-1].content else same

    lm = ScriptedLM(reply)
    result = RLM(model=lm, sub_model=ScriptedLM(["yes"]), repl="inprocess", prompt_style="guided",
                 budget=Budget(max_iterations=20)).run("How long is the text?", "some text " * 50)
    assert len(lm.calls) == 5 and result.answer == "500" and result.status == "max_iterations"


def test_a_round_of_three_cells_run_again_and_again_is_cut_short() -> None:
    """After its answer was sent back, a 1.5B root ran the same three cells in turn until its 20 turns were
    spent (296 s); each re-ran an earlier turn's code, though never the one just before."""
    from unbounded import RLM, Budget
    from unbounded.models.scripted import ScriptedLM

    cells = ['```python\nprint(len(context))\n```', '```python\nprint(context[:5])\n```',
             '```python\nprint(context[-5:])\n```']
    turn = iter(range(100))

    def reply(messages):
        return 'FINAL("500")' if "out of turns" in messages[-1].content else cells[next(turn) % 3]

    lm = ScriptedLM(reply)
    result = RLM(model=lm, sub_model=ScriptedLM(["yes"]), repl="inprocess", prompt_style="guided",
                 budget=Budget(max_iterations=20)).run("How long is the text?", "some text " * 50)
    assert len(lm.calls) == 3 + 3 + 1 and result.answer == "500"
