"""The contract every REPL implementation passes."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

from unbounded.repl import Limits, ToolSpec, VariableError, make_repl


async def echo_handler(kind: str, payload: dict[str, Any], cell_id: str | None) -> Any:
    if kind == "llm_query":
        return f"echo:{payload['prompt']}"
    if kind == "llm_batch":
        return [f"b:{p}" for p in payload["prompts"]]
    if kind == "rlm_query":
        return f"child:{payload['question']}"
    if kind == "tool":
        return {"name": payload["name"], "args": payload["args"]}
    raise RuntimeError(f"unsupported {kind}")


async def started(kind: str, context: Any = "alpha\nbeta magic 42\ngamma", **limits: Any):
    r = make_repl(kind, Limits(**limits) if limits else Limits(cell_timeout=5, kill_grace=1))
    await r.start(context, echo_handler, [ToolSpec("lookup", "Look a thing up.", "(key)")])
    return r


async def test_persistent_namespace_and_late_binding(repl_kind: str) -> None:
    r = await started(repl_kind)
    try:
        assert (await r.run("def f():\n    return later * 2")).error is None
        assert (await r.run("later = 21")).error is None
        res = await r.run("print(f())")
        assert res.stdout.strip() == "42"
    finally:
        await r.close()


async def test_trailing_expression_is_displayed(repl_kind: str) -> None:
    r = await started(repl_kind)
    try:
        res = await r.run("x = [1, 2]\nx + [3]")
        assert res.stdout.strip() == "[1, 2, 3]"
    finally:
        await r.close()


async def test_context_and_helpers(repl_kind: str) -> None:
    r = await started(repl_kind)
    try:
        res = await r.run("hits = grep(r'magic (\\d+)')\nprint(len(context), hits[0].line, hits[0].match)")
        assert res.error is None, res.error
        assert res.stdout.split() == ["25", "2", "magic", "42"]
        res = await r.run("print([len(c) for c in chunks('a' * 10, 4)])")
        assert res.stdout.strip() == "[4, 4, 2]"
    finally:
        await r.close()


async def test_subcalls_reach_the_host(repl_kind: str) -> None:
    r = await started(repl_kind)
    try:
        res = await r.run(
            "print(llm_query('hi'))\nprint(llm_batch(['a', 'b']))\nprint(rlm_query('q', 'ctx'))\nprint(lookup('k'))"
        )
        assert res.error is None, res.error
        assert res.stdout.splitlines() == ["echo:hi", "['b:a', 'b:b']", "child:q", "{'name': 'lookup', 'args': ['k']}"]
    finally:
        await r.close()


async def test_subcalls_from_threads_in_model_code(repl_kind: str) -> None:
    r = await started(repl_kind)
    try:
        res = await r.run(
            "from concurrent.futures import ThreadPoolExecutor\n"
            "with ThreadPoolExecutor(8) as ex:\n"
            "    out = list(ex.map(llm_query, [str(i) for i in range(32)]))\n"
            "print(out == ['echo:' + str(i) for i in range(32)])"
        )
        assert res.stdout.strip() == "True", res.error
    finally:
        await r.close()


async def test_errors_come_back_as_trimmed_tracebacks(repl_kind: str) -> None:
    r = await started(repl_kind)
    try:
        res = await r.run("x = 1\ndef g():\n    return 1 / 0\ng()")
        assert res.error is not None
        assert "ZeroDivisionError" in res.error
        assert "return 1 / 0" in res.error  # the cell's own source line is shown
        assert "unbounded" not in res.error.split("ZeroDivisionError")[0]  # no host frames
        assert (await r.run("print(x)")).stdout.strip() == "1"
        syn = await r.run("def broken(:\n  pass")
        assert syn.error and "SyntaxError" in syn.error
    finally:
        await r.close()


async def test_final_forms(repl_kind: str) -> None:
    r = await started(repl_kind)
    try:
        res = await r.run("FINAL('the answer')\nprint('not reached')")
        assert res.final == "the answer" and "not reached" not in res.stdout
        res = await r.run("answer = {'a': [1, 2]}\nFINAL_VAR('answer')")
        assert res.final == '{"a": [1, 2]}'
        res = await r.run("try:\n    FINAL(7)\nexcept Exception:\n    pass")
        assert res.final == "7"
        res = await r.run("FINAL_VAR('missing')")
        assert res.final is None and "no variable named 'missing'" in (res.error or "")
    finally:
        await r.close()


async def test_reserved_names_cannot_be_replaced(repl_kind: str) -> None:
    r = await started(repl_kind)
    try:
        res = await r.run("def FINAL(x):\n    print('mine', x)\nllm_query = None\nFINAL('kept')")
        assert res.final == "kept"
        assert any("built into the REPL" in n for n in res.notes)
        res = await r.run("globals()['llm_query'] = lambda p: 'hijacked'")
        assert any("restored" in n for n in res.notes)
        assert (await r.run("print(llm_query('x'))")).stdout.strip() == "echo:x"
    finally:
        await r.close()


async def test_timeout_interrupts_and_keeps_namespace(repl_kind: str) -> None:
    r = await started(repl_kind, cell_timeout=1.0, kill_grace=2.0)
    try:
        await r.run("kept = 'yes'")
        res = await r.run("while True:\n    pass")
        assert res.timed_out and not res.state_lost
        assert (await r.run("print(kept)")).stdout.strip() == "yes"
    finally:
        await r.close()


async def test_cell_that_ignores_interrupts_loses_state(repl_kind: str) -> None:
    r = await started(repl_kind, cell_timeout=0.5, kill_grace=1.0)
    try:
        await r.run("kept = 1")
        res = await r.run(
            "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except BaseException:\n        pass"
        )
        assert res.timed_out and res.state_lost
        assert "lost" in (res.error or "")
        after = await r.run("print(len(context))")
        assert after.stdout.strip() == "25"  # the context is back
        assert "NameError" in ((await r.run("kept")).error or "")
    finally:
        await r.close()


async def test_giant_print_is_capped(repl_kind: str) -> None:
    r = await started(repl_kind)
    try:
        res = await r.run("for _ in range(50):\n    print('x' * 100_000)")
        assert res.stdout_total >= 5_000_000
        assert len(res.stdout) < 1_100_000
        assert "dropped" in res.stdout
    finally:
        await r.close()


async def test_get_and_set_variables(repl_kind: str) -> None:
    r = await started(repl_kind)
    try:
        await r.set_var("given", {"k": [1, 2]})
        assert (await r.run("print(given['k'][1])")).stdout.strip() == "2"
        await r.run("made = 'v'")
        assert await r.get_var("made") == "v"
        with pytest.raises(VariableError):
            await r.get_var("nope")
    finally:
        await r.close()


async def test_show_vars(repl_kind: str) -> None:
    r = await started(repl_kind)
    try:
        res = await r.run("items = [1, 2, 3]\nSHOW_VARS()")
        assert "'items': 'list, len 3'" in res.stdout
        assert "llm_query" not in res.stdout
    finally:
        await r.close()


async def test_list_and_dict_contexts(repl_kind: str) -> None:
    r = await started(repl_kind, context={"a.py": "x = 1\n", "b.py": "magic = 2\n"})
    try:
        res = await r.run("print(sorted(context), grep('magic')[0].key)")
        assert res.stdout.strip() == "['a.py', 'b.py'] b.py"
    finally:
        await r.close()


async def test_concurrent_repls_do_not_mix_output(repl_kind: str) -> None:
    repls = [await started(repl_kind) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(
                r.run(f"import time\nfor i in range(20):\n    print('repl{n}')\n    time.sleep(0.002)")
                for n, r in enumerate(repls)
            )
        )
        for n, res in enumerate(results):
            assert set(res.stdout.split()) == {f"repl{n}"}, res.stdout[:200]
    finally:
        for r in repls:
            await r.close()


async def test_process_worker_env_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    monkeypatch.setenv("MY_SECRET_TOKEN", "hunter2")
    r = await started("process")
    try:
        res = await r.run("import os\nprint(sorted(os.environ))\nprint(os.getcwd())")
        assert "OPENAI_API_KEY" not in res.stdout and "MY_SECRET_TOKEN" not in res.stdout
        assert "unbounded-repl-" in res.stdout
    finally:
        await r.close()


async def test_process_worker_memory_limit() -> None:
    r = await started("process", memory_bytes=256 * 1024**2, cell_timeout=20)
    try:
        res = await r.run("x = bytearray(1024 * 1024 * 1024)")
        assert res.error and "MemoryError" in res.error
        assert not res.state_lost
        assert (await r.run("print('alive')")).stdout.strip() == "alive"
    finally:
        await r.close()


async def test_process_worker_is_gone_after_close() -> None:
    r = await started("process")
    pid = r.pid
    await r.run("import subprocess\np = subprocess.Popen(['sleep', '30'])\nprint(p.pid)")
    await r.close()
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_inprocess_does_not_swap_stdout_for_other_threads(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[str] = []

    async def main() -> None:
        r = await started("inprocess")
        stop = threading.Event()

        def chatter() -> None:
            while not stop.is_set():
                print("host-thread")
                seen.append("x")

        t = threading.Thread(target=chatter)
        t.start()
        try:
            res = await r.run("import time\nfor i in range(50):\n    print('cell')\n    time.sleep(0.001)")
        finally:
            stop.set()
            t.join()
        assert set(res.stdout.split()) == {"cell"}
        await r.close()

    asyncio.run(main())
    assert seen
    assert "cell" not in capsys.readouterr().out
