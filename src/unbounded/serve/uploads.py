"""``POST /v1/contexts``: what a client sends to register a context, read into a ``ContextSource``.

- ``application/json``: one of ``{"text": "..."}``, ``{"records": [...] or {...}}`` or
  ``{"paths": [...], "include": [...], "exclude": [...]}`` (paths inside ``--allow-path``), with
  optional ``model`` (``rlm`` or ``rlm/<spec>``), ``budget`` and ``name``;
- ``text/plain``: the body is the text;
- ``application/jsonl`` (or ``application/x-ndjson``): one JSON record per line;
- ``multipart/form-data``: one or more files (any field name), each loaded by its format as
  ``unbounded ask`` would (PDF, DOCX, CSV, JSONL, archives…); several files are one folder;
- anything else: the bytes, recognised by their magic number (gzip, zip, PDF…) or read as text.

For bodies other than JSON, ``model``, ``name`` and ``budget`` (as JSON) come from the query string.
Uploaded files are written to a private temporary folder for the loaders and removed once loaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from ..context import LoadedContext, load_context, load_inputs
from ..loaders import LoadOptions
from .bodies import check_length, media_type, parse_json
from .errors import BadRequest
from .service import ContextSource, Service

JSONL_TYPES = frozenset({"application/jsonl", "application/x-ndjson", "application/jsonlines", "application/x-jsonlines"})
MAX_FILES = 10_000
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


async def read_source(request: Request, service: Service) -> ContextSource:
    check_length(request)
    kind = media_type(request)
    query = request.query_params
    options = service.load_options
    if kind == "application/json":
        body = await parse_json(await request.body())
        return _from_json(body, service)
    budget = _query_json(query.get("budget"))
    meta = {"model": query.get("model", "rlm"), "budget": budget, "name": query.get("name")}
    if kind == "multipart/form-data":
        return await _from_form(request, options, meta)
    raw = await request.body()
    if not raw:
        raise BadRequest("the body is empty: send the context's text, records or files", code="empty_context")
    if kind == "text/plain":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("a text/plain body must be UTF-8; send other bytes as application/octet-stream") from None
        return ContextSource(lambda: load_context(text, options=options), **meta)
    if kind in JSONL_TYPES:
        return _from_files([("upload.jsonl", raw)], options, meta)
    return ContextSource(lambda: load_context(raw, options=options), **meta)


def _from_json(body: Any, service: Service) -> ContextSource:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object with text, records or paths")
    given = [k for k in ("text", "records", "paths") if body.get(k) is not None]
    if len(given) != 1:
        raise BadRequest("give exactly one of text, records or paths", param="text")
    meta = {"model": body.get("model", "rlm"), "budget": body.get("budget"), "name": body.get("name")}
    options = service.load_options
    if "paths" in given:
        include, exclude = _globs(body.get("include")), _globs(body.get("exclude"))
        return ContextSource(service.loader_for_paths(body["paths"], include, exclude), **meta)
    if "text" in given:
        text = body["text"]
        if not isinstance(text, str):
            raise BadRequest("text must be a string", param="text")
        return ContextSource(lambda: load_context(text, options=options), **meta)
    records = body["records"]
    if not isinstance(records, list | dict):
        raise BadRequest("records must be a JSON array or object", param="records")
    return ContextSource(lambda: load_context(records, options=options), **meta)


async def _from_form(request: Request, options: LoadOptions, meta: dict[str, Any]) -> ContextSource:
    limit = int(request.scope.get("unbounded.body_limit") or (1 << 30))
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=100, max_part_size=limit)
    except Exception as exc:  # the multipart parser's errors
        if type(exc).__name__ == "PayloadTooLarge":
            raise
        raise BadRequest(f"cannot read the multipart body: {exc}") from None
    files: list[tuple[str, bytes]] = []
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.append((value.filename or key or "upload", await value.read()))
            elif key in ("model", "name"):
                meta[key] = value
            elif key == "budget":
                meta["budget"] = _query_json(value)
    finally:
        await form.close()
    if not files:
        raise BadRequest("the multipart body holds no file: send each file as a file part", param="file")
    return _from_files(files, options, meta)


def _from_files(files: list[tuple[str, bytes]], options: LoadOptions, meta: dict[str, Any]) -> ContextSource:
    """Write the files to a private folder; the loaders read them there by name and format."""
    folder = Path(tempfile.mkdtemp(prefix="unbounded-upload-"))
    names: list[Path] = []
    try:
        for name, data in files:
            path = folder / _safe_name(name, {p.name for p in names})
            path.write_bytes(data)
            names.append(path)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise BadRequest(f"cannot store the upload: {exc.strerror or exc}") from None

    def load() -> LoadedContext:
        target = [str(names[0])] if len(names) == 1 else [str(folder)]
        return load_inputs(target, options=options)

    return ContextSource(load, cleanup=lambda: shutil.rmtree(folder, ignore_errors=True), **meta)


def _safe_name(name: str, taken: set[str]) -> str:
    """A file name with no folder part and no odd characters, unique in the upload folder."""
    base = _UNSAFE.sub("_", os.path.basename(name.replace("\\", "/"))).strip(" .") or "upload"
    base = base[:200]
    candidate, n = base, 1
    while candidate in taken:
        stem, dot, ext = base.rpartition(".")
        candidate = f"{stem}-{n}.{ext}" if dot and stem else f"{base}-{n}"
        n += 1
    return candidate


def _globs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        raise BadRequest("include and exclude must be lists of glob strings", param="include")
    return tuple(value)


def _query_json(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise BadRequest("budget must be a JSON object, e.g. budget={\"max_iterations\":10}", param="budget") from None
