"""Task generators: deterministic, the right size, gold answers that an independent reading confirms."""

from __future__ import annotations

import ast
import datetime as dt
import re
import time
from collections import Counter
from itertools import combinations

import pytest

from unbounded.bench.tasks import TASKS, TaskItem, context_chars, generate, score, trec
from unbounded.bench.tasks import codeqa as codeqa_mod
from unbounded.bench.tasks.answers import parse_choice_letter, parse_pairs

# The contracts below are for generated tasks; a fixed set (realqa, sized=False) has its own tests.
ALL_TASKS = [t for t in TASKS if TASKS[t].sized]
RECORD = re.compile(r"^Date: (\w{3} \d{2}, \d{4}) \|\| User: (\d+) \|\| Instance: (.+)$")


def _fingerprint(items: list[TaskItem]) -> list[tuple]:
    return [
        (i.id, i.question, repr(i.answer), i.context if isinstance(i.context, str) else repr(i.context)) for i in items
    ]


# ---------------------------------------------------------------------------------------------
# Determinism and size


@pytest.mark.parametrize("task", ALL_TASKS)
def test_generation_is_deterministic_per_seed(task: str) -> None:
    a = generate(task, 8_192, n=3, seed=7)
    b = generate(task, 8_192, n=3, seed=7)
    c = generate(task, 8_192, n=3, seed=8)
    assert _fingerprint(a) == _fingerprint(b)
    assert _fingerprint(a) != _fingerprint(c)
    assert len({i.id for i in a}) == 3


@pytest.mark.parametrize("task", ALL_TASKS)
@pytest.mark.parametrize("size", [8_000, 60_000])
def test_sizes_within_five_percent(task: str, size: int) -> None:
    for item in generate(task, size, n=2, seed=3):
        tokens = context_chars(item.context) / 4
        assert abs(tokens - size) <= 0.05 * size, (task, size, tokens)
        assert item.size_tokens == context_chars(item.context) // 4
        assert item.answer_format and item.question


@pytest.mark.parametrize(("task", "size"), [("niah", 1_000_000), ("oolong", 400_000), ("multihop", 500_000)])
def test_large_sizes_within_five_percent(task: str, size: int) -> None:
    item = generate(task, size, n=1, seed=0)[0]
    assert abs(context_chars(item.context) / 4 - size) <= 0.05 * size


def test_unknown_task_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        generate("nope", 8_000)


def test_missing_prediction_scores_zero() -> None:
    item = generate("niah", 8_000)[0]
    assert score(item, None) == 0.0


# ---------------------------------------------------------------------------------------------
# niah


@pytest.mark.parametrize("haystack", ["noise", "prose"])
@pytest.mark.parametrize("value_type", ["number", "uuid"])
def test_niah_needle_is_placed_once_at_its_depth(haystack: str, value_type: str) -> None:
    for depth in (0.0, 0.5, 1.0):
        item = generate("niah", 20_000, n=1, seed=1, haystack=haystack, value_type=value_type, depth=depth)[0]
        ctx = item.context
        assert isinstance(ctx, str)
        key = item.metadata["key"]
        assert key in item.question
        needle = re.findall(r"One of the special magic (\w+) for ([\w-]+) is: ([\w-]+)\.", ctx)
        assert needle == [("numbers" if value_type == "number" else "uuids", key, item.answer)]
        assert ctx.count("magic") == 1
        if value_type == "number":
            assert re.fullmatch(r"\d{7}", str(item.answer))
        else:
            assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", str(item.answer))
        assert abs(ctx.index("One of the special") / len(ctx) - depth) < 0.02


def test_niah_default_items_cycle_ruler_variants() -> None:
    items = generate("niah", 8_000, n=3, seed=0)
    assert [(i.metadata["haystack"], i.metadata["value_type"]) for i in items] == [
        ("noise", "number"),
        ("prose", "number"),
        ("prose", "uuid"),
    ]
    assert "The grass is green." in items[0].context
    assert "The grass is green." not in items[1].context


def test_niah_two_million_tokens_is_fast() -> None:
    generate("niah", 8_000, n=2, seed=0)  # warm the prose harvest (parsed once per process)
    started = time.perf_counter()
    items = generate("niah", 2_000_000, n=2, seed=0)
    assert time.perf_counter() - started < 15
    for item in items:
        assert abs(len(item.context) / 4 - 2_000_000) < 0.01 * 2_000_000


def test_niah_scorer_variants() -> None:
    item = generate("niah", 8_000, n=3, seed=2)[2]  # a uuid item
    gold = str(item.answer)
    assert score(item, gold) == 1.0
    assert score(item, f"Answer: **{gold.upper()}**") == 1.0
    assert score(item, f"The special magic uuid is {gold}.") == 1.0
    assert score(item, "I could not find it.") == 0.0


# ---------------------------------------------------------------------------------------------
# oolong: recompute every gold answer from the parsed records and the hidden labels


def _parse_records(item: TaskItem) -> list[tuple[dt.date, int, str, str]]:
    labels = item.metadata["labels"]
    lines = item.context.split("\n")
    assert len(lines) == len(labels) == item.metadata["n_records"]
    out = []
    for line, lab in zip(lines, labels, strict=True):
        m = RECORD.match(line)
        assert m, line
        day = dt.datetime.strptime(m.group(1), "%b %d, %Y").date()
        out.append((day, int(m.group(2)), m.group(3), trec.CLASSES[int(lab)]))
    return out


def _template_regexes() -> dict[str, list[re.Pattern[str]]]:
    return {
        label: [re.compile(re.sub(r"\\\{\w+\\\}", ".+?", re.escape(t)) + "$") for t in trec.templates(label)]
        for label in trec.CLASSES
    }


def _date(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%b %d, %Y").date()


def _oolong_gold(item: TaskItem, records: list[tuple[dt.date, int, str, str]]) -> object:
    kind, p = item.metadata["kind"], item.metadata["params"]
    if kind == "count":
        return sum(1 for r in records if r[3] == p["label"])
    if kind == "count_users":
        return sum(1 for r in records if r[3] == p["label"] and r[1] in p["users"])
    if kind == "count_dates":
        lo, hi = _date(p["start"]), _date(p["end"])
        return sum(1 for r in records if r[3] == p["label"] and lo <= r[0] <= hi)
    if kind == "compare":
        c = Counter(r[3] for r in records)
        a, b = c[p["label"]], c[p["other"]]
        return "more common than" if a > b else "less common than" if a < b else "same frequency as"
    if kind in ("most_common", "least_common", "most_common_users"):
        subset = [r for r in records if kind != "most_common_users" or r[1] in p["users"]]
        c = Counter({label: 0 for label in trec.CLASSES})
        c.update(r[3] for r in subset)
        ranked = sorted(c.items(), key=lambda kv: kv[1], reverse=(kind != "least_common"))
        assert ranked[0][1] != ranked[1][1], "gold must not be a tie"
        return ranked[0][0]
    if kind == "user_most":
        c = Counter(r[1] for r in records if r[3] == p["label"])
        (top, n1), (_, n2) = c.most_common(2)
        assert n1 != n2
        return str(top)
    if kind == "month_most":
        c = Counter(r[0].strftime("%B %Y") for r in records if r[3] == p["label"])
        (top, n1), (_, n2) = c.most_common(2)
        assert n1 != n2
        return top
    raise AssertionError(kind)


def test_oolong_gold_answers_recomputed_from_records() -> None:
    items = generate("oolong", 16_000, n=40, seed=5)
    kinds = {i.metadata["kind"] for i in items}
    assert {"count", "count_users", "count_dates", "compare", "user_most", "month_most"} <= kinds
    patterns = _template_regexes()
    for item in items:
        records = _parse_records(item)
        assert _oolong_gold(item, records) == item.answer, item.metadata["kind"]
        for _, _, text, label in records[:200]:  # each instance reads as a question of its class
            assert any(p.match(text) for p in patterns[label]), (label, text)
            assert label not in text.lower() or label == "abbreviation"


def test_oolong_classes_share_vocabulary() -> None:
    """The same slot nouns appear under several classes, so words alone do not give the class away."""
    items = generate("oolong", 60_000, n=1, seed=0)
    records = _parse_records(items[0])
    by_country: dict[str, set[str]] = {}
    for _, _, text, label in records:
        for country in ("Peru", "Norway", "Kenya", "Japan"):
            if country in text:
                by_country.setdefault(country, set()).add(label)
    assert any(len(labels) >= 4 for labels in by_country.values())


def test_oolong_records_share_context_when_asked() -> None:
    items = generate("oolong", 8_000, n=4, seed=0, questions_per_context=2)
    assert items[0].context is items[1].context
    assert items[1].context is not items[2].context


def test_oolong_scorer_variants() -> None:
    items = {i.metadata["answer_type"]: i for i in generate("oolong", 16_000, n=40, seed=5)}
    num = items["numeric"]
    gold = int(num.answer)
    assert score(num, f"Answer: {gold}") == 1.0
    assert score(num, f"I counted {gold:,} in total.") == 1.0
    assert score(num, f"Answer: {gold + 2}") == pytest.approx(0.75**2)
    assert score(num, "no idea") == 0.0
    cmp_item = items["comparison"]
    assert score(cmp_item, f"Answer: {cmp_item.answer}") == 1.0
    assert score(cmp_item, f"It is {str(cmp_item.answer).upper()} the other.") == 1.0
    wrong = next(r for r in ("more common than", "less common than", "same frequency as") if r != cmp_item.answer)
    assert score(cmp_item, f"Answer: {wrong}") == 0.0
    user = items["user"]
    assert score(user, f"Answer: User {user.answer}") == 1.0
    assert score(user, "Answer: 99999") == 0.0
    month = items["month"]
    name, year = str(month.answer).split()
    mnum = dt.datetime.strptime(name, "%B").month
    assert score(month, f"Answer: {month.answer}") == 1.0
    assert score(month, f"Answer: {year}-{mnum:02d}") == 1.0
    assert score(month, f"answer: {name[:3]} {year}") == 1.0


def test_oolong_label_scorer_is_exact_after_normalisation() -> None:
    items = [i for i in generate("oolong", 16_000, n=60, seed=9) if i.metadata["answer_type"] == "label"]
    item = items[0]
    gold = str(item.answer)
    assert score(item, f"Answer: {gold.upper()}.") == 1.0
    assert score(item, f"The most common category is '{gold}'.") == 1.0
    other = next(c for c in trec.CLASSES if c != gold)
    assert score(item, f"Answer: {other}") == 0.0
    assert score(item, f"Answer: {gold} or {other}") == 0.0


# ---------------------------------------------------------------------------------------------
# oolong-pairs: an independent evaluator of the structured conditions


def _holds(cond: dict, recs: list[tuple[dt.date, str]]) -> bool:
    lo = _date(cond["start"]) if cond["start"] else dt.date.min
    hi = _date(cond["end"]) if cond["end"] else dt.date.max
    inside = [label for day, label in recs if lo <= day <= hi]
    n = sum(1 for label in inside if label in cond["classes"])
    op, k = cond["op"], cond["k"]
    if op == "more":
        return n > sum(1 for label in inside if label in cond["other"])
    return {"atleast": n >= k, "exactly": n == k, "atmost": n <= k, "none": n == 0}[op]


def test_oolong_pairs_gold_recomputed_for_all_templates() -> None:
    items = generate("oolong-pairs", 16_000, n=20, seed=4)
    assert sorted(i.metadata["template"] for i in items) == list(range(20))
    for item in items:
        by_user: dict[int, list[tuple[dt.date, str]]] = {}
        for day, uid, _, label in _parse_records(item):
            by_user.setdefault(uid, []).append((day, label))
        first, second = item.metadata["first"], item.metadata["second"]
        ok1 = {u for u, recs in by_user.items() if all(_holds(c, recs) for c in first)}
        if second is None:
            gold = set(combinations(sorted(ok1), 2))
        else:
            ok2 = {u for u, recs in by_user.items() if all(_holds(c, recs) for c in second)}
            gold = {(min(a, b), max(a, b)) for a in ok1 for b in ok2 if a != b}
        assert gold == set(item.answer), item.metadata["template"]
        assert 1 <= len(gold) <= 200
        assert all(a < b for a, b in item.answer)
        assert item.metadata["n_users"] <= 60


def test_oolong_pairs_scorer_f1() -> None:
    item = generate("oolong-pairs", 16_000, n=6, seed=4)[5]
    gold = list(item.answer)
    assert len(gold) >= 1
    full = "\n".join(f"({b}, {a})" for a, b in gold)  # reversed order within pairs is fine
    assert score(item, full) == 1.0
    assert score(item, "Answer:\n" + "\n".join(f"(User {a}, User {b})" for a, b in gold)) == 1.0
    assert score(item, "") == 0.0
    extra = full + "\n(1, 2)"
    p, r = len(gold) / (len(gold) + 1), 1.0
    assert score(item, extra) == pytest.approx(2 * p * r / (p + r))
    assert parse_pairs("(3,1) (1, 3) (4 , 4)") == {(1, 3)}


# ---------------------------------------------------------------------------------------------
# codeqa: check each fact against the code with a separate reading


def _find_function(source: str, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    tree = ast.parse(source)
    matches = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and prefix + node.name == qualname:
                matches.append(node)
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body, prefix)
                visit(node.orelse, prefix)

    visit(tree.body, "")
    assert len(matches) == 1, qualname
    return matches[0]


@pytest.mark.parametrize("kind", sorted(codeqa_mod.KINDS))
def test_codeqa_facts_and_distractors(kind: str) -> None:
    for item in generate("codeqa", 30_000, n=4, seed=11, kind=kind):
        files: dict[str, str] = item.context  # type: ignore[assignment]
        facts, options = item.metadata["facts"], item.metadata["options"]
        assert item.metadata["kind"] == kind
        assert len(set(options)) == 4
        correct = options["ABCD".index(str(item.answer))]
        others = [o for o in options if o != correct]
        for letter, opt in zip("ABCD", options, strict=True):
            assert f"{letter}) {opt}" in item.question
        if kind == "where_defined":
            name = facts["name"]
            pat = re.compile(rf"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+{re.escape(name)}\b", re.M)
            defining = [p for p, src in files.items() if pat.search(src)]
            assert defining == [facts["path"]] and correct == f"`{facts['path']}`"
            assert all(o.strip("`") in files for o in others)
            continue
        fn = _find_function(files[facts["path"]], facts["function"])
        if kind == "default_value":
            a = fn.args
            positional = [*a.posonlyargs, *a.args]
            defaults = dict(
                zip([x.arg for x in positional[len(positional) - len(a.defaults) :]], a.defaults, strict=True)
            )
            defaults.update({x.arg: d for x, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None})
            assert correct == f"`{ast.unparse(defaults[facts['param']])}`"
        elif kind == "calls":
            called = {
                n.func.id if isinstance(n.func, ast.Name) else getattr(n.func, "attr", None)
                for n in ast.walk(fn)
                if isinstance(n, ast.Call)
            }
            assert correct.strip("`") in called
            seg = ast.get_source_segment(files[facts["path"]], fn) or ""
            for o in others:
                assert not re.search(rf"\b{re.escape(o.strip('`'))}\b", seg)
        elif kind == "param_count":
            a = fn.args
            n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + bool(a.vararg) + bool(a.kwarg)
            assert correct == str(n)


def test_codeqa_context_is_stdlib_source() -> None:
    item = generate("codeqa", 20_000, n=1, seed=0)[0]
    assert isinstance(item.context, dict)
    assert all(path.endswith(".py") for path in item.context)
    assert list(item.context) == sorted(item.context)


def test_codeqa_refuses_more_than_the_stdlib_has() -> None:
    with pytest.raises(ValueError, match="standard library"):
        generate("codeqa", codeqa_mod.available_tokens() * 2, n=1)


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"),
        ("(B)", "B"),
        ("Answer: B", "B"),
        ("answer: (b)", "B"),
        ("B) `foo.py`", "B"),
        ("**C**", "C"),
        ("The answer is D.", "D"),
        ("A function defined there... so the correct option is (C).", "C"),
        ("Looking at A) and B), I think\nAnswer: B", "B"),
        ("I am not sure", None),
    ],
)
def test_codeqa_letter_parsing(text: str, letter: str | None) -> None:
    assert parse_choice_letter(text) == letter


# ---------------------------------------------------------------------------------------------
# multihop: follow each chain through the documents with regexes


def _doc(docs: dict[str, str], title: str) -> str:
    found = [t for t in docs.values() if t.startswith(f"Title: {title}\n")]
    assert len(found) == 1, title
    return found[0]


def _one(pattern: str, text: str) -> str:
    found = set(re.findall(pattern, text))
    assert len(found) == 1, (pattern, found)
    return found.pop()


def _resolve(docs: dict[str, str], kind: str, start: str) -> str:
    def maker(product: str) -> str:
        return _one(rf"The {re.escape(product)} is an? [\w\- ]+ made by ([\w ]+?), first", _doc(docs, product))

    def founder(company: str) -> str:
        return _one(rf"{re.escape(company)} was founded in \d+ by ([\w ]+?)\.", _doc(docs, company))

    def founded(company: str) -> str:
        return _one(rf"{re.escape(company)} was founded in (\d+) by", _doc(docs, company))

    def hq(company: str) -> str:
        return _one(rf"{re.escape(company)}, which works in [\w ]+, is headquartered in (\w+)\.", _doc(docs, company))

    def birthplace(person: str) -> str:
        return _one(rf"(?:{re.escape(person)} was born|Born) in (\w+) in \d{{4}}", _doc(docs, person))

    def birth_year(person: str) -> str:
        return _one(rf"(?:{re.escape(person)} was born|Born) in \w+ in (\d{{4}})", _doc(docs, person))

    def employer(person: str) -> str:
        return _one(rf"{re.escape(person)} (?:works at|founded) ([\w ]+?)(?: as| and still)", _doc(docs, person))

    def region(city: str) -> str:
        return _one(rf"{re.escape(city)} is a city in ([\w ]+?), founded", _doc(docs, city))

    def mayor(city: str) -> str:
        return _one(rf"The mayor of {re.escape(city)} is ([\w ]+?)\.", _doc(docs, city))

    chains = {
        "product_founder_birthplace": lambda x: birthplace(founder(maker(x))),
        "product_hq_region": lambda x: region(hq(maker(x))),
        "product_hq_mayor": lambda x: mayor(hq(maker(x))),
        "product_founder": lambda x: founder(maker(x)),
        "person_employer_hq": lambda x: hq(employer(x)),
        "person_employer_founded": lambda x: founded(employer(x)),
        "city_mayor_birth_year": lambda x: birth_year(mayor(x)),
        "company_founder_birthplace": lambda x: birthplace(founder(x)),
        "person_birthplace_mayor": lambda x: mayor(birthplace(x)),
        "company_hq_region": lambda x: region(hq(x)),
    }
    return chains[kind](start)


@pytest.mark.parametrize("size", [8_000, 120_000])
def test_multihop_gold_follows_the_documents(size: int) -> None:
    items = generate("multihop", size, n=10, seed=6)
    assert len({i.metadata["kind"] for i in items}) == 10
    for item in items:
        docs: dict[str, str] = item.context  # type: ignore[assignment]
        chain = item.metadata["chain"]
        assert item.metadata["hops"] == len(chain) >= 2
        assert chain[0] in item.question
        assert _resolve(docs, item.metadata["kind"], chain[0]) == item.answer
        for name in chain:
            _doc(docs, name)  # every hop has exactly one document


def test_multihop_has_surface_distractors() -> None:
    item = generate("multihop", 120_000, n=1, seed=2)[0]
    docs: dict[str, str] = item.context  # type: ignore[assignment]
    titles = [t.split("\n", 1)[0].removeprefix("Title: ") for t in docs.values()]
    first_words = Counter(t.split()[0] for t in titles if " " in t)
    assert any(n >= 2 for n in first_words.values())  # "Velmora Labs" next to "Velmora Works"
    assert 100 <= len(docs) <= 140


def test_multihop_scorer_variants() -> None:
    item = generate("multihop", 8_000, n=2, seed=1)[1]
    gold = str(item.answer)
    assert score(item, gold) == 1.0
    assert score(item, f"Answer: {gold.upper()}!") == 1.0
    assert score(item, f"The answer is {gold}.") == 1.0
    assert score(item, f"Answer: the {gold}") == 1.0
    assert score(item, "Answer: somewhere else") == 0.0
    long_text = " ".join(["word"] * 40) + f" {gold}"
    assert score(item, long_text) == 0.0
