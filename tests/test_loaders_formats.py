"""Each format as a context of its own, from files written by the format's own library."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from test_loaders_files import (
    make_arrow,
    make_docx,
    make_epub,
    make_html,
    make_notebook,
    make_parquet,
    make_pdf,
    make_sqlite,
    make_xlsx,
)
from unbounded.context import load_context
from unbounded.repl import doc_helpers


def test_pdf_keeps_every_page_and_its_number(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    pages = ["The harbour opens at dawn.", "Ferry fares rose to 7.40 euros.", "Café hours: 8 to 18."]
    loaded = load_context(make_pdf(tmp_path / "guide.pdf", pages, title="Harbour guide"))
    text = loaded.value
    assert isinstance(text, str) and text.startswith("=== page 1 ===\n")
    assert doc_helpers.pages(text) == pages
    assert doc_helpers.page(text, 2) == pages[1]
    assert doc_helpers.page_of(text, text.index("Café")) == 3
    doc = loaded.info.documents[0]
    assert (doc.kind, doc.pages, doc.title, doc.path) == ("pdf", 3, "Harbour guide", "")
    assert "document: pdf, 3 pages" in loaded.info.describe()
    assert loaded.info.outline(compact=True).startswith(
        "A pdf of 3 pages. Each page starts with a line '=== page N ==='"
    )


def test_a_pdf_encrypted_only_against_editing_opens(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    path = make_pdf(tmp_path / "perm.pdf", ["Readable by anyone."], user_password="")
    assert "Readable by anyone." in load_context(path).value


def test_a_pdf_without_text_is_empty_with_the_reason(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    from unbounded.errors import EmptyContextError

    path = make_pdf(tmp_path / "scan.pdf", ["", ""])
    with pytest.raises(EmptyContextError, match=r"no text layer on any of the 2 page\(s\).*OCR"):
        load_context(path)
    (tmp_path / "note.txt").write_text("hi")
    loaded = load_context(tmp_path)
    doc = next(d for d in loaded.info.documents if d.path == "scan.pdf")
    assert "no text layer" in (doc.error or "") and "problems: 'scan.pdf': no text layer" in loaded.info.describe()


def test_docx_keeps_headings_lists_and_tables(tmp_path: Path) -> None:
    loaded = load_context(make_docx(tmp_path / "memo.docx"))
    text = loaded.value
    assert text.splitlines()[0] == "# Quarterly memo"
    assert "# Budget" in text and "The travel budget for Q3 is 41,200 euros." in text
    assert "- Book trains before flights" in text and "research | Ines Moreau" in text
    doc = loaded.info.documents[0]
    assert doc.kind == "docx" and doc.title == "Quarterly memo" and "1 table(s)" in doc.notes[0]


def test_html_is_readable_text_without_scripts(tmp_path: Path) -> None:
    pytest.importorskip("selectolax")
    loaded = load_context(make_html(tmp_path / "owls.html"))
    text = loaded.value
    assert text.startswith("skip\n\n# Owls\n\nThe barn owl hunts at night.")  # an in-page anchor: text, no link
    assert "[the owl page](https://example.org/owls)" in text and "## Facts" in text
    assert "- Wingspan: 95 cm" in text and "species | status\nbarn owl | common" in text
    for dropped in ("tracking", "color:red", "enable javascript", "#top"):
        assert dropped not in text
    assert loaded.info.documents[0].title == "Field guide"


def test_epub_chapters_in_spine_order(tmp_path: Path) -> None:
    pytest.importorskip("selectolax")
    loaded = load_context(make_epub(tmp_path / "tales.epub"))
    sections = doc_helpers.pages(loaded.value)
    assert sections[0].startswith("# Chapter A") and "The whale sang." in sections[1]
    assert loaded.value.startswith("=== section 1 ===")
    doc = loaded.info.documents[0]
    assert (doc.kind, doc.pages, doc.title) == ("epub", 2, "Sea Tales")


def test_notebook_cells_with_kinds_and_outputs_never_run(tmp_path: Path) -> None:
    path = make_notebook(tmp_path / "ducks.ipynb")
    text = load_context(path).value
    assert "# %% [markdown] cell 1\n# Analysis\nWe count the ducks." in text
    assert "# %% [code] cell 2\nducks = 17\nprint(ducks)\n# %% [output] cell 2\n17" in text
    assert "ZeroDivisionError: division by zero" in text and "\x1b[" not in text
    bare = load_context(path, notebook_outputs=False).value
    assert "[output]" not in bare and "ducks = 17" in bare


def test_csv_and_tsv_become_records_with_a_sniffed_dialect(tmp_path: Path) -> None:
    (tmp_path / "sales.csv").write_text('region;amount;note\nnorth;0012;"a; b"\nsouth;7;\n', encoding="utf-8")
    loaded = load_context(tmp_path / "sales.csv")
    assert loaded.value == [
        {"region": "north", "amount": "0012", "note": "a; b"},
        {"region": "south", "amount": "7", "note": ""},
    ]
    doc = loaded.info.documents[0]
    assert (doc.kind, doc.rows, doc.columns) == ("csv", 2, ["region", "amount", "note"])
    (tmp_path / "t.tsv").write_text("k\tv\nx\t1\ny\t2\textra\n", encoding="utf-8")
    loaded = load_context(tmp_path / "t.tsv")
    assert loaded.value == [{"k": "x", "v": "1"}, {"k": "y", "v": "2", "_extra": ["extra"]}]
    assert "another number of fields" in loaded.info.documents[0].notes[0]


def test_parquet_and_arrow_values_become_plain_data(tmp_path: Path) -> None:
    loaded = load_context(make_parquet(tmp_path / "p.parquet", rows=3))
    first = loaded.value[0]
    assert first == {"id": 0, "city": "city-0", "when": "2024-01-01T12:30:00", "price": "0.25", "raw": "0x0000"}
    assert json.loads(json.dumps(loaded.value)) == loaded.value  # the worker gets it as JSON
    doc = loaded.info.documents[0]
    assert (doc.kind, doc.rows, doc.columns) == ("parquet", 3, ["id", "city", "when", "price", "raw"])
    arrow = load_context(make_arrow(tmp_path / "a.arrow"))
    assert arrow.value[3] == {"k": "k3", "v": 4.5} and arrow.info.documents[0].rows == 4


def test_sqlite_tables_read_only_views_listed(tmp_path: Path) -> None:
    path = make_sqlite(tmp_path / "shop.sqlite")
    before = path.read_bytes()
    loaded = load_context(path)
    assert loaded.value["users"] == [
        {"id": 1, "name": "ann", "avatar": "0x89504e4700"},
        {"id": 2, "name": "bob", "avatar": None},
    ]
    assert [r["total"] for r in loaded.value["orders"]] == [99.5, 12.0, 7.25]
    assert "big_orders" not in loaded.value
    doc = loaded.info.documents[0]
    assert [(t.name, t.rows, t.columns) for t in doc.tables or []] == [
        ("users", 2, ["id", "name", "avatar"]),
        ("orders", 3, ["id", "user_id", "total"]),
    ]
    assert "views not read" in doc.notes[0] and "big_orders" in doc.notes[0]
    assert path.read_bytes() == before and not list(tmp_path.glob("shop.sqlite-*"))  # nothing written
    assert doc_helpers.table(loaded.value, "orders")[0]["total"] == 99.5


def test_xlsx_sheets_with_cached_formula_values(tmp_path: Path) -> None:
    loaded = load_context(make_xlsx(tmp_path / "stock.xlsx"))
    assert loaded.value["stock"][:2] == [{"sku": "A-1", "count": 4}, {"sku": "B-2", "count": 9}]
    assert loaded.value["stock"][2] == {"sku": "total", "count": None}  # never computed: no cached value
    assert loaded.value["notes"] == []


def test_json_arrays_are_records_other_json_stays_text(tmp_path: Path) -> None:
    (tmp_path / "people.json").write_text(json.dumps([{"name": "Ada"}, {"name": "Alan", "born": 1912}]))
    loaded = load_context(tmp_path / "people.json")
    assert loaded.value[1]["born"] == 1912 and loaded.info.documents[0].columns == ["name", "born"]
    (tmp_path / "tsconfig.json").write_text('{"compilerOptions": {"strict": true}}')
    assert load_context(tmp_path / "tsconfig.json").value == '{"compilerOptions": {"strict": true}}'
    (tmp_path / "loose.json").write_text("[1, 2,]")
    loose = load_context(tmp_path / "loose.json")
    assert loose.value == "[1, 2,]" and "not valid JSON" in loose.info.documents[0].notes[0]


def test_compressed_files_load_as_their_inner_format(tmp_path: Path) -> None:
    (tmp_path / "app.log.gz").write_bytes(gzip.compress(b"boot ok\nOOM at 03:12\n"))
    loaded = load_context(tmp_path / "app.log.gz")
    assert loaded.value == "boot ok\nOOM at 03:12\n"
    assert "decompressed from gzip" in loaded.info.documents[0].notes[-1]
    (tmp_path / "rows.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    assert load_context(tmp_path / "rows.csv.gz").value == [{"a": "1", "b": "2"}]
    import bz2
    import lzma

    (tmp_path / "x.txt.bz2").write_bytes(bz2.compress(b"bzip two"))
    (tmp_path / "x.txt.xz").write_bytes(lzma.compress(b"ex zed"))
    assert load_context(tmp_path / "x.txt.bz2").value == "bzip two"
    assert load_context(tmp_path / "x.txt.xz").value == "ex zed"
    zstd = pytest.importorskip("zstandard")
    (tmp_path / "x.txt.zst").write_bytes(zstd.ZstdCompressor().compress(b"zee standard"))
    assert load_context(tmp_path / "x.txt.zst").value == "zee standard"


def test_text_with_a_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "win.txt").write_bytes(b"\xff\xfe" + "naïve café".encode("utf-16-le"))
    assert load_context(tmp_path / "win.txt").value == "naïve café"
    (tmp_path / "bom8.txt").write_bytes(b"\xef\xbb\xbfhello")
    assert load_context(tmp_path / "bom8.txt").value == "hello"


def test_a_fallback_encoding_reads_legacy_text_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_bytes("Grüße".encode("cp1252"))
    loaded = load_context(tmp_path / "old.txt", fallback_encoding="cp1252")
    assert loaded.value == "Grüße" and "decoded as cp1252" in loaded.info.documents[0].notes[0]
