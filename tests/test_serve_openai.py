"""The OpenAI-compatible server against the real ``openai`` client (sync, async, streaming, extra_body),
with scripted models and a real uvicorn server on loopback."""

from __future__ import annotations

import ast
import asyncio
import json
import subprocess
from pathlib import Path

import openai
import pytest
from pydantic import BaseModel

from conftest import code
from test_serve_support import answering, config, question_of, running
from unbounded.engine import COMPLETION_QUESTION
from unbounded.models import ScriptedLM

pytestmark = pytest.mark.network


def client(server, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base, api_key="unused", max_retries=0, **kw)


def test_a_chat_completion_is_one_rlm_run_with_the_trees_usage() -> None:
    root = ScriptedLM(lambda ms: code("r = llm_query('say ok')\nFINAL('root saw ' + r)"), name="root")
    sub = ScriptedLM(["ok"], name="sub")
    with running(config(root, sub_model=sub)) as srv:
        raw = client(srv).chat.completions.with_raw_response.create(
            model="rlm", messages=[{"role": "system", "content": "some notes"}, {"role": "user", "content": "What?"}]
        )
        resp = raw.parse()
        assert resp.object == "chat.completion" and resp.model == "rlm"
        assert resp.choices[0].message.content == "root saw ok"
        assert resp.choices[0].finish_reason == "stop"
        ext = resp.model_extra["unbounded"]
        assert ext["status"] == "final" and ext["subcalls"] == 1
        assert set(ext["usage"]) == {"root", "sub"}
        # usage is the whole recursion tree: the root's calls and the sub-call, added up
        by_model = ext["usage"]
        assert resp.usage.prompt_tokens == by_model["root"]["input_tokens"] + by_model["sub"]["input_tokens"]
        assert resp.usage.completion_tokens == by_model["root"]["output_tokens"] + by_model["sub"]["output_tokens"]
        assert ext["calls"] == len(root.calls) + len(sub.calls) == 2
        timing = raw.headers["server-timing"]
        assert "queue;dur=" in timing and "run;dur=" in timing and "total;dur=" in timing
        # the run's trace is readable by the same client
        trace = client(srv).get(f"/traces/{ext['trace_id']}", cast_to=str)
        kinds = [json.loads(line)["type"] for line in trace.splitlines()]
        assert kinds[0] == "run_start" and kinds[-1] == "run_end"


def test_the_last_user_message_is_the_question_and_the_rest_the_context() -> None:
    root = answering("FINAL(repr(context))")
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": [{"type": "text", "text": "Which line says hello?"}]},
    ]
    with running(config(root)) as srv:
        resp = client(srv).chat.completions.create(model="rlm", messages=messages)
    assert ast.literal_eval(resp.choices[0].message.content) == [
        "[system]\nYou are terse.", "[user]\nfirst question", "[assistant]\nfirst answer"
    ]
    assert "Which line says hello?" in question_of(root.calls[0])


def test_long_parts_of_the_last_message_are_context_and_short_ones_the_question() -> None:
    root = answering("FINAL(str(len(context)) + ':' + context[:5])")
    long = "hello " + "x" * 20_000
    with running(config(root, inline_chars=1000)) as srv:
        resp = client(srv).chat.completions.create(
            model="rlm",
            messages=[{"role": "user", "content": [{"type": "text", "text": "How long is it?"},
                                                   {"type": "text", "text": long}]}],
        )
        assert resp.choices[0].message.content == f"{len(long)}:hello"
        assert "How long is it?" in question_of(root.calls[-1])
        # one long message alone: the completion form, the prompt is the context
        resp = client(srv).chat.completions.create(model="rlm", messages=[{"role": "user", "content": long}])
        assert resp.choices[0].message.content == f"{len(long)}:hello"
        assert COMPLETION_QUESTION in question_of(root.calls[-1])
        # a short prompt and nothing else: the completion form too, so a plain call answers
        resp = client(srv).chat.completions.create(model="rlm", messages=[{"role": "user", "content": "hi there"}])
        assert resp.choices[0].message.content == "8:hi th"


def test_streaming_sends_role_progress_answer_finish_and_usage() -> None:
    root = ScriptedLM([code("print('looking')"), code("FINAL('found it')")])
    with running(config(root)) as srv:
        chunks = list(
            client(srv).chat.completions.create(
                model="rlm",
                messages=[{"role": "user", "content": "q"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert chunks[0].choices[0].delta.role == "assistant"
        progress = [c.model_extra["unbounded"]["progress"] for c in chunks if "progress" in (c.model_extra or {}).get("unbounded", {})]
        kinds = [p["type"] for p in progress]
        for kind in ("run_start", "rlm_start", "lm_request", "lm_response", "cell", "rlm_end", "run_end"):
            assert kind in kinds
        cells = [p for p in progress if p["type"] == "cell"]
        assert cells[0]["data"]["stdout"].strip() == "looking"
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "found it"
        finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finish[-1].choices[0].finish_reason == "stop"
        assert finish[-1].model_extra["unbounded"]["status"] == "final"
        assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
        # progress off: a plain stream of role, answer and finish
        quiet = list(client(srv).chat.completions.create(model="rlm", messages=[{"role": "user", "content": "q"}],
                                                        stream=True, extra_body={"progress": False}))  # fmt: skip
        assert not any("progress" in (c.model_extra or {}).get("unbounded", {}) for c in quiet)
        assert "".join(c.choices[0].delta.content or "" for c in quiet if c.choices) == "found it"


def test_the_async_client_runs_requests_concurrently() -> None:
    root = answering("FINAL('a' + str(len(context)))", latency=0.3)

    async def go(base: str) -> list[str]:
        aclient = openai.AsyncOpenAI(base_url=base, api_key="unused", max_retries=0)
        async with aclient:
            async def one(i: int) -> str:
                r = await aclient.chat.completions.create(model="rlm", messages=[
                    {"role": "system", "content": "x" * i}, {"role": "user", "content": "q"}])  # fmt: skip
                return r.choices[0].message.content

            async def streamed() -> str:
                stream = await aclient.chat.completions.create(
                    model="rlm", messages=[{"role": "user", "content": "stream me"}], stream=True
                )
                return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

            return await asyncio.gather(*(one(i) for i in range(1, 6)), streamed())

    with running(config(root, max_concurrent=6)) as srv:
        import time

        started = time.monotonic()
        answers = asyncio.run(go(srv.base))
        took = time.monotonic() - started
    assert answers == ["a1", "a2", "a3", "a4", "a5", "a9"]
    assert took < 1.5  # six runs of 0.3 s each overlapped


def test_extra_body_paths_read_allowed_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("the code word is PARSNIP\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.md").write_text("alpha", encoding="utf-8")
    root = answering("FINAL(context if isinstance(context, str) else ','.join(sorted(context)))")
    with running(config(root, allow_paths=[tmp_path])) as srv:
        c = client(srv)
        one = c.chat.completions.create(model="rlm", messages=[{"role": "user", "content": "code word?"}],
                                        extra_body={"paths": ["notes.txt"]})  # fmt: skip
        assert one.choices[0].message.content == "the code word is PARSNIP\n"
        folder = c.chat.completions.create(model="rlm", messages=[{"role": "user", "content": "files?"}],
                                           extra_body={"paths": [str(tmp_path / "sub")], "include": ["*.md"]})  # fmt: skip
        assert folder.choices[0].message.content == "a.md"


def test_response_format_makes_a_typed_answer() -> None:
    class Person(BaseModel):
        name: str
        age: int

    root = ScriptedLM([code("FINAL({'name': 'Ada', 'age': 'old'})"), code("FINAL({'name': 'Ada', 'age': 36})")])
    with running(config(root)) as srv:
        c = client(srv)
        parsed = c.chat.completions.parse(model="rlm", messages=[{"role": "user", "content": "who?"}],
                                          response_format=Person)  # fmt: skip
        assert parsed.choices[0].message.parsed == Person(name="Ada", age=36)
        assert "schema" in question_of(root.calls[0])  # the model was told the shape
        root2 = answering("FINAL({'ok': True})")
    with running(config(root2)) as srv:
        resp = client(srv).chat.completions.create(model="rlm", messages=[{"role": "user", "content": "q"}],
                                                   response_format={"type": "json_object"})  # fmt: skip
        assert json.loads(resp.choices[0].message.content) == {"ok": True}


def test_a_request_budget_within_the_caps_and_a_refusal_above_them() -> None:
    root = answering("print('still working')")  # never answers
    with running(config(root)) as srv:
        c = client(srv)
        resp = c.chat.completions.create(model="rlm", messages=[{"role": "user", "content": "q"}],
                                         extra_body={"budget": {"max_llm_calls": 2}})  # fmt: skip
        assert resp.choices[0].finish_reason == "length"
        assert resp.model_extra["unbounded"]["status"] == "budget:max_llm_calls"
        with pytest.raises(openai.BadRequestError) as err:
            c.chat.completions.create(model="rlm", messages=[{"role": "user", "content": "q"}],
                                      extra_body={"budget": {"max_llm_calls": 10_000}})  # fmt: skip
        assert err.value.body["code"] == "budget_above_cap" and err.value.body["param"] == "budget.max_llm_calls"
        assert "200" in err.value.body["message"]  # names the cap


def test_models_are_listed_and_unknown_ones_are_404() -> None:
    other = ScriptedLM(["x"], name="other-model")
    with running(config(answering("FINAL(1)", name="main"), allow_models=[other])) as srv:
        c = client(srv)
        assert [m.id for m in c.models.list()] == ["rlm", "rlm/main", "rlm/other-model"]
        assert c.models.retrieve("rlm/other-model").id == "rlm/other-model"
        resp = c.chat.completions.create(model="rlm/other-model", messages=[{"role": "user", "content": "q"}])
        assert resp.model == "rlm/other-model"
        with pytest.raises(openai.NotFoundError) as err:
            c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "q"}])
        assert err.value.body["code"] == "model_not_found" and err.value.body["param"] == "model"
        with pytest.raises(openai.NotFoundError):
            c.models.retrieve("rlm/not-served")


def test_curl_reads_the_raw_event_stream() -> None:
    with running(config(answering("FINAL('from curl')"))) as srv:
        body = json.dumps({"model": "rlm", "messages": [{"role": "user", "content": "q"}], "stream": True})
        out = subprocess.run(
            ["curl", "-sS", "-N", "--max-time", "20", "-H", "Content-Type: application/json", "-d", body,
             srv.base + "/chat/completions"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
    events = [line for line in out.stdout.split("\n\n") if line.strip()]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "from curl"
