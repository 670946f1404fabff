"""A namespace's variables kept across a restart: pickled where they pickle, named where they do not.

Shared by both REPLs (the worker runs it inside the sandbox, so a saved session is unpickled only
where model code runs anyway). Worker-side module: standard library only; ``pickle`` and ``base64``
are imported when a snapshot is taken or restored, never at start.
"""

from __future__ import annotations

from types import ModuleType

from .._lazy import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from .namespace import NamespaceState

#: Names a snapshot never keeps: the context is loaded again, the question is the next one's.
NOT_KEPT = frozenset({"context", "question", "history"})


def user_variables(state: NamespaceState) -> dict[str, Any]:
    ns = state.namespace
    return {
        k: v
        for k, v in ns.items()
        if not k.startswith("_") and k not in state.builtins and k not in NOT_KEPT and not isinstance(v, ModuleType)
    }


def dump_namespace(state: NamespaceState) -> dict[str, Any]:
    """``{"data": base64 pickle of the picklable variables, "names": [...], "dropped": [...]}``."""
    import base64
    import pickle

    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for name, value in user_variables(state).items():
        try:
            pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # functions defined in cells, open files, generators…
            dropped.append(name)
            continue
        kept[name] = value
    data = base64.b64encode(pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")
    return {"data": data, "names": sorted(kept), "dropped": sorted(dropped)}


def load_namespace(state: NamespaceState, data: str) -> list[str]:
    """Put back the variables of ``dump_namespace``'s ``data``; returns their names."""
    import base64
    import pickle

    values = pickle.loads(base64.b64decode(data.encode("ascii")))
    if not isinstance(values, dict):
        raise ValueError("not a namespace snapshot")
    restored = []
    for name, value in values.items():
        if isinstance(name, str) and name.isidentifier() and name not in state.builtins and name not in NOT_KEPT:
            state.namespace[name] = value
            restored.append(name)
    return sorted(restored)
