"""The REPL's reading toolkit: ranked search, reading regions, definitions, records, counts, llm_map."""

from __future__ import annotations

import textwrap

import pytest

from conftest import code
from unbounded import RLM
from unbounded.models import Message, ScriptedLM
from unbounded.repl.code_index import abridge, arithmetic
from unbounded.repl.namespace import build_namespace
from unbounded.repl.search import SearchIndex, terms

SOURCES = {
    "shipping/__init__.py": "from .rates import quote_rate\n",
    "shipping/const.py": textwrap.dedent(
        """\
        \"\"\"Constants of the shipping package.\"\"\"
        NORMAL = 5
        URGENT = NORMAL * 2
        DEFAULT_PRIORITY = NORMAL
        LIMIT = 2 ** 16
        """
    ),
    "shipping/parcel.py": textwrap.dedent(
        """\
        import json
        from .const import DEFAULT_PRIORITY

        MAX_WEIGHT = 30


        class Parcel:
            \"\"\"A parcel to deliver.\"\"\"

            retries = 3

            def __init__(self, weight, priority=DEFAULT_PRIORITY):
                self.weight = weight

            def check_weight(self):
                return self.weight <= MAX_WEIGHT

            def labels(self):
                yield "fragile"


        class ParcelError(ValueError):
            pass


        def quote(parcel):
            return parcel.weight * 2
        """
    ),
}


def namespace(context: object) -> dict:
    return build_namespace(context, lambda kind, payload: [f"answer {i}" for i in range(len(payload["prompts"]))], {}).namespace


def test_terms_split_identifiers_and_drop_stop_words() -> None:
    found = terms("The TextWrapper wraps text; parse_headers() HTTPStatus")
    assert {"textwrapper", "text", "wrapper", "parse_headers", "parse", "headers", "httpstatus"} <= set(found)
    assert "the" not in found


def test_search_ranks_the_passage_with_the_words() -> None:
    docs = {f"doc{i}.txt": "filler words about nothing in particular\n" * 30 for i in range(20)}
    docs["doc7.txt"] = "filler\n" * 10 + "The travel desk needs 14 days of notice before a trip abroad.\n" + "filler\n" * 10
    hits = namespace(docs)["search"]("how many days of notice before a trip abroad", k=3)
    assert hits[0].key == "doc7.txt" and "14 days" in hits[0].text and hits[0].line == 1
    assert hits[0].score > (hits[1].score if len(hits) > 1 else 0)
    index = SearchIndex("one line\ntwo line\n" * 2000)
    assert index.search("nothing like it", 5) == []


def test_read_shows_numbered_lines_around_a_hit() -> None:
    ns = namespace(SOURCES)
    d = ns["definitions"]("check_weight")[0]
    region = ns["read"](d, before=1, after=1)
    assert region.splitlines() == ["14: ", "15:     def check_weight(self):", "16:         return self.weight <= MAX_WEIGHT"]
    assert repr(region) == str(region)  # shown as text, not as a quoted string, when a cell ends with it
    whole = ns["read"]("shipping/const.py")
    assert whole.startswith('1: """Constants') and "5: LIMIT = 2 ** 16" in whole
    with pytest.raises(KeyError, match="no document"):
        ns["read"]("missing.py", 3)


def test_definitions_finds_classes_functions_methods_variables_and_modules() -> None:
    ns = namespace(SOURCES)
    defs = ns["definitions"]
    (parcel,) = defs("Parcel")
    assert (parcel.key, parcel.line, parcel.kind, parcel.bases) == ("shipping/parcel.py", 7, "class", [])
    assert defs("ParcelError")[0].bases == ["ValueError"]
    assert [d.qualname for d in defs(kind="method")] == ["Parcel.__init__", "Parcel.check_weight", "Parcel.labels"]
    assert [d.name for d in defs(key="shipping/parcel.py", kind="function")] == ["quote"]
    assert defs("Parcel.retries")[0].value == "3"
    assert defs("shipping.parcel.Parcel")[0] == parcel  # a dotted path works too
    assert defs("const")[0].kind == "module"
    assert defs("nothing_like_this") == []
    assert "yield" in defs("Parcel.labels")[0].text


def test_bases_of_follows_classes_of_the_context_and_builtins() -> None:
    ns = namespace({**SOURCES, "shipping/errors.py": "from .parcel import ParcelError\nclass Late(ParcelError):\n    pass\n"})
    late = ns["definitions"]("Late")[0]
    assert ns["bases_of"](late) == ["ParcelError", "ValueError", "Exception", "BaseException", "object"]
    assert ns["bases_of"]("Parcel") == []
    with pytest.raises(TypeError):
        ns["bases_of"](ns["definitions"]("quote")[0])


def test_resolved_follows_names_and_works_out_arithmetic() -> None:
    defs = namespace(SOURCES)["definitions"]
    assert defs("DEFAULT_PRIORITY", key="shipping/const.py")[0].resolved == "5"
    assert defs("URGENT")[0].resolved == "10"
    assert defs("LIMIT")[0].resolved == "65536"
    assert defs("Parcel")[0].resolved is None
    assert arithmetic("2 ** 16 + 1") == 65537 and arithmetic("os.sep") is None and arithmetic("9 ** 999") is None


def test_a_long_definition_is_read_as_an_outline_with_the_constants_it_uses() -> None:
    body = "\n".join(f"    def method_{i}(self):\n        '''Doc {i}.'''\n        return {i}\n" for i in range(300))
    source = f"LIMIT = 2 ** 10\n\nclass Big:\n    '''A big class.\n\n    More words.'''\n    size = LIMIT\n{body}"
    defs = namespace({"big.py": source})["definitions"]
    brief = defs("Big")[0].brief(2000)
    assert len(brief) <= 2000 and "size = LIMIT" in brief and "def method_0(self):" in brief
    assert "More words" not in brief and "LIMIT = 2 ** 10  (= 1024)" in brief
    assert abridge("x = 1", 100) == "x = 1"


def test_an_outline_puts_class_settings_before_the_methods() -> None:
    """A class that sets a default after its methods (``protocol_version`` in http.server) kept it only
    at the end of its outline, where a cut to the sub-model's window dropped it."""
    body = "\n".join(f"    def method_{i}(self):\n        return {i}\n" for i in range(200))
    source = f'class Handler:\n    """Handles."""\n    early = 1\n{body}\n    protocol = "P/1.0"\n'
    outline = abridge(source, 600)
    assert outline.splitlines()[:4] == ["class Handler:", '    """Handles."""', "    early = 1", '    protocol = "P/1.0"']
    assert "    def method_0(self):" in outline and len(outline) <= 600


def test_parse_records_reads_field_value_stanzas() -> None:
    text = "Package: a\nEssential: yes\nDescription: first\n more\n .\n end\n\nPackage: b\nPriority: required\n\n"
    recs = namespace(text)["parse_records"]()
    assert recs == [
        {"Package": "a", "Essential": "yes", "Description": "first\nmore\n\nend"},
        {"Package": "b", "Priority": "required"},
    ]
    with pytest.raises(TypeError, match="one text"):
        namespace({"a": "x"})["parse_records"]()


def test_count_lines_is_exact_and_never_capped() -> None:
    ns = namespace({f"m{i}.py": ("import re\n" if i % 3 == 0 else "x = 1\n") * 2 for i in range(3000)})
    assert ns["count_lines"](r"^import re\b") == 2000
    assert ns["count_lines"](r"^import re\b", per="doc") == 1000


def test_llm_map_asks_each_text_and_parses_the_answers(repl_kind: str) -> None:
    def sub(messages: list[Message]) -> str:
        text = messages[0].content
        if "broken" in text:
            raise RuntimeError("the sub-model failed")
        return "Yes, it is." if text.startswith("a chess game") else "no"

    root = ScriptedLM(
        [
            code(
                "v = llm_map('Is this a game?', ['a chess game', 'a text editor', 'broken item', 'x' * 7000], parse='yes/no')\n"
                "print(v, v.errors)"
            ),
            code("FINAL(str(sum(x is True for x in v)))"),
        ]
    )
    result = RLM(model=root, sub_model=ScriptedLM(sub, name="sub"), repl=repl_kind).run("q", "ctx")
    assert result.answer == "1"
    shown = root.calls[1][-1].content
    assert "[True, False, None, False]  [1 of 4 failed or unparsed: positions [2]] [2]" in shown
    assert "llm_map sent only the first 6,000 characters of 1 of its 4 texts" in shown  # said, not silent


def test_the_toolkit_names_can_be_reused_as_variables_in_a_cell() -> None:
    root = ScriptedLM([code("search = 3\nprint(search + 1)"), code("FINAL(str(len(search('words here'))))")])
    result = RLM(model=root, repl="inprocess").run("q", "some words here")
    assert "4" in root.calls[1][-1].content  # the assignment ran (it was not dropped)
    assert result.answer == "1"  # and the helper is back for the next cell


def test_a_cells_time_limit_does_not_count_the_time_its_sub_calls_wait(repl_kind: str) -> None:
    from unbounded.repl.base import Limits

    sub = ScriptedLM(lambda ms: "ok", latency=0.6, name="sub", max_concurrency=1)
    root = ScriptedLM([code("out = [llm_query('p') for _ in range(4)]\nprint(len(out))"), code("FINAL('done')")])
    result = RLM(model=root, sub_model=sub, repl=repl_kind, limits=Limits(cell_timeout=1.0)).run("q", "ctx")
    assert result.answer == "done"
    assert "4" in root.calls[1][-1].content and "time limit" not in root.calls[1][-1].content
    # The cell's own code is still limited.
    spin = ScriptedLM([code("while True:\n    pass"), code("FINAL('stopped')")])
    result = RLM(model=spin, repl=repl_kind, limits=Limits(cell_timeout=1.0, kill_grace=1.0)).run("q", "ctx")
    assert result.answer == "stopped" and "time limit" in spin.calls[1][-1].content


def test_the_hard_deadline_of_a_process_cell_also_waits_for_sub_calls() -> None:
    """The worker's own clock pauses during sub-calls; so must the host's kill deadline behind it."""
    from unbounded.repl.base import Limits

    sub = ScriptedLM(lambda ms: "ok", latency=0.4, name="sub", max_concurrency=1)
    root = ScriptedLM([code("out = [llm_query('p') for _ in range(6)]\nprint(len(out))"), code("FINAL('done')")])
    limits = Limits(cell_timeout=0.5, kill_grace=0.5)
    result = RLM(model=root, sub_model=sub, repl="process", limits=limits).run("q", "ctx")
    assert result.answer == "done" and "6" in root.calls[1][-1].content


def test_llm_map_asks_short_texts_several_to_a_call_and_retries_what_a_call_missed() -> None:
    items = [f"item {i}: {'a game' if i % 3 == 0 else 'a tool'}" for i in range(20)]

    def sub(messages: list[Message]) -> str:
        prompt = messages[0].content
        if prompt.startswith("Answer this question for each numbered text"):
            lines = [line for line in prompt.splitlines() if line[:1].isdigit()]
            answers = [f"{line.split('.', 1)[0]}: {'yes' if 'a game' in line else 'no'}" for line in lines]
            return "\n".join(answers[:-1])  # the last text of each call left out: asked again alone
        return "yes" if "a game" in prompt.split("\n\n")[0] else "no"

    sub_lm = ScriptedLM(sub, name="sub")
    root = ScriptedLM([code(f"v = llm_map('Is it a game?', {items!r}, parse='yes/no')\nFINAL(str(v))")])
    result = RLM(model=root, sub_model=sub_lm, repl="inprocess").run("q", "ctx")
    assert result.answer == str([i % 3 == 0 for i in range(20)])
    assert len(sub_lm.calls) == 3 + 3  # 20 texts in 3 calls of up to 8, then the 3 left out one by one


def test_definitions_of_a_module_or_a_class_say_what_to_follow_instead_of_value() -> None:
    """A 1.5B root printed `d.value, d.resolved` for the module and the class a chain starts from, saw
    `None None`, and answered None or ran the same cell again; the note says where to go on."""
    state = build_namespace(SOURCES, lambda kind, payload: [], {})
    ns = state.namespace
    ns["definitions"]("Parcel")
    assert state.notes[-1] == "definitions('Parcel'): a class, so .value is None; its base classes (.bases): none written"
    ns["definitions"]("ParcelError")
    assert state.notes[-1].endswith("(.bases): ValueError")
    ns["definitions"]("const")
    assert "'const' is a module (shipping/const.py)" in state.notes[-1]
    assert "definitions(key='shipping/const.py')" in state.notes[-1]
    before = len(state.notes)
    ns["definitions"]("DEFAULT_PRIORITY")  # a variable has a value: nothing to add
    ns["definitions"](kind="class")
    assert len(state.notes) == before


def test_find_puts_first_the_variable_a_named_module_spells_out_in_the_question() -> None:
    """Asked which number `tarfile` writes "by default" as its "archive format", find's places were a
    number-parsing function and two unrelated passages; ``DEFAULT_FORMAT`` is made of the question's words."""
    from unbounded.repl.find import find

    places = find(SOURCES, "Which priority does `shipping.const` give a parcel by default? Give the number.")
    assert places[0].name == "DEFAULT_PRIORITY" and places[0].key == "shipping/const.py"


def test_definitions_reads_a_file_written_as_a_module_path_and_says_when_a_key_names_no_file() -> None:
    """A 1.5B root asked for the classes of key 'concurrent.futures._base.py', got an empty list for the
    file 'concurrent/futures/_base.py' and answered 0."""
    state = build_namespace(SOURCES, lambda kind, payload: [], {})
    ns = state.namespace
    found = ns["definitions"](key="shipping.const.py", kind="variable")
    assert {d.name for d in found} >= {"NORMAL", "DEFAULT_PRIORITY"}
    assert "read as key='shipping/const.py'" in state.notes[-1]
    assert ns["definitions"](key="shipping/nothing.py") == []
    assert "no file key='shipping/nothing.py' among the 3 keys of context" in state.notes[-1]
    before = len(state.notes)
    assert ns["definitions"](key="const.py", kind="variable")  # a key's last part is a key
    assert len(state.notes) == before


def test_definitions_finds_a_name_by_the_public_path_its_package_exports_it_under() -> None:
    """`concurrent.futures.wait` is defined in `concurrent/futures/_base.py`; asked by its public path,
    definitions found nothing and find fell back to unrelated passages."""
    from unbounded.repl.code_index import definitions

    sources = {
        "pkg/__init__.py": "from ._impl import wait\n",
        "pkg/_impl.py": "def wait(fs, timeout=None):\n    return fs\n",
        "other/_impl.py": "def wait():\n    pass\n",
    }
    (d,) = definitions(sources, "pkg.wait")
    assert (d.key, d.name) == ("pkg/_impl.py", "wait")
    assert definitions(sources, "pkg.nothing") == []
    assert [d.key for d in definitions(sources, "pkg._impl.wait")] == ["pkg/_impl.py"]
