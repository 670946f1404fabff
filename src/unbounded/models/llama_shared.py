"""One copy of a model's weights per process, shared by every llama.cpp context (slot) that uses them.

llama-cpp-python's ``Llama`` loads its model file each time one is built. On a CPU, llama.cpp then
repacks the quantised weights into an interleaved layout (the ``CPU_REPACK`` buffer: about 600 MB
and 3 s for the embedded 1.5B model on 2 cores), so every extra slot — the sub-call context, a child
RLM's root — paid that again, in time and in memory. llama.cpp itself lets many contexts share one
``llama_model``; ``Llama`` has no argument for it. ``build_llama`` gives it one: while a ``Llama`` is
built, the wrapper it would load its model with is replaced by a counted handle on the model this
process already holds (loaded by the first such call), and the model is freed with the last
context that uses it.

Contexts sharing a model stay independent (each has its own KV cache, thread and batch); the
weights are read-only once loaded. Models are shared only between builds whose model parameters
(``MODEL_PARAMS``: GPU layers, mmap, overrides, …) are equal.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: ``Llama`` arguments that change the loaded model itself (the rest configure a context).
MODEL_PARAMS = frozenset(
    {
        "n_gpu_layers",
        "split_mode",
        "main_gpu",
        "tensor_split",
        "vocab_only",
        "use_mmap",
        "use_mlock",
        "kv_overrides",
        "rpc_servers",
        "use_extra_bufts",
    }
)

_BUILD_LOCK = threading.Lock()  # one build at a time: the model wrapper is swapped while it runs
_USERS_LOCK = threading.Lock()
_MODELS: dict[tuple[Any, ...], _Shared] = {}


class _Shared:
    """A loaded model and how many contexts use it."""

    def __init__(self, key: tuple[Any, ...], model: Any) -> None:
        self.key = key
        self.model = model
        self.users = 0


class _Borrowed:
    """What a ``Llama`` holds instead of its own model wrapper: every attribute is the shared
    model's; ``close`` gives the model back, and the last one to give it back frees it."""

    def __init__(self, shared: _Shared) -> None:
        self._shared = shared
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shared.model, name)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        shared = self._shared
        with _USERS_LOCK:
            shared.users -= 1
            last = shared.users == 0
            if last and _MODELS.get(shared.key) is shared:
                del _MODELS[shared.key]
        if last:
            shared.model.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # at interpreter exit the bindings may already be gone
            pass


def _key(path: Path, kwargs: dict[str, Any]) -> tuple[Any, ...]:
    params = tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k in MODEL_PARAMS))
    return (str(Path(path).resolve()), params)


def build_llama(path: Path, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(model_path=path, **kwargs)``, on the weights this process already holds
    for ``path`` (with the same model parameters) when it holds them."""
    import llama_cpp
    import llama_cpp.llama as llama_module

    internals = getattr(llama_module, "internals", None)
    real = getattr(internals, "LlamaModel", None)
    if real is None:  # a llama-cpp-python whose insides differ: build the plain way
        return llama_cpp.Llama(model_path=str(path), **kwargs)
    key = _key(path, kwargs)

    def borrow(*, path_model: str, params: Any, verbose: bool) -> _Borrowed:
        with _USERS_LOCK:
            shared = _MODELS.get(key)
            if shared is not None:
                shared.users += 1
                log.info("sharing the loaded weights of %s with a new context", path)
                return _Borrowed(shared)
        shared = _Shared(key, real(path_model=path_model, params=params, verbose=verbose))
        with _USERS_LOCK:
            _MODELS[key] = shared
            shared.users += 1
        return _Borrowed(shared)

    with _BUILD_LOCK:
        internals.LlamaModel = borrow
        try:
            return llama_cpp.Llama(model_path=str(path), **kwargs)
        finally:
            internals.LlamaModel = real


def shared_models() -> int:
    """How many distinct models this process holds for its contexts (for tests and diagnostics)."""
    with _USERS_LOCK:
        return len(_MODELS)


def users_of(llama: Any) -> int | None:
    """How many contexts share ``llama``'s weights (None when it was not built by ``build_llama``)."""
    model = getattr(llama, "_model", None)
    if not isinstance(model, _Borrowed):
        return None
    with _USERS_LOCK:
        return model._shared.users
