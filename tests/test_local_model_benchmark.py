"""The local-model benchmark measures the engine as users get it: its recording wrapper must not
change which prompt style the engine picks, nor record sub-calls as root turns."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from unbounded import RLM
from unbounded.models.base import Abilities
from unbounded.models.scripted import ScriptedLM

ROOT = Path(__file__).resolve().parents[1]


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("local_model_benchmark", ROOT / "benchmarks" / "local_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class SmallScripted(ScriptedLM):
    abilities = dataclasses.replace(Abilities(), small=True, slots=True)

    def with_slot(self, slot: str) -> SmallScripted:  # a twin on its own "context"
        return SmallScripted(self._replies, name=self.name)

    def fork_for_subcalls(self) -> SmallScripted:
        return self.with_slot("sub")


def test_recording_a_small_model_keeps_the_guided_style_and_records_only_root_turns() -> None:
    bench = _benchmark()
    inner = SmallScripted(['```python\nprint(llm_query("say 7"))\n```', 'FINAL("7")'])
    root = bench.Recording(inner)
    assert root.abilities.small
    rlm = RLM(model=root)
    assert rlm.style.name == "guided"  # a protocol-only wrapper read as a capable model got "full"
    sub = root.fork_for_subcalls()
    assert isinstance(sub, bench.Recording) and sub is not root
    assert sub.turns is not root.turns
