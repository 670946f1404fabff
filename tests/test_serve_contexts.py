"""Registered contexts: loaded once into a warm session, reused by questions, owned by a key,
evicted least recently used first under the memory cap."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from conftest import code, live_children
from test_serve_support import answering, config, question_of, running, wait_until
from unbounded.models import ScriptedLM

pytestmark = pytest.mark.network

KEY_A, KEY_B = "key-aaaaaaaa", "key-bbbbbbbb"


def ask(base: str, key: str, context_id: str, question: str, **kw) -> openai.types.chat.ChatCompletion:
    c = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
    return c.chat.completions.create(model="rlm", messages=[{"role": "user", "content": question}],
                                     extra_body={"context_id": context_id, **kw})  # fmt: skip


def session_model() -> ScriptedLM:
    def reply(messages):
        if "what did you keep?" in question_of(messages):  # earlier questions are named in a note too
            return code("FINAL(marker)")
        return code("marker = 'kept:' + str(len(context))\nFINAL('noted')")

    return ScriptedLM(reply)


def test_questions_reuse_the_loaded_worker(tmp_path: Path) -> None:
    before = set(live_children())
    with running(config(session_model(), repl="process", api_keys=[KEY_A])) as srv:
        h = {"Authorization": f"Bearer {KEY_A}"}
        r = httpx.post(srv.base + "/contexts", json={"text": "x" * 5000, "name": "big text"}, headers=h)
        assert r.status_code == 201, r.text
        ctx = r.json()
        assert ctx["id"].startswith("ctx_") and ctx["chars"] == 5000 and ctx["name"] == "big text"
        workers = set(live_children()) - before
        assert len(workers) == 1  # the session's worker, started at registration
        assert ask(srv.base, KEY_A, ctx["id"], "remember this").choices[0].message.content == "noted"
        # the second question sees the first one's variable: the same live REPL, no reload
        assert ask(srv.base, KEY_A, ctx["id"], "what did you keep?").choices[0].message.content == "kept:5000"
        assert set(live_children()) - before == workers
        listed = httpx.get(srv.base + "/contexts", headers=h).json()["data"]
        assert [c["id"] for c in listed] == [ctx["id"]] and listed[0]["questions"] == 2
        r = httpx.delete(srv.base + f"/contexts/{ctx['id']}", headers=h)
        assert r.json() == {"id": ctx["id"], "object": "context", "deleted": True}
        assert wait_until(lambda: not (set(live_children()) - before))  # its worker is gone
        with pytest.raises(openai.NotFoundError) as err:
            ask(srv.base, KEY_A, ctx["id"], "still there?")
        assert err.value.body["code"] == "context_not_found"


def test_contexts_belong_to_the_key_that_made_them() -> None:
    with running(config(answering("FINAL(context)"), api_keys=[KEY_A, KEY_B])) as srv:
        a, b = {"Authorization": f"Bearer {KEY_A}"}, {"Authorization": f"Bearer {KEY_B}"}
        ctx = httpx.post(srv.base + "/contexts", json={"text": "secret of A"}, headers=a).json()
        assert ask(srv.base, KEY_A, ctx["id"], "q").choices[0].message.content == "secret of A"
        with pytest.raises(openai.NotFoundError):
            ask(srv.base, KEY_B, ctx["id"], "q")
        assert httpx.get(srv.base + f"/contexts/{ctx['id']}", headers=b).status_code == 404
        assert httpx.delete(srv.base + f"/contexts/{ctx['id']}", headers=b).status_code == 404
        assert httpx.get(srv.base + "/contexts", headers=b).json()["data"] == []
        trace = ask(srv.base, KEY_A, ctx["id"], "q").model_extra["unbounded"]["trace_id"]
        assert httpx.get(srv.base + f"/traces/{trace}", headers=b).status_code == 404
        assert httpx.get(srv.base + f"/traces/{trace}", headers=a).status_code == 200
        assert httpx.get(srv.base + f"/contexts/{ctx['id']}", headers=a).json()["questions"] == 2


def test_upload_forms_text_jsonl_files_and_paths(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("name,n\nann,1\nbob,2\n", encoding="utf-8")
    root = answering("FINAL(type(context).__name__ + ':' + str(len(context)))")
    with running(config(root, allow_paths=[tmp_path])) as srv:
        url = srv.base + "/contexts"
        r = httpx.post(url, content="plain text body", headers={"Content-Type": "text/plain"})
        assert r.status_code == 201 and r.json()["chars"] == len("plain text body")
        jsonl = b'{"a": 1}\n{"a": 2}\n{"a": 3}\n'
        r = httpx.post(url + "?name=rows", content=jsonl, headers={"Content-Type": "application/jsonl"})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "rows" and ask(srv.base, "k", r.json()["id"], "q").choices[0].message.content == "list:3"
        r = httpx.post(url, files={"file": ("people.csv", b"name,n\nann,1\n", "text/csv")}, data={"name": "csv"})
        assert r.status_code == 201, r.text
        assert ask(srv.base, "k", r.json()["id"], "q").choices[0].message.content == "list:1"
        r = httpx.post(url, files=[("file", ("a.txt", b"aaa", "text/plain")), ("file", ("b.txt", b"bb", "text/plain"))])
        assert r.status_code == 201 and ask(srv.base, "k", r.json()["id"], "q").choices[0].message.content == "dict:2"
        r = httpx.post(url, json={"paths": ["data.csv"]})
        assert r.status_code == 201 and ask(srv.base, "k", r.json()["id"], "q").choices[0].message.content == "list:2"
        r = httpx.post(url, json={"records": [{"x": 1}, {"x": 2}]})
        assert r.status_code == 201 and ask(srv.base, "k", r.json()["id"], "q").choices[0].message.content == "list:2"
        for bad, why in (({"text": "a", "paths": ["x"]}, "exactly one"), ({"text": ""}, "empty"),
                         ({"records": "no"}, "records"), ({"text": "a", "budget": {"max_iterations": 999}}, "cap")):  # fmt: skip
            r = httpx.post(url, json=bad)
            assert r.status_code == 400 and why in r.json()["error"]["message"], (bad, r.text)
        assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("unbounded-upload-*"))  # uploads cleaned up


def test_a_context_keeps_its_model_and_budget() -> None:
    other = ScriptedLM(["x"], name="other")
    with running(config(answering("FINAL('ok')", name="main"), allow_models=[other])) as srv:
        ctx = httpx.post(srv.base + "/contexts", json={"text": "t", "budget": {"max_iterations": 3}}).json()
        assert ctx["model"] == "rlm/main"
        assert ask(srv.base, "k", ctx["id"], "q").choices[0].message.content == "ok"
        with pytest.raises(openai.BadRequestError, match="loaded for model rlm/main"):
            openai.OpenAI(base_url=srv.base, api_key="k", max_retries=0).chat.completions.create(
                model="rlm/other", messages=[{"role": "user", "content": "q"}], extra_body={"context_id": ctx["id"]})
        with pytest.raises(openai.BadRequestError, match="budget it was registered with"):
            ask(srv.base, "k", ctx["id"], "q", budget={"max_iterations": 2})


def test_least_recently_used_idle_contexts_are_evicted_under_the_cap() -> None:
    with running(config(answering("FINAL(context[:3])"), context_memory_chars=1000, max_contexts=2)) as srv:
        url = srv.base + "/contexts"
        first = httpx.post(url, json={"text": "one" + "1" * 397}).json()["id"]
        second = httpx.post(url, json={"text": "two" + "2" * 397}).json()["id"]
        assert ask(srv.base, "k", first, "q").choices[0].message.content == "one"  # first is now the most recent
        third = httpx.post(url, json={"text": "thr" + "3" * 397}).json()["id"]  # 1200 > 1000: one must go
        assert ask(srv.base, "k", third, "q").choices[0].message.content == "thr"
        assert ask(srv.base, "k", first, "q").choices[0].message.content == "one"
        with pytest.raises(openai.NotFoundError, match="evicted"):
            ask(srv.base, "k", second, "q")
        r = httpx.post(url, json={"text": "z" * 1001})
        assert r.status_code == 413 and r.json()["error"]["code"] == "context_too_large"
        metrics = httpx.get(srv.url + "/metrics").text
        assert "unbounded_context_evictions_total 1.0" in metrics
        assert "unbounded_contexts 2.0" in metrics


def test_a_context_answering_a_question_is_never_evicted() -> None:
    root = answering("FINAL(context)", latency=1.0)
    with running(config(root, max_contexts=1)) as srv:
        busy = httpx.post(srv.base + "/contexts", json={"text": "busy"}).json()["id"]
        answer: dict[str, str] = {}
        t = threading.Thread(target=lambda: answer.setdefault("a", ask(srv.base, "k", busy, "q").choices[0].message.content))
        t.start()
        assert wait_until(lambda: srv.service.gate.running == 1)
        r = httpx.post(srv.base + "/contexts", json={"text": "newcomer"})
        assert r.status_code == 429 and r.json()["error"]["code"] == "contexts_full" and "retry-after" in r.headers
        t.join()
        assert answer["a"] == "busy"
        time.sleep(0.05)
        r = httpx.post(srv.base + "/contexts", json={"text": "newcomer"})  # now the idle one makes room
        assert r.status_code == 201
