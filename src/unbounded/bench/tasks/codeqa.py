"""Multiple-choice questions about a real codebase: a slice of this Python's standard library.

The context is ``{relative path: source}`` chosen per item (a seeded shuffle of the stdlib's
files, filled greedily to the requested size; test files are used only once the rest runs out).
Questions and distractors come from the code via ``ast``: where a function or class is defined,
a parameter's default value, which function another calls, how many parameters a function takes.
The gold answer is a letter; predictions are parsed leniently ("B", "(B)", "Answer: B", "B) foo").
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .answers import parse_choice_letter
from .base import CHARS_PER_TOKEN, TaskItem, check_size, context_chars, item_id, item_rng
from .stdlib import python_version, read_source, source_files

NAME = "codeqa"
LETTERS = "ABCD"
ANSWER_FORMAT = "Answer with the letter of the correct option, on the last line as `Answer: <letter>`."
_MIN_FILE_CHARS = 200
_DEF_RE = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.MULTILINE)


@dataclass(slots=True)
class Choice:
    """A generated question: text, the four options and the index of the right one."""

    kind: str
    text: str
    options: list[str]
    correct: int
    facts: dict[str, Any]


def available_tokens() -> int:
    """The largest context this interpreter's standard library can supply (tokens)."""
    return sum(f.size + len(f.path) for f in source_files() if f.size >= _MIN_FILE_CHARS) // CHARS_PER_TOKEN


def select_files(rng: random.Random, chars: int) -> dict[str, str]:
    """Whole source files totalling close to ``chars`` characters, keys sorted like a file tree."""
    files = [f for f in source_files() if f.size >= _MIN_FILE_CHARS]
    main = [f for f in files if not f.is_test]
    tests = [f for f in files if f.is_test]
    rng.shuffle(main)
    rng.shuffle(tests)
    picked: dict[str, str] = {}
    total = 0
    slack = max(chars // 100, 50)
    for f in [*main, *tests]:
        room = chars + slack - total
        if f.size + len(f.path) > room * 1.1:  # bytes >= chars, so this only skips hopeless files
            continue
        text = read_source(f)
        if text is None or len(text) < _MIN_FILE_CHARS:
            continue
        cost = len(f.path) + len(text)
        if cost > room:
            continue
        picked[f.path] = text
        total += cost
        if total >= chars - slack:
            break
    if total < chars * 0.95:
        raise ValueError(
            f"codeqa: this Python's standard library has only about {available_tokens():,} tokens of "
            f"source; asked for {chars // CHARS_PER_TOKEN:,}"
        )
    return dict(sorted(picked.items()))


@dataclass(slots=True)
class FunctionInfo:
    """A function or method found in one file, with a qualified name unique in that file."""

    path: str
    qualname: str
    node: ast.FunctionDef | ast.AsyncFunctionDef
    source: str

    @property
    def label(self) -> str:
        kind = "method" if "." in self.qualname else "function"
        return f"the {kind} `{self.qualname}` in `{self.path}`"


def _functions(path: str, text: str) -> list[FunctionInfo]:
    """Functions and methods of a file whose qualified names are unique within the file."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    found: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((prefix + node.name, node))
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body, prefix)
                visit(getattr(node, "orelse", []), prefix)

    visit(tree.body, "")
    counts: dict[str, int] = {}
    for name, _ in found:
        counts[name] = counts.get(name, 0) + 1
    out = []
    for name, node in found:
        if counts[name] == 1:
            seg = ast.get_source_segment(text, node) or ""
            out.append(FunctionInfo(path, name, node, seg))
    return out


def _param_count(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    a = node.args
    return len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + (a.vararg is not None) + (a.kwarg is not None)


def _defaults(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[tuple[str, ast.expr]]:
    a = node.args
    positional = [*a.posonlyargs, *a.args]
    pairs = list(zip(positional[len(positional) - len(a.defaults) :], a.defaults, strict=True))
    pairs += [(arg, d) for arg, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None]
    return [(arg.arg, d) for arg, d in pairs]


def _kind_of(expr: ast.expr) -> str:
    if isinstance(expr, ast.Constant):
        v = expr.value
        if v is None or isinstance(v, bool):
            return "singleton"
        return type(v).__name__
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.operand, ast.Constant):
        return type(expr.operand.value).__name__
    return type(expr).__name__


def _called_names(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            if isinstance(sub.func, ast.Name):
                names.add(sub.func.id)
            elif isinstance(sub.func, ast.Attribute):
                names.add(sub.func.attr)
    return names


class _Context:
    """Lazy facts about one generated context; only the files a question touches are parsed."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.paths = list(files)
        self._functions: dict[str, list[FunctionInfo]] = {}
        self._def_index: dict[str, list[str]] | None = None

    def functions(self, path: str) -> list[FunctionInfo]:
        if path not in self._functions:
            self._functions[path] = _functions(path, self.files[path])
        return self._functions[path]

    def def_index(self) -> dict[str, list[str]]:
        """name -> paths of every ``def``/``class`` statement with that name (one entry per statement)."""
        if self._def_index is None:
            index: dict[str, list[str]] = {}
            for path, text in self.files.items():
                for m in _DEF_RE.finditer(text):
                    index.setdefault(m.group(1), []).append(path)
            self._def_index = index
        return self._def_index

    def similar_paths(self, rng: random.Random, path: str, k: int) -> list[str]:
        """``k`` other paths, preferring the same directory and then shared name parts."""
        others = [p for p in self.paths if p != path]
        if len(others) < k:
            return []
        folder = path.rsplit("/", 1)[0] if "/" in path else ""
        stem = set(re.split(r"[/_.]", path)) - {"py", "", "__init__"}

        def closeness(p: str) -> float:
            same_dir = (p.rsplit("/", 1)[0] if "/" in p else "") == folder
            shared = len(stem & set(re.split(r"[/_.]", p)))
            return same_dir * 2 + shared + rng.random()

        others.sort(key=closeness, reverse=True)
        top = others[: max(k * 3, k)]
        return rng.sample(top, k)


def _options(rng: random.Random, gold: str, distractors: list[str]) -> tuple[list[str], int]:
    opts = [gold, *distractors[:3]]
    rng.shuffle(opts)
    return opts, opts.index(gold)


def _q_where_defined(rng: random.Random, ctx: _Context) -> Choice | None:
    index = ctx.def_index()
    path = rng.choice(ctx.paths)
    names = [n for n in set(_DEF_RE.findall(ctx.files[path])) if len(index.get(n, [])) == 1]
    names = sorted(n for n in names if not n.startswith("__") and len(n) > 3)
    if not names:
        return None
    name = rng.choice(names)
    distractors = ctx.similar_paths(rng, path, 3)
    if len(distractors) < 3:
        return None
    line = re.search(rf"^([ \t]*)(?:async[ \t]+)?(def|class)[ \t]+{re.escape(name)}\b", ctx.files[path], re.M)
    assert line is not None
    what = "class" if line.group(2) == "class" else "method" if line.group(1) else "function"
    opts, correct = _options(rng, f"`{path}`", [f"`{p}`" for p in distractors])
    text = f"In which file is the {what} `{name}` defined?"
    return Choice("where_defined", text, opts, correct, {"name": name, "path": path})


def _pick_function(rng: random.Random, ctx: _Context, want: Callable[[FunctionInfo], bool]) -> FunctionInfo | None:
    paths = ctx.paths[:]
    rng.shuffle(paths)
    for path in paths[:25]:
        funcs = [f for f in ctx.functions(path) if want(f)]
        if funcs:
            return rng.choice(funcs)
    return None


def _synth_defaults(gold: ast.expr) -> list[str]:
    """Fallback distractors of the same type as a default value."""
    text = ast.unparse(gold)
    try:
        value = ast.literal_eval(gold)
    except (ValueError, SyntaxError, TypeError):
        return []
    if value is None or isinstance(value, bool):
        return ["None", "True", "False", "0", "''"]
    if isinstance(value, int):
        return [repr(v) for v in (value + 1, value - 1, value * 2 if value else 10, 0, 1, -1, 100)]
    if isinstance(value, float):
        return [repr(v) for v in (value * 2 or 1.0, value / 2 or 0.5, value + 1.0, 0.0, 1.0)]
    if isinstance(value, str):
        return [repr(""), repr(value.upper()), repr(value.capitalize()), repr(value + "s")] if value else []
    if isinstance(value, bytes):
        return [repr(b""), repr(value.upper()), repr(value + b"s")] if value else []
    return [text + " "]


def _literals(text: str, kind: str) -> set[str]:
    """Short one-line constants of one kind (see ``_kind_of``) appearing anywhere in a file."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return set()
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and _kind_of(node) == kind:
            lit = ast.unparse(node)
            if len(lit) <= 30 and "\\n" not in lit and "\n" not in lit:
                out.add(lit)
    return out


def _q_default_value(rng: random.Random, ctx: _Context) -> Choice | None:
    # None/True/False defaults dominate real code; prefer other literals three times in four.
    skip_singletons = rng.random() < 0.75

    def usable(d: ast.expr) -> bool:
        return len(ast.unparse(d)) <= 40 and not (skip_singletons and _kind_of(d) == "singleton")

    f = _pick_function(rng, ctx, lambda f: any(usable(d) for _, d in _defaults(f.node)))
    if f is None:
        return None
    param, default = rng.choice([(p, d) for p, d in _defaults(f.node) if usable(d)])
    gold = ast.unparse(default)
    kind = _kind_of(default)
    pool: list[str] = []
    for other in ctx.functions(f.path):
        for _, d in _defaults(other.node):
            text = ast.unparse(d)
            if _kind_of(d) == kind and len(text) <= 40:
                pool.append(text)
    pool = sorted(set(pool) - {gold})
    if len(pool) < 3:  # other literals of the same type in the file are still realistic
        pool = sorted(set(pool) | (_literals(ctx.files[f.path], kind) - {gold}))
    rng.shuffle(pool)
    synth = [s for s in _synth_defaults(default) if s != gold and s not in pool]
    distractors = list(dict.fromkeys(pool[:3] + synth))
    if len(distractors) < 3:
        return None
    opts, correct = _options(rng, f"`{gold}`", [f"`{d}`" for d in distractors])
    text = f"What is the default value of the parameter `{param}` of {f.label}?"
    facts = {"path": f.path, "function": f.qualname, "param": param, "default": gold}
    return Choice("default_value", text, opts, correct, facts)


def _q_calls(rng: random.Random, ctx: _Context) -> Choice | None:
    def candidate(f: FunctionInfo) -> bool:
        local = {g.node.name for g in ctx.functions(f.path)}
        return bool(_called_names(f.node) & local - {f.node.name})

    f = _pick_function(rng, ctx, candidate)
    if f is None:
        return None
    local = sorted({g.node.name for g in ctx.functions(f.path)} - {f.node.name})
    called = sorted(_called_names(f.node) & set(local))
    gold = rng.choice(called)
    words = set(re.findall(r"\w+", f.source))
    pool = [n for n in local if n not in words and not n.startswith("__")]
    if len(pool) < 3:  # widen to functions of other files in the context
        for path in rng.sample(ctx.paths, min(len(ctx.paths), 10)):
            pool += [g.node.name for g in ctx.functions(path) if g.node.name not in words]
        pool = sorted(set(pool) - {gold})
    if len(pool) < 3:
        return None
    distractors = rng.sample(pool, 3)
    opts, correct = _options(rng, f"`{gold}`", [f"`{d}`" for d in distractors])
    text = f"Which of these functions or methods does {f.label} call directly?"
    return Choice("calls", text, opts, correct, {"path": f.path, "function": f.qualname, "callee": gold})


def _q_param_count(rng: random.Random, ctx: _Context) -> Choice | None:
    f = _pick_function(rng, ctx, lambda f: True)
    if f is None:
        return None
    gold = _param_count(f.node)
    near = [n for n in range(max(0, gold - 3), gold + 4) if n != gold]
    distractors = [str(n) for n in rng.sample(near, 3)]
    opts, correct = _options(rng, str(gold), distractors)
    text = (
        f"How many parameters does {f.label} declare? Count every parameter in its signature, "
        "including `self` or `cls`, `*args` and `**kwargs`."
    )
    return Choice("param_count", text, opts, correct, {"path": f.path, "function": f.qualname, "count": gold})


KINDS: dict[str, Callable[[random.Random, _Context], Choice | None]] = {
    "where_defined": _q_where_defined,
    "default_value": _q_default_value,
    "calls": _q_calls,
    "param_count": _q_param_count,
}


def make_question(rng: random.Random, files: dict[str, str], first_kind: str) -> Choice:
    """A question of ``first_kind`` if the context allows one, else of another kind."""
    ctx = _Context(files)
    kinds = [first_kind] + [k for k in KINDS if k != first_kind]
    for kind in kinds:
        for _ in range(20):
            q = KINDS[kind](rng, ctx)
            if q is not None:
                return q
    raise RuntimeError("codeqa: no question could be built from this context")


def generate(size_tokens: int, n: int = 1, seed: int = 0, *, kind: str | None = None) -> list[TaskItem]:
    """``n`` questions; item ``i`` asks the ``i % 4``-th kind unless ``kind`` is fixed (see ``KINDS``)."""
    check_size(size_tokens, 500)
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    chars = size_tokens * CHARS_PER_TOKEN
    items = []
    kinds = list(KINDS)
    for i in range(n):
        rng = item_rng(NAME, seed, size_tokens, i)
        files = select_files(rng, chars)
        q = make_question(rng, files, kind or kinds[i % len(kinds)])
        listing = "\n".join(f"{LETTERS[j]}) {opt}" for j, opt in enumerate(q.options))
        items.append(
            TaskItem(
                task=NAME,
                id=item_id(NAME, size_tokens, seed, i),
                size_tokens=context_chars(files) // CHARS_PER_TOKEN,
                question=(
                    f"The context is a codebase given as a mapping from file path to source code. {q.text}\n\n{listing}"
                ),
                context=files,
                answer=LETTERS[q.correct],
                answer_format=ANSWER_FORMAT,
                metadata={
                    "kind": q.kind,
                    "options": q.options,
                    "facts": q.facts,
                    "n_files": len(files),
                    "python": python_version(),
                },
            )
        )
    return items


def score(item: TaskItem, prediction: str) -> float:
    return 1.0 if parse_choice_letter(prediction) == item.answer else 0.0
