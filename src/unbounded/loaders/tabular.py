"""Tables: CSV and TSV (dialect sniffed), Parquet and Arrow (pyarrow), SQLite (read-only), XLSX (openpyxl).

Each table becomes a list of records (dicts keyed by column); a file of several tables (SQLite,
XLSX) becomes ``{table: records}``. The first row of a CSV or a sheet is its header. CSV values stay
strings (``"00123"`` keeps its zeros). Nothing in the input is executed: SQLite is opened read-only
with an untrusted schema and only its tables are read (views, which run queries, are listed, not
read); XLSX formulas give their cached values, never evaluated; macros are never looked at.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import urllib.parse
from typing import Any

from ..errors import ContextError
from .base import DocumentInfo, LoadResult, LoadState, Source, TableInfo, single
from .detect import require
from .records import plain, records_chars, unique_names
from .text import _rows_note, decode_text, refuse_rows

_SNIFF_CHARS = 16 * 1024
SQLITE_MAGIC = b"SQLite format 3\x00"


# -- CSV / TSV --------------------------------------------------------------------------------


def load_csv(src: Source, state: LoadState, *, tab: bool = False) -> LoadResult:
    notes: list[str] = []
    text = decode_text(src.read(), state, notes)
    kind = "tsv" if tab else "csv"
    doc = DocumentInfo(src.name, kind, len(text), src.size, notes=notes)
    dialect = _dialect(text, tab)
    reader = csv.reader(io.StringIO(text, newline=""), dialect, strict=True)
    header: list[str] = []
    records: list[dict[str, Any]] = []
    cap = state.options.max_rows
    last_good = ragged = 0
    try:
        for row in reader:
            if not row:
                pass
            elif not header:
                header = unique_names(row)
            elif len(records) >= cap:
                notes.append(_rows_note(None, state))
                return single(text, doc)
            else:
                record = dict(zip(header, row, strict=False))
                if len(row) != len(header):
                    ragged += 1
                    if len(row) > len(header):
                        record["_extra"] = row[len(header) :]
                records.append(record)
            last_good = reader.line_num
    except csv.Error as exc:
        reason = f"line {last_good + 1}: {exc}"
        if "end of data" in str(exc):
            reason += " (a quote opened there is never closed)"
        if state.strict:
            raise ContextError(
                f"not valid CSV: {reason}; fix the quoting, or give the file a .txt name to read it as text"
            ) from exc
        doc.error = f"not valid CSV: {reason}: loaded as text"
        return single(text, doc)
    if ragged:
        notes.append(
            f"{ragged:,} row(s) with another number of fields than the header "
            "(missing fields left out, extra ones under '_extra')"
        )
    return single(records, _table_doc(doc, records, header))


def _dialect(text: str, tab: bool) -> type[csv.Dialect] | csv.Dialect:
    sample = text[:_SNIFF_CHARS]
    cut = sample.rfind("\n")
    if len(text) > _SNIFF_CHARS and cut > 0:
        sample = sample[:cut]  # whole lines only: a cut line would look like another dialect
    try:
        return csv.Sniffer().sniff(sample, delimiters="\t" if tab else ",;\t|")
    except csv.Error:
        return csv.excel_tab if tab else csv.excel


def _table_doc(doc: DocumentInfo, records: list[Any], columns: list[str]) -> DocumentInfo:
    doc.rows = len(records)
    doc.columns = columns
    doc.chars = records_chars(records)
    return doc


# -- Parquet / Arrow --------------------------------------------------------------------------


def _pyarrow(what: str) -> Any:
    require("pyarrow", "pyarrow", "data", what)
    import pyarrow as pa

    return pa


def _needs_plain(pa: Any, schema: Any) -> list[str]:
    """The columns whose Python values are not plain data already (timestamps, decimals, binary, nested)."""
    t = pa.types
    simple = (t.is_integer, t.is_floating, t.is_string, t.is_large_string, t.is_boolean, t.is_null)
    return [f.name for f in schema if not any(check(f.type) for check in simple)]


def _rows(pa: Any, batch: Any) -> list[dict[str, Any]]:
    rows = batch.to_pylist()
    convert = _needs_plain(pa, batch.schema)
    if convert:
        for row in rows:
            for name in convert:
                row[name] = plain(row[name])
    return rows


def load_parquet(src: Source, state: LoadState) -> LoadResult:
    pa = _pyarrow("Parquet files")
    import pyarrow.parquet as pq

    doc = DocumentInfo(src.name, "parquet", size=src.size)
    try:
        pf = pq.ParquetFile(src.path if src.path is not None else pa.BufferReader(src.data))
        rows = pf.metadata.num_rows
        refuse_rows(rows, state)
        columns = list(pf.schema_arrow.names)
        records = [r for batch in pf.iter_batches(batch_size=65536) for r in _rows(pa, batch)]
    except (pa.ArrowException, OSError) as exc:
        raise ContextError(f"damaged Parquet file ({exc}); export it again") from exc
    return single(records, _table_doc(doc, records, columns))


def load_arrow(src: Source, state: LoadState) -> LoadResult:
    pa = _pyarrow("Arrow files")
    import pyarrow.ipc as ipc

    doc = DocumentInfo(src.name, "arrow", size=src.size)

    def source() -> Any:
        return pa.memory_map(str(src.path)) if src.path is not None else pa.BufferReader(src.data)

    try:
        try:
            reader: Any = ipc.open_file(source())
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:  # the streaming format has no footer
            reader = ipc.open_stream(source())
            batches = iter(reader)
        columns = list(reader.schema.names)
        records: list[dict[str, Any]] = []
        for batch in batches:
            refuse_rows(len(records) + batch.num_rows, state)
            records.extend(_rows(pa, batch))
    except (pa.ArrowException, OSError) as exc:
        raise ContextError(f"damaged Arrow file ({exc}); export it again") from exc
    return single(records, _table_doc(doc, records, columns))


# -- SQLite -----------------------------------------------------------------------------------


def load_sqlite(src: Source, state: LoadState) -> LoadResult:
    head = src.head(len(SQLITE_MAGIC))
    doc = DocumentInfo(src.name, "sqlite", size=src.size, tables=[])
    if not head:
        return single({}, doc)
    if head != SQLITE_MAGIC:
        raise ContextError("not a SQLite database (no SQLite header); check the file, or give it another extension")
    try:
        conn = _connect(src)
    except sqlite3.Error as exc:
        raise ContextError(f"cannot open the SQLite database ({exc})") from exc
    try:
        return single(_read_tables(conn, doc, state), doc)
    except sqlite3.DatabaseError as exc:
        raise ContextError(f"damaged SQLite database ({exc}); check it with sqlite3 '.recover'") from exc
    finally:
        conn.close()


def _connect(src: Source) -> sqlite3.Connection:
    if src.path is not None:
        uri = "file:" + urllib.parse.quote(str(src.path.resolve())) + "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:  # e.g. WAL mode in a read-only folder: read the file as it is
            conn = sqlite3.connect(uri + "&immutable=1", uri=True)
    else:
        conn = sqlite3.connect(":memory:")
        conn.deserialize(src.data or b"")
    conn.text_factory = lambda b: b.decode("utf-8", "replace")
    conn.execute("PRAGMA query_only = ON")
    conn.execute("PRAGMA trusted_schema = OFF")
    return conn


def _read_tables(conn: sqlite3.Connection, doc: DocumentInfo, state: LoadState) -> dict[str, list[dict[str, Any]]]:
    entries = conn.execute(
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
    ).fetchall()
    views = [name for name, kind in entries if kind == "view"]
    names = [name for name, kind in entries if kind == "table"]
    counts = {}
    errors = []
    for name in names:
        try:
            counts[name] = conn.execute(f"SELECT count(*) FROM {_quote(name)}").fetchone()[0]
        except sqlite3.OperationalError as exc:  # a virtual table whose module is not here
            errors.append(f"table {name!r}: {exc}")
    refuse_rows(sum(counts.values()), state)
    tables: dict[str, list[dict[str, Any]]] = {}
    assert doc.tables is not None
    for name in counts:
        cur = conn.execute(f"SELECT * FROM {_quote(name)}")
        columns = unique_names(d[0] for d in cur.description)
        rows = [{c: plain(v) for c, v in zip(columns, row, strict=True)} for row in cur]
        tables[name] = rows
        doc.tables.append(TableInfo(name, len(rows), columns))
    doc.rows = sum(t.rows for t in doc.tables)
    doc.chars = records_chars(tables)
    if views:
        doc.notes.append(f"views not read (they run queries): {', '.join(views)}")
    if errors:
        doc.error = "; ".join(errors)
    return tables


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- XLSX -------------------------------------------------------------------------------------


def load_xlsx(src: Source, state: LoadState) -> LoadResult:
    openpyxl = require("openpyxl", "openpyxl", "data", "XLSX files")
    from zipfile import BadZipFile

    from .archives import check_zip_expansion

    doc = DocumentInfo(src.name, "xlsx", size=src.size, tables=[])
    with src.open() as fh:
        check_zip_expansion(fh, state)
        fh.seek(0)
        try:
            wb = openpyxl.load_workbook(fh, read_only=True, data_only=True, keep_links=False)
        except (BadZipFile, KeyError, ValueError, OSError) as exc:
            raise ContextError(f"damaged XLSX file ({exc}); save it again from the spreadsheet program") from exc
        try:
            sheets: dict[str, list[dict[str, Any]]] = {}
            total = 0
            for ws in wb.worksheets:
                rows = ws.iter_rows(values_only=True)
                header: list[str] | None = None
                records: list[dict[str, Any]] = []
                for row in rows:
                    if header is None:
                        if any(v is not None for v in row):
                            header = unique_names(row)
                        continue
                    if all(v is None for v in row):
                        continue
                    total += 1
                    refuse_rows(total, state)
                    records.append({c: plain(v) for c, v in zip(header, row, strict=False)})
                sheets[ws.title] = records
                assert doc.tables is not None
                doc.tables.append(TableInfo(ws.title, len(records), header or []))
        finally:
            wb.close()
    doc.rows = total
    doc.chars = records_chars(sheets)
    return single(sheets, doc)
