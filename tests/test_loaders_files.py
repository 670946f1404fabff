"""Real files written by real libraries, for the loader tests (and a check that each maker works).

Every maker writes with the library made for the format — fpdf2 for PDF, python-docx, pyarrow,
openpyxl, sqlite3, zipfile/tarfile/gzip — so the loaders meet what users have, not hand-made bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import tarfile
import zipfile
from pathlib import Path

import pytest


def make_pdf(path: Path, pages: list[str], *, title: str | None = None, user_password: str | None = None) -> Path:
    fpdf = pytest.importorskip("fpdf", reason="PDF tests write files with fpdf2 (the dev extra)")
    pdf = fpdf.FPDF()
    if title:
        pdf.set_title(title)
    if user_password is not None:
        pdf.set_encryption(owner_password="owner-" + user_password, user_password=user_password)
    for text in pages:
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        if text:
            pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def make_docx(path: Path) -> Path:
    docx = pytest.importorskip("docx", reason="DOCX tests need python-docx (the docs extra)")
    document = docx.Document()
    document.core_properties.title = "Quarterly memo"
    document.add_heading("Quarterly memo", 0)
    document.add_heading("Budget", 1)
    document.add_paragraph("The travel budget for Q3 is 41,200 euros.")
    document.add_paragraph("Book trains before flights", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "team"
    table.cell(0, 1).text = "head"
    table.cell(1, 0).text = "research"
    table.cell(1, 1).text = "Ines Moreau"
    document.save(str(path))
    return path


def make_parquet(path: Path, rows: int = 5) -> Path:
    pa = pytest.importorskip("pyarrow", reason="Parquet tests need pyarrow (the data extra)")
    import datetime
    import decimal

    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": list(range(rows)),
            "city": [f"city-{i}" for i in range(rows)],
            "when": [datetime.datetime(2024, 1, 1 + i % 28, 12, 30) for i in range(rows)],
            "price": pa.array([decimal.Decimal(f"{i}.25") for i in range(rows)], pa.decimal128(10, 2)),
            "raw": [bytes([0, i % 256]) for i in range(rows)],
        }
    )
    pq.write_table(table, str(path))
    return path


def make_arrow(path: Path, rows: int = 4) -> Path:
    pa = pytest.importorskip("pyarrow", reason="Arrow tests need pyarrow (the data extra)")
    table = pa.table({"k": [f"k{i}" for i in range(rows)], "v": [i * 1.5 for i in range(rows)]})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return path


def make_sqlite(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, avatar BLOB)")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL)")
    conn.executemany("INSERT INTO users VALUES (?, ?, ?)", [(1, "ann", b"\x89PNG\x00"), (2, "bob", None)])
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(10, 1, 99.5), (11, 2, 12.0), (12, 1, 7.25)])
    conn.execute("CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 50")
    conn.commit()
    conn.close()
    return path


def make_xlsx(path: Path) -> Path:
    openpyxl = pytest.importorskip("openpyxl", reason="XLSX tests need openpyxl (the data extra)")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "stock"
    ws.append(["sku", "count"])
    ws.append(["A-1", 4])
    ws.append(["B-2", 9])
    ws.append(["total", "=SUM(B2:B3)"])  # a formula: read as its cached value, never evaluated
    wb.create_sheet("notes").append(["note"])
    wb.save(str(path))
    return path


def make_notebook(path: Path) -> Path:
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "language": "python"}},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Analysis\n", "We count the ducks."]},
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": 1,
                "source": "ducks = 17\nprint(ducks)",
                "outputs": [{"output_type": "stream", "name": "stdout", "text": ["17\n"]}],
            },
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": 2,
                "source": "1/0",
                "outputs": [
                    {
                        "output_type": "error",
                        "ename": "ZeroDivisionError",
                        "evalue": "division by zero",
                        "traceback": ["\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"],
                    }
                ],
            },
        ],
    }
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


HTML = """<!doctype html><html><head><title>Field guide</title><style>body{color:red}</style>
<script>document.write('tracking')</script></head><body>
<nav><a href="#top">skip</a></nav><h1>Owls</h1><p>The <b>barn owl</b> hunts at night.
See <a href="https://example.org/owls">the owl page</a>.</p><h2>Facts</h2>
<ul><li>Wingspan: 95 cm</li><li>Weight: 500 g</li></ul>
<table><tr><th>species</th><th>status</th></tr><tr><td>barn owl</td><td>common</td></tr></table>
<noscript>enable javascript</noscript></body></html>"""


def make_html(path: Path) -> Path:
    path.write_text(HTML, encoding="utf-8")
    return path


def make_epub(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" version="1.0">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        zf.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
            '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Sea Tales</dc:title></metadata>'
            '<manifest><item id="c1" href="one.xhtml" media-type="application/xhtml+xml"/>'
            '<item id="c2" href="two.xhtml" media-type="application/xhtml+xml"/></manifest>'
            '<spine><itemref idref="c2"/><itemref idref="c1"/></spine></package>',
        )
        zf.writestr("OEBPS/one.xhtml", "<html><body><h1>Chapter B</h1><p>The whale sang.</p></body></html>")
        zf.writestr("OEBPS/two.xhtml", "<html><body><h1>Chapter A</h1><p>The ship left port.</p></body></html>")
    return path


def make_tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_gzip(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data))
    return path


def test_the_makers_write_files_their_own_libraries_read_back(tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    pdf = make_pdf(tmp_path / "a.pdf", ["one", "two"])
    assert len(pypdf.PdfReader(str(pdf)).pages) == 2
    conn = sqlite3.connect(make_sqlite(tmp_path / "a.sqlite"))
    assert conn.execute("SELECT count(*) FROM orders").fetchone() == (3,)
    conn.close()
    docx = pytest.importorskip("docx")
    assert "41,200" in "\n".join(p.text for p in docx.Document(str(make_docx(tmp_path / "a.docx"))).paragraphs)
