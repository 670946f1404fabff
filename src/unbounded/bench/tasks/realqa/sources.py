"""The real inputs the evaluation set asks about, read from the machine that runs it.

Every input exists on a Debian machine with Python: this interpreter's standard library (packages
of it, its top folder, all of it), the documentation topics ``pydoc`` ships (``pydoc_data``), the
license texts of Debian's ``base-files`` (``/usr/share/common-licenses``), the dpkg database
(``/var/lib/dpkg/status``) and the machine-readable copyright files of the installed base system
(``/usr/share/doc/<package>/copyright``). Nothing is generated: a context is the input as it is,
or a plain projection of its records (``dpkg/descriptions``: each package's name and description).

A missing input raises ``MissingInputError`` naming the path or module and what provides it.
Inputs are read once per process and shared by the questions that use them.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ....errors import ConfigError
from ..base import Context
from ..stdlib import read_source, source_files, stdlib_root

#: Where Debian keeps what the dpkg and copyright inputs read (module constants, so tests can point them elsewhere).
DPKG_STATUS = Path("/var/lib/dpkg/status")
COMMON_LICENSES = Path("/usr/share/common-licenses")
DOC_ROOT = Path("/usr/share/doc")
#: The base system every Debian installation carries: its packages' copyright files are the copyright input.
BASE_PRIORITIES = ("required", "important")


class MissingInputError(ConfigError):
    """An input of the evaluation set is not on this machine (or not readable)."""


@dataclass(frozen=True, slots=True)
class Source:
    """One input: how to load it as a context and the sentence that tells a method what it is."""

    name: str
    description: str
    load: Callable[[], Context]


# --------------------------------------------------------------------------- the standard library


def _stdlib_files(keep: Callable[[str], bool], what: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for f in source_files():
        if f.is_test or not keep(f.path):
            continue
        text = read_source(f)
        if text is not None:
            files[f.path] = text
    if not files:
        raise MissingInputError(
            f"realqa: found no source files for {what} under {stdlib_root()}; this Python's standard library "
            "is missing or stripped (on Debian it is the libpythonX.Y-stdlib package)"
        )
    return files


@functools.cache
def stdlib_package(package: str) -> dict[str, str]:
    """``{path: source}`` of one stdlib package (its test folders left out), keys like ``email/utils.py``."""
    return _stdlib_files(lambda p: p.startswith(package + "/"), f"the package {package!r}")


@functools.cache
def stdlib_top() -> dict[str, str]:
    """The modules directly in the stdlib's top folder (no packages), e.g. ``functools.py``."""
    return _stdlib_files(lambda p: "/" not in p, "the top folder")


@functools.cache
def stdlib_all() -> dict[str, str]:
    """Every non-test ``.py`` file of the standard library."""
    return _stdlib_files(lambda p: True, "the standard library")


# --------------------------------------------------------------------------- prose


@functools.cache
def help_topics() -> dict[str, str]:
    """``pydoc_data.topics.topics``: the Python documentation's help topics, ``{topic: text}``."""
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:
        raise MissingInputError(
            "realqa: the module pydoc_data.topics is missing from this Python, so the help-topics input cannot "
            "be read; install the full standard library (on Debian: libpythonX.Y-stdlib)"
        ) from exc
    return dict(sorted(topics.items()))


@functools.cache
def common_licenses() -> dict[str, str]:
    """The license texts in ``/usr/share/common-licenses``, ``{file name: text}``.

    Symlinks (``GPL`` → ``GPL-3`` and the like) are left out, so every text appears once under its
    own versioned name.
    """
    root = COMMON_LICENSES
    if not root.is_dir():
        raise MissingInputError(
            f"realqa: {root} is missing; it comes with Debian's base-files package (apt-get install base-files)"
        )
    out: dict[str, str] = {}
    for path in sorted(root.iterdir()):
        if path.is_symlink() or not path.is_file():
            continue
        out[path.name] = _read(path)
    if not out:
        raise MissingInputError(f"realqa: {root} holds no license texts; reinstall Debian's base-files package")
    return out


# --------------------------------------------------------------------------- Debian records


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise MissingInputError(f"realqa: {path} is missing") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MissingInputError(f"realqa: cannot read {path}: {exc}") from exc


@functools.cache
def dpkg_status_text() -> str:
    """``/var/lib/dpkg/status`` as it is: one deb822 paragraph per installed package."""
    if not DPKG_STATUS.is_file():
        raise MissingInputError(
            f"realqa: {DPKG_STATUS} is missing; the dpkg questions need a Debian (or Debian-based) system"
        )
    return _read(DPKG_STATUS)


def _deb822() -> Any:
    try:
        from debian import deb822
    except ImportError as exc:
        raise MissingInputError(
            "realqa: the Debian record questions need python-debian: pip install 'unbounded[bench]'"
        ) from exc
    return deb822


@functools.cache
def dpkg_packages() -> tuple[dict[str, str], ...]:
    """The status file parsed by python-debian, one dict per package, in file order."""
    deb822 = _deb822()
    paragraphs = deb822.Deb822.iter_paragraphs(dpkg_status_text().splitlines(keepends=True), use_apt_pkg=False)
    packages = tuple(dict(p) for p in paragraphs if p.get("Package"))
    if not packages:
        raise MissingInputError(f"realqa: {DPKG_STATUS} lists no package")
    return packages


def installed(packages: tuple[dict[str, str], ...]) -> list[dict[str, str]]:
    """Packages whose status ends in ``installed`` (a removed package keeps a paragraph until purged)."""
    return [p for p in packages if p.get("Status", "").split()[-1:] == ["installed"]]


@functools.cache
def dpkg_descriptions() -> list[str]:
    """Each installed package as ``Package: <name>`` and its ``Description`` field, sorted by name.

    The projection keeps what a person reads to tell what a package is, and drops the fields
    (``Section``, ``Priority``) that the classification questions take their answers from.
    """
    records = []
    for p in sorted(installed(dpkg_packages()), key=lambda p: p["Package"]):
        records.append(f"Package: {p['Package']}\nDescription: {p.get('Description', '').strip()}")
    return records


def _copyright_module() -> Any:
    try:
        from debian import copyright
    except ImportError as exc:
        raise MissingInputError(
            "realqa: the copyright questions need python-debian: pip install 'unbounded[bench]'"
        ) from exc
    return copyright


def parse_copyright(text: str) -> Any | None:
    """A machine-readable (DEP-5) copyright file parsed by python-debian, or None when it is free-form."""
    copyright = _copyright_module()
    # python-debian logs and warns about every small deviation it repairs; the set only needs the parse.
    quiet = logging.getLogger("debian.copyright")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return copyright.Copyright(text.splitlines(keepends=True), strict=False)
    except (copyright.Error, ValueError):
        return None
    finally:
        quiet.setLevel(level)


@functools.cache
def base_copyrights() -> dict[str, str]:
    """``{package: copyright file}`` for the installed packages of priority required or important whose
    copyright file is machine-readable (DEP-5), sorted by package name."""
    names = sorted(
        {p["Package"].split(":")[0] for p in installed(dpkg_packages()) if p.get("Priority") in BASE_PRIORITIES}
    )
    out: dict[str, str] = {}
    for name in names:
        path = DOC_ROOT / name / "copyright"
        if not os.path.isfile(path):
            continue
        text = _read(path)
        if parse_copyright(text) is not None:
            out[name] = text
    if not out:
        raise MissingInputError(
            f"realqa: no machine-readable copyright file under {DOC_ROOT} for the base packages; "
            "the copyright questions need Debian's /usr/share/doc/<package>/copyright files"
        )
    return out


# --------------------------------------------------------------------------- the catalogue

_CODE = "as a mapping from file path to source code"

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        *(
            Source(
                f"stdlib/{pkg}",
                f"The context is the source of the `{pkg}` package of Python's standard library, {_CODE}.",
                functools.partial(stdlib_package, pkg),
            )
            for pkg in ("asyncio", "email", "http", "importlib", "logging", "multiprocessing", "unittest", "xml")
        ),
        Source(
            "stdlib/top",
            f"The context is every module in the top folder of Python's standard library (packages left out), {_CODE}.",
            stdlib_top,
        ),
        Source(
            "stdlib/all",
            f"The context is the whole of Python's standard library (tests left out), {_CODE}.",
            stdlib_all,
        ),
        Source(
            "pydoc/topics",
            "The context is the Python documentation's help topics (what `help('topic')` shows), as a mapping "
            "from topic name to its text.",
            help_topics,
        ),
        Source(
            "licenses",
            "The context is the collection of license texts a Debian system keeps in /usr/share/common-licenses, "
            "as a mapping from file name to license text.",
            common_licenses,
        ),
        Source(
            "dpkg/status",
            "The context is the dpkg status file of a Debian system (/var/lib/dpkg/status): one record per "
            "package, with fields such as Package, Priority, Section, Installed-Size, Maintainer and Depends, "
            "records separated by blank lines.",
            dpkg_status_text,
        ),
        Source(
            "dpkg/descriptions",
            "The context is a list of the packages installed on a Debian system, one item per package with its "
            "name and its description.",
            dpkg_descriptions,
        ),
        Source(
            "debian/copyright",
            "The context is the machine-readable copyright files of a Debian system's base packages (priority "
            "required or important), as a mapping from package name to the text of its "
            "/usr/share/doc/<package>/copyright file.",
            base_copyrights,
        ),
    )
}


def load(name: str) -> Context:
    """The context of source ``name`` (read once per process)."""
    try:
        source = SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown realqa source {name!r}; known: {', '.join(SOURCES)}") from None
    return source.load()
