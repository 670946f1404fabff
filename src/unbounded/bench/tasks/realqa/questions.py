"""The questions of the evaluation set: wording, shape, input, and the code that computes each answer.

Wording is written per question (no template per shape), so an engine cannot key on a phrase.
Subjects (a class, a constant, a package) were picked because they exist in every Python from 3.11
on and in every Debian base system; the answers are not written here but computed from the input
when the set is generated, so they are right for the Python and the machine at hand. A lookup that no
longer holds (a renamed class, a missing package) raises ``MissingInputError`` naming it.

Shapes (``SHAPES``): ``value`` (a value written in code), ``where`` (the file, or file and line, that
defines a name), ``count`` (a count or sum across files or records), ``list`` (every item with a
property), ``multihop`` (a chain whose next step depends on the last answer), ``classify`` (a class
to decide per record or per function, then a count; the class is not one keyword search away).
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .code_facts import CodeBase, is_generator, returns_value
from .sources import MissingInputError, common_licenses, dpkg_packages, help_topics, installed, load, parse_copyright

SHAPES = ("value", "where", "count", "list", "multihop", "classify")
#: Scorer kinds (see ``scoring``).
KINDS = ("number", "value", "path", "path_line", "set", "name")


@dataclass(frozen=True, slots=True)
class Question:
    """One question. ``answer()`` computes the gold answer from the input; ``kind`` picks the scorer.

    ``tolerance`` is the relative error a ``number`` answer may have (0: exact). ``noun`` names what
    a ``set`` lists or a ``path`` gives, for the answer-format line; ``items`` says how ``set`` items are
    compared (``name``: Python names, a dotted prefix dropped; ``path``: file names, ``.py`` optional;
    ``plain``: as written).
    """

    qid: str
    shape: str
    source: str
    text: str
    kind: str
    answer: Callable[[], Any]
    tolerance: float = 0.0
    noun: str = ""
    items: str = "name"


@functools.cache
def code(source: str) -> CodeBase:
    return CodeBase(load(source), what=f"the {source} input")  # type: ignore[arg-type]


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MissingInputError(f"realqa: expected a number, the source holds {value!r}")
    return int(value) if float(value).is_integer() else float(value)


def _packages() -> list[dict[str, str]]:
    return installed(dpkg_packages())


def _package(name: str) -> dict[str, str]:
    for p in _packages():
        if p["Package"] == name:
            return p
    raise MissingInputError(f"realqa: the package {name!r} is not installed (it is part of every Debian base system)")


def _section_count(section: str) -> int:
    return sum(1 for p in _packages() if p.get("Section", "").split("/")[-1] == section)


def _files_paragraphs(text: str) -> list[Any]:
    parsed = parse_copyright(text)
    return [] if parsed is None else list(parsed.all_files_paragraphs())


def _main_license(text: str) -> str:
    """The license of a DEP-5 file's ``Files: *`` stanza (its first ``Files`` stanza when none says ``*``)."""
    paragraphs = _files_paragraphs(text)
    for para in paragraphs:
        if tuple(para.files) == ("*",):
            return para.license.synopsis if para.license else ""
    return paragraphs[0].license.synopsis if paragraphs and paragraphs[0].license else ""


def _licenses_named(text: str) -> set[str]:
    return {p.license.synopsis.strip() for p in _files_paragraphs(text) if p.license and p.license.synopsis.strip()}


# --------------------------------------------------------------------------- value


def _value_tls() -> Any:
    return _number(code("stdlib/asyncio").module_value("asyncio/constants.py", "SSL_HANDSHAKE_TIMEOUT"))


def _value_linelen() -> Any:
    cb = code("stdlib/email")
    return _number(cb.class_value(cb.the("Policy", kind="class", path="email/_policybase.py"), "max_line_length"))


def _value_tcp_port() -> Any:
    return _number(code("stdlib/logging").module_value("logging/handlers.py", "DEFAULT_TCP_LOGGING_PORT"))


def _value_protocol() -> Any:
    cb = code("stdlib/http")
    return str(cb.class_value(cb.the("BaseHTTPRequestHandler", kind="class"), "protocol_version"))


def _value_maxdiff() -> Any:
    cb = code("stdlib/unittest")
    return _number(cb.class_value(cb.the("TestCase", kind="class", path="unittest/case.py"), "maxDiff"))


def _value_lru() -> Any:
    cb = code("stdlib/top")
    fn = cb.the("lru_cache", kind="function", path="functools.py")
    return _number(cb.evaluate(fn.path, cb.default(fn, "maxsize")))


def _value_wrap_width() -> Any:
    cb = code("stdlib/top")
    init = cb.method(cb.the("TextWrapper", kind="class", path="textwrap.py"), "__init__")
    return _number(cb.evaluate(init.path, cb.default(init, "width")))


def _value_serializer() -> Any:
    cb = code("stdlib/multiprocessing")
    init = cb.method(cb.the("BaseManager", kind="class"), "__init__")
    return str(cb.evaluate(init.path, cb.default(init, "serializer")))


# --------------------------------------------------------------------------- where


def _where(source: str, name: str, kind: str, *, line: bool = False) -> Callable[[], str]:
    def answer() -> str:
        d = code(source).the(name, kind=kind)
        return f"{d.path}:{d.line}" if line else d.path

    return answer


# --------------------------------------------------------------------------- count


def _count_class_files() -> int:
    cb = code("stdlib/asyncio")
    return sum(1 for p in cb.paths() if any(d.is_class for d in cb.definitions(p)))


def _count_imports_re() -> int:
    cb = code("stdlib/email")
    return sum(1 for p in cb.paths() if cb.imports(p, "re"))


def _count_handler_subclasses() -> int:
    from .code_facts import base_names

    cb = code("stdlib/logging")
    return sum(1 for d in cb.all_definitions() if d.is_class and "Handler" in base_names(d.node))  # type: ignore[arg-type]


def _count_essential() -> int:
    return sum(1 for p in _packages() if p.get("Essential", "").strip() == "yes")


def _count_required_size() -> int:
    sizes = [
        int(p["Installed-Size"]) for p in _packages() if p.get("Priority") == "required" and p.get("Installed-Size")
    ]
    if not sizes:
        raise MissingInputError("realqa: no installed package of priority required has an Installed-Size")
    return sum(sizes)


def _count_topic_examples() -> int:
    return sum(1 for text in help_topics().values() if re.search(r"^\s*>>>", text, re.MULTILINE))


def _count_error_classes() -> int:
    cb = code("stdlib/top")
    return len({d.path for d in cb.find("Error", kind="class") if d.top_level})


def _count_fsf() -> int:
    return sum(1 for text in common_licenses().values() if re.search(r"Free\s+Software\s+Foundation", text))


# --------------------------------------------------------------------------- list


def _list_utils_functions() -> list[str]:
    cb = code("stdlib/email")
    return sorted(
        d.name
        for d in cb.definitions("email/utils.py")
        if d.top_level and not d.is_class and not d.name.startswith("_")
    )


def _list_asyncio_exceptions() -> list[str]:
    return sorted(d.name for d in code("stdlib/asyncio").exception_classes("asyncio/exceptions.py") if d.top_level)


def _list_handler_classes() -> list[str]:
    return sorted(
        d.name for d in code("stdlib/logging").definitions("logging/handlers.py") if d.is_class and d.top_level
    )


def _list_5xx() -> list[str]:
    cb = code("stdlib/http")
    cls = cb.the("HTTPStatus", kind="class")
    names = []
    for node in cls.node.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Tuple) and value.elts and isinstance(value.elts[0], ast.Constant):
                code_ = value.elts[0].value
                if isinstance(code_, int) and 500 <= code_ <= 599:
                    names.append(node.targets[0].id)
    if not names:
        raise MissingInputError("realqa: HTTPStatus defines no 5xx member in this Python")
    return sorted(names)


def _list_nonlocal_topics() -> list[str]:
    return sorted(k for k, text in help_topics().items() if re.search(r"\bnonlocal\b", text))


def _list_mock_asserts() -> list[str]:
    cb = code("stdlib/unittest")
    cls = cb.the("NonCallableMock", kind="class")
    return sorted(
        d.name
        for d in cb.definitions(cls.path)
        if d.qualname == f"{cls.qualname}.{d.name}" and not d.is_class and d.name.startswith("assert_")
    )


def _list_main_modules() -> list[str]:
    return sorted({d.path for d in code("stdlib/top").find("main", kind="function") if d.top_level})


def _list_util_linux() -> list[str]:
    def source_of(p: dict[str, str]) -> str:
        return (p.get("Source") or p["Package"]).split()[0]

    names = sorted(p["Package"] for p in _packages() if source_of(p) == "util-linux")
    if not names:
        raise MissingInputError("realqa: no installed package is built from util-linux (every Debian system has some)")
    return names


# --------------------------------------------------------------------------- multihop


def _hop_stream_limit() -> Any:
    cb = code("stdlib/asyncio")
    init = cb.method(cb.the("StreamReader", kind="class", path="asyncio/streams.py"), "__init__")
    return _number(cb.evaluate(init.path, cb.default(init, "limit")))


def _hop_gzip_level() -> Any:
    cb = code("stdlib/top")
    init = cb.method(cb.the("GzipFile", kind="class", path="gzip.py"), "__init__")
    return _number(cb.evaluate(init.path, cb.default(init, "compresslevel")))


def _hop_server_version() -> Any:
    cb = code("stdlib/http")
    return str(cb.class_value(cb.the("SimpleHTTPRequestHandler", kind="class"), "server_version"))


def _hop_base_file(source: str, cls_name: str, pick: Callable[[list[str]], str]) -> Callable[[], str]:
    """Where the base class that ``pick`` chooses among ``cls_name``'s bases is defined."""

    def answer() -> str:
        from .code_facts import base_names

        cb = code(source)
        cls = cb.the(cls_name, kind="class")
        base = pick(base_names(cls.node))  # type: ignore[arg-type]
        return cb.the(base, kind="class").path

    return answer


def _first(names: list[str]) -> str:
    if not names:
        raise MissingInputError("realqa: the class has no base class in this Python")
    return names[0]


def _mixin(names: list[str]) -> str:
    mixins = [n for n in names if n.endswith("MixIn")]
    if len(mixins) != 1:
        raise MissingInputError(f"realqa: expected one mix-in base, found {names}")
    return mixins[0]


def _hop_tar_format() -> Any:
    cb = code("stdlib/all")
    path = cb.the("TarFile", kind="class").path
    return _number(cb.module_value(path, "DEFAULT_FORMAT"))


def _hop_bash_maintainer() -> str:
    from debian.deb822 import PkgRelation

    field = _package("bash").get("Pre-Depends") or ""
    relations = PkgRelation.parse_relations(field)
    if not relations:
        raise MissingInputError("realqa: the installed bash package has no Pre-Depends field")
    first = relations[0][0]["name"]
    maintainer = _package(first).get("Maintainer", "")
    return re.sub(r"\s*<[^>]*>\s*$", "", maintainer).strip()


def _hop_lgpl_predecessor() -> str:
    texts = common_licenses()
    if "LGPL-2.1" not in texts:
        raise MissingInputError("realqa: /usr/share/common-licenses has no LGPL-2.1")
    m = re.search(r"successor\s+of\s+the\s+GNU\s+Library\s+Public\s+License,\s+version\s+(\d+)", texts["LGPL-2.1"])
    if m is None:
        raise MissingInputError("realqa: the LGPL-2.1 text does not name the license it succeeds")
    title = re.compile(rf"GNU\s+LIBRARY\s+GENERAL\s+PUBLIC\s+LICENSE\s+Version\s+{m.group(1)}\b", re.IGNORECASE)
    keys = [k for k, text in texts.items() if title.search(text[:2_000])]
    if len(keys) != 1:
        raise MissingInputError(f"realqa: expected one text of the GNU Library GPL version {m.group(1)}, found {keys}")
    return keys[0]


# --------------------------------------------------------------------------- classify


def _cls_generators() -> int:
    return sum(1 for d in code("stdlib/email").functions() if is_generator(d.node))  # type: ignore[arg-type]


def _cls_exceptions() -> int:
    return len(code("stdlib/xml").exception_classes())


def _cls_procedures() -> int:
    fns = code("stdlib/multiprocessing").functions()
    return sum(1 for d in fns if not returns_value(d.node) and not is_generator(d.node))  # type: ignore[arg-type]


def _cls_no_dependencies() -> int:
    return sum(1 for p in _packages() if "Depends" not in p and "Pre-Depends" not in p)


def _cls_gnu_main_license() -> int:
    texts = load("debian/copyright")
    assert isinstance(texts, dict)
    return sum(1 for text in texts.values() if re.search(r"\b[LA]?GPL", _main_license(text)))


def _cls_several_licenses() -> int:
    texts = load("debian/copyright")
    assert isinstance(texts, dict)
    return sum(1 for text in texts.values() if len(_licenses_named(text)) >= 2)


# --------------------------------------------------------------------------- the set

Q = Question

QUESTIONS: tuple[Question, ...] = (
    # value ------------------------------------------------------------------------------------
    Q("value-asyncio-tls-timeout", "value", "stdlib/asyncio",
      "By default, how many seconds does asyncio give a TLS handshake to complete before it aborts the connection?",
      "number", _value_tls),
    Q("value-email-line-length", "value", "stdlib/email",
      "Unless a policy says otherwise, how many characters may a line of a message header have before the email "
      "package folds it onto the next line?",
      "number", _value_linelen),
    Q("value-logging-tcp-port", "value", "stdlib/logging",
      "What is the default TCP port for sending log records over the network, as the logging package defines it?",
      "number", _value_tcp_port),
    Q("value-http-protocol-version", "value", "stdlib/http",
      "Which HTTP protocol version does `BaseHTTPRequestHandler` speak in its responses unless a subclass changes it?",
      "value", _value_protocol),
    Q("value-unittest-maxdiff", "value", "stdlib/unittest",
      "What is `maxDiff` set to on `unittest.TestCase`, that is the longest diff a failed assertion shows by default? "
      "Give it as a number.",
      "number", _value_maxdiff),
    Q("value-functools-lru-maxsize", "value", "stdlib/top",
      "If you decorate a function with `functools.lru_cache` and give no size, at most how many results does the "
      "cache keep?",
      "number", _value_lru),
    Q("value-textwrap-width", "value", "stdlib/top",
      "A `textwrap.TextWrapper` created without arguments wraps text to what line width?",
      "number", _value_wrap_width),
    Q("value-manager-serializer", "value", "stdlib/multiprocessing",
      "When you create a multiprocessing `BaseManager` without choosing a serializer, which one does it use? Give its "
      "name as the source spells it.",
      "value", _value_serializer),
    # where ------------------------------------------------------------------------------------
    Q("where-asyncio-taskgroup", "where", "stdlib/asyncio",
      "Which file of the package defines the `TaskGroup` class?",
      "path", _where("stdlib/asyncio", "TaskGroup", "class")),
    Q("where-email-decode-rfc2231", "where", "stdlib/email",
      "In which module is the function `decode_rfc2231` implemented?",
      "path", _where("stdlib/email", "decode_rfc2231", "function")),
    Q("where-logging-queuelistener", "where", "stdlib/logging",
      "Where is `QueueListener` defined? I need the file and the line number of its `class` statement.",
      "path_line", _where("stdlib/logging", "QueueListener", "class", line=True)),
    Q("where-http-parse-headers", "where", "stdlib/http",
      "Point me to the definition of `parse_headers`: which file is it in, and on which line does its `def` start?",
      "path_line", _where("stdlib/http", "parse_headers", "function", line=True)),
    Q("where-importlib-sourcefileloader", "where", "stdlib/importlib",
      "`SourceFileLoader` can be imported from more than one module of importlib, but only one file actually defines "
      "the class. Which file is that?",
      "path", _where("stdlib/importlib", "SourceFileLoader", "class")),
    Q("where-fraction", "where", "stdlib/top",
      "Which module is the class `Fraction` defined in?",
      "path", _where("stdlib/top", "Fraction", "class")),
    Q("where-sequencematcher", "where", "stdlib/all",
      "Find the class `SequenceMatcher`: give the file that defines it and the line of its `class` statement.",
      "path_line", _where("stdlib/all", "SequenceMatcher", "class", line=True)),
    Q("where-urlsplit", "where", "stdlib/all",
      "Which source file holds the definition of the function `urlsplit`?",
      "path", _where("stdlib/all", "urlsplit", "function")),
    # count ------------------------------------------------------------------------------------
    Q("count-asyncio-files-with-classes", "count", "stdlib/asyncio",
      "In how many of the package's files is at least one class defined?",
      "number", _count_class_files),
    Q("count-email-modules-importing-re", "count", "stdlib/email",
      "How many modules of the email package import the regular-expression module `re`?",
      "number", _count_imports_re),
    Q("count-logging-handler-subclasses", "count", "stdlib/logging",
      "How many classes in the logging package name `Handler` as one of their direct base classes?",
      "number", _count_handler_subclasses),
    Q("count-dpkg-essential", "count", "dpkg/status",
      "How many installed packages are marked as essential?",
      "number", _count_essential),
    Q("count-dpkg-required-size", "count", "dpkg/status",
      "What is the total installed size, in KiB, of all the packages with priority `required`? Add up their "
      "`Installed-Size` fields.",
      "number", _count_required_size),
    Q("count-topics-with-examples", "count", "pydoc/topics",
      "How many help topics contain at least one interactive example, that is a line starting with the `>>>` prompt?",
      "number", _count_topic_examples),
    Q("count-modules-defining-error", "count", "stdlib/top",
      "Across these modules, how many define a top-level class called `Error`?",
      "number", _count_error_classes),
    Q("count-licenses-naming-fsf", "count", "licenses",
      "In how many of these license texts is the Free Software Foundation mentioned?",
      "number", _count_fsf),
    # list -------------------------------------------------------------------------------------
    Q("list-email-utils-functions", "list", "stdlib/email",
      "List the public functions (no leading underscore) that `email/utils.py` defines at its top level.",
      "set", _list_utils_functions, noun="function name"),
    Q("list-asyncio-exceptions", "list", "stdlib/asyncio",
      "Name every exception class defined in `asyncio/exceptions.py`.",
      "set", _list_asyncio_exceptions, noun="class name"),
    Q("list-logging-handlers-classes", "list", "stdlib/logging",
      "Which classes does `logging/handlers.py` define? I want all of their names.",
      "set", _list_handler_classes, noun="class name"),
    Q("list-http-server-errors", "list", "stdlib/http",
      "Which members of `HTTPStatus` stand for server errors, with codes from 500 to 599?",
      "set", _list_5xx, noun="member name"),
    Q("list-topics-nonlocal", "list", "pydoc/topics",
      "Which help topics contain the word `nonlocal` anywhere in their text?",
      "set", _list_nonlocal_topics, noun="topic name", items="plain"),
    Q("list-mock-assert-methods", "list", "stdlib/unittest",
      "Which methods of `unittest.mock.NonCallableMock` have names beginning with `assert_`?",
      "set", _list_mock_asserts, noun="method name"),
    Q("list-modules-with-main", "list", "stdlib/top",
      "Which of these modules define a function called `main` at their top level?",
      "set", _list_main_modules, noun="file name", items="path"),
    Q("list-util-linux-binaries", "list", "dpkg/status",
      "Which installed packages are built from the `util-linux` source package?",
      "set", _list_util_linux, noun="package name", items="plain"),
    # multihop ---------------------------------------------------------------------------------
    Q("hop-stream-reader-limit", "multihop", "stdlib/asyncio",
      "What is the default buffer limit of an asyncio `StreamReader`, in bytes?",
      "number", _hop_stream_limit),
    Q("hop-gzip-default-level", "multihop", "stdlib/top",
      "`gzip.GzipFile` compresses at some level when you do not pass one. Which level is it?",
      "number", _hop_gzip_level),
    Q("hop-simple-server-version", "multihop", "stdlib/http",
      "What does `SimpleHTTPRequestHandler` put in its `server_version`, spelled out in full?",
      "value", _hop_server_version),
    Q("hop-mimetext-base-file", "multihop", "stdlib/email",
      "`MIMEText` derives from another class of the email package. Which file defines that base class?",
      "path", _hop_base_file("stdlib/email", "MIMEText", _first)),
    Q("hop-tarfile-default-format", "multihop", "stdlib/all",
      "Which number does `tarfile` use for the archive format it writes by default? Give the value of the "
      "constant, not its name.",
      "number", _hop_tar_format),
    Q("hop-bash-predepends-maintainer", "multihop", "dpkg/status",
      "Who maintains the package listed first in the `Pre-Depends` field of `bash`? Give the maintainer's name "
      "without the e-mail address.",
      "name", _hop_bash_maintainer, noun="maintainer"),
    Q("hop-lgpl-predecessor-file", "multihop", "licenses",
      "The text of the LGPL version 2.1 names the earlier license it succeeds. Which file in this collection holds "
      "that earlier license?",
      "path", _hop_lgpl_predecessor, noun="file name"),
    Q("hop-threading-mixin-file", "multihop", "stdlib/all",
      "`ThreadingHTTPServer` gets its threading behaviour from a mix-in class. In which file is that mix-in defined?",
      "path", _hop_base_file("stdlib/all", "ThreadingHTTPServer", _mixin)),
    # classify ---------------------------------------------------------------------------------
    # The two description questions take their gold from each package's Section field, which the
    # context leaves out; a reader's judgement of a borderline package may differ, hence the tolerance.
    Q("classify-shared-libraries", "classify", "dpkg/descriptions",
      "Judging by their descriptions, how many of these packages are shared libraries: run-time libraries, not "
      "development files, tools or data?",
      "number", functools.partial(_section_count, "libs"), tolerance=0.1),
    Q("classify-python-packages", "classify", "dpkg/descriptions",
      "Judging by their descriptions, how many of these packages are Python packages: the interpreter and its "
      "standard library, or modules and tools for Python (shared libraries and development files aside)?",
      "number", functools.partial(_section_count, "python"), tolerance=0.1),
    Q("classify-email-generators", "classify", "stdlib/email",
      "Among the email package's functions and methods, how many are generators?",
      "number", _cls_generators),
    Q("classify-xml-exceptions", "classify", "stdlib/xml",
      "Count the exception classes of the xml package: how many of its classes derive from an exception, directly "
      "or through other base classes?",
      "number", _cls_exceptions),
    Q("classify-multiprocessing-procedures", "classify", "stdlib/multiprocessing",
      "How many functions and methods in the multiprocessing package never return a value: every `return` in them "
      "is bare or `return None`, and they are not generators?",
      "number", _cls_procedures, tolerance=0.05),
    Q("classify-packages-without-dependencies", "classify", "dpkg/status",
      "How many installed packages declare no dependency at all, with neither a `Depends` nor a `Pre-Depends` field?",
      "number", _cls_no_dependencies),
    Q("classify-gnu-main-license", "classify", "debian/copyright",
      "For how many of these packages may the main files (the `Files: *` stanza) be used under some version of the "
      "GNU GPL or LGPL, alone or as one of the choices?",
      "number", _cls_gnu_main_license),
    Q("classify-several-licenses", "classify", "debian/copyright",
      "How many of these copyright files apply more than one license, that is their `Files` stanzas name at least "
      "two different licenses?",
      "number", _cls_several_licenses),
)  # fmt: skip


def by_id() -> dict[str, Question]:
    return {q.qid: q for q in QUESTIONS}
