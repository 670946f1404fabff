"""The adversarial suite: hostile cells (see ``adversarial_cases.py``) against each REPL mode.

For every attack and mode: the run returns with an expected status (the host lived), the trace is
whole, and the attack is contained, or, where the mode is documented not to contain it (the trusted
in-process REPL), it is shown to get through. Attacks that would harm the machine in a mode are skipped
with the reason. ``scripts/adversarial.py`` runs the same cases, each in its own host process, and
prints the table that ``docs/security.md`` shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adversarial_cases import ATTACKS, Attack, capabilities, expected, kill_leftovers, run_attack, verdict


@pytest.mark.parametrize("mode", ["process", "inprocess"])
@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack(attack: Attack, mode: str, tmp_path: Path) -> None:
    want = expected(attack, mode)
    if isinstance(want, str):
        pytest.skip(want)
    if mode == "process" and want is False:
        missing = ", ".join(sorted(attack.needs - capabilities(mode)))
        pytest.skip(f"this machine's sandbox lacks {missing}")
    outcome = run_attack(attack, mode, tmp_path)
    try:
        row = verdict(attack, outcome)
        context = f"status={outcome.status} raised={outcome.raised}\n--- the model saw ---\n{outcome.seen[-3000:]}"
        assert row["run_ok"], context
        assert row["trace_whole"], row["problems"]
        if want:
            assert row["contained"], context
            assert not outcome.leftovers, outcome.leftovers
        else:  # documented: the in-process REPL does not contain this one
            assert not row["contained"], context
    finally:
        kill_leftovers(outcome.leftovers)


def test_the_suite_has_what_the_issue_asks_for() -> None:
    names = {a.name for a in ATTACKS}
    assert len(ATTACKS) >= 25
    for needed in (
        "infinite_loop",
        "fork_bomb",
        "memory_bomb",
        "print_1gb",
        "deep_recursion",
        "os_exit",
        "sys_exit",
        "kill_parent",
        "close_fds",
        "ignore_signals",
        "ctypes_segfault",
        "child_outlives_cell",
        "threads_left_running",
        "loopback_socket",
        "read_secret_file",
        "host_environment",
        "write_outside_workdir",
        "replace_reserved_names",
        "prompt_injection_rm_rf",
        "llm_batch_flood",
    ):
        assert needed in names
