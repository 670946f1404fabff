"""Where Python code defines things: the ``definitions`` REPL helper.

``definitions(name)`` finds every class, function, method and variable of that name in the Python
sources of the context (``*.py`` keys of a dict, or a str or list of sources) and says where each is
(key, line) and what it is: its kind, qualified name, bases (classes), value (variables) and whole
source. ``definitions(key="pkg/mod.py")`` lists everything a file defines. Parsing uses ``ast`` (no
code is run); a file is parsed once per run, and with a name only files that contain it are parsed.

Worker-side module: standard library only, no ``typing`` or ``dataclasses``.
"""

from __future__ import annotations

import ast
from collections import namedtuple
from collections.abc import Mapping

from .._lazy import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

class Definition(namedtuple("Definition", "key line end_line kind name qualname bases value source")):
    """One definition. ``kind`` is ``module`` (a whole file), ``class``, ``function``, ``method`` or ``variable``; ``qualname``
    is ``Class.method`` for members; ``bases`` lists a class's bases as written; ``value`` is a
    variable's value as written (None for the others); ``source`` (also ``text``, as search hits have
    it) is the definition's code."""

    __slots__ = ()

    @property
    def text(self) -> str:
        return self.source

    @property
    def resolved(self) -> str | None:
        """A variable's value with the names it is made of followed through its file's module-level
        variables and plain arithmetic worked out (``DEFAULT_FORMAT = PAX_FORMAT``, ``PAX_FORMAT = 2`` → ``"2"``);
        None for anything but a variable."""
        if self.kind != "variable" or self.value is None:
            return None
        table = _MODULE_VARIABLES.get(self.key) or {}
        value, seen = self.value.strip(), {self.name}
        for _ in range(8):
            number = arithmetic(value, _numbers_of(table, seen))
            if number is not None:
                return str(number)
            target = table.get(value) if value.isidentifier() else None
            if target is None or value in seen or target.value is None:
                return value
            seen.add(value)
            value = target.value.strip()
        return value

    def brief(self, limit: int = 6000) -> str:
        """What a reader needs of this definition in at most ``limit`` characters: the source, or when it
        is longer an outline of it (docstrings left out, each method reduced to its signature,
        class-level statements kept and put first: where defaults usually are), followed by the module-level
        constants of its file that it names (``limit=_DEFAULT_LIMIT`` → ``_DEFAULT_LIMIT = 2 ** 16``),
        their values worked out where they are plain arithmetic."""
        text = abridge(self.source, limit)
        notes = used_constants(self, text)
        if notes:
            block = "\n# Names it uses, as its file defines them:\n" + "\n".join(notes)
            text = text[: max(0, limit - len(block))] + block if len(text) + len(block) > limit else text + block
        return text

    def __repr__(self) -> str:
        return f"<{self.kind} {self.qualname} at {self.key}:{self.line}>"

_ORDER = {"module": 0, "class": 1, "function": 2, "method": 3, "variable": 4}
_CACHE: dict[tuple[int, Any], list[Any]] = {}
#: Module-level variables of each parsed file, by key: what ``used_constants`` looks names up in.
_MODULE_VARIABLES: dict[Any, dict[str, Any]] = {}
_NAME = __import__("re").compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")


def _module_name(key: Any) -> str:
    text = str(key)
    if text.endswith(".py"):
        text = text[:-3]
    if text.endswith("/__init__"):
        text = text[: -len("/__init__")]
    return text.replace("/", ".")


def _segment(lines: list[str], node: ast.AST) -> str:
    start = getattr(node, "decorator_list", None)
    first = min([d.lineno for d in start] + [node.lineno]) if start else node.lineno
    return "\n".join(lines[first - 1 : (node.end_lineno or node.lineno)])


def _parse(key: Any, text: str) -> list[Any]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    lines = text.splitlines()
    module = _module_name(key) if key is not None else ""
    short = module.rsplit(".", 1)[-1]
    out: list[Any] = [Definition(key, 1, len(lines), "module", short, module or short, [], None, text)] if module else []

    def visit(body: list[ast.stmt], owner: str | None) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                qual = f"{owner}.{node.name}" if owner else node.name
                bases = [ast.get_source_segment(text, b) or "" for b in node.bases]
                out.append(
                    Definition(key, node.lineno, node.end_lineno, "class", node.name, qual, bases, None,
                               _segment(lines, node))
                )  # fmt: skip
                visit(node.body, qual)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                qual = f"{owner}.{node.name}" if owner else node.name
                kind = "method" if owner else "function"
                out.append(
                    Definition(key, node.lineno, node.end_lineno, kind, node.name, qual, [], None,
                               _segment(lines, node))
                )  # fmt: skip
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = ast.get_source_segment(text, node.value) if node.value is not None else None
                for target in targets:
                    names = target.elts if isinstance(target, ast.Tuple) else [target]
                    for t in names:
                        if isinstance(t, ast.Name):
                            qual = f"{owner}.{t.id}" if owner else t.id
                            out.append(
                                Definition(key, node.lineno, node.end_lineno, "variable", t.id, qual, [],
                                           value, _segment(lines, node))
                            )  # fmt: skip
            elif isinstance(node, ast.If | ast.Try):  # definitions under `if TYPE_CHECKING:`, `try: import`
                visit(node.body, owner)
                for extra in (getattr(node, "orelse", []), *(h.body for h in getattr(node, "handlers", []))):
                    visit(extra, owner)

    visit(tree.body, None)
    _MODULE_VARIABLES[key] = {d.name: d for d in out if d.kind == "variable" and d.qualname == d.name}
    return out


def used_constants(d: Any, text: str, limit: int = 8) -> list[str]:
    """``name = value  (key:line)`` for the module-level variables of ``d``'s file that ``text`` names."""
    table = _MODULE_VARIABLES.get(d.key) or {}
    notes: list[str] = []
    for name in dict.fromkeys(_NAME.findall(text)):
        var = table.get(name)
        if var is None or name == d.name or var.value is None:
            continue
        value = var.value if len(var.value) <= 200 else var.value[:200] + " …"
        worked = arithmetic(var.value, _numbers_of(table, {name}))
        notes.append(f"{name} = {value}" + (f"  (= {worked})" if worked is not None and str(worked) != var.value else "")
                     + f"  ({d.key}:{var.line})")  # fmt: skip
        if len(notes) >= limit:
            break
    return notes


def _numbers_of(table: dict[str, Any], seen: set[str]) -> Any:
    """A lookup of the numeric value of a module-level name (followed through other names), for ``arithmetic``."""

    def lookup(name: str) -> int | float | None:
        var = table.get(name)
        if var is None or name in seen or var.value is None:
            return None
        return arithmetic(var.value, _numbers_of(table, seen | {name}))

    return lookup


def arithmetic(expression: str, names: Any = None) -> int | float | None:
    """The value of a constant expression of numbers and + - * / // % ** (else None); never runs code.
    ``names`` (a function of a name) may give the numeric value of the names in it."""
    try:
        node = ast.parse(expression, mode="eval").body
    except (SyntaxError, ValueError, RecursionError):
        return None

    def ev(n: ast.AST) -> Any:
        if isinstance(n, ast.Constant) and isinstance(n.value, int | float) and not isinstance(n.value, bool):
            return n.value
        if isinstance(n, ast.Name) and names is not None:
            v = names(n.id)
            if v is None:
                raise ValueError("unknown name")
            return v
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub | ast.UAdd):
            v = ev(n.operand)
            return -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.BinOp):
            a, b = ev(n.left), ev(n.right)
            if isinstance(n.op, ast.Pow) and (abs(b) > 64 or abs(a) > 1e6):
                raise ValueError("too big")
            ops = {ast.Add: a.__add__, ast.Sub: a.__sub__, ast.Mult: a.__mul__, ast.Div: a.__truediv__,
                   ast.FloorDiv: a.__floordiv__, ast.Mod: a.__mod__, ast.Pow: a.__pow__}  # fmt: skip
            fn = ops.get(type(n.op))
            if fn is None:
                raise ValueError("operator")
            return fn(b)
        raise ValueError("not arithmetic")

    try:
        value = ev(node)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError, AttributeError):
        return None
    return value if isinstance(value, int | float) else None


def _sources(data: Any) -> list[tuple[Any, str]]:
    if isinstance(data, str):
        return [(None, data)]
    if isinstance(data, Mapping):
        items = [(k, v) for k, v in data.items() if isinstance(v, str)]
        py = [(k, v) for k, v in items if str(k).endswith((".py", ".pyi"))]
        return py or items
    if isinstance(data, list | tuple):
        return [(i, v) for i, v in enumerate(data) if isinstance(v, str)]
    return []


def definitions(data: Any, name: str | None = None, kind: str | None = None, key: Any = None) -> list[Any]:
    """Definitions in the Python sources of ``data``: those called ``name`` (a plain name, ``Class.method``
    or a dotted path such as ``json.decoder.JSONDecoder``), of one ``kind``, in one file ``key``."""
    if kind is not None and kind not in _ORDER:
        raise ValueError(f"definitions: kind must be one of {', '.join(_ORDER)}")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError("definitions: name must be a non-empty string")
    wanted = name.strip() if name else None
    last = wanted.rsplit(".", 1)[-1] if wanted else None
    found: list[Any] = []
    for k, text in _sources(data):
        if key is not None and k != key and not str(k).endswith("/" + str(key)):
            continue
        if last is not None and last not in text and last not in str(k):
            continue
        cache_key = (id(text), k)
        defs = _CACHE.get(cache_key)
        if defs is None:
            defs = _CACHE[cache_key] = _parse(k, text)
        module = _module_name(k) if k is not None else ""
        for d in defs:
            if kind is not None and d.kind != kind:
                continue
            full = f"{module}.{d.qualname}" if module else d.qualname
            if wanted is not None and not (
                d.name == wanted or d.qualname == wanted or full == wanted or full.endswith("." + wanted)
            ):
                continue
            found.append(d)
    if not found and wanted is not None and "." in wanted:
        found = _public_path(data, wanted, kind, key)
    found.sort(key=lambda d: (_ORDER[d.kind], d.qualname.count("."), str(d.key), d.line))
    return found


def _public_path(data: Any, wanted: str, kind: str | None, key: Any) -> list[Any]:
    """A name by the public path a package exports it under (``concurrent.futures.wait`` is defined in
    ``concurrent/futures/_base.py``): the top-level definitions of that name in the package's modules."""
    package, name = wanted.rsplit(".", 1)
    out = []
    for d in definitions(data, name, kind, key):
        module = _module_name(d.key) if d.key is not None else ""
        if d.qualname == name and (module == package or module.startswith(package + ".")):
            out.append(d)
    return out


def abridge(source: str, limit: int = 6000) -> str:
    """``source`` if it fits ``limit`` characters; else its outline (see ``Definition.brief``), cut to ``limit``."""
    if len(source) <= limit:
        return source
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source[:limit]
    lines = textwrap.dedent(source).splitlines()
    out: list[str] = []

    def header(node: ast.AST) -> list[str]:
        """The lines from a def/class statement to the colon that opens its body."""
        body_start = node.body[0].lineno if node.body else node.lineno
        first = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
        return lines[first - 1 : max(first, body_start - 1)]

    def defines(node: ast.stmt) -> bool:
        return isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)

    def walk(body: list[ast.stmt], depth: int) -> None:
        # Plain statements (assignments: the defaults) before the defs, so a cut outline keeps them
        # even when the class sets them after its methods.
        ordered = sorted(enumerate(body), key=lambda pair: (pair[0] > 0 and defines(pair[1]), pair[0]))
        for i, node in ordered:
            if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                doc = str(node.value.value).strip().splitlines()
                if doc:
                    out.append("    " * depth + f'"""{doc[0]}"""')
                continue  # the docstring: its first line is enough
            if isinstance(node, ast.ClassDef):
                out.extend(header(node))
                walk(node.body, depth + 1)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                out.extend(header(node))
                out.append("    " * (depth + 1) + "...")
            else:
                out.extend(lines[node.lineno - 1 : (node.end_lineno or node.lineno)])

    walk(tree.body, 0)
    text = "\n".join(out)
    return text if len(text) <= limit else text[:limit]


def bases_of(data: Any, item: Any, limit: int = 200) -> list[str]:
    """Every class ``item`` (a class Definition or a class name) derives from, directly or through other
    classes: bases found as classes of the context are followed (by name), and a base that is a builtin
    class brings its own ancestry (``ValueError`` → ``Exception``, ``BaseException``, ``object``)."""
    import builtins

    if isinstance(item, str):
        found = definitions(data, item, kind="class")
        if not found:
            return []
        item = found[0]
    if getattr(item, "kind", None) != "class":
        raise TypeError("bases_of takes a class definition (or a class name)")
    out: list[str] = []
    queue = list(item.bases)
    while queue and len(out) < limit:
        base = queue.pop(0).split("[", 1)[0].strip()
        name = base.rsplit(".", 1)[-1]
        if not name or name in out:
            continue
        out.append(name)
        known = [d for d in definitions(data, name, kind="class") if d.qualname == name]
        if known:
            queue.extend(known[0].bases)
            continue
        builtin = getattr(builtins, name, None)
        if isinstance(builtin, type):
            out.extend(c.__name__ for c in builtin.__mro__[1:] if c.__name__ not in out)
    return out
