"""Folders and archives as trees: .gitignore, include/exclude, vendored folders, symlinks, and the
command line's several inputs and standard input."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pytest

from test_loaders_files import make_docx, make_pdf, make_sqlite, make_tar_gz, make_zip
from unbounded.context import LoadedContext, load_context, load_inputs
from unbounded.errors import ContextError, EmptyContextError


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small repository as people have it: vendored code, build output, ignored files."""
    return write(
        tmp_path / "repo",
        {
            ".gitignore": "*.log\n/secrets.env\ngenerated/\n!keep.log\n",
            "README.md": "# Demo",
            "src/app.py": "def main():\n    return 42\n",
            "src/util.py": "X = 1\n",
            "src/.gitignore": "scratch.py\n",
            "src/scratch.py": "ignored below src",
            "src/generated/out.py": "ignored folder",
            "debug.log": "ignored",
            "keep.log": "negated: kept",
            "secrets.env": "TOKEN=1",
            "sub/secrets.env": "only the top one is anchored",
            "node_modules/left-pad/index.js": "module.exports = 1",
            "build/lib/app.py": "built copy",
            ".git/config": "[core]",
            ".venv/lib/x.py": "venv",
            "docs/guide.md": "guide",
        },
    )


def test_a_repository_loads_like_git_sees_it(repo: Path) -> None:
    loaded = load_context(repo)
    assert sorted(loaded.value) == [
        ".gitignore",
        "README.md",
        "docs/guide.md",
        "keep.log",
        "src/.gitignore",
        "src/app.py",
        "src/util.py",
        "sub/secrets.env",
    ]
    skipped = {s.path: s.reason for s in loaded.info.skipped}
    assert set(skipped) == {".git", ".venv", "build", "node_modules"}
    assert "vendored or build folder" in skipped["node_modules"] and "node_modules/**" in skipped["node_modules"]
    assert loaded.info.excluded == {"ignored by .gitignore": 4}  # debug.log, secrets.env, scratch.py, generated/
    text = loaded.info.describe()
    assert "left out on purpose: 4 ignored by .gitignore" in text
    assert "contents: 8 documents: text 8 (.md 2, .py 2, no extension 2, .env 1, .log 1)" in text


def test_gitignore_can_be_turned_off_and_default_folders_brought_back(repo: Path) -> None:
    everything = load_context(repo, gitignore=False)
    assert {"debug.log", "secrets.env", "src/scratch.py", "src/generated/out.py"} <= set(everything.value)
    vendored = load_context(repo, include=["node_modules/**"])
    assert list(vendored.value) == ["node_modules/left-pad/index.js"]
    assert load_context(repo, skip_dirs=()).value.keys() >= {".git/config", "build/lib/app.py", ".venv/lib/x.py"}


def test_include_and_exclude_globs(repo: Path) -> None:
    python = load_context(repo, include=["*.py"])
    assert sorted(python.value) == ["src/app.py", "src/util.py"]
    assert python.info.excluded["not matching include"] == 6
    no_src = load_context(repo, exclude=["src/", "*.md"])
    assert sorted(no_src.value) == [".gitignore", "keep.log", "sub/secrets.env"]
    anchored = load_context(repo, include=["/src/*.py"], exclude=["util.py"])
    assert list(anchored.value) == ["src/app.py"]
    with pytest.raises(EmptyContextError, match=r"files left out: .*not matching include.*check include/exclude"):
        load_context(repo, include=["*.rs"])


def test_symlinks_out_of_the_folder_are_never_followed_unasked(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside", {"private.txt": "outside secret"})
    root = write(tmp_path / "root", {"a.txt": "inside", "sub/b.txt": "b"})
    os.symlink(outside / "private.txt", root / "leak.txt")
    os.symlink(outside, root / "leakdir")
    os.symlink(root / "sub" / "b.txt", root / "alias.txt")  # inside: followed
    loaded = load_context(root)
    assert loaded.value == {"a.txt": "inside", "alias.txt": "b", "sub/b.txt": "b"}
    skipped = {s.path: s.reason for s in loaded.info.skipped}
    assert skipped["leak.txt"].startswith(f"symlink to outside the folder ({outside / 'private.txt'})")
    assert "follow_symlinks=True" in skipped["leakdir"]
    followed = load_context(root, follow_symlinks=True)
    assert followed.value["leak.txt"] == "outside secret" and followed.value["leakdir/private.txt"] == "outside secret"
    notes = {d.path: d.notes for d in followed.info.documents}
    assert any("outside the folder" in n for n in notes["leak.txt"])


def test_archives_are_folders_and_mix_with_real_ones(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    pdf = make_pdf(tmp_path / "inner.pdf", ["Archived page one.", "Archived page two."]).read_bytes()
    root = tmp_path / "data"
    root.mkdir()
    make_zip(root / "bundle.zip", {"docs/inner.pdf": pdf, "node_modules/x.js": b"vendored", "notes/a.txt": b"zipped"})
    make_tar_gz(root / "logs.tar.gz", {"2024/app.log.gz": gzip.compress(b"nested gzip in tar"), "2024/b.log": b"plain"})
    make_sqlite(root / "shop.sqlite")
    loaded = load_context(root)
    keys = set(loaded.value)
    assert {
        "bundle.zip/docs/inner.pdf",
        "bundle.zip/notes/a.txt",
        "logs.tar.gz/2024/app.log.gz",
        "logs.tar.gz/2024/b.log",
        "shop.sqlite",
    } == keys
    assert "Archived page two." in loaded.value["bundle.zip/docs/inner.pdf"]
    assert loaded.value["logs.tar.gz/2024/app.log.gz"] == "nested gzip in tar"
    assert set(loaded.value["shop.sqlite"]) == {"users", "orders"}
    skipped = {s.path: s.reason for s in loaded.info.skipped}
    assert "vendored or build folder" in skipped["bundle.zip/node_modules"]
    docs = {d.path: d for d in loaded.info.documents}
    assert docs["bundle.zip/docs/inner.pdf"].pages == 2 and docs["shop.sqlite"].kind == "sqlite"
    # The doc helpers address these keys directly.
    from unbounded.repl import doc_helpers

    assert doc_helpers.page(loaded.value, "inner.pdf", 2) == "Archived page two."
    assert doc_helpers.tables(loaded.value) == ["shop.sqlite/users", "shop.sqlite/orders"]
    assert doc_helpers.table(loaded.value, "shop.sqlite/orders")[2]["total"] == 7.25


def test_load_inputs_keeps_every_inputs_skip_list(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "extra.txt").write_text("one more file")
    other = write(tmp_path / "other", {"ok.md": "fine"})
    (other / "blob.bin").write_bytes(b"\x00\x01binary")
    loaded = load_inputs([repo, str(tmp_path / "extra.txt"), other])
    assert loaded.value[f"{repo}/src/app.py"].startswith("def main")
    assert loaded.value[str(tmp_path / "extra.txt")] == "one more file"
    assert loaded.value[f"{other}/ok.md"] == "fine"
    skipped = {s.path for s in loaded.info.skipped}
    assert f"{repo}/node_modules" in skipped and f"{other}/blob.bin" in skipped
    assert loaded.info.excluded == {"ignored by .gitignore": 4}
    assert {d.path for d in loaded.info.documents} == set(loaded.value)
    assert loaded.info.source == f"{repo}, {tmp_path / 'extra.txt'}, {other}"
    single = load_inputs([str(repo) + "/"], include=["*.md"])
    assert sorted(single.value) == ["README.md", "docs/guide.md"] and single.info.source == str(repo)


def test_load_inputs_reads_standard_input_as_bytes(tmp_path: Path) -> None:
    assert load_inputs(["-"], stdin=io.BytesIO("héllo".encode())).value == "héllo"
    assert load_inputs([], stdin=io.BytesIO(b"implicit stdin")).value == "implicit stdin"
    gz = load_inputs(["-"], stdin=io.BytesIO(gzip.compress(b"from a pipe")))
    assert gz.value == "from a pipe" and gz.info.source == "<stdin>"
    zipped = make_zip(tmp_path / "s.zip", {"a.txt": b"member"}).read_bytes()
    both = load_inputs(["-", str(tmp_path / "s.zip")], stdin=io.BytesIO(zipped))
    assert both.value == {"<stdin>/a.txt": "member", f"{tmp_path / 's.zip'}/a.txt": "member"}
    memo = make_docx(tmp_path / "memo.docx").read_bytes()  # a zip whose members say it is a DOCX
    assert load_inputs(["-"], stdin=io.BytesIO(memo)).value.startswith("# Quarterly memo")
    db = make_sqlite(tmp_path / "x.sqlite").read_bytes()
    assert set(load_inputs(["-"], stdin=io.BytesIO(db)).value) == {"users", "orders"}
    with pytest.raises(ContextError, match="standard input: not valid UTF-8"):
        load_inputs(["-"], stdin=io.BytesIO(b"\xc3\x28"))
    with pytest.raises(ContextError, match="larger than the max_file_bytes cap"):
        load_inputs(["-"], stdin=io.BytesIO(b"x" * 2000), max_file_bytes=1000)
    with pytest.raises(EmptyContextError):
        load_inputs(["-"], stdin=io.BytesIO(b""))
    assert load_inputs(["-"], stdin=io.BytesIO(b""), allow_empty=True).value == ""


def test_load_inputs_errors(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="no input: give one or more paths"):
        load_inputs([])
    with pytest.raises(ContextError, match=r"no such file or folder: .*missing"):
        load_inputs([str(tmp_path / "missing")])


def test_a_loaded_context_passes_through_unchanged(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("abc")
    loaded = load_inputs([str(tmp_path)])
    assert load_context(loaded) is loaded and isinstance(loaded, LoadedContext)
