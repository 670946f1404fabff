from unbounded.parsing import find_text_final, parse_reply


def test_blocks_in_order_and_languages() -> None:
    reply = 'intro\n```python\na = 1\n```\ntext\n```repl\nb = 2\n```\n```json\n{"x": 1}\n```\n```\nc = 3\n```'
    parsed = parse_reply(reply)
    assert parsed.code_blocks == ["a = 1\n", "b = 2\n", "c = 3\n"]
    assert '{"x": 1}' in parsed.text_outside_code


def test_unterminated_block_counts() -> None:
    assert parse_reply("```python\nprint(1)\n").code_blocks == ["print(1)\n"]


def test_final_in_code_is_not_a_text_final() -> None:
    parsed = parse_reply("```python\nFINAL(x)\n```")
    assert parsed.final is None


def test_text_final_forms() -> None:
    assert find_text_final("so FINAL(42)").value == "42"
    assert find_text_final('FINAL("a (nested) answer")').value == "a (nested) answer"
    assert find_text_final("FINAL(f(g(1)))").value == "f(g(1))"
    m = find_text_final("FINAL_VAR(result)")
    assert m.value == "result" and m.is_var
    assert find_text_final("first FINAL(1) then FINAL(2)").value == "2"
    assert find_text_final("no final here") is None
    assert find_text_final("FINAL()") is None
    assert find_text_final("FINAL(cut at stop").value == "cut at stop"


def test_whitespace_and_empty_replies() -> None:
    for reply in ["", "   \n\t", "```python\n```"]:
        parsed = parse_reply(reply)
        assert parsed.code_blocks == [] and parsed.final is None
