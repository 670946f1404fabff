"""The RLM engine: the root loop, recursion, final-answer handling and the forced last answer.

``RLM.arun`` is the async core; ``RLM.run`` and ``RLM.completion`` are thin sync facades. What the
loop does not do lives next to it: models are put together by ``assembly``, prompts and output
formatting by the prompt style (``styles``), sub-calls are served by ``router``, the history is
kept in the window by ``history``, every model call is reserved and traced by ``calls``.
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .answer_guard import AnswerGuard, context_unseen
from .assembly import ModelSet, build_models
from .budget import Budget, Ledger
from .calls import ModelCaller
from .config import RLMConfig
from .context import ContextInfo, LoadedContext, load_context
from .errors import BudgetExceeded, ContextError, ContextLengthError, ModelError, REPLError, VariableError
from .history import fit_history
from .models.base import LM, LMBase, Message, Usage
from .models.registry import DEFAULT_MODEL
from .parsing import parse_reply
from .prompts import FORCE_FINAL, NO_CODE_REMINDER, PromptConfig
from .repl import REPL, Limits, ToolSpec, repl_factory, tool_spec
from .repl.helpers import format_final
from .result import RLMResult
from .router import SubCallRouter
from .runstate import Node, RunState
from .status import RunStatus
from .styles import PromptStyle, resolve_style, truncate_middle
from .trace import SCHEMA_VERSION, Listener, Tracer

COMPLETION_QUESTION = (
    "The context is a prompt addressed to you. Respond to it as a helpful assistant would: answer its "
    "question or carry out the task it states."
)

#: What ``_solve`` returns: how the RLM ended, its answer (or None) and the error message (or None).
Outcome = tuple[RunStatus, str | None, str | None]


class RLM:
    """A Recursive Language Model.

    ``model`` drives the root loop; ``sub_model`` answers ``llm_query`` (default: the root model, on a
    separate context where the backend supports it). ``models`` names extra models that code may pick
    with ``llm_query(prompt, model="name")``. ``max_depth`` bounds recursion: an RLM at depth d may start
    child RLMs while d < max_depth; at max_depth, ``rlm_query`` is a plain ``llm_query``.
    ``repl`` is ``"process"`` (isolated worker, default), ``"inprocess"`` (trusted, fast) or a
    zero-argument factory of REPLs (each RLM of the tree gets its own). ``tools`` are host callables
    proxied into the REPL. ``trace`` is a JSONL path (or None). ``sub_calls=False`` removes the
    sub-model functions (the paper's "no sub-calls" ablation). ``prompt_style`` is ``"auto"`` (compact
    for models that declare themselves small, else full), a style name or a ``PromptStyle``.
    ``shown_output_chars`` caps how much of a cell's output the model is shown (default: the style's).
    """

    def __init__(
        self,
        model: str | LM = DEFAULT_MODEL,
        sub_model: str | LM | None = None,
        max_depth: int = 1,
        budget: Budget | None = None,
        repl: str | Callable[[], REPL] = "process",
        tools: Sequence[Callable[..., Any]] | Mapping[str, Callable[..., Any]] | None = None,
        trace: str | Path | None = None,
        *,
        models: Mapping[str, str | LM] | None = None,
        limits: Limits | None = None,
        sub_calls: bool = True,
        prompt_style: str | PromptStyle = "auto",
        shown_output_chars: int | None = None,
        batch_concurrency: int = 64,
        model_options: Mapping[str, Any] | None = None,
        sub_model_options: Mapping[str, Any] | None = None,
        on_event: Listener | None = None,
        cache: bool | str | Path = False,
        max_output_chars: int | None = None,
    ) -> None:
        if max_depth < 0:
            raise ValueError("max_depth must be >= 0")
        if max_output_chars is not None:
            warnings.warn(
                "RLM(max_output_chars=...) is deprecated: use shown_output_chars (Limits.max_output_chars is "
                "what the worker captures)",
                DeprecationWarning,
                stacklevel=2,
            )
            shown_output_chars = shown_output_chars or max_output_chars
        self.budget = budget or Budget()
        self.max_depth = max_depth
        self.limits = limits or Limits()
        self.sub_calls = sub_calls
        self.trace_path = Path(trace) if trace else None
        self.batch_concurrency = max(1, batch_concurrency)
        self.on_event = on_event
        self._new_repl = repl_factory(repl, self.limits)
        self._repl_name = repl if isinstance(repl, str) else getattr(repl, "__name__", type(repl).__name__)
        self.models: ModelSet = build_models(model, sub_model, models, cache=cache)
        self.style = resolve_style(prompt_style, self.models.root)
        self.shown_output_chars = shown_output_chars or self.style.shown_output_chars
        self.model_options = {"temperature": 0.0, **self.style.model_options(), **dict(model_options or {})}
        self.sub_model_options = {"temperature": 0.0, **dict(sub_model_options or {})}
        self.tools: dict[str, Callable[..., Any]] = {}
        if tools:
            items = tools.items() if isinstance(tools, Mapping) else ((getattr(f, "__name__", ""), f) for f in tools)
            self.tools.update(items)
        self.tool_specs: list[ToolSpec] = [tool_spec(fn, name) for name, fn in self.tools.items()]
        if self.budget.max_cost_usd is not None:
            self.models.check_prices()
        self.config = RLMConfig(
            model=self.models.root.name,
            sub_model=self.models.sub.name,
            models={k: v.name for k, v in self.models.named.items()},
            max_depth=max_depth,
            budget=self.budget,
            repl=self._repl_name,
            limits=self.limits,
            sub_calls=sub_calls,
            prompt_style=self.style.name,
            shown_output_chars=self.shown_output_chars,
            batch_concurrency=self.batch_concurrency,
            tools=[t.name for t in self.tool_specs],
            model_options=self.model_options,
            sub_model_options=self.sub_model_options,
            cache=cache if isinstance(cache, bool) else str(cache),
        )

    @property
    def root_lm(self) -> LMBase:
        """The model that drives the root loop."""
        return self.models.root

    @property
    def sub_lm(self) -> LMBase:
        """The model that answers ``llm_query``."""
        return self.models.sub

    @property
    def prompt_style(self) -> str:
        """The name of the prompt style in use."""
        return self.style.name

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
        loaded = context if isinstance(context, LoadedContext) else await asyncio.to_thread(load_context, context)
        tracer = Tracer(self.trace_path, [self.on_event] if self.on_event else None)
        ledger = Ledger(self.budget)
        run = RunState(ledger, tracer, ModelCaller(ledger, tracer), asyncio.Semaphore(self.batch_concurrency))
        run_id = tracer.new_id("run")
        started = time.perf_counter()
        tracer.emit(
            "run_start",
            id=run_id,
            schema=SCHEMA_VERSION,
            question=question,
            context=loaded.info.to_dict(),
            config=self.config.to_trace(),
        )
        status, answer, error, node = RunStatus.error("internal"), None, None, None
        try:
            node = Node(tracer.new_id("rlm"), 0, question, loaded.value, unseen=context_unseen(loaded.info))
            status, answer, error = await self._solve(run, node, loaded.info, run_id)
        except BudgetExceeded as exc:  # strict mode
            status, error = RunStatus.budget(exc.limit), str(exc)
            raise
        except (asyncio.CancelledError, KeyboardInterrupt):
            status, error = RunStatus.interrupted(), "the run was interrupted"
            raise
        except BaseException as exc:
            status, error = RunStatus.error(type(exc).__name__), str(exc)
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
            await self.models.aclose()
        return result

    # -- one RLM ---------------------------------------------------------------------------
    def _initial_messages(self, node: Node, info: ContextInfo) -> list[Message]:
        cfg = PromptConfig(
            max_iterations=self.budget.max_iterations,
            sub_calls=self.sub_calls,
            can_recurse=node.depth < self.max_depth,
        )
        return self.style.initial_messages(cfg, node.question, info, self.tool_specs)

    async def _solve(self, run: RunState, node: Node, info: ContextInfo, parent: str) -> Outcome:
        """Run one RLM to its end."""
        tracer, ledger = run.tracer, run.ledger
        messages = self._initial_messages(node, info)
        node.head = len(messages)  # never trimmed from the history
        tracer.emit(
            "rlm_start",
            id=node.id,
            parent=parent,
            depth=node.depth,
            question=node.question,
            style=self.style.name,
            prompt=[m.to_dict() for m in messages],
        )
        repl = self._new_repl()
        status, answer, error = RunStatus.error("internal"), None, None
        try:
            router = SubCallRouter(
                run,
                node,
                self.models,
                options=self.sub_model_options,
                strict=self.budget.strict,
                max_depth=self.max_depth,
                tools=self.tools,
                solve_child=self._solve_child,
            )
            try:
                await repl.start(node.context, router, self.tool_specs, sub_calls=self.sub_calls)
            except (REPLError, ContextError) as exc:
                status, error = RunStatus.error("repl"), str(exc)
                return status, None, error
            for warning in repl.warnings:  # e.g. a sandbox the OS refused
                tracer.emit("warning", parent=node.id, source="repl", message=warning)
            status, answer, error = await self._loop(run, node, repl, messages)
            return status, answer, error
        except BudgetExceeded as exc:
            if self.budget.strict:
                raise
            status, error = RunStatus.budget(exc.limit), str(exc)
            tracer.emit("budget", parent=node.id, limit=exc.limit, message=str(exc), ledger=ledger.snapshot())
            return status, node.best, error
        except ModelError as exc:
            status, error = RunStatus.error(exc.kind), str(exc)
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

    async def _solve_child(self, run: RunState, parent: Node, question: str, context: Any, parent_event: str) -> str:
        """``rlm_query``: a child RLM with its own REPL over ``context``, one level deeper."""
        loaded = await asyncio.to_thread(load_context, context, allow_empty=True)
        child = Node(
            run.tracer.new_id("rlm"), parent.depth + 1, question, loaded.value, unseen=context_unseen(loaded.info)
        )
        status, answer, error = await self._solve(run, child, loaded.info, parent_event)
        if answer is None:
            return f"[error: child RLM ended with {status}: {error or 'no answer'}]"
        return answer

    async def _loop(self, run: RunState, node: Node, repl: REPL, messages: list[Message]) -> Outcome:
        style = self.style
        max_it = self.budget.max_iterations
        previous_code: list[str] = []
        guard = AnswerGuard(node.question, node.unseen, check_grounding=style.check_grounding)
        for iteration in range(1, max_it + 1):
            node.iterations = iteration
            run.ledger.check_time()
            if run.ledger.exhausted:
                raise BudgetExceeded(run.ledger.exhausted)
            completion = await self._root_call(run, node, messages, purpose="root")
            reply = style.reply_text(completion.text)
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
                        return RunStatus.final(), answer, None
                if parsed.text_outside_code:
                    node.best = parsed.text_outside_code[:4000]
                messages.append(Message("user", NO_CODE_REMINDER))
                continue
            outputs: list[str] = []
            final: str | None = None
            for index, code in enumerate(parsed.code_blocks, 1):
                cell_id = run.tracer.new_id("cell")
                result = await repl.run(code, cell_id=cell_id)
                shown, cut = style.format_cell(result, self.shown_output_chars)
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
                    shown=shown,
                    cut=cut,
                )
                label = f"[block {index}]\n" if len(parsed.code_blocks) > 1 else ""
                outputs.append(label + shown)
                if result.final is not None:
                    final = result.final
                    break
                if run.ledger.exhausted:
                    raise BudgetExceeded(run.ledger.exhausted)
            if final is not None:
                return RunStatus.final(), final, None
            if parsed.final is not None:
                answer = await self._resolve_text_final(repl, parsed.final.value, parsed.final.is_var)
                if answer is not None:
                    return RunStatus.final(), answer, None
            outputs.extend(style.turn_notes(parsed.code_blocks, node.question, previous_code))
            previous_code = parsed.code_blocks
            guard.observe(outputs)
            messages.append(Message("user", style.output_message(outputs, iteration, max_it)))
        return await self._forced_final(run, node, repl, messages)

    async def _forced_final(self, run: RunState, node: Node, repl: REPL, messages: list[Message]) -> Outcome:
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
        return RunStatus.max_iterations(), answer, None

    async def _resolve_text_final(self, repl: REPL, value: str, is_var: bool) -> str | None:
        if not is_var:
            return value
        try:
            v = await repl.get_var(value.strip().strip("'\""))
        except VariableError:
            return None
        return format_final(v)

    async def _root_call(self, run: RunState, node: Node, messages: list[Message], *, purpose: str) -> Any:
        lm = self.models.for_depth(node.depth)
        reserve = int(self.model_options.get("max_tokens") or 1024)
        trimmed = fit_history(messages, lm.context_window, reserve, head=node.head)
        try:
            return await run.caller.complete(lm, trimmed, purpose=purpose, parent=node.id, **self.model_options)
        except ContextLengthError:
            window = lm.context_window or _window_guess(messages)
            smaller = fit_history(messages, window, reserve, head=node.head, aggressive=True)
            return await run.caller.complete(lm, smaller, purpose=purpose, parent=node.id, **self.model_options)


def _window_guess(messages: list[Message]) -> int:
    """A window for a model that did not declare one but said the prompt was too long: what was sent."""
    return max(1, sum(len(m.content) for m in messages) // 3)


def _copy_usage(u: Usage) -> Usage:
    return Usage(u.calls, u.input_tokens, u.output_tokens, u.cached_input_tokens, u.cost_usd)


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
