"""The realqa evaluation set: its shape, its split, its answers (recomputed another way), its scorer,
and a bench run over it end to end."""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import functools
import gzip
import hashlib
import http
import http.server
import inspect
import json
import logging.handlers
import multiprocessing.managers
import re
import tarfile
import textwrap
import unittest
import unittest.mock
from collections import Counter
from pathlib import Path

import pytest

from unbounded.bench.report import write_report
from unbounded.bench.results import read_results
from unbounded.bench.runner import BenchConfig, run_bench
from unbounded.bench.tasks import TASKS, generate, realqa, score
from unbounded.bench.tasks.base import CHARS_PER_TOKEN, context_chars, item_id
from unbounded.bench.tasks.realqa import questions as qmod
from unbounded.bench.tasks.realqa import scoring, sources
from unbounded.models import Message, ScriptedLM

ALL = 16 * 2**20  # a ceiling above every input

#: The test half as the split rule made it. A change here means the set changed: it must then get a new name.
TEST_HALF = {
    "classify-gnu-main-license",
    "classify-multiprocessing-procedures",
    "classify-packages-without-dependencies",
    "classify-several-licenses",
    "count-asyncio-files-with-classes",
    "count-logging-handler-subclasses",
    "count-modules-defining-error",
    "count-topics-with-examples",
    "hop-bash-predepends-maintainer",
    "hop-gzip-default-level",
    "hop-mimetext-base-file",
    "hop-simple-server-version",
    "list-asyncio-exceptions",
    "list-modules-with-main",
    "list-topics-nonlocal",
    "list-util-linux-binaries",
    "value-asyncio-tls-timeout",
    "value-email-line-length",
    "value-logging-tcp-port",
    "value-unittest-maxdiff",
    "where-email-decode-rfc2231",
    "where-fraction",
    "where-importlib-sourcefileloader",
    "where-logging-queuelistener",
}


@pytest.fixture(scope="module")
def items() -> list:
    return generate("realqa", ALL, n=len(realqa.QUESTIONS))


def by_qid(items: list) -> dict:
    return {i.metadata["qid"]: i for i in items}


# ---------------------------------------------------------------------------------------------
# The set


def test_the_set_covers_every_shape_with_eight_questions_and_sizes_from_100k_to_millions(items: list) -> None:
    assert len(realqa.QUESTIONS) >= 48
    assert len({q.qid for q in realqa.QUESTIONS}) == len(realqa.QUESTIONS)
    assert Counter(q.shape for q in realqa.QUESTIONS) == {s: 8 for s in realqa.SHAPES}
    assert {q.kind for q in realqa.QUESTIONS} <= set(qmod.KINDS)
    assert {q.source for q in realqa.QUESTIONS} == set(sources.SOURCES)
    chars = [context_chars(i.context) for i in items]
    assert min(chars) >= 100_000 and max(chars) >= 5_000_000
    assert {type(i.context).__name__ for i in items} == {"str", "list", "dict"}
    # Natural wording: no two questions share an opening, and none is a bare template.
    openings = Counter(" ".join(q.text.split()[:3]) for q in realqa.QUESTIONS)
    assert openings.most_common(1)[0][1] <= 3


def test_items_carry_the_source_description_format_and_metadata(items: list) -> None:
    for item in items:
        q = realqa.build(item.metadata["qid"]).question
        assert item.question.startswith("The context is ") and item.question.endswith(q.text)
        assert item.answer_format.endswith("`.") and "Answer:" in item.answer_format
        assert item.size_tokens == context_chars(item.context) // CHARS_PER_TOKEN
        assert item.metadata["split"] == realqa.split_of(q.qid)
        assert json.dumps(item.summary())  # JSON-friendly for results and reports


def test_generation_is_deterministic_and_ids_follow_the_runner(items: list) -> None:
    again = generate("realqa-test", ALL, n=24, seed=3)
    twice = generate("realqa-test", ALL, n=24, seed=3)
    assert [(i.id, i.question, i.answer) for i in again] == [(i.id, i.question, i.answer) for i in twice]
    assert [i.id for i in again] == [item_id("realqa-test", ALL, 3, k) for k in range(24)]
    # The seed is part of the id only: the set is fixed.
    assert [i.question for i in again] == [i.question for i in generate("realqa-test", ALL, n=24, seed=0)]


def test_split_is_the_documented_hash_rule_balanced_and_pinned() -> None:
    test_half = {q.qid for q in realqa.QUESTIONS if realqa.split_of(q.qid) == "test"}
    assert test_half == TEST_HALF
    for shape in realqa.SHAPES:
        ranked = sorted(
            (q.qid for q in realqa.QUESTIONS if q.shape == shape),
            key=lambda qid: hashlib.sha256(f"realqa/{qid}".encode()).hexdigest(),
        )
        assert [realqa.split_of(qid) for qid in ranked] == ["dev", "test"] * 4
    dev = realqa.select("dev")
    test = realqa.select("test")
    assert len(dev) == len(test) == 24
    assert not {q.qid for q in dev} & {q.qid for q in test}
    assert [q.shape for q in test[:6]] == list(realqa.SHAPES)  # any prefix cycles through the shapes
    assert {i.metadata["split"] for i in generate("realqa-dev", ALL, n=24)} == {"dev"}


def test_the_three_tasks_are_registered() -> None:
    for name in ("realqa", "realqa-dev", "realqa-test"):
        assert name in TASKS
    item = generate("realqa-dev", ALL, n=1)[0]
    assert item.task == "realqa-dev" and score(item, f"Answer: {item.answer}") in (0.0, 1.0)


def test_sizes_are_a_ceiling_and_too_many_items_is_a_clear_error(items: list) -> None:
    small = generate("realqa", 128 * 1024, n=3)
    assert all(i.size_tokens <= 128 * 1024 for i in small)
    fit = sum(1 for i in items if i.size_tokens <= 128 * 1024)
    with pytest.raises(ValueError, match=rf"{fit} of its 48 questions .* at most 131,072 tokens, asked for 48"):
        generate("realqa", 128 * 1024, n=48)
    with pytest.raises(ValueError, match="--sizes 16m"):
        generate("realqa-test", 8_192, n=1)
    with pytest.raises(ValueError, match="split must be one of"):
        realqa.select("train")


def test_a_missing_input_names_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sources, "DPKG_STATUS", tmp_path / "status")
    sources.dpkg_status_text.cache_clear()
    try:
        with pytest.raises(sources.MissingInputError, match=r"status is missing; the dpkg questions need a Debian"):
            sources.dpkg_status_text()
    finally:
        monkeypatch.undo()
        sources.dpkg_status_text.cache_clear()
    monkeypatch.setattr(sources, "COMMON_LICENSES", tmp_path / "licenses")
    sources.common_licenses.cache_clear()
    try:
        with pytest.raises(sources.MissingInputError, match="base-files"):
            sources.common_licenses()
    finally:
        monkeypatch.undo()
        sources.common_licenses.cache_clear()


def test_a_question_that_no_longer_holds_fails_loudly() -> None:
    cb = qmod.code("stdlib/email")
    with pytest.raises(sources.MissingInputError, match="expected one definition of 'NoSuchClass'"):
        cb.the("NoSuchClass", kind="class")


# ---------------------------------------------------------------------------------------------
# Answers, recomputed independently (the running interpreter, regular expressions)


def _golds(items: list) -> dict:
    return {qid: i.answer for qid, i in by_qid(items).items()}


def test_code_answers_match_the_running_interpreter(items: list) -> None:
    g = _golds(items)
    params = inspect.signature
    assert g["value-asyncio-tls-timeout"] == asyncio.constants.SSL_HANDSHAKE_TIMEOUT
    assert g["value-email-line-length"] == email.policy.compat32.max_line_length
    assert g["value-logging-tcp-port"] == logging.handlers.DEFAULT_TCP_LOGGING_PORT
    assert g["value-http-protocol-version"] == http.server.BaseHTTPRequestHandler.protocol_version
    assert g["value-unittest-maxdiff"] == unittest.TestCase.maxDiff
    assert g["value-functools-lru-maxsize"] == params(functools.lru_cache).parameters["maxsize"].default
    assert g["value-textwrap-width"] == params(textwrap.TextWrapper).parameters["width"].default
    serializer = params(multiprocessing.managers.BaseManager).parameters["serializer"].default
    assert g["value-manager-serializer"] == serializer
    assert g["hop-stream-reader-limit"] == params(asyncio.StreamReader).parameters["limit"].default
    assert g["hop-gzip-default-level"] == params(gzip.GzipFile).parameters["compresslevel"].default
    assert g["hop-simple-server-version"] == http.server.SimpleHTTPRequestHandler.server_version
    assert g["hop-tarfile-default-format"] == tarfile.DEFAULT_FORMAT
    fives = sorted(s.name for s in http.HTTPStatus if 500 <= s.value <= 599)
    assert g["list-http-server-errors"] == fives
    mock_asserts = sorted(n for n in vars(unittest.mock.NonCallableMock) if n.startswith("assert_"))
    assert g["list-mock-assert-methods"] == mock_asserts
    public = sorted(
        n
        for n, f in vars(email.utils).items()
        if inspect.isfunction(f) and f.__module__ == "email.utils" and n[0] != "_"
    )
    assert g["list-email-utils-functions"] == public
    exc = sorted(
        n
        for n, c in vars(asyncio.exceptions).items()
        if isinstance(c, type) and issubclass(c, BaseException) and c.__module__ == "asyncio.exceptions"
    )
    assert g["list-asyncio-exceptions"] == exc


def _where(obj: object) -> tuple[str, int]:
    obj = inspect.unwrap(obj)  # type: ignore[arg-type]
    path = inspect.getsourcefile(obj)  # type: ignore[arg-type]
    assert path is not None
    root = sources.stdlib_root()
    return str(Path(path).relative_to(root)), inspect.getsourcelines(obj)[1]  # type: ignore[arg-type]


def test_where_answers_match_inspect(items: list) -> None:
    import difflib
    import fractions
    import importlib.machinery
    import urllib.parse

    g = _golds(items)
    assert g["where-asyncio-taskgroup"] == _where(asyncio.TaskGroup)[0]
    assert g["where-email-decode-rfc2231"] == _where(email.utils.decode_rfc2231)[0]
    assert g["where-logging-queuelistener"] == "{}:{}".format(*_where(logging.handlers.QueueListener))
    assert g["where-http-parse-headers"] == "{}:{}".format(*_where(http.client.parse_headers))
    assert g["where-importlib-sourcefileloader"] == _where(importlib.machinery.SourceFileLoader)[0]
    assert g["where-fraction"] == _where(fractions.Fraction)[0]
    assert g["where-sequencematcher"] == "{}:{}".format(*_where(difflib.SequenceMatcher))
    assert g["where-urlsplit"] == _where(urllib.parse.urlsplit)[0]
    assert g["hop-mimetext-base-file"] == "email/mime/nonmultipart.py"
    assert g["hop-threading-mixin-file"] == "socketserver.py"


def _status_records() -> list[str]:
    text = sources.DPKG_STATUS.read_text(encoding="utf-8")
    return [r for r in re.split(r"\n\s*\n", text) if re.search(r"^Status: .*\binstalled$", r, re.M)]


def _field(record: str, name: str) -> str | None:
    m = re.search(rf"^{name}: ?(.*)$", record, re.M)
    return m.group(1).strip() if m else None


def test_record_answers_match_a_plain_regex_reading_of_the_status_file(items: list) -> None:
    g = _golds(items)
    records = _status_records()
    assert g["count-dpkg-essential"] == sum(_field(r, "Essential") == "yes" for r in records)
    required = [int(_field(r, "Installed-Size") or 0) for r in records if _field(r, "Priority") == "required"]
    assert g["count-dpkg-required-size"] == sum(required)
    assert g["classify-packages-without-dependencies"] == sum(
        _field(r, "Depends") is None and _field(r, "Pre-Depends") is None for r in records
    )
    util = sorted(
        _field(r, "Package")
        for r in records
        if ((_field(r, "Source") or _field(r, "Package")) or "").split()[0] == "util-linux"
    )
    assert g["list-util-linux-binaries"] == util
    assert g["classify-shared-libraries"] == sum(_field(r, "Section") == "libs" for r in records)
    bash = next(r for r in records if _field(r, "Package") == "bash")
    first = re.split(r"[ ,(|]", _field(bash, "Pre-Depends") or "")[0]
    maintainer = next(_field(r, "Maintainer") for r in records if _field(r, "Package") == first)
    assert g["hop-bash-predepends-maintainer"] == maintainer.split(" <")[0]
    descriptions = by_qid(items)["classify-shared-libraries"].context
    assert len(descriptions) == len(records)
    assert not any("Section:" in d for d in descriptions)  # the answer's field is not in the context


def test_prose_and_copyright_answers_match_a_plain_scan(items: list) -> None:
    from pydoc_data.topics import topics

    g = _golds(items)
    assert g["list-topics-nonlocal"] == sorted(k for k, t in topics.items() if "nonlocal" in re.findall(r"\w+", t))
    assert g["count-topics-with-examples"] == sum(
        any(x.lstrip().startswith(">>>") for x in t.splitlines()) for t in topics.values()
    )
    licenses = {p.name: p.read_text() for p in sources.COMMON_LICENSES.iterdir() if p.is_file() and not p.is_symlink()}
    assert g["count-licenses-naming-fsf"] == sum(
        "Free Software Foundation" in " ".join(t.split()) for t in licenses.values()
    )
    assert g["hop-lgpl-predecessor-file"] == "LGPL-2"
    copyrights = by_qid(items)["classify-gnu-main-license"].context
    gnu = 0
    for text in copyrights.values():
        stanza = re.search(r"^Files:\s*\*\s*$(.*?)(?:\n\s*\n|\Z)", text, re.M | re.S)
        body = stanza.group(1) if stanza else text.split("\nFiles:", 1)[-1]
        license_line = re.search(r"^License:\s*(.+)$", body, re.M)
        gnu += bool(license_line and re.search(r"\b[LA]?GPL", license_line.group(1)))
    assert g["classify-gnu-main-license"] == gnu


# ---------------------------------------------------------------------------------------------
# Scoring


def right_answer(item) -> str:
    kind, gold = item.metadata["kind"], item.answer
    if kind == "set":
        return "Answer: " + ", ".join(gold)
    return f"Answer: {gold}"


def test_every_item_scores_its_right_answer_one_and_a_wrong_one_zero(items: list) -> None:
    for item in items:
        assert score(item, "I looked at the context.\n" + right_answer(item)) == 1.0, item.metadata["qid"]
        kind, gold = item.metadata["kind"], item.answer
        if kind == "number":
            wrong = f"Answer: {gold * 2 + 10}"
        elif kind == "set":
            wrong = "Answer: " + ", ".join([*gold[:1], "not_a_real_name"])
        elif kind == "path_line":
            path, _, line = gold.rpartition(":")
            wrong = f"Answer: {path}:{int(line) + 40}"
        else:
            wrong = "Answer: something/else.py"
        assert score(item, wrong) < (1.0 if kind == "set" else 0.5), item.metadata["qid"]
        assert score(item, "") == 0.0


def test_number_scorer_tolerance() -> None:
    assert scoring.score_number("Answer: 60.0", 60) == 1.0
    assert scoring.score_number("There are 1,024 of them. Answer: 339", 339) == 1.0
    assert scoring.score_number("Answer: 340", 339) == 0.0
    assert scoring.score_number("Answer: 320", 339, tolerance=0.1) == 1.0
    assert scoring.score_number("Answer: 300", 339, tolerance=0.1) == 0.0
    assert scoring.score_number("Answer: many", 3) == 0.0


def test_value_scorer_unquotes_but_keeps_content() -> None:
    assert scoring.score_value("Answer: `'pickle'`", "pickle") == 1.0
    assert scoring.score_value('Answer: "HTTP/1.0".', "HTTP/1.0") == 1.0
    assert scoring.score_value("Answer: http/1.0", "HTTP/1.0") == 1.0
    assert scoring.score_value("Answer: HTTP/1.1", "HTTP/1.0") == 0.0
    assert scoring.score_value("Answer: xmlrpclib", "pickle") == 0.0


def test_path_scorers_accept_prefixes_and_reject_hedges() -> None:
    gold = "email/mime/nonmultipart.py"
    assert scoring.score_path("Answer: `email/mime/nonmultipart.py`", gold) == 1.0
    assert scoring.score_path("Answer: /usr/lib/python3.11/email/mime/nonmultipart.py", gold) == 1.0
    assert scoring.score_path("Answer: Lib/email/mime/nonmultipart.py.", gold) == 1.0
    assert scoring.score_path("Answer: nonmultipart.py", gold) == 0.0
    assert scoring.score_path("Answer: email/mime/text.py or email/mime/nonmultipart.py", gold) == 0.0
    assert scoring.score_path("Answer: LGPL-2", "LGPL-2") == 1.0
    assert scoring.score_path("Answer: LGPL-2.1", "LGPL-2") == 0.0
    line = "logging/handlers.py:1501"
    assert scoring.score_path_line("Answer: logging/handlers.py:1501", line) == 1.0
    assert scoring.score_path_line("Answer: `logging/handlers.py`, line 1502", line) == 1.0
    assert scoring.score_path_line("Answer: logging/handlers.py:1490", line) == 0.0
    assert scoring.score_path_line("Answer: logging/__init__.py:1501", line) == 0.0
    assert scoring.score_path_line("Answer: logging/handlers.py", line) == 0.0


def test_set_scorer_is_f1_over_normalised_items() -> None:
    gold = ["BAD_GATEWAY", "GATEWAY_TIMEOUT", "INTERNAL_SERVER_ERROR", "NOT_IMPLEMENTED"]
    assert (
        scoring.score_set(
            "Answer: HTTPStatus.BAD_GATEWAY, `GATEWAY_TIMEOUT`, INTERNAL_SERVER_ERROR and NOT_IMPLEMENTED", gold
        )
        == 1.0
    )
    assert scoring.score_set("Answer:\n- BAD_GATEWAY\n- GATEWAY_TIMEOUT", gold) == pytest.approx(2 / 3)
    assert scoring.score_set("Answer: [ast.py, 'gzip.py', dis]", ["ast.py", "dis.py", "gzip.py"], "path") == 1.0
    assert scoring.score_set("Answer: nothing", gold) == 0.0
    assert scoring.score_set("Answer: python3.11, mount", ["mount", "python3.11"], "plain") == 1.0


def test_name_scorer() -> None:
    assert scoring.score_name("Answer: GNU Libc Maintainers", "GNU Libc Maintainers") == 1.0
    assert scoring.score_name("Answer: the GNU Libc Maintainers team", "GNU Libc Maintainers") == 1.0
    assert scoring.score_name("Answer: Debian Perl Group", "GNU Libc Maintainers") == 0.0


# ---------------------------------------------------------------------------------------------
# End to end through the bench


def _oracle(golds: dict[str, str]):
    """A scripted model that knows the gold answers: what a perfect method would reply, per method kind."""

    def reply(messages: list[Message]) -> str:
        text = "\n".join(m.content for m in messages)
        answer = next((a for q, a in golds.items() if q in text), "unknown")
        if "persistent Python session" in messages[0].content:  # codeact: search, then answer
            if len(messages) == 2:
                return "```python\nprint(len(search('class def', k=3)))\n```"
            return f"Answer: {answer}"
        if "REPL" in messages[0].content or "`context`" in messages[0].content:  # the RLM root
            return f"```python\nprint(type(context).__name__, len(context))\nFINAL({answer!r})\n```"
        return f"Answer: {answer}"

    return reply


def test_bench_runs_the_test_half_with_every_method_and_reports_it(tmp_path: Path) -> None:
    items = generate("realqa-test", ALL, n=6)
    golds = {i.question: right_answer(i).removeprefix("Answer: ") for i in items}
    lm = ScriptedLM(_oracle(golds), name="scripted/oracle", context_window=16_384)
    out = tmp_path / "run"
    config = BenchConfig(
        tasks=["realqa-test"],
        sizes=[ALL],
        methods=["direct", "codeact", "rlm"],
        model=lm,
        out=out,
        n=6,
        repl="inprocess",
        progress=False,
        verbose=False,
    )
    summary = run_bench(config)
    assert summary.errors == 0 and summary.done == 18
    records = read_results(out)
    assert {r.method for r in records} == {"direct", "codeact", "rlm"}
    assert all(r.score == 1.0 for r in records), [(r.method, r.item_id, r.answer, r.gold) for r in records]
    assert all(r.size_tokens == ALL and r.context_tokens and r.context_tokens <= ALL for r in records)
    codeact = [r for r in records if r.method == "codeact"]
    assert all(r.notes["searches"] == 1 and r.calls == 2 for r in codeact)
    report = write_report([out], plots=False)
    assert "| realqa-test | 16M |" in report.markdown
    # A model that answers wrongly scores 0 on the same items.
    wrong = ScriptedLM(lambda m: "Answer: 0", name="scripted/wrong", context_window=16_384)
    again = BenchConfig(["realqa-test"], [ALL], ["direct"], wrong, out, n=6, progress=False, verbose=False)
    assert run_bench(again).done == 6
    assert all(r.score < 1.0 for r in read_results(out) if r.model == "scripted/wrong")


def test_the_catalogue_command_prints_the_half_as_built_here() -> None:
    import os
    import subprocess
    import sys

    src = Path(__file__).resolve().parents[1] / "src"
    cmd = [sys.executable, "-m", "unbounded.bench.tasks.realqa", "--split", "test", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(src)})
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["qid"] for r in rows} == TEST_HALF and all(r["split"] == "test" for r in rows)
    text = subprocess.run(
        cmd[:-1], capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(src)}
    )
    assert "24 questions, contexts" in text.stdout and "built in" in text.stdout
