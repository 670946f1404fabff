"""Load time and peak memory of the loaders on a folder of ~1,000 mixed documents (~200 MB on disk).

    python benchmarks/loaders.py                  # generate the corpus in a temp dir, measure, delete it
    python benchmarks/loaders.py --scale 0.1      # a tenth of it (a quick look)
    python benchmarks/loaders.py --keep corpus/   # keep (or reuse) the corpus in corpus/

The corpus is written by the libraries made for each format — fpdf2 (PDF), python-docx (DOCX),
pyarrow (Parquet), sqlite3, gzip, zipfile — from seeded random words, so every run measures the
same files: code, Markdown and text, HTML, PDF, DOCX, CSV, Parquet, JSONL, gzipped logs, SQLite,
notebooks and zip archives, plus a few broken files that must land in the skip list.

Each measurement runs ``load_context(folder)`` in a fresh interpreter and reports its wall time and
the process's peak RSS (``ru_maxrss``), for the whole folder and for each kind's subfolder alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "harbour",
    "ledger",
    "invoice",
    "ferry",
    "audit",
    "river",
    "market",
    "budget",
    "owl",
    "kernel",
    "thread",
    "packet",
    "module",
    "return",
    "value",
    "error",
    "window",
    "garden",
    "planet",
    "signal",
    "quarter",
    "revenue",
    "growth",
    "council",
    "permit",
    "station",
    "orbit",
    "lantern",
    "meadow",
    "copper",
    "silver",
    "archive",
]

#: kind → (files, approximate bytes of text each) at scale 1.
PLAN = {
    "code": (260, 150_000),
    "markdown": (130, 150_000),
    "html": (100, 200_000),
    "pdf": (150, 6),  # pages
    "docx": (100, 150),  # paragraphs
    "csv": (80, 400_000),
    "parquet": (30, 40_000),  # rows
    "jsonl": (40, 400_000),
    "logs": (50, 2_000_000),
    "sqlite": (10, 8_000),  # rows per table
    "notebook": (20, 40),  # cells
    "zip": (10, 10),  # members
    "broken": (10, 0),
}


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def text_of(rng: random.Random, size: int, line_words: int = 12) -> str:
    lines, total = [], 0
    while total < size:
        line = words(rng, line_words)
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


def generate(root: Path, scale: float, seed: int = 7) -> None:
    rng = random.Random(seed)
    import pyarrow as pa
    import pyarrow.parquet as pq
    from docx import Document
    from fpdf import FPDF

    def count(kind: str) -> tuple[int, int]:
        n, size = PLAN[kind]
        return max(1, round(n * scale)), size

    def folder(kind: str) -> Path:
        path = root / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    n, size = count("code")
    for i in range(n):
        body = "\n".join(f"def f_{i}_{j}(x):\n    return x + {j}  # {words(rng, 8)}" for j in range(size // 60))
        (folder("code") / f"module_{i}.py").write_text(body)
    n, size = count("markdown")
    for i in range(n):
        (folder("markdown") / f"note_{i}.md").write_text(f"# Note {i}\n\n" + text_of(rng, size))
    n, size = count("html")
    for i in range(n):
        paras = "".join(f"<p>{words(rng, 40)} <a href='/p/{j}'>{words(rng, 2)}</a></p>" for j in range(size // 300))
        html = f"<html><head><title>Page {i}</title><script>var x={i};</script></head><body><h1>Page {i}</h1>{paras}</body></html>"
        (folder("html") / f"page_{i}.html").write_text(html)
    n, pages = count("pdf")
    for i in range(n):
        pdf = FPDF()
        pdf.set_font("helvetica", size=10)
        for _ in range(pages):
            pdf.add_page()
            pdf.multi_cell(0, 5, text_of(rng, 2500, 14))
        pdf.output(str(folder("pdf") / f"report_{i}.pdf"))
    n, paragraphs = count("docx")
    for i in range(n):
        doc = Document()
        doc.add_heading(f"Memo {i}", 0)
        for j in range(paragraphs):
            if j % 30 == 0:
                doc.add_heading(f"Section {j // 30}", 1)
            doc.add_paragraph(words(rng, 60))
        doc.save(str(folder("docx") / f"memo_{i}.docx"))
    n, size = count("csv")
    for i in range(n):
        rows = ["id,region,amount,comment"] + [
            f'{j},{rng.choice(WORDS)},{rng.randint(1, 99999)},"{words(rng, 8)}"' for j in range(size // 70)
        ]
        (folder("csv") / f"export_{i}.csv").write_text("\n".join(rows) + "\n")
    n, rows = count("parquet")
    for i in range(n):
        table = pa.table(
            {
                "id": list(range(rows)),
                "city": [rng.choice(WORDS) for _ in range(rows)],
                "value": [rng.random() * 1000 for _ in range(rows)],
                "note": [words(rng, 6) for _ in range(rows)],
            }
        )
        pq.write_table(table, str(folder("parquet") / f"table_{i}.parquet"))
    n, size = count("jsonl")
    for i in range(n):
        lines = [json.dumps({"id": j, "user": rng.choice(WORDS), "text": words(rng, 20)}) for j in range(size // 150)]
        (folder("jsonl") / f"events_{i}.jsonl").write_text("\n".join(lines) + "\n")
    n, size = count("logs")
    for i in range(n):
        log = text_of(rng, size, 10)
        with gzip.open(folder("logs") / f"app_{i}.log.gz", "wt", compresslevel=6) as fh:
            fh.write(log)
    n, rows = count("sqlite")
    for i in range(n):
        conn = sqlite3.connect(folder("sqlite") / f"shop_{i}.sqlite")
        conn.execute("CREATE TABLE orders (id INTEGER, customer TEXT, total REAL, note TEXT)")
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [(j, rng.choice(WORDS), rng.random() * 100, words(rng, 8)) for j in range(rows)],
        )
        conn.execute("CREATE TABLE customers (name TEXT, city TEXT)")
        conn.executemany("INSERT INTO customers VALUES (?, ?)", [(w, rng.choice(WORDS)) for w in WORDS])
        conn.commit()
        conn.close()
    n, cells = count("notebook")
    for i in range(n):
        nb_cells = []
        for j in range(cells):
            nb_cells.append({"cell_type": "markdown", "metadata": {}, "source": words(rng, 30)})
            nb_cells.append(
                {
                    "cell_type": "code",
                    "metadata": {},
                    "execution_count": j,
                    "source": f"x = {j}\nprint(x)",
                    "outputs": [{"output_type": "stream", "name": "stdout", "text": [f"{j}\n"]}],
                }
            )
        nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": nb_cells}
        (folder("notebook") / f"analysis_{i}.ipynb").write_text(json.dumps(nb))
    n, members = count("zip")
    for i in range(n):
        with zipfile.ZipFile(folder("zip") / f"bundle_{i}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            for j in range(members):
                zf.writestr(f"part_{j}.txt", text_of(rng, 100_000))
    n, _ = count("broken")
    broken = folder("broken")
    for i in range(n):
        (broken / f"truncated_{i}.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")
        (broken / f"fake_{i}.sqlite").write_text("not a database")
    with gzip.open(broken / "bomb.txt.gz", "wb") as fh:  # 300 MB of zeros: past the 256 MB cap below
        for _ in range(300):
            fh.write(b"0" * (1024 * 1024))


MEASURE = """
import json, sys, time
from pathlib import Path
from unbounded.context import load_context

def peak_mb():  # VmHWM: this process's peak RSS (ru_maxrss would carry the parent's over exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

base = peak_mb()
t0 = time.perf_counter()
loaded = load_context(Path(sys.argv[1]), allow_empty=True, max_decompressed_bytes=256 * 1024 * 1024)
seconds = time.perf_counter() - t0
info = loaded.info
print(json.dumps({
    "seconds": seconds,
    "peak_mb": peak_mb(),
    "base_mb": base,
    "documents": len(info.documents),
    "skipped": len(info.skipped),
    "chars": info.total_chars,
    "outline_chars": len(info.describe()),
}))
"""


def measure(folder: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(folder)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"measuring {folder} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="corpus size relative to ~1,000 files / ~200 MB")
    parser.add_argument("--keep", type=Path, help="write (or reuse) the corpus here and keep it")
    parser.add_argument("--no-kinds", action="store_true", help="measure only the whole folder")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="unbounded-loaders-"))
    try:
        if not (root.exists() and any(root.iterdir())):
            t0 = time.perf_counter()
            generate(root, args.scale)
            print(f"corpus: generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        files = sum(1 for p in root.rglob("*") if p.is_file())
        print(f"corpus: {files:,} files, {disk_mb(root):,.1f} MB on disk ({root})")
        whole = measure(root)
        print(
            f"whole folder: {whole['seconds']:.2f} s, peak RSS {whole['peak_mb']:,.0f} MB "
            f"(interpreter and imports before loading: {whole['base_mb']:,.0f} MB), "
            f"{whole['documents']:,} documents, {whole['skipped']:,} skipped, {whole['chars'] / 1e6:,.1f}M chars, "
            f"{disk_mb(root) / whole['seconds']:,.1f} MB/s, description {whole['outline_chars']:,} chars"
        )
        if not args.no_kinds:
            print(f"{'kind':<10} {'files':>6} {'MB':>8} {'seconds':>8} {'MB/s':>8} {'peak RSS MB':>12} {'M chars':>8}")
            for sub in sorted(p for p in root.iterdir() if p.is_dir()):
                r = measure(sub)
                mb = disk_mb(sub)
                n = sum(1 for p in sub.rglob("*") if p.is_file())
                print(
                    f"{sub.name:<10} {n:>6} {mb:>8.1f} {r['seconds']:>8.2f} {mb / r['seconds']:>8.1f} "
                    f"{r['peak_mb']:>12,.0f} {r['chars'] / 1e6:>8.1f}"
                )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
