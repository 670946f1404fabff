"""What a model's name or file says about it, for declaring its abilities at construction."""

from __future__ import annotations

import re

#: Models at or below this many billion parameters get the compact prompt style by default.
SMALL_MODEL_MAX_BILLIONS = 4.0
#: A GGUF file below this size (and with no size in its name) is taken for a small model.
SMALL_GGUF_MAX_BYTES = 3 * 1024**3

# "qwen2.5-coder:1.5b", "Llama-3.2-3B-Instruct", "phi-3-mini-3.8b", "gemma-2-2b-it"; not "gpt-5" or "o3".
_PARAMS = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*b(?![a-z0-9])", re.IGNORECASE)
_MIXTURE = re.compile(r"\d+x\d+(?:\.\d+)?b", re.IGNORECASE)


def parameter_billions(name: str) -> float | None:
    """The parameter count a model name states (``1.5`` for ``qwen2.5-coder:1.5b``), or None."""
    if _MIXTURE.search(name):
        return None  # a mixture of experts: the label is not the size that matters here
    values = [float(m.group(1)) for m in _PARAMS.finditer(name.replace("_", "-"))]
    return max(values) if values else None


def looks_small(name: str, file_size: int | None = None) -> bool:
    """Whether a model is small enough to need the compact prompt style.

    The parameter count in the name decides; failing that, a local file's size; failing both, no.
    """
    billions = parameter_billions(name)
    if billions is not None:
        return billions <= SMALL_MODEL_MAX_BILLIONS
    if file_size is not None:
        return file_size < SMALL_GGUF_MAX_BYTES
    return False
