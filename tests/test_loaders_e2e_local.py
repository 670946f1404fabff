"""A folder of real documents asked about through the embedded model (slow: 10-60 s on two cores).

The PDF and DOCX are written by fpdf2 and python-docx, loaded by the loaders, sent to the process
REPL, and the real 1.5B root model has to find a fact that sits on one page of the PDF.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from test_loaders_files import make_docx, make_pdf
from unbounded import RLM, Budget
from unbounded.trace import read_trace

pytestmark = pytest.mark.slow

try:
    import llama_cpp  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install
    pytest.skip("llama-cpp-python is not installed (pip install 'unbounded[local]')", allow_module_level=True)

MODEL = "local/qwen2.5-coder-1.5b"


def test_the_embedded_model_finds_a_fact_on_a_pdf_page_in_a_folder(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    root = tmp_path / "drive"
    root.mkdir()
    filler = "The committee reviewed routine matters and approved the minutes. " * 12
    pages = [filler, filler, "The audit reference number is QX-4471. " + filler, filler]
    make_pdf(root / "annual_report.pdf", pages, title="Annual report")
    make_docx(root / "memo.docx")
    for i in range(5):
        (root / f"notes_{i}.md").write_text(f"# Notes {i}\n" + "Nothing to report today.\n" * 200)
    trace = tmp_path / "run.jsonl"
    rlm = RLM(model=MODEL, repl="process", trace=trace, budget=Budget(max_iterations=6))
    result = rlm.run("What is the audit reference number in the annual report?", root)
    assert "QX-4471" in (result.answer or ""), (result.status, result.answer)
    start = next(e for e in read_trace(trace) if e.type == "run_start")
    assert start.data["context"]["kinds"] == {"text": 5, "docx": 1, "pdf": 1}
