"""Broken and hostile inputs: each gets a clear reason (raised for a file named alone, listed in a
folder), and the rest of the folder still loads."""

from __future__ import annotations

import gzip
import os
import sqlite3
import sys
import zipfile
from pathlib import Path

import pytest

from test_loaders_files import make_docx, make_parquet, make_pdf, make_sqlite, make_tar_gz, make_zip
from unbounded.context import load_context
from unbounded.errors import ConfigError, ContextError
from unbounded.loaders import InputTooLargeError, MissingExtraError

MIB = 1024 * 1024


def reasons(loaded: object) -> dict[str, str]:
    return {s.path: s.reason for s in loaded.info.skipped}  # type: ignore[attr-defined]


@pytest.fixture
def broken_folder(tmp_path: Path) -> Path:
    """One good file and one of each kind of broken input."""
    pytest.importorskip("pypdf")
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text("The launch code is 7731.")
    good = make_pdf(folder / "good.pdf", ["Page one text.", "Page two text."]).read_bytes()
    (folder / "truncated.pdf").write_bytes(good[: len(good) // 2])
    make_pdf(folder / "locked.pdf", ["secret"], user_password="hunter2")
    (folder / "bomb.log.gz").write_bytes(gzip.compress(b"A" * (4 * MIB)))
    (folder / "quote.csv").write_text('id,text\n1,"never closed\n2,fine\n')
    (folder / "fake.sqlite").write_text("this is not a database at all")
    (folder / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    os.symlink(folder, folder / "loop")
    (folder / "bad.jsonl").write_text('{"a": 1}\n{oops}\n')
    return folder


def test_a_folder_of_broken_files_loads_the_good_ones_and_says_why_for_the_rest(broken_folder: Path) -> None:
    loaded = load_context(broken_folder, max_decompressed_bytes=1 * MIB)
    assert loaded.value["good.txt"] == "The launch code is 7731."
    assert "Page two text." in loaded.value["good.pdf"]
    why = reasons(loaded)
    assert why["truncated.pdf"].startswith("damaged or truncated PDF") and "qpdf" in why["truncated.pdf"]
    assert why["locked.pdf"].startswith("encrypted PDF: it needs a password") and "--decrypt" in why["locked.pdf"]
    assert "expands past the cap of 1 MB" in why["bomb.log.gz"] and "max_decompressed_bytes" in why["bomb.log.gz"]
    assert why["fake.sqlite"].startswith("not a SQLite database")
    assert why["latin1.txt"].startswith("not valid UTF-8 (byte 3)") and "fallback_encoding" in why["latin1.txt"]
    assert why["loop"] == "symlink loop"
    # Broken records are kept as text, with the error in their metadata (nothing is lost).
    assert loaded.value["quote.csv"].startswith("id,text")
    docs = {d.path: d for d in loaded.info.documents}
    assert "line 2" in (docs["quote.csv"].error or "") and "never closed" in (docs["quote.csv"].error or "")
    assert loaded.value["bad.jsonl"] == '{"a": 1}\n{oops}\n' and "line 2: invalid JSON" in (
        docs["bad.jsonl"].error or ""
    )
    text = loaded.info.describe()
    assert "skipped files (6)" in text and "problems: 'bad.jsonl': line 2" in text
    compact = loaded.info.outline(compact=True)
    assert "6 skipped" in compact and len(compact) <= 400


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("truncated.pdf", r"truncated\.pdf: damaged or truncated PDF"),
        ("locked.pdf", r"locked\.pdf: encrypted PDF: it needs a password"),
        ("bomb.log.gz", r"bomb\.log\.gz: gzip data expands past the cap of 1 MB \(a decompression bomb\?\)"),
        (
            "quote.csv",
            r"quote\.csv: not valid CSV: line 2: unexpected end of data \(a quote opened there is never closed\)",
        ),
        ("fake.sqlite", r"fake\.sqlite: not a SQLite database"),
        ("latin1.txt", r"latin1\.txt: not valid UTF-8 \(byte 3\)"),
        ("bad.jsonl", r"bad\.jsonl: line 2: invalid JSON"),
    ],
)
def test_the_same_files_named_alone_are_clear_errors(broken_folder: Path, name: str, message: str) -> None:
    with pytest.raises(ContextError, match=message):
        load_context(broken_folder / name, max_decompressed_bytes=1 * MIB)


def test_a_bomb_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    """512 MB of zeros compressed to ~0.5 MB: refused at the cap, without ever holding much more than it.
    (VmHWM, not ru_maxrss: the latter carries the parent's peak across exec.)"""
    import subprocess

    bomb = tmp_path / "zeros.txt.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as fh:
        block = b"\x00" * MIB
        for _ in range(512):
            fh.write(block)
    assert bomb.stat().st_size < 4 * MIB
    script = (
        "import sys; from pathlib import Path\n"
        "from unbounded.context import load_context\n"
        "from unbounded.errors import ContextError\n"
        "try:\n    load_context(Path(sys.argv[1]), max_decompressed_bytes=64 * 1024 * 1024)\n"
        "except ContextError as exc:\n    print('REFUSED', exc)\n"
        "peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0]\n"
        "print('PEAK_KB', peak.split()[1])\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(bomb)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "REFUSED" in out.stdout and "expands past the cap of 64 MB" in out.stdout
    peak_kb = int(out.stdout.split("PEAK_KB")[1])
    assert peak_kb < 400 * 1024, f"peak RSS {peak_kb} KB for a 64 MB cap"


def test_zip_and_tar_bombs_stop_at_the_cap_and_keep_what_came_before(tmp_path: Path) -> None:
    members = {"a.txt": b"first member", "big.txt": b"B" * (3 * MIB), "z.txt": b"never reached"}
    for path in (make_zip(tmp_path / "x.zip", members), make_tar_gz(tmp_path / "x.tar.gz", members)):
        loaded = load_context(path, max_decompressed_bytes=2 * MIB)
        assert loaded.value == {"a.txt": "first member"}, path
        stop = reasons(loaded)[path.name]
        assert "expands past the cap of 2 MB" in stop and "rest was not read" in stop


def test_a_member_past_the_file_cap_is_skipped_and_the_rest_loads(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "x.zip", {"big.log": b"x" * (2 * MIB), "small.txt": b"tiny"})
    loaded = load_context(path, max_file_bytes=1 * MIB)
    assert loaded.value == {"small.txt": "tiny"}
    assert reasons(loaded)["big.log"].startswith("too big: 2 MB (the max_file_bytes cap is 1 MB)")


def test_zip_archives_with_hostile_members(tmp_path: Path) -> None:
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("../../etc/escape.txt", "kept, but inside")
        zf.writestr("/abs/path.txt", "absolute made relative")
        link = zipfile.ZipInfo("link")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
    loaded = load_context(path)
    assert loaded.value == {"etc/escape.txt": "kept, but inside", "abs/path.txt": "absolute made relative"}
    assert "symlink inside the archive" in reasons(loaded)["link"]


def test_a_docx_that_declares_a_huge_expansion_is_refused_before_parsing(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "memo.docx")
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/padding.bin", b"\x00" * (3 * MIB))
    with pytest.raises(InputTooLargeError, match=r"expands to 3\.\d MB, past the cap of 2 MB"):
        load_context(path, max_decompressed_bytes=2 * MIB)


def test_damaged_containers(tmp_path: Path) -> None:
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ContextError, match=r"damaged zip archive"):
        load_context(tmp_path / "broken.zip")
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 nor a docx")
    with pytest.raises(ContextError, match=r"broken\.docx: damaged"):
        load_context(tmp_path / "broken.docx")
    (tmp_path / "cut.tar.gz").write_bytes(gzip.compress(b"\x00" * 100)[:30])
    with pytest.raises(ContextError, match=r"cut\.tar\.gz: damaged tar archive"):
        load_context(tmp_path / "cut.tar.gz")
    good = make_sqlite(tmp_path / "shop.sqlite").read_bytes()
    (tmp_path / "torn.sqlite").write_bytes(good[:100] + b"\xff" * (len(good) - 100))
    with pytest.raises(ContextError, match=r"torn\.sqlite: (damaged SQLite database|cannot open)"):
        load_context(tmp_path / "torn.sqlite")


def test_row_caps(tmp_path: Path) -> None:
    (tmp_path / "many.csv").write_text("n\n" + "\n".join(str(i) for i in range(50)) + "\n")
    loaded = load_context(tmp_path / "many.csv", max_rows=10)
    assert isinstance(loaded.value, str) and loaded.value.startswith("n\n0\n")  # text: nothing lost
    assert "max_rows cap of 10: loaded as text" in loaded.info.documents[0].notes[-1]
    with pytest.raises(InputTooLargeError, match=r"too many rows: 20 \(the max_rows cap is 10\)"):
        load_context(make_parquet(tmp_path / "p.parquet", rows=20), max_rows=10)
    conn = sqlite3.connect(tmp_path / "big.sqlite")
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(30)])
    conn.commit()
    conn.close()
    with pytest.raises(InputTooLargeError, match=r"too many rows: 30"):
        load_context(tmp_path / "big.sqlite", max_rows=10)


def test_size_caps_on_files_and_the_whole_load(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * (2 * MIB))
    (tmp_path / "a.txt").write_text("a" * 1000)
    (tmp_path / "b.txt").write_text("b" * 1000)
    loaded = load_context(tmp_path, max_file_bytes=1 * MIB)
    assert sorted(loaded.value) == ["a.txt", "b.txt"]
    assert reasons(loaded)["big.txt"].startswith("too big: 2 MB (the max_file_bytes cap is 1 MB")
    with pytest.raises(InputTooLargeError, match=r"big\.txt: too big"):
        load_context(tmp_path / "big.txt", max_file_bytes=1 * MIB)
    loaded = load_context(tmp_path, max_total_bytes=1500, max_file_bytes=1 * MIB)
    assert list(loaded.value) == ["a.txt"]
    assert "total cap" in reasons(loaded)["b.txt"] and "max_total_bytes" in reasons(loaded)["b.txt"]


def test_a_missing_extra_names_it_and_only_its_files_are_skipped(tmp_path: Path) -> None:
    """pypdf made unimportable in a fresh interpreter (``sys.modules[name] = None`` is how Python
    marks a module as absent): the PDF is skipped naming the extra, the text still loads."""
    import subprocess

    pytest.importorskip("pypdf")
    make_pdf(tmp_path / "doc.pdf", ["pdf text"])
    (tmp_path / "notes.txt").write_text("plain text")
    script = (
        "import sys; sys.modules['pypdf'] = None\n"
        "from pathlib import Path\nfrom unbounded.context import load_context\n"
        "loaded = load_context(Path(sys.argv[1]))\n"
        "print(sorted(loaded.value)); print([(s.path, s.reason) for s in loaded.info.skipped])\n"
        "from unbounded.loaders import MissingExtraError\n"
        "try:\n    load_context(Path(sys.argv[1]) / 'doc.pdf')\n"
        "except MissingExtraError as exc:\n    print('EXTRA', exc.extra, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "['notes.txt']"
    assert "('doc.pdf', \"PDF files need pypdf: pip install 'unbounded[docs]'\")" in lines[1]
    assert lines[2].startswith("EXTRA docs ") and "doc.pdf: PDF files need pypdf" in lines[2]
    assert issubclass(MissingExtraError, ContextError)


def test_bad_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="unknown load option"):
        load_context("text", max_filesize=3)
    with pytest.raises(ConfigError, match="max_rows must be a positive integer"):
        load_context("text", max_rows=0)
    with pytest.raises(ConfigError, match="unknown fallback_encoding"):
        load_context("text", fallback_encoding="klingon")
