"""``--methods rlms``: the paper authors' own library (PyPI ``rlms``, module ``rlm``) as a comparison.

It runs on the same model as the other methods, through an OpenAI-compatible endpoint, because that
is what ``rlms`` speaks:

* ``local/...`` models: a ``llama_cpp.server`` on loopback serving the same GGUF (started on the
  first item, stopped when the bench run ends);
* ``openai/...``, ``openai-compatible/...``, ``vllm/...``, ``ollama/...`` and the other OpenAI-style
  backends: their base URL and model name are passed through;
* anything else: give ``--rlms-option base_url=... --rlms-option model=...`` explicitly.

Options (``--rlms-option KEY=VALUE``): ``base_url``, ``model``, ``api_key`` (or ``api_key_env``, the
name of an environment variable holding it), ``environment`` (an ``rlms`` REPL environment, default
``local``), ``max_timeout`` (seconds; defaults to the bench's per-item timeout), ``max_tokens``
(output cap per call, default 1024), ``server_timeout`` (seconds to wait for llama_cpp.server).

``rlms`` is synchronous; each item runs in a worker thread. Its model calls bypass the bench's
response cache. Its trajectory (metadata and iterations) is written to the item's trace file.
The question it gets is the same text (question plus answer format) every other method gets.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..models import LM, Usage
from .methods.base import MethodConfig, MethodResult, user_prompt
from .tasks.base import TaskItem

#: Backends of ``unbounded`` that are OpenAI-compatible HTTP endpoints (their LM has base_url and model).
OPENAI_STYLE = ("openai", "openai-compatible", "ollama", "vllm", "llamacpp", "lmstudio", "openrouter", "together")
INSTALL_HINT = "the rlms method needs the official library: pip install rlms (or pip install 'unbounded[rlms]')"


def rlms_available() -> str | None:
    """None when ``rlms`` can be imported, else why not."""
    try:
        import rlm  # noqa: F401
    except ImportError as exc:
        return f"{INSTALL_HINT} ({exc})"
    return None


@dataclass(slots=True)
class Endpoint:
    """Where ``rlms`` sends its OpenAI calls."""

    base_url: str | None
    model: str
    api_key: str | None
    loopback_server: bool = False


def _api_key(options: dict[str, Any], default: str | None) -> str | None:
    if options.get("api_key"):
        return str(options["api_key"])
    env = options.get("api_key_env")
    if env:
        value = os.environ.get(str(env))
        if not value:
            raise ConfigError(f"rlms: the environment variable {env} named by api_key_env is not set")
        return value
    return default


def endpoint_for(model_spec: str, raw_lm: Any, options: dict[str, Any]) -> Endpoint | None:
    """The endpoint for a non-local model; None for ``local/`` ones (they need a loopback server).

    Raises ConfigError when the model is neither local nor OpenAI-style and no base_url was given.
    """
    if options.get("base_url"):
        model = options.get("model") or getattr(raw_lm, "model", None) or model_spec.partition("/")[2]
        return Endpoint(str(options["base_url"]), str(model), _api_key(options, "not-needed"))
    prefix = model_spec.partition("/")[0]
    if prefix == "local":
        return None
    base_url = getattr(raw_lm, "base_url", None)
    model = options.get("model") or getattr(raw_lm, "model", None)
    if prefix in OPENAI_STYLE and base_url and model:
        official = prefix == "openai" and "api.openai.com" in str(base_url)
        # rlms reads OPENAI_API_KEY itself for api.openai.com; local servers want any non-empty key.
        return Endpoint(
            None if official else str(base_url), str(model), _api_key(options, None if official else "not-needed")
        )
    raise ConfigError(
        f"rlms speaks the OpenAI API; {model_spec!r} is not an OpenAI-compatible backend. Serve the model "
        "behind an OpenAI-compatible server and pass --rlms-option base_url=URL --rlms-option model=NAME"
    )


class RlmsMethod:
    """Runs one item with ``rlm.RLM(...).completion(context, root_prompt=question)``.

    One instance serves a whole bench run; it owns the loopback server when the model is local.
    """

    def __init__(
        self,
        model_spec: str,
        raw_lm: Any,
        model_options: dict[str, Any],
        options: dict[str, Any],
        *,
        log_dir: Path | None = None,
        timeout_per_item: float | None = None,
    ) -> None:
        self.model_spec = model_spec
        self.raw_lm = raw_lm
        self.model_options = dict(model_options)
        self.options = dict(options)
        self.log_dir = log_dir
        self.timeout_per_item = timeout_per_item
        self._endpoint: Endpoint | None = None
        self._server: Any = None
        self._lock = threading.Lock()

    # -- endpoint ---------------------------------------------------------------------------------
    def endpoint(self) -> Endpoint:
        """Resolve (and for local models, start) the endpoint once; thread-safe."""
        with self._lock:
            if self._endpoint is not None:
                return self._endpoint
            endpoint = endpoint_for(self.model_spec, self.raw_lm, self.options)
            if endpoint is None:
                endpoint = self._start_local_server()
            self._endpoint = endpoint
            return endpoint

    def _start_local_server(self) -> Endpoint:
        from ..models import weights
        from .llama_server import LlamaServer

        spec = self.model_spec.partition("/")[2]
        path, _info = weights.resolve_model_file(spec)
        n_ctx = int(self.model_options.get("n_ctx") or getattr(self.raw_lm, "context_window", None) or 32_768)
        threads = self.model_options.get("n_threads")
        self._server = LlamaServer(
            model_path=Path(path),
            n_ctx=n_ctx,
            n_threads=int(threads) if threads else None,
            log_path=(self.log_dir / "llama_server.log") if self.log_dir else None,
        )
        base_url = self._server.start(timeout=float(self.options.get("server_timeout", 600)))
        return Endpoint(base_url, self._server.alias, "not-needed", loopback_server=True)

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # -- one item ---------------------------------------------------------------------------------
    def rlm_kwargs(self, endpoint: Endpoint, config: MethodConfig) -> dict[str, Any]:
        """The ``rlm.RLM`` constructor arguments: same turns, depth and greedy decoding as ``rlm``."""
        max_tokens = int(self.options.get("max_tokens", config.max_answer_tokens))
        sampling: dict[str, Any] = {"temperature": 0.0, "max_tokens": max_tokens}
        if endpoint.loopback_server:
            # llama_cpp.server ignores OpenAI's max_completion_tokens (which rlms sends) and defaults
            # to repeat_penalty 1.1; pass its own names, with the embedded model's sampling defaults,
            # so that decoding matches the in-process backend the other methods use.
            info = getattr(self.raw_lm, "info", None)
            defaults = dict(getattr(info, "defaults", None) or {})
            extra = {k: defaults[k] for k in ("repeat_penalty", "top_k", "top_p", "min_p", "seed") if k in defaults}
            sampling["extra_body"] = {"max_tokens": max_tokens, "repeat_penalty": 1.0, **extra}
        backend_kwargs: dict[str, Any] = {"model_name": endpoint.model}
        if endpoint.base_url is not None:
            backend_kwargs["base_url"] = endpoint.base_url
        if endpoint.api_key is not None:
            backend_kwargs["api_key"] = endpoint.api_key
        max_timeout = self.options.get("max_timeout", self.timeout_per_item)
        return {
            "backend": "openai",
            "backend_kwargs": backend_kwargs,
            "environment": str(self.options.get("environment", "local")),
            "max_depth": max(1, config.max_depth),
            "max_iterations": config.max_iterations,
            "max_timeout": float(max_timeout) if max_timeout else None,
            "sampling_args": sampling,
        }

    def run_sync(self, item: TaskItem, config: MethodConfig) -> MethodResult:
        problem = rlms_available()
        if problem:
            raise ConfigError(problem)
        import rlm
        from rlm.logger import RLMLogger

        started = time.perf_counter()
        endpoint = self.endpoint()
        logger = RLMLogger()
        engine = rlm.RLM(logger=logger, **self.rlm_kwargs(endpoint, config))
        question = user_prompt(item.question, item.answer_format)
        status = "max_iterations"
        error: str | None = None
        answer: str | None
        usage = Usage()
        try:
            completion = engine.completion(item.context, root_prompt=question)
        except (rlm.TimeoutExceededError, rlm.TokenLimitExceededError, rlm.ErrorThresholdExceededError) as exc:
            answer = getattr(exc, "partial_answer", None)
            status = f"budget:{type(exc).__name__}"
            error = str(exc)
            trajectory = logger.get_trajectory()
        else:
            answer = completion.response
            trajectory = completion.metadata or logger.get_trajectory()
            summary = completion.usage_summary
            usage = Usage(
                calls=sum(int(s.total_calls or 0) for s in summary.model_usage_summaries.values()),
                input_tokens=int(summary.total_input_tokens or 0),
                output_tokens=int(summary.total_output_tokens or 0),
                cost_usd=summary.total_cost,
            )
            if any(_answered_in_code(it) for it in (trajectory or {}).get("iterations") or []):
                status = "final"
        if usage.cost_usd is None:
            cost = getattr(self.raw_lm, "cost", None)
            usage.cost_usd = cost(usage) if callable(cost) else None
        if config.trace_file and trajectory:
            _write_trajectory(Path(config.trace_file), trajectory)
        iterations = (trajectory or {}).get("iterations") or []
        return MethodResult(
            method="rlms",
            answer=answer,
            usage=usage,
            seconds=time.perf_counter() - started,
            calls=usage.calls,
            status=status,
            notes={
                "iterations": sum(1 for it in iterations if it.get("code_blocks") or it.get("final_answer") is None),
                "endpoint": endpoint.base_url or "api.openai.com",
                "endpoint_model": endpoint.model,
                "rlms_version": _rlms_version(),
                "error": error,
            },
        )

    async def __call__(self, lm: LM, item: TaskItem, config: MethodConfig) -> MethodResult:
        return await asyncio.to_thread(self.run_sync, item, config)


def _answered_in_code(iteration: dict[str, Any]) -> bool:
    """True for a turn whose code set the answer; the forced answer after the last turn has no code."""
    return iteration.get("final_answer") is not None and bool(iteration.get("code_blocks"))


def _write_trajectory(path: Path, trajectory: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        meta = trajectory.get("run_metadata")
        if meta is not None:
            fh.write(json.dumps({"type": "metadata", **meta}, default=str) + "\n")
        for it in trajectory.get("iterations") or []:
            fh.write(json.dumps(it, default=str) + "\n")


def _rlms_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("rlms")
    except metadata.PackageNotFoundError:
        return None


def make_rlms_runner(
    model_spec: str,
    raw_lm: Any,
    model_options: dict[str, Any],
    options: dict[str, Any],
    *,
    log_dir: Path | None = None,
    timeout_per_item: float | None = None,
) -> RlmsMethod:
    """The ``rlms`` method for a bench run. Fails early, with the install command, when rlms is missing."""
    problem = rlms_available()
    if problem:
        raise ConfigError(problem)
    return RlmsMethod(model_spec, raw_lm, model_options, options, log_dir=log_dir, timeout_per_item=timeout_per_item)
