"""The embedded backend: ``local/<model>`` specs run in-process on llama.cpp (llama-cpp-python).

How it is put together, and why:

- **Runtimes.** A ``_Runtime`` is one llama.cpp context (the weights mmapped from the GGUF plus its
  own KV cache) driven by exactly one worker thread. Every call on it goes through that thread, so
  calls are serialised across event loops, threads and ``LocalLM`` objects, and the asyncio loop
  keeps serving while the model works. Runtimes are kept process-wide, keyed by model file, slot
  and settings, so two ``LocalLM`` objects for the same spec share one loaded model and one cache.
- **Slots.** A slot is a named runtime. The root model uses ``"root"``; ``fork_for_subcalls()``
  returns a twin on slot ``"sub"``, so ``llm_query`` calls never evict the root's KV cache. A slot
  costs its KV cache (1.5B model: ~28 KiB/token, 0.9 GiB at 32k) plus ~0.7 GiB of working memory
  (llama.cpp repacks quantised weights per context on x86); the GGUF pages themselves are shared.
- **Prefix reuse.** Consecutive root turns share their prefix. ``Llama.generate`` compares the new
  prompt with the tokens already in the KV cache and evaluates only the new suffix; this module
  feeds it token lists (never resets the context) and reports the reused part as
  ``Usage.cached_input_tokens``.
- **One generation at a time.** Runtimes that use all cores (the default ``n_threads``) take
  turns through one process-wide lock; slots with an explicit ``n_threads`` run side by side.
- **Prompt building.** The chat template comes from the GGUF. Message contents are tokenized
  with special tokens disabled, so data that happens to contain ``<|im_end|>`` cannot forge turns.
- **Prompt evaluation in batches.** The part of a prompt that is not in the KV cache is evaluated
  ``n_batch`` tokens at a time before generation starts, checking for cancellation between batches:
  llama.cpp cannot stop inside a batch, so a cancelled call stops within one batch (about a second
  for 512 tokens of the 1.5B model on 2 cores), not after the whole prompt.
- **Streaming.** ``astream`` delivers text as ``Llama.generate`` yields tokens (decoded as UTF-8
  incrementally; text that could be the start of a stop sequence is held back until it is not).
  ``complete`` runs the same code, so its text is the deltas joined. Closing the stream stops the
  generation at the next token.
- **Structured output.** The ``schema`` option becomes a llama.cpp grammar
  (``LlamaGrammar.from_json_schema``), so the sampled reply is JSON of that shape. A schema the
  converter cannot express is ignored with a warning (``extra["schema_ignored"]``); the caller
  validates the answer anyway.
- **Warm start.** The first call on a freshly loaded context whose prompt has more than one
  message saves the llama.cpp state of the prompt up to its last message (for an RLM's root: the
  system prompt and worked examples, the part every run shares) to the cache dir
  (``warm_start.py``); a later process whose first call starts with the same tokens loads it
  instead of evaluating them (reported as ``cached_input_tokens`` and ``extra["warm_start"]``).
  Options ``warm_start=False`` turns it off, ``warm_start_max_bytes`` caps the folder.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ContextLengthError, ModelError, ModelLoadError
from . import warm_start, weights
from .base import Abilities, Completion, Delta, LMBase, Message, Usage, as_messages
from .llama_shared import build_llama
from .schema import check_schema
from .streaming import ReplyText
from .traits import looks_small

log = logging.getLogger(__name__)

DEFAULT_N_CTX = 32768
DEFAULT_N_BATCH = 512
ROOT_SLOT = "root"
SUB_SLOT = "sub"
#: The window the sub-call slot is first loaded with (it grows to ``n_ctx`` when a prompt needs it).
SUB_START_CTX = 8192

_SAMPLING_KEYS = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed")
_BASE_SAMPLING: dict[str, Any] = {
    "temperature": 0.0,
    "top_k": 40,
    "top_p": 0.95,
    "min_p": 0.05,
    "repeat_penalty": 1.0,
    "seed": 0,
}
# Options other backends take; accepted and ignored here so one options dict can serve any spec.
_IGNORED_OPTIONS = frozenset({"timeout", "max_retries", "api_key", "base_url", "max_concurrency"})


def default_threads() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ConfigError(
            "the local backend needs llama-cpp-python, which is not installed: run pip install 'unbounded[local]'"
        ) from exc
    return llama_cpp


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class LocalSettings:
    """What identifies one loaded context. Equal settings share one runtime per process."""

    spec: str
    n_ctx: int = DEFAULT_N_CTX
    n_threads: int = 0  # 0: all cores
    n_batch: int = DEFAULT_N_BATCH
    flash_attn: bool = False
    slot: str = ROOT_SLOT
    llama_kwargs: tuple[tuple[str, Any], ...] = ()
    #: Load with this smaller window first and grow to ``n_ctx`` on the first prompt that needs it
    #: (0: ``n_ctx`` from the start). See ``SUB_START_CTX``.
    n_ctx_start: int = 0

    def with_slot(self, slot: str, *, n_ctx_start: int = 0) -> LocalSettings:
        return dataclasses.replace(self, slot=slot, n_ctx_start=n_ctx_start if n_ctx_start < self.n_ctx else 0)


# --------------------------------------------------------------------------- runtime


@dataclass
class _Job:
    """One generation request, executed on the runtime's thread."""

    tokens: list[int]
    max_tokens: int
    stop: list[str]
    sampling: dict[str, Any]
    cancel: threading.Event
    grammar: Any = None
    #: Called on the runtime's thread with each piece of text as it is decided (streaming).
    on_text: Callable[[str], None] | None = None
    #: Prompt tokens before the last message (the part a warm start saves); 0: none.
    prefix: int = 0
    #: Where warm-start states live; None: no warm start for this call.
    states: warm_start.StateStore | None = None


@dataclass
class _JobResult:
    text: str
    output_tokens: int
    cached_tokens: int
    finish_reason: str
    prompt_eval_s: float
    gen_s: float
    evaluated_prompt_tokens: int | None
    warm: dict[str, Any] = field(default_factory=dict)


class _Runtime:
    """One llama.cpp context plus the single thread allowed to touch it."""

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"unbounded-llama-{settings.slot}"
        )
        self.llama: Any = None
        #: The loaded window (before loading: the one a load will ask for).
        self.n_ctx: int = settings.n_ctx_start or settings.n_ctx
        #: How often a context that started small was loaded again at ``settings.n_ctx``.
        self.grown = 0
        self.load_seconds: float | None = None
        self.model_path: Path | None = None
        self._load_lock = threading.Lock()
        self._formatter: Any = None
        self._nonce = uuid.uuid4().hex[:12]
        self.model_info: weights.ModelInfo | None = None
        #: No call has run on this context since it was loaded (a warm start applies only then).
        self.fresh = False
        self._state_key: warm_start.StateKey | None = None

    # -- loading

    def ensure_loaded(self) -> bool:
        """Load the model if needed. Returns True if this call did the loading."""
        if self.llama is not None:
            return False
        with self._load_lock:
            if self.llama is not None:
                return False
            self._load()
            return True

    def _load(self) -> None:
        _import_llama_cpp()  # names the extra when llama-cpp-python is missing
        path, info = weights.resolve_model_file(self.settings.spec)
        s = self.settings
        start = time.perf_counter()
        try:
            llama = build_llama(
                path,
                n_ctx=self.n_ctx,
                n_threads=s.n_threads or default_threads(),
                n_threads_batch=s.n_threads or default_threads(),
                n_batch=s.n_batch,
                flash_attn=s.flash_attn,
                seed=0,
                verbose=False,
                **dict(s.llama_kwargs),
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"llama.cpp could not load {path}: {exc}") from exc
        self.load_seconds = time.perf_counter() - start
        self.model_path = path
        self.model_info = info
        self.fresh = True
        self.n_ctx = int(llama.n_ctx())
        self._formatter = self._make_formatter(llama)
        self.llama = llama
        log.info("loaded %s (slot %s, n_ctx %d) in %.2fs", path.name, s.slot, self.n_ctx, self.load_seconds)

    @staticmethod
    def _make_formatter(llama: Any) -> Any:
        from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE, Jinja2ChatFormatter

        template = llama.metadata.get("tokenizer.chat_template") or CHATML_CHAT_TEMPLATE
        eos, bos = llama.token_eos(), llama.token_bos()
        model = llama._model
        return Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
            add_generation_prompt=True,
        )

    def forget(self) -> None:
        """Empty the KV cache; the next call evaluates its whole prompt (no warm start either)."""
        self.llama.reset()
        self.fresh = False

    @property
    def window(self) -> int:
        """The window this context offers: the loaded one, or the one it grows to when it started small."""
        return max(self.n_ctx, self.settings.n_ctx)

    def grow(self) -> None:
        """Load this context again at the full window (on the runtime thread; the KV cache is lost).

        A second context in a process that already holds one takes seconds per 8K tokens of window
        to set up (6-10 s at 32K on 2 cores, against about 1 s at 8K), so the sub-call slot starts at
        ``SUB_START_CTX`` and pays for the full window only when a prompt needs it.
        """
        if self.n_ctx >= self.settings.n_ctx:
            return
        log.info("slot %s: a prompt needs more than %d tokens; loading it at %d", self.settings.slot,
                 self.n_ctx, self.settings.n_ctx)  # fmt: skip
        if self.llama is not None:
            self.llama.close()
            self.llama = None
        self.n_ctx = self.settings.n_ctx
        self._state_key = None
        self.grown += 1
        self._load()

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        if self.llama is not None:
            self.llama.close()
            self.llama = None

    # -- prompt

    def tokenize_messages(self, messages: Sequence[Message]) -> list[int]:
        """Render the chat template and tokenize it; message contents never parse as special tokens."""
        return self.tokenize_with_prefix(messages)[0]

    def tokenize_with_prefix(self, messages: Sequence[Message]) -> tuple[list[int], int]:
        """The prompt's tokens, and how many of them come before the last message's template text.

        Each content is replaced by a unique marker before rendering, so the rendered prompt
        splits into template text (tokenized with special tokens on) and contents (off). Since the
        pieces are tokenized one by one, the tokens up to the end of the second-to-last content are
        exactly the start of the prompt's tokens: the prefix a warm start saves. A template that
        rewrites contents beyond recognition falls back to one tokenization (and no prefix).
        """
        self.ensure_loaded()
        markers = [f"\x00ub{self._nonce}m{i}\x00" for i in range(len(messages))]
        dicts = [{"role": m.role, "content": mk} for m, mk in zip(messages, markers, strict=True)]
        rendered = self._formatter(messages=dicts).prompt
        pieces = _split_on_markers(rendered, markers)
        if pieces is None:
            full = self._formatter(messages=[m.to_dict() for m in messages]).prompt
            return self._tok(full, special=True), 0
        tokens: list[int] = []
        prefix = 0
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                tokens += self._tok(piece, special=True)
            else:
                tokens += self._tok(messages[i // 2].content, special=False)
                if i // 2 == len(messages) - 2:
                    prefix = len(tokens)
        return tokens, prefix

    def _tok(self, text: str, *, special: bool) -> list[int]:
        if not text:
            return []
        return self.llama.tokenize(text.encode("utf-8", "surrogatepass"), add_bos=False, special=special)

    # -- generation (runs on the runtime thread only)

    def run(self, job: _Job) -> _JobResult:
        """Generate for ``job``. Runtimes that use every core take turns (see ``_COMPUTE_LOCK``)."""
        with _COMPUTE_LOCK if self.settings.n_threads == 0 else contextlib.nullcontext():
            if job.cancel.is_set():  # cancelled while waiting for its turn
                return _JobResult("", 0, 0, "cancelled", 0.0, 0.0, 0)
            return self._generate(job)

    def _generate(self, job: _Job) -> _JobResult:
        llama_cpp = _import_llama_cpp()
        llama = self.llama
        warm: dict[str, Any] = {}
        save_at: int | None = None
        if self.fresh and job.states is not None and job.prefix >= warm_start.MIN_PREFIX_TOKENS:
            warm = self._load_prefix(job)
            if not warm.get("loaded_tokens"):
                save_at = job.prefix
        self.fresh = False
        cached = self._reusable_prefix(job.tokens)
        perf_before = self._perf()
        llama.set_seed(int(job.sampling["seed"]))
        reply = ReplyText(job.stop)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        n_out = 0
        finish = "length"
        start = time.perf_counter()
        first: float | None = None

        def deliver(text: str) -> None:
            if text and job.on_text is not None:
                job.on_text(text)

        try:
            if not self._prefill(job, save_at, warm):
                finish = "cancelled"
            else:
                for token in llama.generate(
                    job.tokens,
                    temp=float(job.sampling["temperature"]),
                    top_k=int(job.sampling["top_k"]),
                    top_p=float(job.sampling["top_p"]),
                    min_p=float(job.sampling["min_p"]),
                    repeat_penalty=float(job.sampling["repeat_penalty"]),
                    grammar=job.grammar,
                ):
                    if first is None:
                        first = time.perf_counter()
                    if llama_cpp.llama_vocab_is_eog(llama._model.vocab, token):
                        finish = "stop"
                        break
                    n_out += 1
                    deliver(reply.feed(decoder.decode(llama.detokenize([token]))))
                    if reply.stopped:
                        finish = "stop"
                        break
                    if n_out >= job.max_tokens:
                        break
                    if job.cancel.is_set():
                        finish = "cancelled"
                        break
        except Exception:
            llama.reset()  # the KV bookkeeping may be half-updated; start clean next time
            raise
        deliver(reply.feed(decoder.decode(b"", final=True)))
        deliver(reply.finish())
        end = time.perf_counter()
        first = first or end
        return _JobResult(
            text=reply.text,
            output_tokens=n_out,
            cached_tokens=cached,
            finish_reason=finish,
            prompt_eval_s=first - start,
            gen_s=end - first,
            evaluated_prompt_tokens=self._evaluated_since(perf_before),
            warm=warm,
        )

    def _prefill(self, job: _Job, save_at: int | None, warm: dict[str, Any]) -> bool:
        """Evaluate the prompt tokens not in the KV cache, ``n_batch`` at a time; False if cancelled.

        Afterwards the whole prompt is in the cache with fresh logits, so ``Llama.generate`` samples
        at once (its own prefix check finds everything cached). With ``save_at``, the evaluation
        pauses at that many tokens to capture the state for a warm start.
        """
        llama = self.llama
        tokens = job.tokens
        n_past = int(llama.n_tokens)
        common = 0
        for a, b in zip(llama.input_ids[:n_past].tolist(), tokens, strict=False):
            if a != b:
                break
            common += 1
        if common == len(tokens) == n_past and not getattr(llama, "_requires_eval", True):
            return True
        keep = min(common, len(tokens) - 1)  # at least one token is evaluated, for fresh logits
        if keep < n_past and not llama._ctx.kv_cache_seq_rm(-1, keep, -1):
            llama.reset()
            keep = 0
        llama.n_tokens = keep
        stops = [n for n in (save_at, len(tokens)) if n is not None and n > keep]
        pos = keep
        for end in stops:
            while pos < end:
                if job.cancel.is_set():
                    return False
                step = min(self.settings.n_batch, end - pos)
                llama.eval(tokens[pos : pos + step])
                pos += step
            if end == save_at and job.states is not None:
                warm.update(self._save_prefix(job, tokens[:end]))
        return True

    # -- warm start (runs on the runtime thread only)

    def state_key(self) -> warm_start.StateKey:
        """What a saved state of this context depends on besides its tokens."""
        if self._state_key is None:
            import llama_cpp

            assert self.model_path is not None
            s = self.settings
            known = self.model_info.sha256 if self.model_info is not None else None
            self._state_key = warm_start.StateKey(
                model_sha256=warm_start.model_sha256(self.model_path, known),
                llama_cpp=str(getattr(llama_cpp, "__version__", "unknown")),
                settings=warm_start.settings_key(
                    {"n_ctx": self.n_ctx, "n_batch": s.n_batch, "flash_attn": s.flash_attn, **dict(s.llama_kwargs)}
                ),
            )
        return self._state_key

    def _load_prefix(self, job: _Job) -> dict[str, Any]:
        """Restore the saved state of the job's prefix, if there is a good one."""
        import ctypes

        import llama_cpp

        assert job.states is not None
        prefix = job.tokens[: job.prefix]
        try:
            key = self.state_key()
            loaded = job.states.load(key, prefix)
        except OSError as exc:
            log.warning("warm start: %s", exc)
            return {}
        if loaded is None:
            return {}
        started = time.perf_counter()
        llama = self.llama
        buf = (ctypes.c_uint8 * len(loaded.payload)).from_buffer_copy(loaded.payload)
        ok = llama_cpp.llama_state_seq_set_data(llama._ctx.ctx, buf, len(loaded.payload), 0)
        if not ok:
            log.warning("warm start: llama.cpp refused %s; it will be replaced", loaded.path.name)
            job.states.discard(loaded.path)
            llama._ctx.kv_cache_clear()
            llama.reset()
            return {"rejected": loaded.path.name}
        llama.input_ids[: len(prefix)] = prefix
        llama.n_tokens = len(prefix)
        llama._requires_eval = True
        return {
            "loaded_tokens": len(prefix),
            "load_s": round(loaded.seconds + time.perf_counter() - started, 4),
            "file": loaded.path.name,
        }

    def _save_prefix(self, job: _Job, prefix: list[int]) -> dict[str, Any]:
        """Copy the state of the evaluated prefix and write it to disk on another thread."""
        import ctypes

        import llama_cpp

        assert job.states is not None
        ctx = self.llama._ctx.ctx
        size = int(llama_cpp.llama_state_seq_get_size(ctx, 0))
        buf = (ctypes.c_uint8 * size)()
        n = int(llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0))
        if n <= 0 or n > size:
            log.warning("warm start: llama.cpp returned no state to save")
            return {}
        warm_start.save_in_background(job.states, self.state_key(), prefix, ctypes.string_at(buf, n))
        return {"saved_tokens": len(prefix), "state_bytes": n}

    def _reusable_prefix(self, tokens: list[int]) -> int:
        """How many prompt tokens ``Llama.generate`` will take from the KV cache (mirrors its rule)."""
        llama = self.llama
        n_past = int(llama.n_tokens)
        if n_past == 0 or not tokens:
            return 0
        common = 0
        for a, b in zip(llama.input_ids[:n_past].tolist(), tokens, strict=False):
            if a != b:
                break
            common += 1
        if common < len(tokens):
            return common
        if n_past == len(tokens) and not getattr(llama, "_requires_eval", True):
            return len(tokens)
        return len(tokens) - 1  # one token is replayed to refresh the logits

    def _perf(self) -> Any:
        try:
            import llama_cpp

            return llama_cpp.llama_perf_context(self.llama.ctx)
        except Exception:  # perf counters are a diagnostic, never a reason to fail
            return None

    def _evaluated_since(self, before: Any) -> int | None:
        after = self._perf()
        if before is None or after is None:
            return None
        return int(after.n_p_eval - before.n_p_eval)


def _split_on_markers(rendered: str, markers: list[str]) -> list[str] | None:
    """Split ``rendered`` into [text, marker, text, marker, ..., text]; None if markers are not intact."""
    pieces: list[str] = []
    pos = 0
    for mk in markers:
        at = rendered.find(mk, pos)
        if at < 0 or rendered.count(mk) != 1:
            return None
        pieces += [rendered[pos:at], mk]
        pos = at + len(mk)
    pieces.append(rendered[pos:])
    return pieces


#: Held while a runtime that uses all cores generates. Two such runtimes (the root slot and the sub
#: slot, or children of ``rlm_batch``) running at once would only oversubscribe the cores: llama.cpp's
#: worker threads busy-wait at their barriers, so both calls get slower than running one after the other.
_COMPUTE_LOCK = threading.Lock()

_RUNTIMES: dict[LocalSettings, _Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def _runtime_for(settings: LocalSettings) -> _Runtime:
    with _RUNTIMES_LOCK:
        rt = _RUNTIMES.get(settings)
        if rt is None:
            rt = _RUNTIMES[settings] = _Runtime(settings)
        return rt


def unload_all() -> None:
    """Free every loaded local model in this process (their KV caches go with them)."""
    with _RUNTIMES_LOCK:
        runtimes = list(_RUNTIMES.values())
        _RUNTIMES.clear()
    for rt in runtimes:
        rt.close()


# --------------------------------------------------------------------------- the LM


class LocalLM(LMBase):
    """A GGUF model run in-process by llama.cpp. Build it with ``create`` or ``resolve_model``.

    Calls on one slot are serialised (``max_concurrency = 1``); loading happens on the first call
    (``load_seconds`` and ``Completion.extra["load_s"]`` report it). Decoding is greedy by default
    (temperature 0, seed 0), so a run is reproducible. Cost is always 0.

    ``complete`` options: ``max_tokens``, ``temperature``, ``top_k``, ``top_p``, ``min_p``,
    ``repeat_penalty``, ``seed``, ``stop`` (str or list; the stop text is not returned), ``schema``
    (a JSON-schema dict: the reply is sampled under its grammar). ``astream`` takes the same.
    A prompt that does not fit the window raises ``ContextLengthError``;
    ``max_tokens`` is clipped to the room left in the window.

    ``fork_for_subcalls()`` returns a twin on its own context (slot ``"sub"``), so sub-calls keep
    the root's KV cache warm; ``with_slot(name)`` makes any other named context.
    """

    max_concurrency = 1

    def __init__(
        self,
        settings: LocalSettings,
        *,
        info: weights.ModelInfo | None = None,
        sampling: Mapping[str, Any] | None = None,
        default_max_tokens: int | None = None,
        small: bool = True,
        warm_start: bool = True,
        warm_start_max_bytes: int = warm_start.DEFAULT_MAX_BYTES,
    ) -> None:
        self.settings = settings
        self.abilities = Abilities(
            tokenizer=True, slots=True, lazy_load=True, small=small, streaming=True, structured_output=True
        )
        self.warm_start = warm_start
        self.warm_start_max_bytes = warm_start_max_bytes
        self.name = f"local/{settings.spec}"
        self.info = info
        self.context_window = settings.n_ctx
        self._sampling = {**_BASE_SAMPLING, **(dict(info.defaults) if info else {}), **(sampling or {})}
        self._sampling = {k: v for k, v in self._sampling.items() if k in _SAMPLING_KEYS}
        if default_max_tokens is not None:
            self.default_max_tokens = default_max_tokens

    # -- slots

    @property
    def slot(self) -> str:
        return self.settings.slot

    def with_slot(self, slot: str, *, n_ctx_start: int = 0) -> LocalLM:
        """The same model on the named context (created lazily; each costs its own KV cache).
        ``n_ctx_start``: load it with that smaller window first (it grows when a prompt needs more)."""
        return LocalLM(
            self.settings.with_slot(slot, n_ctx_start=n_ctx_start),
            info=self.info,
            sampling=self._sampling,
            default_max_tokens=self.default_max_tokens,
            small=self.abilities.small,
            warm_start=self.warm_start,
            warm_start_max_bytes=self.warm_start_max_bytes,
        )

    def fork_for_subcalls(self) -> LocalLM:
        """A twin for ``llm_query``/``llm_batch`` that never evicts this instance's KV cache. It starts
        with a ``SUB_START_CTX`` window (most sub-call prompts are passages of a few thousand tokens)
        and grows to the full one on the first prompt that needs it; it reports the full window."""
        return self.with_slot(SUB_SLOT, n_ctx_start=SUB_START_CTX)

    # -- runtime

    def _runtime(self) -> _Runtime:
        return _runtime_for(self.settings)

    @property
    def load_seconds(self) -> float | None:
        """Seconds the model took to load (None until loaded)."""
        return self._runtime().load_seconds

    @property
    def loaded(self) -> bool:
        return self._runtime().llama is not None

    def load(self) -> float:
        """Load now (normally lazy) on the runtime's thread; returns the load time in seconds."""
        rt = self._runtime()
        rt.executor.submit(rt.ensure_loaded).result()
        self.context_window = rt.window
        return rt.load_seconds or 0.0

    async def aload(self) -> float:
        """``load`` without blocking the event loop."""
        rt = self._runtime()
        await asyncio.wrap_future(rt.executor.submit(rt.ensure_loaded))
        self.context_window = rt.window
        return rt.load_seconds or 0.0

    def unload(self) -> None:
        """Free this slot's context (the next call loads it again)."""
        with _RUNTIMES_LOCK:
            rt = _RUNTIMES.pop(self.settings, None)
        if rt is not None:
            rt.close()

    def clear_cache(self) -> None:
        """Forget this slot's KV cache (the model stays loaded): the next call evaluates its whole
        prompt, without loading a saved prefix. For measuring cold turns; normal use never needs it."""
        rt = self._runtime()
        if rt.llama is not None:
            rt.executor.submit(rt.forget).result()

    # -- tokens

    def tokenize(self, messages: Sequence[Message] | str) -> list[int]:
        """The exact prompt tokens ``complete`` would evaluate for ``messages`` (loads the model)."""
        rt = self._runtime()
        if rt.llama is None:
            self.load()
        return rt.tokenize_messages(as_messages(messages))

    def count_tokens(self, messages: Sequence[Message]) -> int | None:
        """Exact prompt length in tokens, chat template included (loads the model if needed)."""
        return len(self.tokenize(messages))

    def price(self) -> tuple[float, float, float] | None:
        return (0.0, 0.0, 0.0)

    # -- calls

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        cancel = threading.Event()
        job_future = self._submit(messages, opts, cancel)
        try:
            return await asyncio.wrap_future(job_future)
        except asyncio.CancelledError:
            cancel.set()  # a running generation stops at its next token (or prompt batch)
            raise

    async def astream(self, messages: Sequence[Message], **opts: Any) -> AsyncIterator[Delta]:
        """The reply token by token as llama.cpp generates it; the last delta has the completion.

        Closing the stream (or cancelling its consumer) stops the generation at the next token.
        """
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        cancel = threading.Event()

        def post(item: str | None) -> None:  # from the runtime's thread
            try:
                loop.call_soon_threadsafe(pieces.put_nowait, item)
            except RuntimeError:  # the consumer's loop has closed: nobody is listening
                cancel.set()

        job_future = self._submit(messages, opts, cancel, on_text=post)
        job_future.add_done_callback(lambda _: post(None))
        try:
            while (piece := await pieces.get()) is not None:
                yield Delta(piece)
            yield Delta("", job_future.result())
        finally:
            if not job_future.done():
                cancel.set()

    def complete_sync(self, messages: Sequence[Message] | str, **opts: Any) -> Completion:
        """Blocking ``complete`` for scripts and tools outside an event loop."""
        return self._submit(as_messages(messages), opts, threading.Event()).result()

    def _submit(
        self,
        messages: Sequence[Message],
        opts: Mapping[str, Any],
        cancel: threading.Event,
        on_text: Callable[[str], None] | None = None,
    ) -> concurrent.futures.Future[Completion]:
        msgs = as_messages(messages)
        check_schema(opts.get("schema"))  # a bad schema fails here, not on the model's thread
        rt = self._runtime()
        return rt.executor.submit(self._complete_on_thread, rt, msgs, dict(opts), cancel, on_text)

    def _complete_on_thread(
        self,
        rt: _Runtime,
        messages: list[Message],
        opts: dict[str, Any],
        cancel: threading.Event,
        on_text: Callable[[str], None] | None,
    ) -> Completion:
        loaded_now = rt.ensure_loaded()
        self.context_window = rt.window
        tokens, prefix = rt.tokenize_with_prefix(messages)
        if rt.n_ctx < rt.window and len(tokens) + self._wanted(opts.get("max_tokens"), rt.window) > rt.n_ctx:
            rt.grow()
            loaded_now = True
        grammar, ignored = _grammar_for(opts.get("schema"))
        job = _Job(
            tokens=tokens,
            max_tokens=self._max_tokens(len(tokens), rt.n_ctx, opts.get("max_tokens")),
            stop=_stop_list(opts.get("stop")),
            sampling=self._sampling_for(opts),
            cancel=cancel,
            grammar=grammar,
            on_text=on_text,
            prefix=prefix,
            states=self._states() if rt.fresh else None,
        )
        try:
            res = rt.run(job)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"llama.cpp failed on {self.name}: {exc}", kind="model") from exc
        completion = self._completion(rt, len(tokens), res, loaded_now)
        if ignored:
            completion.extra["schema_ignored"] = ignored
        return completion

    def _states(self) -> warm_start.StateStore | None:
        if not self.warm_start:
            return None
        return warm_start.StateStore(max_bytes=self.warm_start_max_bytes)

    def _max_tokens(self, n_prompt: int, n_ctx: int, requested: Any) -> int:
        if n_prompt >= n_ctx:
            raise ContextLengthError(
                f"prompt of {n_prompt} tokens does not fit the {n_ctx}-token window of {self.name} "
                f"(slot {self.slot}); shorten the history or raise n_ctx"
            )
        return max(1, min(self._wanted(requested, n_ctx), n_ctx - n_prompt))

    def _wanted(self, requested: Any, n_ctx: int) -> int:
        wanted = self.default_max_tokens if requested is None else int(requested)
        return n_ctx if wanted <= 0 else wanted

    def _sampling_for(self, opts: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(self._sampling)
        for key in _SAMPLING_KEYS:
            if opts.get(key) is not None:
                out[key] = opts[key]
        return out

    def _completion(self, rt: _Runtime, n_prompt: int, res: _JobResult, loaded_now: bool) -> Completion:
        usage = Usage(
            calls=1,
            input_tokens=n_prompt,
            output_tokens=res.output_tokens,
            cached_input_tokens=res.cached_tokens,
            cost_usd=0.0,
        )
        fresh = n_prompt - res.cached_tokens
        extra: dict[str, Any] = {
            "slot": self.slot,
            "prompt_eval_s": round(res.prompt_eval_s, 4),
            "gen_s": round(res.gen_s, 4),
            "prompt_tokens_evaluated": fresh,
            # llama.cpp's own counter of prompt tokens decoded in this call (a cross-check).
            "llama_prompt_eval_count": res.evaluated_prompt_tokens,
            "prompt_tok_per_s": round(fresh / res.prompt_eval_s, 1) if res.prompt_eval_s > 0 else None,
            "gen_tok_per_s": round(res.output_tokens / res.gen_s, 1) if res.gen_s > 0 else None,
        }
        if loaded_now:
            extra["load_s"] = round(rt.load_seconds or 0.0, 3)
        if res.warm:
            extra["warm_start"] = dict(res.warm)
        return Completion(
            text=res.text,
            usage=usage,
            model=self.name,
            finish_reason=res.finish_reason,
            extra=extra,
        )


_GRAMMARS: OrderedDict[str, Any] = OrderedDict()
_GRAMMARS_LOCK = threading.Lock()
_GRAMMARS_KEPT = 32


def _grammar_for(schema: Any) -> tuple[Any, str]:
    """The llama.cpp grammar for a JSON schema (kept for reuse), and why it was ignored, if it was."""
    schema = check_schema(schema)
    if schema is None:
        return None, ""
    text = json.dumps(schema, sort_keys=True)
    with _GRAMMARS_LOCK:
        if text in _GRAMMARS:
            _GRAMMARS.move_to_end(text)
            return _GRAMMARS[text], ""
    llama_cpp = _import_llama_cpp()
    try:
        grammar = llama_cpp.LlamaGrammar.from_json_schema(text, verbose=False)
    except Exception as exc:  # the converter raises plain exceptions for what it cannot express
        reason = f"llama.cpp cannot turn this schema into a grammar ({type(exc).__name__}: {exc}); sampled without one"
        log.warning("%s", reason)
        return None, reason
    with _GRAMMARS_LOCK:
        _GRAMMARS[text] = grammar
        while len(_GRAMMARS) > _GRAMMARS_KEPT:
            _GRAMMARS.popitem(last=False)
    return grammar, ""


def _stop_list(stop: Any) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    return [str(s) for s in stop]


# --------------------------------------------------------------------------- factory

_SETTING_KEYS = (
    "n_ctx",
    "n_threads",
    "n_batch",
    "flash_attn",
    "slot",
    "role",
    "llama_kwargs",
    "small",
    "warm_start",
    "warm_start_max_bytes",
)


def create(rest: str, options: dict[str, Any]) -> LocalLM:
    """Registry factory for ``local/<rest>``.

    ``rest`` is a catalogue name (``qwen2.5-coder-1.5b``, ``qwen2.5-coder-0.5b``), a path to a
    ``.gguf`` file, or a file stem in ``$UNBOUNDED_MODELS_DIR``. Options: ``n_ctx`` (default
    32768, or the model's training length if shorter), ``n_threads`` (default: all cores),
    ``n_batch``, ``flash_attn``, ``slot`` (or ``role``; default ``"root"``), ``llama_kwargs``
    (extra ``llama_cpp.Llama`` arguments), ``max_tokens`` (default output cap), ``small`` (whether
    the model needs the compact prompt; default: from the size in its name or its file size),
    ``warm_start`` (default True: save and reuse the evaluated prompt prefix across processes) and
    ``warm_start_max_bytes`` (the cap of the saved states' folder, default 1 GiB), and the
    sampling options ``temperature``, ``top_k``, ``top_p``, ``min_p``, ``repeat_penalty``, ``seed``.

    Nothing heavy happens here: the weights are checked for presence (a missing part raises
    ``ConfigError`` with the install command) and loaded on the first call.
    """
    source = weights.check_model_spec(rest)
    opts = dict(options)
    n_ctx = int(opts.pop("n_ctx", None) or 0) or min(DEFAULT_N_CTX, source.context_length() or DEFAULT_N_CTX)
    llama_kwargs = opts.pop("llama_kwargs", None) or {}
    slot = opts.pop("slot", None) or opts.pop("role", None) or ROOT_SLOT
    opts.pop("role", None)
    settings = LocalSettings(
        spec=rest.strip(),
        n_ctx=n_ctx,
        n_threads=int(opts.pop("n_threads", None) or 0),
        n_batch=int(opts.pop("n_batch", None) or DEFAULT_N_BATCH),
        flash_attn=bool(opts.pop("flash_attn", False)),
        slot=str(slot),
        llama_kwargs=tuple(sorted(dict(llama_kwargs).items())),
    )
    sampling = {k: opts.pop(k) for k in _SAMPLING_KEYS if opts.get(k) is not None}
    max_tokens = opts.pop("max_tokens", None)
    small = opts.pop("small", None)
    warm = opts.pop("warm_start", True)
    warm_cap_opt = opts.pop("warm_start_max_bytes", None)
    warm_cap = warm_start.DEFAULT_MAX_BYTES if warm_cap_opt is None else int(warm_cap_opt)
    if warm_cap < 0:
        raise ConfigError(f"warm_start_max_bytes must not be negative, got {warm_cap}")
    if small is None:
        size = source.user_path.stat().st_size if source.user_path is not None else None
        small = looks_small(rest, size) if source.info is None else looks_small(source.info.name)
    unknown = sorted(set(opts) - _IGNORED_OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown option(s) for local models: {', '.join(unknown)}; known: "
            f"{', '.join((*_SETTING_KEYS, *_SAMPLING_KEYS, 'max_tokens'))}"
        )
    return LocalLM(
        settings,
        info=source.info,
        sampling=sampling,
        default_max_tokens=int(max_tokens) if max_tokens is not None else None,
        small=bool(small),
        warm_start=_flag(warm),
        warm_start_max_bytes=warm_cap,
    )


def _flag(value: Any) -> bool:
    """A boolean option that may come from a command line or an environment as text."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)
