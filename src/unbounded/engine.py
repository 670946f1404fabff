"""The RLM engine: the root loop, recursion, final-answer handling and the forced last answer.

``RLM.arun`` is the async core; ``RLM.run`` and ``RLM.completion`` are thin sync facades. What the
loop does not do lives next to it: models are put together by ``assembly``, prompts and output
formatting by the prompt style (``styles``), sub-calls are served by ``router``, the history is
kept in the window by ``history``, every model call is reserved and traced by ``calls``.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .answer_guard import AnswerGuard, context_unseen
from .assembly import ModelSet, build_models
from .budget import Budget, Ledger
from .calls import ModelCaller
from .coaching import turns_since_same_code
from .config import RLMConfig
from .context import ContextInfo, LoadedContext, load_context
from .errors import BudgetExceeded, ContextError, ContextLengthError, ModelError, REPLError, VariableError
from .final_rules import MAX_RULE_REFUSALS, NON_ANSWER, rule_refusal
from .history import (
    CHARS_PER_TOKEN,
    COMPACT_AT,
    compactable,
    fit_history,
    history_chars,
    needs_compaction,
    summary_message,
    summary_prompt,
)
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
from .streaming import iterate_in_thread, stream_events
from .styles import PromptStyle, resolve_style, truncate_middle
from .trace import SCHEMA_VERSION, Event, Listener, Tracer
from .typed import MAX_OUTPUT_RETRIES, OutputInvalid, OutputSpec, output_refusal

if TYPE_CHECKING:
    from .session import Attachment, Session

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
    ``compaction``: when the root's history fills this fraction of its model's window, older turns are
    summarised by the sub-model (the REPL keeps its variables); None drops old turns instead.
    ``run``/``arun``/``stream``/``astream`` take ``output=`` for a typed answer; ``session(context)``
    keeps one context loaded for question after question.
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
        compaction: float | None = COMPACT_AT,
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
        if compaction is not None and not 0 < compaction <= 1:
            raise ValueError("compaction must be a fraction of the window in (0, 1], or None to turn it off")
        self.compaction = compaction
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
            compaction=compaction,
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
    def run(self, question: str, context: Any, *, output: Any = None) -> RLMResult:
        """Answer ``question`` about ``context`` (blocking). ``output``: see ``arun``."""
        return _run_sync(self.arun(question, context, output=output))

    def completion(self, prompt: str) -> RLMResult:
        """The paper's drop-in form: the whole prompt is the context and the model is asked to respond to it."""
        return self.run(COMPLETION_QUESTION, prompt)

    async def acompletion(self, prompt: str) -> RLMResult:
        return await self.arun(COMPLETION_QUESTION, prompt)

    async def arun(self, question: str, context: Any, *, output: Any = None) -> RLMResult:
        """Answer ``question`` about ``context``. Raises ContextError for unusable context before any model call.

        ``output`` asks for a typed answer: a type pydantic validates (a model, a dataclass, ``list[str]``…)
        or a JSON schema dict; ``result.value`` is then the validated value (see ``typed.py``).
        """
        _check_question(question)
        spec = OutputSpec.of(output) if output is not None else None
        loaded = context if isinstance(context, LoadedContext) else await asyncio.to_thread(load_context, context)
        return await self._answer(question, loaded, output=spec)

    async def astream(self, question: str, context: Any, *, output: Any = None) -> AsyncIterator[Event]:
        """Answer ``question`` about ``context``, yielding the run's events as they happen — the ones the
        trace records (``run_start``, ``rlm_start``, ``lm_request``/``lm_response``, ``cell``,
        ``subcall_start``/``subcall_end``, ``check``…) — and last a ``result`` event whose
        ``data["result"]`` is the ``RLMResult``. Leaving the loop early cancels the run."""
        _check_question(question)
        spec = OutputSpec.of(output) if output is not None else None
        loaded = context if isinstance(context, LoadedContext) else await asyncio.to_thread(load_context, context)
        async for event in stream_events(
            lambda listener: self._answer(question, loaded, listeners=[listener], output=spec)
        ):
            yield event

    def stream(self, question: str, context: Any, *, output: Any = None) -> Iterator[Event]:
        """``astream`` for sync code: the events as they happen, in a thread of their own."""
        return iterate_in_thread(lambda: self.astream(question, context, output=output))

    def session(self, context: Any, *, budget: str = "question") -> Session:
        """A session over ``context``: loaded once, then ``session.ask(question)`` as often as you like;
        variables persist between questions. ``budget="session"`` makes the budget one for all of them."""
        from .session import Session

        return Session(self, context, budget_scope=budget)

    def asession(self, context: Any, *, budget: str = "question") -> Session:
        """``async with rlm.asession(context) as s: await s.aask(...)``."""
        return self.session(context, budget=budget)

    def restore(self, path: str | Path, context: Any = None) -> Session:
        """A session saved with ``session.save(path)``, with its questions, answers and variables."""
        from .session import Session

        return Session.restore(self, path, context)

    async def _answer(
        self,
        question: str,
        loaded: LoadedContext,
        *,
        listeners: Sequence[Listener] = (),
        attached: Attachment | None = None,
        output: OutputSpec | None = None,
    ) -> RLMResult:
        """One question: a run with its own trace events (``run_start`` … ``run_end``) and, unless a
        session lends one, its own ledger; the root RLM gets the session's REPL when ``attached``."""
        tracer = attached.tracer if attached is not None else self._tracer(listeners)
        if attached is not None:
            tracer.extra_listeners = list(listeners)
        ledger = attached.ledger if attached is not None and attached.ledger is not None else Ledger(self.budget)
        run = RunState(ledger, tracer, ModelCaller(ledger, tracer), asyncio.Semaphore(self.batch_concurrency))
        run.stream_tokens = bool(listeners)  # a stream wants the root's reply as it is written
        if attached is None:
            self.models.acquire()
        run_id = tracer.new_id("run")
        started = time.perf_counter()
        before = {k: _copy_usage(v) for k, v in ledger.by_model.items()}
        tracer.emit(
            "run_start",
            id=run_id,
            schema=SCHEMA_VERSION,
            question=question,
            context=loaded.info.to_dict(),
            config=self.config.to_trace(),
            session=attached.session_id if attached is not None else None,
        )
        status, answer, error, node = RunStatus.error("internal"), None, None, None
        try:
            node = Node(tracer.new_id("rlm"), 0, question, loaded.value, unseen=context_unseen(loaded.info))
            node.output = output
            status, answer, error = await self._solve(run, node, loaded.info, run_id, attached=attached)
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
                usage=_usage_since(before, ledger.by_model),
                iterations=node.iterations if node else 0,
                trace_path=self.trace_path,
                elapsed=elapsed,
                error=error,
                subcalls=run.subcalls,
                value=node.value if node is not None else None,
                compactions=run.compactions,
                compaction_tokens_saved=run.compaction_tokens_saved,
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
            if attached is None:
                await asyncio.to_thread(tracer.close)  # its fsync must not stall the loop's other runs
                await self.models.release()
            else:
                tracer.extra_listeners = []
        return result

    def _tracer(self, listeners: Sequence[Listener] = ()) -> Tracer:
        return Tracer(self.trace_path, [*([self.on_event] if self.on_event else []), *listeners])

    # -- one RLM ---------------------------------------------------------------------------
    def _initial_messages(self, node: Node, info: ContextInfo) -> list[Message]:
        cfg = PromptConfig(
            max_iterations=self.budget.max_iterations,
            sub_calls=self.sub_calls,
            can_recurse=node.depth < self.max_depth,
        )
        return self.style.initial_messages(cfg, node.question, info, self.tool_specs, node.context)

    async def _solve(
        self, run: RunState, node: Node, info: ContextInfo, parent: str, *, attached: Attachment | None = None
    ) -> Outcome:
        """Run one RLM to its end (on a session's live REPL when ``attached``; else on a new one)."""
        tracer, ledger = run.tracer, run.ledger
        messages = self._initial_messages(node, info)
        if attached is not None and attached.history_note:
            messages[-1] = Message("user", f"{attached.history_note}\n\n{messages[-1].content}")
        if node.output is not None:
            messages[-1] = Message("user", f"{messages[-1].content}\n{node.output.instructions()}")
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
        repl = attached.repl if attached is not None else self._new_repl()
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
                if attached is None:
                    await repl.start(node.context, router, self.tool_specs, sub_calls=self.sub_calls)
                else:
                    attached.route_to(router)
                await repl.set_var("question", node.question)
                if attached is not None:
                    await repl.set_var("history", attached.history())
            except (REPLError, ContextError) as exc:
                status, error = RunStatus.error("repl"), str(exc)
                return status, None, error
            for warning in repl.warnings if attached is None else ():  # e.g. a sandbox the OS refused
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
            if attached is None:
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
        earlier_code: list[list[str]] = []  # each earlier turn's code that ran, oldest first
        unstick: dict[str, Any] | None = None  # options for the next root call after a repeated cell
        stale_in_a_row = 0  # turns in a row whose code an earlier turn had run already
        guard = AnswerGuard(node.question, node.unseen, check_grounding=style.check_grounding)
        for iteration in range(1, max_it + 1):
            node.iterations = iteration
            run.ledger.check_time()
            if run.ledger.exhausted:
                raise BudgetExceeded(run.ledger.exhausted)
            completion = await self._root_call(run, node, messages, purpose="root", options=unstick)
            unstick = None
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
                        outcome, note = await self._accept(run, node, answer, guard.seen[1:])
                        if outcome is not None:
                            return outcome
                        messages.append(Message("user", note))
                        continue
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
            repeated = turns_since_same_code(parsed.code_blocks, earlier_code) is not None
            stale_in_a_row = stale_in_a_row + 1 if repeated else 0
            if final is None and parsed.final is not None:
                final = await self._resolve_text_final(repl, parsed.final.value, parsed.final.is_var)
            if final is not None:
                outcome, note = await self._accept(run, node, final, [*guard.seen[1:], *outputs])
                if outcome is not None:
                    return outcome
                outputs.append(note)
            else:
                outputs.extend(style.turn_notes(parsed.code_blocks, node.question, earlier_code))
            earlier_code.append(parsed.code_blocks)
            unstick = self._unstick(run, node, iteration) if repeated else None
            guard.observe(outputs)
            messages.append(Message("user", style.output_message(outputs, iteration, max_it)))
            if style.max_stale_turns is not None and stale_in_a_row >= style.max_stale_turns and iteration < max_it:
                run.tracer.emit("warning", parent=node.id, source="engine",
                                message=f"{stale_in_a_row} turns in a row re-ran earlier code: asking for the answer now")  # fmt: skip
                break
        return await self._forced_final(run, node, repl, messages)

    async def _compact(self, run: RunState, node: Node, messages: list[Message]) -> None:
        """Replace the older turns of the history by a summary (the REPL keeps its variables), in place.

        When the sub-model cannot summarise, nothing changes here and ``fit_history`` drops turns instead.
        """
        span = compactable(messages, node.head)
        if span is None:
            return
        start, end = span
        before = history_chars(messages)
        summary = await _summarise(self, run, node, messages[start:end])
        if summary is None:
            run.tracer.emit("compaction", parent=node.id, turns=(end - start) // 2, ok=False)
            return
        messages[start:end] = [summary_message(summary, (end - start) // 2)]
        after = history_chars(messages)
        node.compacted_tokens += max(0, before - after) // CHARS_PER_TOKEN
        run.compactions += 1
        run.tracer.emit(
            "compaction", parent=node.id, turns=(end - start) // 2, ok=True,
            chars_before=before, chars_after=after,
            tokens_before=before // CHARS_PER_TOKEN, tokens_after=after // CHARS_PER_TOKEN,
        )  # fmt: skip

    async def _accept(self, run: RunState, node: Node, answer: str, seen: list[str]) -> tuple[Outcome | None, str]:
        """Take a final answer (the run's outcome), or send it back (None and the note that says why):
        it must have the requested shape (``output``), then pass the answer check."""
        if node.output is not None:
            try:
                node.value, answer = node.output.validate(answer)
            except OutputInvalid as exc:
                node.output_retries += 1
                run.tracer.emit("check", parent=node.id, answer=answer, verdict="invalid", reason=str(exc),
                                refused=node.output_retries <= MAX_OUTPUT_RETRIES)  # fmt: skip
                if node.output_retries > MAX_OUTPUT_RETRIES:
                    node.best = answer
                    return (RunStatus.error("output"), answer, f"the answer does not have the requested shape: {exc}"), ""
                return None, output_refusal(str(exc), node.output)
        note = await self._check(run, node, answer, seen)
        if note is None:
            return (RunStatus.final(), answer, None), ""
        return None, note

    async def _check(self, run: RunState, node: Node, answer: str, seen: list[str]) -> str | None:
        """The note that sends a final answer back for another look, or None to take it.

        Under a style with ``check_answers``, the sub-model reads what the code printed and says whether
        it supports the answer; at most ``MAX_CHECK_REFUSALS`` answers of an RLM are sent back, so a
        check can cost a turn but never the run. Each check is a ``check`` event in the trace.
        """
        if self.style.check_answers and len(node.rules_used) < MAX_RULE_REFUSALS:
            found = rule_refusal(answer, node.question, node.context, node.rules_used)
            if found is not None:
                rule, note = found
                node.rules_used.add(rule)
                run.tracer.emit("check", parent=node.id, answer=answer, verdict="rule", rule=rule, reason=note,
                                refused=True)  # fmt: skip
                return note
        if not (self.style.check_answers and self.sub_calls) or node.refusals >= MAX_CHECK_REFUSALS:
            return None
        evidence = _evidence(seen)
        if not evidence:
            return None
        if _printed_verbatim(answer, _printed(seen)):
            run.tracer.emit("check", parent=node.id, answer=answer, verdict="found",
                            reason="the answer appears word for word in what the code printed", refused=False)  # fmt: skip
            return None
        prompt = CHECK_PROMPT.format(question=node.question, evidence=evidence, answer=answer[:1000])
        try:
            completion = await run.caller.complete(
                self.models.sub, [Message("user", prompt)], purpose="check", parent=node.id,
                **{**self.sub_model_options, "max_tokens": 60, "stop": CHECK_STOP},
            )  # fmt: skip
        except (ModelError, BudgetExceeded) as exc:  # a check that cannot run never blocks an answer
            run.tracer.emit("check", parent=node.id, answer=answer, verdict="unchecked", reason=str(exc), refused=False)
            return None
        verdict, reason = _verdict(completion.text)
        refused = verdict == "no"
        if refused:
            node.refusals += 1
        run.tracer.emit("check", parent=node.id, answer=answer, verdict=verdict, reason=reason, refused=refused)
        return CHECK_REFUSAL.format(answer=answer[:200], reason=reason or "no reason given") if refused else None

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

    def _unstick(self, run: RunState, node: Node, iteration: int) -> dict[str, Any] | None:
        """Options for the root call after a cell that repeated an earlier turn's code: greedy decoding
        would write it again, so the style's ``loop_temperature`` (seeded, so a run stays reproducible)."""
        temperature = self.style.loop_temperature
        if temperature is None or float(self.model_options.get("temperature") or 0.0) > 0.0:
            return None
        run.tracer.emit("warning", parent=node.id, source="engine",
                        message=f"repeated code: the next root call samples at temperature {temperature:g}")  # fmt: skip
        return {"temperature": temperature, "seed": iteration}

    async def _root_call(
        self, run: RunState, node: Node, messages: list[Message], *, purpose: str, options: Mapping[str, Any] | None = None
    ) -> Any:
        lm = self.models.for_depth(node.depth)
        opts = {**self.model_options, **dict(options or {})}
        reserve = int(self.model_options.get("max_tokens") or 1024)
        if needs_compaction(messages, lm.context_window, reserve, self.compaction):
            await self._compact(run, node, messages)
        run.compaction_tokens_saved += node.compacted_tokens
        trimmed = fit_history(messages, lm.context_window, reserve, head=node.head)
        on_text = _token_sink(run, node, purpose) if run.stream_tokens else None
        try:
            return await run.caller.complete(
                lm, trimmed, purpose=purpose, parent=node.id, on_text=on_text, **opts
            )
        except ContextLengthError:
            window = lm.context_window or _window_guess(messages)
            smaller = fit_history(messages, window, reserve, head=node.head, aggressive=True)
            return await run.caller.complete(
                lm, smaller, purpose=purpose, parent=node.id, on_text=on_text, **opts
            )


#: How many final answers of one RLM the answer check may send back.
MAX_CHECK_REFUSALS = 1
#: Characters of printed output the checker reads (the newest).
CHECK_EVIDENCE_CHARS = 3000

CHECK_PROMPT = """\
A program searched some data to answer a question. Here is what it printed, and the answer it proposes.

Question: {question}

What it printed:
{evidence}

Proposed answer: {answer}

Does what it printed support the proposed answer? Reply "yes" or "no", then a few words why."""

#: The verdict and the first sentence of its reason are all a check needs; on a small local model
#: every further token costs a fifth of a second (the rest of "a few words why" was 30 tokens).
CHECK_STOP = [". ", ".\n"]

CHECK_REFUSAL = (
    "Note: a check of your answer {answer!r} against what your code printed says it is not supported: {reason}. "
    "Look again at the places that answer the question: print them, read more of them with "
    "print(llm_map(question, find(question, k=6))), or pass their text to llm_query together with the question "
    "(llm_query sees only what you pass it), then call FINAL(answer). If the output does show your answer, call "
    "FINAL with it again."
)


def _printed(seen: list[str]) -> str:
    """Everything the code printed so far, without the FINAL lines: where an answer printed word for word
    is looked for (in all of it: a path printed two cells before a long printout is still printed)."""
    return "\n".join(
        line for text in seen for line in text.splitlines() if not line.startswith("FINAL: ")
    )


def _evidence(seen: list[str]) -> str:
    """The newest printed outputs, up to ``CHECK_EVIDENCE_CHARS``."""
    parts: list[str] = []
    used = 0
    for text in reversed(seen):
        text = "\n".join(line for line in text.strip().splitlines() if not line.startswith("FINAL: ")).strip()
        if not text or text == "(no output)":
            continue
        if used + len(text) > CHECK_EVIDENCE_CHARS:
            parts.append(text[-(CHECK_EVIDENCE_CHARS - used) :])
            break
        parts.append(text)
        used += len(text)
    return "\n\n".join(reversed(parts))


#: The shortest answer that counts as shown when it occurs in the output (shorter ones occur by chance).
VERBATIM_MIN_CHARS = 4


def _printed_verbatim(answer: str, evidence: str) -> bool:
    """The answer is a name, path or phrase the code printed word for word (not a bare number, which
    any output may hold by chance; spaces, colons and commas between the words may differ): the
    evidence shows it, so the sub-model is not asked. On the dev half of realqa the 1.5B checker said
    "no" to such answers that were right."""
    text = answer.strip().strip("`'\"").strip()
    if NON_ANSWER.fullmatch(text) or not text:
        return False
    if re.fullmatch(r"[-+]?[\d.,_ ]+", text):  # a number counts only as a reading's whole answer: "Answer: 14", '14'
        number = re.escape(text)
        reading = rf"(?:\banswer:\s*{number}|(?<=['\"]){number}(?=\.?['\"]))(?![\d.,]\d|\d)"
        return re.search(reading, evidence, re.IGNORECASE) is not None
    if len(text) < VERBATIM_MIN_CHARS:
        return False
    # Separators may differ: ``path:line`` is often printed as ``path line``.
    words = _SEPARATORS.join(re.escape(w) for w in re.split(_SEPARATORS, text) if w)
    return re.search(rf"(?<![\w/.]){words}(?![\w/])", evidence, re.IGNORECASE) is not None


_SEPARATORS = r"[\s:,]+"


def _verdict(reply: str) -> tuple[str, str]:
    """("yes" | "no" | "unclear", the reason) from a checker's reply."""
    words = reply.strip().lstrip("*`'\" ").split(None, 1)
    head = words[0].lower().strip(".,:;!*") if words else ""
    reason = " ".join(words[1].split())[:300] if len(words) > 1 else ""
    if head in ("yes", "no"):
        return head, reason.lstrip(",.:;- ")
    return "unclear", " ".join(reply.split())[:300]


async def _summarise(engine: RLM, run: RunState, node: Node, turns: list[Message]) -> str | None:
    """The sub-model's summary of some turns, or None when it could not make one."""
    prompt = summary_prompt(node.question, turns)
    try:
        completion = await run.caller.complete(
            engine.models.sub, [Message("user", prompt)], purpose="compaction", parent=node.id,
            **{**engine.sub_model_options, "max_tokens": 400},
        )  # fmt: skip
    except (ModelError, BudgetExceeded):
        return None
    return completion.text.strip() or None


def _token_sink(run: RunState, node: Node, purpose: str) -> Callable[[str], None]:
    """Where a streamed root reply's text goes: ``token`` events for the run's listeners (not the file)."""

    def sink(text: str) -> None:
        run.tracer.notify(Event("token", run.tracer.new_id("token"), node.id, time.time(),
                                {"text": text, "purpose": purpose, "rlm": node.id}))  # fmt: skip

    return sink


def _window_guess(messages: list[Message]) -> int:
    """A window for a model that did not declare one but said the prompt was too long: what was sent."""
    return max(1, sum(len(m.content) for m in messages) // 3)


def _copy_usage(u: Usage) -> Usage:
    return Usage(u.calls, u.input_tokens, u.output_tokens, u.cached_input_tokens, u.cost_usd)


def _usage_since(before: dict[str, Usage], now: dict[str, Usage]) -> dict[str, Usage]:
    """Per-model usage added since ``before`` (a session's shared ledger keeps counting across questions)."""
    out: dict[str, Usage] = {}
    for name, u in now.items():
        b = before.get(name)
        if b is None:
            out[name] = _copy_usage(u)
            continue
        cost = None if u.cost_usd is None or b.cost_usd is None else u.cost_usd - b.cost_usd
        d = Usage(u.calls - b.calls, u.input_tokens - b.input_tokens, u.output_tokens - b.output_tokens,
                  u.cached_input_tokens - b.cached_input_tokens, cost)  # fmt: skip
        if d.calls or d.total_tokens:
            out[name] = d
    return out


def _check_question(question: str) -> None:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question must be a non-empty string")


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
