"""Warm start across processes on the embedded llama.cpp model (slow: the real 0.5B GGUF, one new
process per run, as a new ``unbounded ask`` would be)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

try:
    import llama_cpp  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install
    pytest.skip("llama-cpp-python is not installed (pip install 'unbounded[local]')", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]

# One process's run: a system prompt and a worked example (the part every run shares), then the
# question; it prints the completion and whether the state now on disk verifies for this prompt.
CHILD = r"""
import asyncio, json, sys
from unbounded.models import Message, resolve_model, warm_start

SYSTEM = "You answer questions about a small Python module. Reply in one short sentence.\n\n" + "\n".join(
    f"def scale_{i}(x):\n    '''Return x multiplied by {i}.'''\n    return x * {i}\n" for i in range(30)
)
MESSAGES = [
    Message("system", SYSTEM),
    Message("user", "What does scale_2 return?"),
    Message("assistant", "scale_2 returns x multiplied by 2."),
    Message("user", sys.argv[1]),
]

async def main():
    lm = resolve_model("local/qwen2.5-coder-0.5b", n_ctx=2048)
    c = await lm.complete(MESSAGES, max_tokens=20)
    warm_start.wait_for_saves()
    rt = lm._runtime()
    tokens, prefix = rt.tokenize_with_prefix(MESSAGES)
    reloadable = warm_start.StateStore().load(rt.state_key(), tokens[:prefix]) is not None
    print(json.dumps({"text": c.text, "usage": c.usage.to_dict(), "extra": c.extra, "prefix": prefix,
                      "reloadable": reloadable}))

asyncio.run(main())
"""


def run(question: str, states: Path) -> dict[str, Any]:
    env = {**os.environ, "UNBOUNDED_STATE_DIR": str(states), "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, question], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_new_process_starts_from_the_saved_prefix(tmp_path: Path) -> None:
    states = tmp_path / "states"
    cold = run("What does scale_7 return?", states)
    prefix = cold["prefix"]
    assert prefix > 400  # the system prompt and the worked example
    assert cold["extra"]["warm_start"]["saved_tokens"] == prefix
    assert cold["usage"]["cached_input_tokens"] == 0
    assert cold["reloadable"]
    [state_file] = list(states.glob("*.kvstate"))

    warm = run("What does scale_7 return?", states)
    assert warm["extra"]["warm_start"]["loaded_tokens"] == prefix
    assert warm["usage"]["cached_input_tokens"] == prefix
    assert warm["usage"]["input_tokens"] == cold["usage"]["input_tokens"]
    # Only the question was evaluated (llama.cpp's own counter), and greedy decoding gave the same reply.
    assert warm["extra"]["llama_prompt_eval_count"] == cold["extra"]["llama_prompt_eval_count"] - prefix
    assert warm["text"] == cold["text"] and "7" in cold["text"]

    # A damaged state is never trusted: it is ignored, the prefix evaluated again and the file replaced.
    data = bytearray(state_file.read_bytes())
    data[-5000] ^= 0x55
    state_file.write_bytes(bytes(data))
    again = run("What does scale_7 return?", states)
    assert "loaded_tokens" not in again["extra"]["warm_start"]
    assert again["extra"]["warm_start"]["saved_tokens"] == prefix
    assert again["usage"]["cached_input_tokens"] == 0
    assert again["text"] == cold["text"]
    assert again["reloadable"] and state_file.exists()
