"""Loaded documents asked about through the RLM (ScriptedLM), the REPL-side page/table helpers, and
the table of contents the root model reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import code
from test_loaders_files import make_docx, make_parquet, make_pdf, make_sqlite
from unbounded import RLM
from unbounded.context import describe_context, load_context
from unbounded.loaders import DocumentInfo, SkippedFile, TableInfo
from unbounded.models import ScriptedLM
from unbounded.repl import doc_helpers
from unbounded.repl.process import _PKG_PARENT
from unbounded.trace import read_trace


@pytest.fixture
def office(tmp_path: Path) -> Path:
    """A folder as someone's work drive has it: a report, a memo, an export and a database."""
    pytest.importorskip("pypdf")
    root = tmp_path / "drive"
    root.mkdir()
    make_pdf(root / "report.pdf", ["Summary of the year.", "Revenue grew 12%.", "The audit code is QX-4471."])
    make_docx(root / "memo.docx")
    make_parquet(root / "cities.parquet", rows=4)
    make_sqlite(root / "shop.sqlite")
    (root / "notes.md").write_text("# Notes\nCall Ines about the budget.\n")
    (root / "photo.bin").write_bytes(b"\x00\x01\x02binary")
    return root


HELPERS = "from unbounded.repl.doc_helpers import bind\nglobals().update(bind(lambda: context))\n"


def test_the_root_model_reads_documents_pages_and_tables_in_the_process_repl(office: Path, repl_kind: str) -> None:
    script = HELPERS + (
        "hit = grep(r'audit code is', context)[0]\n"
        "n = page_of(hit.key, hit.offset)\n"
        "orders = table('shop.sqlite', 'orders')\n"
        "biggest = max(orders, key=lambda r: r['total'])\n"
        "budget = grep(r'travel budget', context['memo.docx'])[0].text\n"
        "cities = [r['city'] for r in table('cities.parquet')]\n"
        "FINAL(f\"{hit.key} page {n}: {page(hit.key, n)} | order {biggest['id']} | {budget} | {cities[-1]} | {sorted(tables())}\")"
    )
    lm = ScriptedLM([code(script)])
    result = RLM(model=lm, repl=repl_kind).run("What is the audit code, on which page?", office)
    assert result.status == "final", result.error
    assert result.answer == (
        "report.pdf page 3: The audit code is QX-4471. | order 10 | The travel budget for Q3 is 41,200 euros. | city-3 | "
        "['cities.parquet', 'shop.sqlite/orders', 'shop.sqlite/users']"
    )
    first_turn = "\n".join(m.content for m in lm.calls[0] if isinstance(m.content, str))
    assert "contents: 5 documents" in first_turn and "'=== page N ==='" in first_turn
    assert "photo.bin (binary file" in first_turn


def test_the_trace_records_the_documents_and_the_skip_list(office: Path, tmp_path: Path) -> None:
    trace = tmp_path / "run.jsonl"
    lm = ScriptedLM([code("FINAL(len(context))")])
    result = RLM(model=lm, repl="inprocess", trace=str(trace)).run("How many files?", office)
    assert result.answer == "5"
    context = next(e for e in read_trace(trace) if e.type == "run_start").data["context"]
    assert context["num_documents"] == 5 and context["num_items"] == 5
    assert context["kinds"] == {"pdf": 1, "docx": 1, "parquet": 1, "sqlite": 1, "text": 1}
    assert context["skipped"][0]["path"] == "photo.bin" and context["skipped"][0]["reason"].startswith("binary file")
    pdf = next(d for d in context["documents"] if d["kind"] == "pdf")
    assert pdf == {"path": "report.pdf", "kind": "pdf", "chars": pdf["chars"], "size": pdf["size"], "pages": 3}


def test_doc_helpers_address_pages_and_tables() -> None:
    text = "\n\n".join(f"=== page {n} ===\nbody {n}" for n in range(1, 5))
    ctx = {
        "a/report.pdf": text,
        "b/report.pdf": text,
        "data.csv": [{"x": 1}],
        "db.sqlite": {"t1": [{"y": 2}], "t2": []},
    }
    assert doc_helpers.page(ctx, "a/report.pdf", 4) == "body 4"
    with pytest.raises(KeyError, match="matches 2 documents"):
        doc_helpers.page(ctx, "report.pdf", 1)
    with pytest.raises(ValueError, match="has pages 1-4; there is no page 9"):
        doc_helpers.page(ctx, "a/report.pdf", 9)
    with pytest.raises(KeyError, match=r"no document 'nope\.pdf' in context"):
        doc_helpers.pages(ctx, "nope.pdf")
    assert doc_helpers.page(text, 2) == "body 2"  # the context is one paged document
    assert doc_helpers.page_of(text, text.index("body 3")) == 3 and doc_helpers.page_of(text, 0) == 1
    assert doc_helpers.pages("no marks here") == ["no marks here"] and doc_helpers.page("no marks", 1) == "no marks"
    assert doc_helpers.table(ctx, "data.csv") == [{"x": 1}] and doc_helpers.table(ctx, "db.sqlite/t1") == [{"y": 2}]
    with pytest.raises(ValueError, match=r"holds 2 tables \('t1', 't2'\): name one"):
        doc_helpers.table(ctx, "db.sqlite")
    with pytest.raises(TypeError, match="is not a table"):
        doc_helpers.table(ctx, "a/report.pdf")
    with pytest.raises(TypeError, match="not a paged text"):
        doc_helpers.pages(ctx, "data.csv")
    assert doc_helpers.tables(ctx) == ["data.csv", "db.sqlite/t1", "db.sqlite/t2"]
    assert doc_helpers.page(ctx, ("a/report.pdf",), 1) == "body 1"  # a grep key of a nested context
    bound = doc_helpers.bind(lambda: ctx)
    assert set(bound) == set(doc_helpers.NAMES) and bound["page"].__doc__ == doc_helpers.page.__doc__
    assert bound["table"]("db.sqlite", "t1") == [{"y": 2}]


def test_doc_helpers_keep_the_worker_light() -> None:
    """The worker pins its imports (tests/test_repl_transfer.py); the helpers add nothing to them."""
    script = (
        f"import sys, json\nsys.path.insert(0, {_PKG_PARENT!r})\nimport unbounded.repl.doc_helpers\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout))
    assert not {"typing", "dataclasses", "inspect", "unbounded.loaders", "pathspec"} & loaded


def test_the_outline_is_bounded_whatever_the_number_of_files(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for i in range(1500):
        sub = root / f"d{i % 30}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.{('py', 'md', 'txt', 'log')[i % 4]}").write_text(f"file {i}\n" * (i % 7 + 1))
        if i % 100 == 0:
            (sub / f"x{i}.bin").write_bytes(b"\x00bin")
    loaded = load_context(root)
    assert len(loaded.value) == 1500 and len(loaded.info.skipped) == 15
    full, compact = loaded.info.describe(), loaded.info.outline(compact=True)
    assert len(full) < 4500 and len(compact) <= 400
    assert "contents: 1,500 documents: text 1,500 (.log 375, .md 375, .py 375, .txt 375)" in full
    assert "15 skipped (15 binary file)" in compact
    trace = loaded.info.to_dict()
    assert trace["num_documents"] == 1500 and len(trace["documents"]) == 200 and trace["kinds"] == {"text": 1500}
    assert len(json.dumps(trace)) < 60_000


def test_outline_of_many_tables_and_problems_stays_short() -> None:
    docs = [
        DocumentInfo(
            f"db{i}.sqlite",
            "sqlite",
            100,
            tables=[TableInfo(f"t{j}", j, [f"c{k}" for k in range(30)]) for j in range(40)],
        )
        for i in range(300)
    ] + [DocumentInfo(f"bad{i}.csv", "csv", 10, error="not valid CSV: line 2: " + "x" * 300) for i in range(300)]
    info = describe_context(
        {d.path: "" for d in docs}, documents=docs, skipped=[SkippedFile(f"s{i}", "binary file") for i in range(10_000)]
    )
    text = info.describe()
    assert len(text) < 5000 and "… and" in text
    assert len(info.outline(compact=True)) <= 400


def test_plain_data_has_no_outline() -> None:
    info = load_context(["doc one", "doc two"]).info
    assert info.outline() == "" and info.outline(compact=True) == "" and info.documents == []
    assert info.to_dict()["num_documents"] == 0
