import time

from unbounded.repl.helpers import chunks, format_final, grep


def test_grep_offsets_lines_and_context() -> None:
    text = "a\nb key=1\nc\nd key=2\ne"
    hits = grep(r"key=(\d)", text)
    assert [(h.line, h.match) for h in hits] == [(2, "key=1"), (4, "key=2")]
    assert text[hits[1].offset :].startswith("key=2")
    assert grep("key=2", text, context_lines=1)[0].text == "c\nd key=2\ne"


def test_grep_collections_and_options() -> None:
    docs = {"x.txt": "hello", "y.txt": "HELLO there"}
    assert [h.key for h in grep("hello", docs, ignore_case=True)] == ["x.txt", "y.txt"]
    assert [h.key for h in grep("there", ["no", "there"])] == [1]
    assert len(grep("a", "a\n" * 100, max_matches=5)) == 5


def test_grep_is_fast_on_large_text() -> None:
    text = ("filler line without the word\n" * 1_000_000) + "needle 77\n"
    started = time.perf_counter()
    hits = grep(r"needle \d+", text)
    assert hits[0].line == 1_000_001
    assert time.perf_counter() - started < 5  # generous: a single regex scan


def test_chunks() -> None:
    assert chunks("abcdefghij", 4) == ["abcd", "efgh", "ij"]
    assert chunks("abcdefghij", 4, overlap=2)[:2] == ["abcd", "cdef"]
    assert chunks("line1\nline2\nline3\n", 9) == ["line1\n", "line2\n", "line3\n"]
    assert chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert chunks({"a": 1, "b": 2, "c": 3}, 2) == [{"a": 1, "b": 2}, {"c": 3}]
    assert "".join(chunks("x" * 1001, 100)) == "x" * 1001


def test_format_final() -> None:
    assert format_final("s") == "s"
    assert format_final(3) == "3"
    assert format_final([1, "a"]) == '[1, "a"]'
    assert format_final({1, 2}) in ("[1, 2]", "[2, 1]")

    class Weird:
        def __str__(self) -> str:
            return "weird"

    assert format_final(Weird()) == "weird"
