"""Facts about Python source, read with ``ast``: the answers of the code questions.

``CodeBase`` wraps a ``{path: source}`` context. Files are parsed on first use and only when a
cheap text search says they can hold what is asked, so a question about a 12M-character context
parses a handful of files. Every lookup that expects one answer raises ``MissingInputError`` when it
finds none or several, naming what it looked for, so a Python version where a question no longer
holds fails loudly instead of producing a wrong gold answer.
"""

from __future__ import annotations

import ast
import builtins
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .sources import MissingInputError

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True, slots=True)
class Definition:
    """A ``def`` or ``class`` statement: where it is and what it is."""

    path: str
    qualname: str
    node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def line(self) -> int:
        return self.node.lineno

    @property
    def is_class(self) -> bool:
        return isinstance(self.node, ast.ClassDef)

    @property
    def top_level(self) -> bool:
        return "." not in self.qualname


def _walk_defs(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, ast.ClassDef | FunctionNode]]:
    """Every def/class with its qualified name, including those under ``if``/``try``/``with`` blocks."""
    for node in body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            qual = prefix + node.name
            yield qual, node
            yield from _walk_defs(node.body, qual + ".")
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for block in ("body", "orelse", "finalbody"):
                yield from _walk_defs(getattr(node, block, []) or [], prefix)
            for handler in getattr(node, "handlers", []) or []:
                yield from _walk_defs(handler.body, prefix)
        elif hasattr(ast, "TryStar") and isinstance(node, ast.TryStar):  # pragma: no cover - rare
            yield from _walk_defs(node.body, prefix)


def own_nodes(fn: FunctionNode) -> Iterator[ast.AST]:
    """The nodes of a function's own body: nested functions, lambdas and classes are not entered."""
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
                stack.append(child)


def is_generator(fn: FunctionNode) -> bool:
    return any(isinstance(n, ast.Yield | ast.YieldFrom) for n in own_nodes(fn))


def returns_value(fn: FunctionNode) -> bool:
    """Whether the function's own body has a ``return`` with a value other than a literal ``None``."""
    return any(
        isinstance(n, ast.Return)
        and n.value is not None
        and not (isinstance(n.value, ast.Constant) and n.value.value is None)
        for n in own_nodes(fn)
    )


def base_names(node: ast.ClassDef) -> list[str]:
    """The last name of each base: ``logging.Handler`` → ``Handler``."""
    out = []
    for b in node.bases:
        if isinstance(b, ast.Name):
            out.append(b.id)
        elif isinstance(b, ast.Attribute):
            out.append(b.attr)
    return out


_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.LShift: operator.lshift,
    ast.BitOr: operator.or_,
}


class CodeBase:
    """Parsed, searchable view of a ``{path: source}`` mapping."""

    def __init__(self, files: Mapping[str, str], what: str = "the context") -> None:
        self.files = files
        self.what = what
        self._trees: dict[str, ast.Module] = {}
        self._defs: dict[str, list[Definition]] = {}

    # -- parsing -------------------------------------------------------------------------------
    def tree(self, path: str) -> ast.Module:
        if path not in self._trees:
            try:
                self._trees[path] = ast.parse(self.files[path])
            except KeyError:
                raise MissingInputError(f"realqa: {self.what} has no file {path!r}") from None
            except (SyntaxError, ValueError):
                self._trees[path] = ast.Module(body=[], type_ignores=[])
        return self._trees[path]

    def definitions(self, path: str) -> list[Definition]:
        if path not in self._defs:
            self._defs[path] = [Definition(path, q, n) for q, n in _walk_defs(self.tree(path).body, "")]
        return self._defs[path]

    def paths(self, prefix: str = "") -> list[str]:
        return [p for p in self.files if p.startswith(prefix)]

    def all_definitions(self, prefix: str = "") -> Iterator[Definition]:
        for path in self.paths(prefix):
            yield from self.definitions(path)

    # -- lookups ---------------------------------------------------------------------------------
    def find(self, name: str, *, kind: str | None = None, path: str | None = None) -> list[Definition]:
        """Every def/class statement named ``name`` (``kind``: ``class`` or ``function``), anywhere or in one file."""
        pattern = re.compile(rf"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+{re.escape(name)}\b", re.MULTILINE)
        found = []
        for p in [path] if path else self.files:
            if p not in self.files:
                raise MissingInputError(f"realqa: {self.what} has no file {p!r}")
            if not pattern.search(self.files[p]):
                continue
            for d in self.definitions(p):
                if d.name == name and (kind is None or d.is_class == (kind == "class")):
                    found.append(d)
        return found

    def the(
        self, name: str, *, kind: str | None = None, path: str | None = None, qualname: str | None = None
    ) -> Definition:
        """The one definition of ``name`` (optionally with this qualified name); raises if none or several."""
        found = self.find(name, kind=kind, path=path)
        if qualname is not None:
            found = [d for d in found if d.qualname == qualname]
        where = f" in {path}" if path else ""
        if len(found) != 1:
            places = ", ".join(f"{d.path}:{d.line}" for d in found) or "nowhere"
            raise MissingInputError(
                f"realqa: expected one definition of {qualname or name!r}{where} in {self.what}, found {places}; "
                "this Python's standard library differs from what the question assumes"
            )
        return found[0]

    def method(self, cls: Definition, name: str) -> Definition:
        for d in self.definitions(cls.path):
            if d.qualname == f"{cls.qualname}.{name}":
                return d
        raise MissingInputError(f"realqa: {cls.qualname} in {cls.path} has no method {name!r}")

    def default(self, fn: Definition, param: str) -> ast.expr:
        """The default expression of parameter ``param`` of ``fn``."""
        node = fn.node
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        a = node.args
        positional = [*a.posonlyargs, *a.args]
        pairs = list(zip(positional[len(positional) - len(a.defaults) :], a.defaults, strict=True))
        pairs += [(arg, d) for arg, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None]
        for arg, d in pairs:
            if arg.arg == param:
                return d
        raise MissingInputError(f"realqa: {fn.qualname} in {fn.path} has no parameter {param!r} with a default")

    def assigned(self, body: list[ast.stmt], name: str, where: str) -> ast.expr:
        """The value last assigned to ``name`` by a plain or annotated assignment in ``body``."""
        value = None
        for node in body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == name:
                        value = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
                value = node.value
        if value is None:
            raise MissingInputError(f"realqa: {where} assigns no {name!r}")
        return value

    def module_value(self, path: str, name: str) -> Any:
        """A top-level constant of ``path``, evaluated (names it refers to are followed in the same file)."""
        return self.evaluate(path, self.assigned(self.tree(path).body, name, path))

    def class_value(self, cls: Definition, name: str) -> Any:
        assert isinstance(cls.node, ast.ClassDef)
        return self.evaluate(cls.path, self.assigned(cls.node.body, name, f"class {cls.qualname} in {cls.path}"))

    def evaluate(self, path: str, expr: ast.expr, depth: int = 0) -> Any:
        """A constant expression's value: literals, arithmetic, tuples and names bound in the same file."""
        if depth > 20:
            raise MissingInputError(f"realqa: constant in {path} refers to itself")
        if isinstance(expr, ast.Constant):
            return expr.value
        if isinstance(expr, ast.Tuple | ast.List):
            return tuple(self.evaluate(path, e, depth + 1) for e in expr.elts)
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
            return -self.evaluate(path, expr.operand, depth + 1)
        if isinstance(expr, ast.BinOp) and type(expr.op) in _BINOPS:
            left = self.evaluate(path, expr.left, depth + 1)
            right = self.evaluate(path, expr.right, depth + 1)
            return _BINOPS[type(expr.op)](left, right)
        if isinstance(expr, ast.Name):
            return self.evaluate(path, self.assigned(self.tree(path).body, expr.id, path), depth + 1)
        raise MissingInputError(f"realqa: cannot evaluate {ast.unparse(expr)!r} in {path} as a constant")

    # -- classifications -----------------------------------------------------------------------
    def exception_classes(self, prefix: str = "") -> list[Definition]:
        """Classes that derive, directly or through other classes of the context, from ``BaseException``.

        Bases are matched by their last name (``exceptions.CancelledError`` → ``CancelledError``):
        first Python's built-in exceptions, then the context's own exception classes, until nothing changes.
        """
        classes = [d for d in self.all_definitions(prefix) if d.is_class]
        known = {
            n
            for n in dir(builtins)
            if isinstance(getattr(builtins, n), type) and issubclass(getattr(builtins, n), BaseException)
        }
        found: dict[tuple[str, str], Definition] = {}
        changed = True
        while changed:
            changed = False
            for d in classes:
                key = (d.path, d.qualname)
                if key in found:
                    continue
                assert isinstance(d.node, ast.ClassDef)
                if any(b in known for b in base_names(d.node)):
                    found[key] = d
                    known.add(d.name)
                    changed = True
        return sorted(found.values(), key=lambda d: (d.path, d.line))

    def functions(self, prefix: str = "") -> list[Definition]:
        return [d for d in self.all_definitions(prefix) if not d.is_class]

    def imports(self, path: str, module: str) -> bool:
        """Whether ``path`` imports ``module`` (``import m``, ``import m as x``, ``from m import ...``)."""
        for node in ast.walk(self.tree(path)):
            if isinstance(node, ast.Import) and any(a.name == module for a in node.names):
                return True
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == module:
                return True
        return False
