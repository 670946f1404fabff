"""The RLM engine: the root loop, recursion, final-answer handling and the forced last answer.

``RLM.arun`` is the async core; ``RLM.run`` and ``RLM.completion`` are thin sync facades.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .answer_guard import AnswerGuard, context_unseen
from .budget import Budget, Ledger
from .calls import ModelCaller
from .coaching import example_echo_note
from .context import ContextInfo, load_context
from .errors import BudgetExceeded, ContextError, ModelError, REPLError, UnknownModelError
from .models.base import LM, Message
from .models.registry import DEFAULT_MODEL, resolve_model
from .parsing import parse_reply
from .prompts import (
    COMPACT_MAX_TOKENS,
    COMPACT_STOP,
    FORCE_FINAL,
    NO_CODE_REMINDER,
    REPEATED_CODE_NOTE,
    PromptConfig,
    close_code_fence,
    compact_context_description,
    compact_first_user_message,
    few_shot_messages,
    first_user_message,
    output_message,
    system_prompt,
)
from .repl import Limits, ToolSpec, make_repl, tool_spec
from .repl.base import CellResult, VariableError
from .result import RLMResult
from .trace import SCHEMA_VERSION, Listener, Tracer, redact

COMPLETION_QUESTION = (
    "The context is a prompt addressed to you. Respond to it as a helpful assistant would: answer its "
    "question or carry out the task it states."
)


def truncate_middle(text: str, limit: int) -> str:
    """Keep the head and tail of ``text`` within ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    half = max(limit // 2, 1)
    cut = len(text) - 2 * half
    return f"{text[:half]}\n... [{cut:,} characters truncated] ...\n{text[-half:]}"


@dataclass
class _Run:
    """State shared by every RLM in one recursion tree."""

    ledger: Ledger
    tracer: Tracer
    caller: ModelCaller
    batch_sem: asyncio.Semaphore
    subcalls: int = 0


@dataclass
class _Node:
    """One RLM in the tree."""

    id: str
    depth: int
    question: str
    context: Any
    iterations: int = 0
    best: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RLM:
    """A Recursive Language Model.

    ``model`` drives the root loop; ``sub_model`` answers ``llm_query`` (default: the root model, on a
    separate context where the backend supports it). ``models`` names extra models that code may pick
    with ``llm_query(prompt, model="name")``. ``max_depth`` bounds recursion: an RLM at depth d may start
    child RLMs while d < max_depth; at max_depth, ``rlm_query`` is a plain ``llm_query``.
    ``repl`` is ``"process"`` (isolated worker, default) or ``"inprocess"`` (trusted, fast).
    ``tools`` are host callables proxied into the REPL. ``trace`` is a JSONL path (or None).
    ``sub_calls=False`` removes the sub-model functions (the paper's "no sub-calls" ablation).
    """

    def __init__(
        self,
        model: str | LM = DEFAULT_MODEL,
        sub_model: str | LM | None = None,
        max_depth: int = 1,
        budget: Budget | None = None,
        repl: str = "process",
        tools: Sequence[Callable[..., Any]] | Mapping[str, Callable[..., Any]] | None = None,
        trace: str | Path | None = None,
        *,
        models: Mapping[str, str | LM] | None = None,
        limits: Limits | None = None,
        sub_calls: bool = True,
        prompt_style: str = "auto",
        max_output_chars: int | None = None,
        batch_concurrency: int = 64,
        model_options: Mapping[str, Any] | None = None,
        sub_model_options: Mapping[str, Any] | None = None,
        on_event: Listener | None = None,
        cache: bool | str | Path = False,
    ) -> None:
        if max_depth < 0:
            raise ValueError("max_depth must be >= 0")
        self.budget = budget or Budget()
        self.max_depth = max_depth
        self.repl_kind = repl
        self.limits = limits or Limits()
        self.sub_calls = sub_calls
        self.trace_path = Path(trace) if trace else None
        self.batch_concurrency = max(1, batch_concurrency)
        self.model_options = {"temperature": 0.0, **dict(model_options or {})}
        self.sub_model_options = {"temperature": 0.0, **dict(sub_model_options or {})}
        self.on_event = on_event
        root_raw = resolve_model(model)
        if sub_model is None:
            # A local model answers sub-calls on its own context so they don't evict the root's KV cache.
            fork = getattr(root_raw, "fork_for_subcalls", None)
            sub_raw = fork() if callable(fork) else root_raw
        else:
            sub_raw = resolve_model(sub_model)
        self.root_lm = self._wrap_cache(root_raw, cache)
        self.sub_lm = self.root_lm if sub_raw is root_raw else self._wrap_cache(sub_raw, cache)
        self.named_models: dict[str, LM] = {}
        for alias, spec in (models or {}).items():
            self.named_models[alias] = self._wrap_cache(resolve_model(spec), cache)
        self.tools: dict[str, Callable[..., Any]] = {}
        if tools:
            items = tools.items() if isinstance(tools, Mapping) else ((getattr(f, "__name__", ""), f) for f in tools)
            for name, fn in items:
                self.tools[name] = fn
        self.tool_specs: list[ToolSpec] = [tool_spec(fn, name) for name, fn in self.tools.items()]
        if prompt_style == "auto":
            prompt_style = "compact" if str(getattr(self.root_lm, "name", "")).startswith("local/") else "full"
        if prompt_style not in ("full", "compact"):
            raise ValueError("prompt_style must be 'auto', 'full' or 'compact'")
        self.prompt_style = prompt_style
        self.max_output_chars = max_output_chars or (2_000 if prompt_style == "compact" else 6_000)
        if prompt_style == "compact":  # one code block per reply, then stop (the caller's options win)
            self.model_options.setdefault("stop", list(COMPACT_STOP))
            self.model_options.setdefault("max_tokens", COMPACT_MAX_TOKENS)
        self._depth_lms: dict[int, LM] = {}
        if self.budget.max_cost_usd is not None:
            for lm in {id(m): m for m in (self.root_lm, self.sub_lm, *self.named_models.values())}.values():
                price = getattr(lm, "price", lambda: (0.0, 0.0, 0.0))()
                if price is None:
                    raise UnknownModelError(
                        f"max_cost_usd is set but the price of {lm.name!r} is unknown, so the limit cannot be "
                        "enforced; give the model's price (price=(input, output, cached) per million tokens) "
                        "or drop the cost limit"
                    )

    @staticmethod
    def _wrap_cache(lm: LM, cache: bool | str | Path) -> LM:
        if not cache:
            return lm
        from .models.cache import CachedLM

        return CachedLM(lm, path=None if cache is True else cache)

    # -- public facades --------------------------------------------------------------------
    def run(self, question: str, context: Any) -> RLMResult:
        """Answer ``question`` about ``context`` (blocking)."""
        return _run_sync(self.arun(question, context))

    def completion(self, prompt: str) -> RLMResult:
        """The paper's drop-in form: the whole prompt is the context and the model is asked to respond to it."""
        return self.run(COMPLETION_QUESTION, prompt)

    async def acompletion(self, prompt: str) -> RLMResult:
        return await self.arun(COMPLETION_QUESTION, prompt)

    async def arun(self, question: str, context: Any) -> RLMResult:
        """Answer ``question`` about ``context``. Raises ContextError for unusable context before any model call."""
        if not isinstance(question, str) or not question.strip():
            raise ValueError("question must be a non-empty string")
        loaded = await asyncio.to_thread(load_context, context)
        tracer = Tracer(self.trace_path, [self.on_event] if self.on_event else None)
        ledger = Ledger(self.budget)
        run = _Run(ledger, tracer, ModelCaller(ledger, tracer), asyncio.Semaphore(self.batch_concurrency))
        run_id = tracer.new_id("run")
        started = time.perf_counter()
        tracer.emit(
            "run_start",
            id=run_id,
            schema=SCHEMA_VERSION,
            question=question,
            context=loaded.info.to_dict(),
            config=redact(self._config()),
        )
        status, answer, error, node = "error:internal", None, None, None
        try:
            node = _Node(tracer.new_id("rlm"), 0, question, loaded.value)
            node.extra["unseen"] = context_unseen(loaded.info)
            status, answer, error = await self._solve(run, node, self._describe(loaded.info), loaded.info.type, run_id)
        except BudgetExceeded as exc:  # strict mode
            status, error = f"budget:{exc.limit}", str(exc)
            raise
        except (asyncio.CancelledError, KeyboardInterrupt):
            status, error = "interrupted", "the run was interrupted"
            raise
        except BaseException as exc:
            status, error = f"error:{type(exc).__name__}", str(exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            if node is not None and answer is None:
                answer = node.best
            result = RLMResult(
                answer=answer,
                status=status,
                usage={k: _copy_usage(v) for k, v in ledger.by_model.items()},
                iterations=node.iterations if node else 0,
                trace_path=self.trace_path,
                elapsed=elapsed,
                error=error,
                subcalls=run.subcalls,
            )
            tracer.emit(
                "run_end",
                id=run_id,
                status=status,
                answer=answer,
                error=error,
                iterations=result.iterations,
                usage={k: v.to_dict() for k, v in result.usage.items()},
                ledger=ledger.snapshot(),
                elapsed=elapsed,
            )
            tracer.close()
            await self._close_models()
        return result

    async def _close_models(self) -> None:
        """Release per-loop network clients; a later run opens fresh ones."""
        for lm in {id(m): m for m in (self.root_lm, self.sub_lm, *self.named_models.values())}.values():
            close = getattr(lm, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    pass

    def _config(self) -> dict[str, Any]:
        return {
            "model": self.root_lm.name,
            "sub_model": self.sub_lm.name,
            "models": {k: v.name for k, v in self.named_models.items()},
            "max_depth": self.max_depth,
            "budget": {
                "max_iterations": self.budget.max_iterations,
                "max_llm_calls": self.budget.max_llm_calls,
                "max_tokens": self.budget.max_tokens,
                "max_cost_usd": self.budget.max_cost_usd,
                "max_seconds": self.budget.max_seconds,
                "strict": self.budget.strict,
            },
            "repl": self.repl_kind if isinstance(self.repl_kind, str) else type(self.repl_kind).__name__,
            "limits": {
                "cell_timeout": self.limits.cell_timeout,
                "cpu_seconds": self.limits.cpu_seconds,
                "memory_bytes": self.limits.memory_bytes,
            },
            "sub_calls": self.sub_calls,
            "prompt_style": self.prompt_style,
            "tools": [t.name for t in self.tool_specs],
            "model_options": self.model_options,
        }

    # -- the loop --------------------------------------------------------------------------
    def _describe(self, info: ContextInfo) -> str:
        return compact_context_description(info) if self.prompt_style == "compact" else info.describe()

    def _initial_messages(self, node: _Node, description: str, context_type: str) -> list[Message]:
        cfg = PromptConfig(
            style=self.prompt_style,
            max_iterations=self.budget.max_iterations,
            sub_calls=self.sub_calls,
            can_recurse=node.depth < self.max_depth,
        )
        msgs = [Message("system", system_prompt(cfg, context_type, self.tool_specs))]
        msgs.extend(Message(r, c) for r, c in few_shot_messages(cfg, context_type))
        if self.prompt_style == "compact":
            msgs.append(Message("user", compact_first_user_message(node.question, description)))
        else:
            msgs.append(Message("user", first_user_message(node.question, description)))
        return msgs

    async def _solve(
        self, run: _Run, node: _Node, description: str, context_type: str, parent: str
    ) -> tuple[str, str | None, str | None]:
        """Run one RLM to its end. Returns (status, answer, error)."""
        tracer, ledger = run.tracer, run.ledger
        tracer.emit("rlm_start", id=node.id, parent=parent, depth=node.depth, question=node.question)
        repl = make_repl(self.repl_kind, self.limits)
        status, answer, error = "error:internal", None, None
        try:
            try:
                await repl.start(node.context, self._handler(run, node), self.tool_specs, sub_calls=self.sub_calls)
            except (REPLError, ContextError) as exc:
                status, error = "error:repl", str(exc)
                return status, None, error
            for warning in getattr(repl, "warnings", ()):  # e.g. a sandbox the OS refused
                tracer.emit("warning", parent=node.id, source="repl", message=warning)
            messages = self._initial_messages(node, description, context_type)
            node.extra["head"] = len(messages)  # never trimmed from the history
            status, answer, error = await self._loop(run, node, repl, messages)
            return status, answer, error
        except BudgetExceeded as exc:
            if self.budget.strict:
                raise
            status, error = f"budget:{exc.limit}", str(exc)
            tracer.emit("budget", parent=node.id, limit=exc.limit, message=str(exc), ledger=ledger.snapshot())
            return status, node.best, error
        except ModelError as exc:
            status, error = f"error:{exc.kind}", str(exc)
            return status, node.best, error
        finally:
            await repl.close()
            tracer.emit(
                "rlm_end",
                id=node.id,
                parent=parent,
                status=status,
                answer=answer if answer is not None else node.best,
                error=error,
                iterations=node.iterations,
            )

    async def _loop(
        self, run: _Run, node: _Node, repl: Any, messages: list[Message]
    ) -> tuple[str, str | None, str | None]:
        compact = self.prompt_style == "compact"
        max_it = self.budget.max_iterations
        previous_code: list[str] = []
        guard = AnswerGuard(node.question, bool(node.extra.get("unseen")), check_grounding=compact)
        for iteration in range(1, max_it + 1):
            node.iterations = iteration
            run.ledger.check_time()
            if run.ledger.exhausted:
                raise BudgetExceeded(run.ledger.exhausted)
            completion = await self._root_call(run, node, messages, purpose="root")
            reply = close_code_fence(completion.text) if compact else completion.text
            parsed = parse_reply(reply)
            messages.append(Message("assistant", reply))
            refusal = guard.refusal(iteration, parsed)
            if refusal is not None:
                run.tracer.emit("warning", parent=node.id, source="engine", message=refusal.split(":")[0])
                messages.append(Message("user", refusal))
                continue
            if not parsed.code_blocks:
                if parsed.final is not None:
                    answer = await self._resolve_text_final(repl, parsed.final.value, parsed.final.is_var)
                    if answer is not None:
                        return "final", answer, None
                if parsed.text_outside_code:
                    node.best = parsed.text_outside_code[:4000]
                messages.append(Message("user", NO_CODE_REMINDER))
                continue
            outputs: list[str] = []
            final: str | None = None
            for index, code in enumerate(parsed.code_blocks, 1):
                cell_id = run.tracer.new_id("cell")
                result = await repl.run(code, cell_id=cell_id)
                run.tracer.emit(
                    "cell",
                    id=cell_id,
                    parent=node.id,
                    iteration=iteration,
                    code=code,
                    stdout=truncate_middle(result.stdout, 20_000),
                    stdout_total=result.stdout_total,
                    error=result.error,
                    final=result.final,
                    notes=result.notes,
                    duration=result.duration,
                    timed_out=result.timed_out,
                    state_lost=result.state_lost,
                )
                label = f"[block {index}]\n" if len(parsed.code_blocks) > 1 else ""
                outputs.append(label + self._format_output(result))
                if result.final is not None:
                    final = result.final
                    break
                if run.ledger.exhausted:
                    raise BudgetExceeded(run.ledger.exhausted)
            if final is not None:
                return "final", final, None
            if parsed.final is not None:
                answer = await self._resolve_text_final(repl, parsed.final.value, parsed.final.is_var)
                if answer is not None:
                    return "final", answer, None
            echo = example_echo_note(parsed.code_blocks, node.question) if compact else None
            if echo is not None:
                outputs.append(echo)
            elif compact and parsed.code_blocks == previous_code:  # greedy small models loop on one cell
                outputs.append(REPEATED_CODE_NOTE)
            previous_code = parsed.code_blocks
            guard.observe(outputs)
            messages.append(Message("user", output_message(outputs, iteration, max_it, compact)))
        return await self._forced_final(run, node, repl, messages)

    async def _forced_final(
        self, run: _Run, node: _Node, repl: Any, messages: list[Message]
    ) -> tuple[str, str | None, str | None]:
        messages.append(Message("user", FORCE_FINAL))
        completion = await self._root_call(run, node, messages, purpose="forced_final")
        parsed = parse_reply(completion.text)
        answer: str | None = None
        if parsed.final is not None:
            answer = await self._resolve_text_final(repl, parsed.final.value, parsed.final.is_var)
        if answer is None:
            for code in parsed.code_blocks:  # a model that answers with FINAL(...) in a code block
                result = await repl.run(code, cell_id=run.tracer.new_id("cell"))
                if result.final is not None:
                    answer = result.final
                    break
        if answer is None:
            answer = parsed.text_outside_code.strip() or node.best
        return "max_iterations", answer, None

    async def _resolve_text_final(self, repl: Any, value: str, is_var: bool) -> str | None:
        if not is_var:
            return value
        try:
            v = await repl.get_var(value.strip().strip("'\""))
        except VariableError:
            return None
        from .repl.helpers import format_final

        return format_final(v)

    def _format_output(self, result: CellResult) -> str:
        parts = []
        if result.stdout:
            out = result.stdout
            if result.stdout_total > len(out):
                out += f"\n[output was {result.stdout_total:,} characters; only part is shown]"
            parts.append(truncate_middle(out, self.max_output_chars))
        if result.error:
            parts.append("Error:\n" + truncate_middle(result.error, max(1000, self.max_output_chars // 2)))
        for note in result.notes:
            parts.append(f"Note: {note}")
        if result.final is not None:
            parts.append(f"FINAL: {result.final[:200]}")
        return "\n".join(parts) if parts else "(no output)"

    def _lm_for_depth(self, depth: int) -> LM:
        """The model that drives an RLM at ``depth``.

        A backend with named slots (the embedded model) gives each depth its own context, so a child
        RLM's turns never evict the KV cache its parent's next turn will reuse.
        """
        if depth == 0:
            return self.root_lm
        lm = self._depth_lms.get(depth)
        if lm is None:
            with_slot = getattr(self.root_lm, "with_slot", None)
            lm = with_slot(f"depth{depth}") if callable(with_slot) else self.root_lm
            self._depth_lms[depth] = lm
        return lm

    async def _root_call(self, run: _Run, node: _Node, messages: list[Message], *, purpose: str) -> Any:
        lm = self._lm_for_depth(node.depth)
        window = getattr(lm, "context_window", None)
        reserve = int(self.model_options.get("max_tokens") or 1024)
        head = node.extra.get("head")
        trimmed = _fit_history(messages, window, reserve, head=head)
        try:
            return await run.caller.complete(lm, trimmed, purpose=purpose, parent=node.id, **self.model_options)
        except ModelError as exc:
            if exc.kind != "context_overflow":
                raise
            smaller = _fit_history(messages, window, reserve, aggressive=True, head=head)
            return await run.caller.complete(lm, smaller, purpose=purpose, parent=node.id, **self.model_options)

    # -- sub-calls from model code ---------------------------------------------------------
    def _handler(self, run: _Run, node: _Node) -> Callable[[str, dict[str, Any], str | None], Any]:
        async def handle(kind: str, payload: dict[str, Any], cell_id: str | None) -> Any:
            parent = cell_id or node.id
            run.subcalls += 1
            sub = run.tracer.emit("subcall_start", parent=parent, kind=kind, summary=_summarise_payload(kind, payload))
            ok = False
            try:
                value = await self._dispatch(run, node, kind, payload, sub.id)
                ok = True
                return value
            finally:
                run.tracer.emit("subcall_end", id=sub.id, parent=parent, kind=kind, ok=ok)

        return handle

    async def _dispatch(self, run: _Run, node: _Node, kind: str, payload: dict[str, Any], parent: str) -> Any:
        if kind == "llm_query":
            return await self._llm_query(run, str(payload.get("prompt", "")), payload.get("model"), parent)
        if kind == "llm_batch":
            prompts = payload.get("prompts") or []
            if not isinstance(prompts, list):
                raise TypeError("llm_batch expects a list of prompts")
            model = payload.get("model")
            self._pick_model(model)  # an unknown model fails the whole batch at once

            async def one(p: Any) -> str:
                async with run.batch_sem:
                    try:
                        return await self._llm_query(run, str(p), model, parent)
                    except (ModelError, BudgetExceeded, Exception) as exc:
                        return f"[error: {exc}]"

            return list(await asyncio.gather(*(one(p) for p in prompts)))
        if kind == "rlm_query":
            return await self._rlm_query(run, node, str(payload.get("question", "")), payload.get("context"), parent)
        if kind == "rlm_batch":
            pairs = payload.get("pairs") or []

            async def one_rlm(pair: Any) -> str:
                async with run.batch_sem:
                    try:
                        return await self._rlm_query(run, node, str(pair[0]), pair[1], parent)
                    except Exception as exc:
                        return f"[error: {exc}]"

            return list(await asyncio.gather(*(one_rlm(p) for p in pairs)))
        if kind == "tool":
            return await self._call_tool(
                str(payload.get("name")), payload.get("args") or [], payload.get("kwargs") or {}
            )
        raise ValueError(f"unknown sub-call {kind!r}")

    def _pick_model(self, model: str | None) -> LM:
        if model is None:
            return self.sub_lm
        if model in self.named_models:
            return self.named_models[model]
        for lm in (self.sub_lm, self.root_lm, *self.named_models.values()):
            if lm.name == model:
                return lm
        known = sorted({self.sub_lm.name, self.root_lm.name, *self.named_models})
        raise UnknownModelError(f"llm_query: unknown model {model!r}; configured models: {', '.join(known)}")

    async def _llm_query(self, run: _Run, prompt: str, model: str | None, parent: str) -> str:
        lm = self._pick_model(model)
        try:
            completion = await run.caller.complete(
                lm, [Message("user", prompt)], purpose="sub", parent=parent, **self.sub_model_options
            )
        except BudgetExceeded as exc:
            if self.budget.strict:
                raise
            raise BudgetExceeded(exc.limit, f"{exc} — no more sub-calls can be made") from None
        return completion.text

    async def _rlm_query(self, run: _Run, node: _Node, question: str, context: Any, parent: str) -> str:
        if context is None:
            context = node.context
        if node.depth + 1 > self.max_depth:
            text = context if isinstance(context, str) else _as_text(context)
            limit = _sub_prompt_chars(self.sub_lm)
            prompt = f"{truncate_middle(text, limit)}\n\n{question}"
            return await self._llm_query(run, prompt, None, parent)
        loaded = await asyncio.to_thread(load_context, context, allow_empty=True)
        child = _Node(run.tracer.new_id("rlm"), node.depth + 1, question, loaded.value)
        child.extra["unseen"] = context_unseen(loaded.info)
        status, answer, error = await self._solve(run, child, self._describe(loaded.info), loaded.info.type, parent)
        if answer is None:
            return f"[error: child RLM ended with {status}: {error or 'no answer'}]"
        return answer

    async def _call_tool(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        fn = self.tools.get(name)
        if fn is None:
            raise KeyError(f"no tool named {name!r}")
        if inspect.iscoroutinefunction(fn):
            return await fn(*args, **kwargs)
        value = await asyncio.to_thread(fn, *args, **kwargs)
        if inspect.isawaitable(value):
            value = await value
        return value


def _copy_usage(u: Any) -> Any:
    from .models.base import Usage

    return Usage(u.calls, u.input_tokens, u.output_tokens, u.cached_input_tokens, u.cost_usd)


def _as_text(value: Any) -> str:
    import json

    try:
        return json.dumps(value, ensure_ascii=False, indent=0)
    except (TypeError, ValueError):
        return str(value)


def _sub_prompt_chars(lm: LM) -> int:
    window = getattr(lm, "context_window", None)
    if window:
        return max(2_000, int(window * 3) - 4_000)
    return 400_000


def _summarise_payload(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    if kind == "llm_query":
        return {"prompt_chars": len(str(payload.get("prompt", ""))), "model": payload.get("model")}
    if kind == "llm_batch":
        prompts = payload.get("prompts") or []
        return {"n": len(prompts) if isinstance(prompts, list) else 0, "model": payload.get("model")}
    if kind == "rlm_query":
        return {"question": str(payload.get("question", ""))[:200]}
    if kind == "rlm_batch":
        return {"n": len(payload.get("pairs") or [])}
    if kind == "tool":
        return {"name": payload.get("name")}
    return {}


#: History is trimmed in steps of this many turns, so the kept prefix stays the same for several turns
#: and a backend's prompt cache (the embedded model's KV cache, providers' prefix caches) keeps working.
_TRIM_STEP = 4


def _fit_history(
    messages: list[Message],
    window: int | None,
    reserve: int,
    aggressive: bool = False,
    head: int | None = None,
) -> list[Message]:
    """Drop the oldest turns (never the system prompt, the few-shot example or the question) to fit the window.

    ``head`` is how many leading messages are never dropped (the engine knows it; without it the head
    ends at the question). Turns go in steps of ``_TRIM_STEP``: dropping only what the next turn needs
    would change the kept prefix every turn and re-evaluate the whole history each time.
    Token counts are estimated at 3 characters per token, which errs on the safe side for code and prose.
    """
    if not window:
        return messages
    budget_chars = (window - reserve) * 3 * (0.6 if aggressive else 1.0)

    def size(ms: list[Message]) -> int:
        return sum(len(m.content) + 20 for m in ms)

    if size(messages) <= budget_chars:
        return messages
    head_end = head
    if head_end is None:  # the head ends at the question
        head_end = 1
        for i, m in enumerate(messages):
            if m.role == "user" and (m.content.startswith("Context:") or m.content.startswith("The context")):
                head_end = i + 1
                break
    head_msgs, tail = messages[:head_end], messages[head_end:]
    pairs = 0
    while len(tail) - 2 * pairs > 2 and size(head_msgs) + size(tail[2 * pairs :]) > budget_chars:
        pairs += 1
    if pairs:
        pairs = min(-(-pairs // _TRIM_STEP) * _TRIM_STEP, (len(tail) - 1) // 2)
        tail = tail[2 * pairs :]
        note = Message("user", f"[{pairs} earlier turn(s) omitted to fit the model's window]")
        if tail and tail[0].role == "user":
            tail = [Message("user", note.content + "\n\n" + tail[0].content), *tail[1:]]
        else:
            tail = [note, *tail]
    return head_msgs + tail


def _run_sync(coro: Any) -> Any:
    """Run a coroutine from sync code, also when an event loop is already running (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target, name="unbounded-run")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
