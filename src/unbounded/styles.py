"""Prompt styles: everything about how the root model is spoken to, one object per style.

The engine's loop is the same for every model; what differs — the system prompt, worked examples,
how the context is described, how cell output is shown, the sampling options a reply needs, notes
that put a small model back on track — is a ``PromptStyle``. ``full`` is for capable models (the
paper's setting); ``guided`` (the default for small models) and ``compact`` (its predecessor: one
needle-search example) for small local models. A new style is a subclass registered with
``register_style``; ``resolve_style("auto", lm)`` picks ``compact`` for a model that declares
itself small (``lm.abilities.small``) and ``full`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .coaching import example_echo_note
from .context import ContextInfo
from .models.base import LMBase, Message
from .prompts import (
    COMPACT_MAX_TOKENS,
    COMPACT_STOP,
    REPEATED_CODE_NOTE,
    PromptConfig,
    close_code_fence,
    compact_context_description,
    compact_few_shot,
    compact_first_user_message,
    compact_system_prompt,
    first_user_message,
    full_system_prompt,
)
from .repl.base import CellResult, ToolSpec


def middle_cut(length: int, limit: int) -> int:
    """How many characters ``truncate_middle`` drops from a text of ``length`` characters."""
    return 0 if length <= limit else length - 2 * max(limit // 2, 1)


def truncate_middle(text: str, limit: int) -> str:
    """Keep the head and tail of ``text`` within ``limit`` characters, saying how much was cut."""
    cut = middle_cut(len(text), limit)
    if not cut:
        return text
    half = max(limit // 2, 1)
    return f"{text[:half]}\n... [{cut:,} characters truncated] ...\n{text[-half:]}"


class PromptStyle:
    """How one kind of model is prompted. Subclasses override what differs."""

    name = "base"
    #: Characters of a cell's output the model is shown (head and tail kept).
    shown_output_chars = 6_000
    #: Refuse once a literal FINAL whose value was never shown to the model (see answer_guard.py).
    check_grounding = False
    #: Have the sub-model check a FINAL against what the code printed before taking it (engine.py).
    check_answers = False
    #: When a turn's code repeats an earlier turn's, the next root call samples at this temperature
    #: (seeded by the turn), so a greedy small model gets out of its circle; None: the options stay as set.
    loop_temperature: float | None = None
    #: After this many turns in a row that only re-ran code of earlier turns (one cell again and again, or
    #: a round of three), the root is asked for its answer at once, as when its turns run out, instead of
    #: spending the rest of them going round; None: never.
    max_stale_turns: int | None = None

    # -- the start of an RLM ---------------------------------------------------------------------
    def system_prompt(self, cfg: PromptConfig, context_type: str, tools: Sequence[ToolSpec]) -> str:
        raise NotImplementedError

    def describe(self, info: ContextInfo) -> str:
        """What the root model is told about the context."""
        return info.describe()

    def examples(self, context_type: str) -> list[tuple[str, str]]:
        """Worked (role, content) turns shown before the question."""
        return []

    def first_message(self, question: str, description: str) -> str:
        return first_user_message(question, description)

    def initial_messages(
        self, cfg: PromptConfig, question: str, info: ContextInfo, tools: Sequence[ToolSpec], value: Any = None
    ) -> list[Message]:
        """The system prompt, worked examples and the question. ``value`` is the context itself, for
        styles that describe it beyond its metadata (its keys, its records' fields)."""
        msgs = [Message("system", self.system_prompt(cfg, info.type, tools))]
        msgs.extend(Message(role, content) for role, content in self.examples(info.type))
        msgs.append(Message("user", self.first_message(question, self.describe(info))))
        return msgs

    # -- each turn ---------------------------------------------------------------------------------
    def model_options(self) -> dict[str, Any]:
        """Defaults for root calls under this style (the caller's options win)."""
        return {}

    def reply_text(self, text: str) -> str:
        """The reply as kept in the history."""
        return text

    def format_cell(self, result: CellResult, limit: int | None = None) -> tuple[str, int]:
        """One cell's output as the model sees it (at most ``limit`` characters of stdout, default the
        style's ``shown_output_chars``), and how many characters of its stdout were cut."""
        limit = limit or self.shown_output_chars
        parts = []
        cut = 0
        if result.stdout:
            out = result.stdout
            if result.stdout_total > len(out):
                cut += result.stdout_total - len(out)
                out += f"\n[output was {result.stdout_total:,} characters; only part is shown]"
            cut += middle_cut(len(out), limit)
            parts.append(truncate_middle(out, limit))
        if result.error:
            parts.append("Error:\n" + truncate_middle(result.error, max(1000, limit // 2)))
        for note in result.notes:
            parts.append(f"Note: {note}")
        if result.final is not None:
            parts.append(f"FINAL: {result.final[:200]}")
        return ("\n".join(parts) if parts else "(no output)"), cut

    def turn_notes(self, code_blocks: list[str], question: str, earlier_code: Sequence[list[str]]) -> list[str]:
        """Notes appended to a turn's output (e.g. a small model that copied the worked example).
        ``earlier_code``: the code of each earlier turn that ran, oldest first."""
        return []

    def output_message(self, parts: Sequence[str], iteration: int, max_iterations: int) -> str:
        body = "\n\n".join(parts)
        return f"{body}\n\n[turn {iteration} of {max_iterations}; {max_iterations - iteration} left]"


class FullStyle(PromptStyle):
    """Capable models: the whole toolbox described, the paper's advice, the turn count shown."""

    name = "full"

    def system_prompt(self, cfg: PromptConfig, context_type: str, tools: Sequence[ToolSpec]) -> str:
        return full_system_prompt(cfg, context_type, tools)


class CompactStyle(PromptStyle):
    """Small local models: a short prompt, one worked first turn, one code block per reply.

    Tuned on qwen2.5-coder-1.5b/0.5b (see benchmarks/local_model.py and prompts.py): small models
    copy what they are shown, stop after the block, and get back on track with short notes.
    """

    name = "compact"
    shown_output_chars = 2_000
    check_grounding = True

    def system_prompt(self, cfg: PromptConfig, context_type: str, tools: Sequence[ToolSpec]) -> str:
        return compact_system_prompt(cfg, context_type, tools)

    def describe(self, info: ContextInfo) -> str:
        return compact_context_description(info)

    def examples(self, context_type: str) -> list[tuple[str, str]]:
        return compact_few_shot(context_type)

    def first_message(self, question: str, description: str) -> str:
        return compact_first_user_message(question, description)

    def model_options(self) -> dict[str, Any]:
        # One code block per reply, then stop: a small model that goes on writes made-up output.
        return {"stop": list(COMPACT_STOP), "max_tokens": COMPACT_MAX_TOKENS}

    def reply_text(self, text: str) -> str:
        return close_code_fence(text)

    def turn_notes(self, code_blocks: list[str], question: str, earlier_code: Sequence[list[str]]) -> list[str]:
        echo = example_echo_note(code_blocks, question)
        if echo is not None:
            return [echo]
        if earlier_code and code_blocks == earlier_code[-1]:  # greedy small models loop on one cell
            return [REPEATED_CODE_NOTE]
        return []

    def output_message(self, parts: Sequence[str], iteration: int, max_iterations: int) -> str:
        return "Output:\n" + "\n\n".join(parts)


_STYLES: dict[str, PromptStyle] = {}


def register_style(style: PromptStyle) -> None:
    """Make ``style`` available by its name (``RLM(prompt_style=name)``)."""
    _STYLES[style.name] = style


def style_names() -> list[str]:
    return ["auto", *_STYLES]


def resolve_style(style: str | PromptStyle, lm: LMBase) -> PromptStyle:
    """The style object for a name (``"auto"``: by what the root model declares) or a style as is."""
    if isinstance(style, PromptStyle):
        return style
    if style == "auto":
        return _STYLES["guided" if lm.abilities.small else "full"]
    try:
        return _STYLES[style]
    except KeyError:
        raise ValueError(f"unknown prompt style {style!r}; known: {', '.join(style_names())}") from None


register_style(FullStyle())
register_style(CompactStyle())


# The guided style builds on CompactStyle (above) and registers itself when its module has run. Imported
# as a module, not `from .guided import GuidedStyle`, so that importing `unbounded.guided` first (which
# imports this module half-way through its own) still works.
from . import guided as _guided  # noqa: E402,F401
