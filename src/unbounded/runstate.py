"""The state one run shares across its recursion tree, and the state of each RLM in it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .budget import Ledger
from .calls import ModelCaller
from .trace import Tracer


@dataclass
class RunState:
    """Shared by every RLM of one run: one ledger, one trace, one caller, one batch limit."""

    ledger: Ledger
    tracer: Tracer
    caller: ModelCaller
    batch_sem: asyncio.Semaphore
    subcalls: int = 0
    #: Compactions of any RLM's history in this run, and the input tokens they kept out of root calls.
    compactions: int = 0
    compaction_tokens_saved: int = 0
    #: Stream the root's replies (``token`` events to the listeners): a caller of ``astream`` is watching.
    stream_tokens: bool = False


@dataclass
class Node:
    """One RLM of the tree. ``unseen``: the context is longer than its preview (a first-turn answer
    is a guess); ``head``: how many leading messages (system prompt, examples, question) are never
    dropped from the history; ``best``: the best answer so far, kept when the run ends early."""

    id: str
    depth: int
    question: str
    context: Any
    iterations: int = 0
    best: str | None = None
    unseen: bool = False
    head: int = 0
    #: Final answers the answer check sent back so far.
    refusals: int = 0
    rules_used: set[str] = field(default_factory=set)  # the form rules (final_rules) that sent an answer back
    #: The shape a typed answer must have (an ``OutputSpec``), the validated value, the failed tries.
    output: Any = None
    value: Any = None
    output_retries: int = 0
    #: Tokens (estimated) that compactions removed from this RLM's history so far: each later root
    #: call sends that many fewer.
    compacted_tokens: int = 0
