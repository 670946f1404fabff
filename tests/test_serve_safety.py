"""Safety and limits: keys, allowed folders (traversal, absolute paths, symlinks), body limits, bad input
of every kind answered in OpenAI's error shape, and a server that never dies on a request."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest

from conftest import ROOT
from test_serve_support import answering, config, running
from unbounded.errors import ConfigError
from unbounded.models import ScriptedLM
from unbounded.serve import ServeConfig, is_loopback

pytestmark = pytest.mark.network

KEY = "s3cret-key-123"
CHAT = {"model": "rlm", "messages": [{"role": "user", "content": "q"}]}


def assert_openai_error(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert "Traceback" not in r.text
    if code is not None:
        assert err["code"] == code, err
    return err


def test_a_key_is_required_and_checked() -> None:
    with running(config(answering("FINAL('ok')"), api_keys=[KEY])) as srv:
        good = openai.OpenAI(base_url=srv.base, api_key=KEY, max_retries=0)
        assert good.chat.completions.create(**CHAT).choices[0].message.content == "ok"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=srv.base, api_key="wrong-key-1", max_retries=0).chat.completions.create(**CHAT)
        for headers in ({}, {"Authorization": "Basic " + KEY}, {"Authorization": "Bearer"},
                        {"Authorization": f"Bearer {KEY}x"}, {"Authorization": f"Bearer {KEY[:-1]}"}):  # fmt: skip
            r = httpx.post(srv.base + "/chat/completions", json=CHAT, headers=headers)
            assert_openai_error(r, 401)
            assert r.headers["www-authenticate"].startswith("Bearer")
        assert httpx.get(srv.url + "/metrics").status_code == 401
        assert httpx.get(srv.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert httpx.get(srv.url + "/healthz").json()["status"] == "ok"  # health needs no key


def test_binding_beyond_loopback_needs_a_key(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.5.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.168.1.4")
    assert not is_loopback("my-host.example")
    with pytest.raises(ConfigError, match="without an API key"):
        ServeConfig(host="0.0.0.0").check()
    ServeConfig(host="0.0.0.0", api_keys=[KEY]).check()
    replies = tmp_path / "r.json"
    replies.write_text('["FINAL(1)"]')
    out = subprocess.run(
        [sys.executable, "-m", "unbounded.serve", "serve", "--host", "0.0.0.0", "--port", "0", "--model",
         f"scripted/{replies}"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT / "src"),
                                                          "UNBOUNDED_API_KEY": ""},
    )  # fmt: skip
    assert out.returncode == 5 and "without an API key" in out.stderr


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "docs").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("TOPSECRET", encoding="utf-8")
    (allowed / "docs" / "ok.txt").write_text("public text", encoding="utf-8")
    (allowed / "link-to-secret.txt").symlink_to(outside / "secret.txt")
    (allowed / "link-to-outside").symlink_to(outside, target_is_directory=True)
    (allowed / "docs" / "inner-link.txt").symlink_to(outside / "secret.txt")  # inside a folder that is allowed
    return allowed, outside


def test_no_file_outside_the_allowed_folders_is_read(tree: tuple[Path, Path]) -> None:
    allowed, outside = tree
    root = answering("FINAL(repr(context))")
    attempts = [
        "../outside/secret.txt",
        "docs/../../outside/secret.txt",
        str(outside / "secret.txt"),
        str(allowed / ".." / "outside" / "secret.txt"),
        "link-to-secret.txt",
        "link-to-outside/secret.txt",
        "link-to-outside",
        str(allowed / "link-to-secret.txt"),
        "/etc/passwd",
        "~/.bashrc",
    ]
    with running(config(root, allow_paths=[allowed])) as srv:
        for path in attempts:
            for url, body in (("/chat/completions", {**CHAT, "paths": [path]}), ("/contexts", {"paths": [path]})):
                r = httpx.post(srv.base + url, json=body)
                assert r.status_code in (403, 404), (path, r.text)
                assert r.json()["error"]["code"] in ("path_not_allowed", "path_not_found")
                assert "TOPSECRET" not in r.text
        assert root.calls == []  # no run started for any of them
        r = httpx.post(srv.base + "/chat/completions", json={**CHAT, "paths": ["bad\x00name"]})
        assert_openai_error(r, 400)
        # A folder inside is loaded, but a symlink in it that leads out is skipped, never read.
        r = httpx.post(srv.base + "/chat/completions", json={**CHAT, "paths": ["docs"]})
        assert r.status_code == 200 and "public text" in r.text and "TOPSECRET" not in r.text
        trace = r.json()["unbounded"]["trace_id"]
        assert "TOPSECRET" not in httpx.get(srv.base + f"/traces/{trace}").text
    with running(config(root)) as srv:  # no --allow-path: no file at all
        r = httpx.post(srv.base + "/chat/completions", json={**CHAT, "paths": ["docs"]})
        assert "--allow-path" in assert_openai_error(r, 403, "path_not_allowed")["message"]


def test_bodies_over_the_limit_are_413_whether_announced_or_streamed() -> None:
    with running(config(answering("FINAL('ok')"), max_body_bytes=64 * 1024, max_upload_bytes=128 * 1024)) as srv:
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * 100_000}]}
        assert_openai_error(httpx.post(srv.base + "/chat/completions", json=big), 413, "request_too_large")

        def chunks():
            for _ in range(40):
                yield b" " * 4096  # no Content-Length: the limit is enforced while reading

        r = httpx.post(srv.base + "/chat/completions", content=chunks(), headers={"Content-Type": "application/json"})
        assert_openai_error(r, 413)
        r = httpx.post(srv.base + "/contexts", content=b"y" * 200_000, headers={"Content-Type": "text/plain"})
        assert_openai_error(r, 413)
        r = httpx.post(srv.base + "/contexts", content=b"y" * 100_000, headers={"Content-Type": "text/plain"})
        assert r.status_code == 201  # uploads have their own, larger limit
        assert httpx.post(srv.base + "/chat/completions", json=CHAT).status_code == 200


BAD_BODIES: list[tuple[object, int]] = [
    ([], 400), ("just a string", 400), (0, 400), ({}, 400), ({"model": 5, "messages": []}, 400),
    ({"model": "rlm"}, 400), ({"model": "rlm", "messages": "hi"}, 400), ({"model": "rlm", "messages": []}, 400),
    ({"model": "rlm", "messages": [{}]}, 400), ({"model": "rlm", "messages": [{"role": "robot", "content": "x"}]}, 400),
    ({"model": "rlm", "messages": [{"role": "user", "content": 5}]}, 400),
    ({"model": "rlm", "messages": [{"role": "assistant", "content": "no user"}]}, 400),
    ({"model": "rlm", "messages": [{"role": "user", "content": ""}]}, 400),
    ({"model": "rlm", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 400),
    ({**CHAT, "n": 3}, 400), ({**CHAT, "tools": [{"type": "function", "function": {"name": "f"}}]}, 400),
    ({**CHAT, "stream": "yes"}, 400), ({**CHAT, "response_format": {"type": "xml"}}, 400),
    ({**CHAT, "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "wrong"}}}}, 400),
    ({**CHAT, "budget": {"max_iterations": -1}}, 400), ({**CHAT, "budget": {"max_iterations": True}}, 400),
    ({**CHAT, "budget": {"nonsense": 1}}, 400), ({**CHAT, "budget": [1]}, 400), ({**CHAT, "context_id": 5}, 400),
    ({**CHAT, "context_id": "ctx_nope"}, 404), ({**CHAT, "paths": "x", "context_id": "y"}, 400),
    ({**CHAT, "paths": []}, 400), ({**CHAT, "model": "rlm/unknown"}, 404), ({**CHAT, "stream_options": 3}, 400),
]  # fmt: skip


def test_bad_requests_get_openai_errors_and_the_server_stays_up() -> None:
    with running(config(answering("FINAL('ok')"))) as srv:
        url = srv.base + "/chat/completions"
        for body, status in BAD_BODIES:
            assert_openai_error(httpx.post(url, json=body), status)
        assert_openai_error(httpx.post(url, content=b"{not json", headers={"Content-Type": "application/json"}), 400,
                            "invalid_json")  # fmt: skip
        assert_openai_error(httpx.post(url, content=b"null", headers={"Content-Type": "application/json"}), 400)
        assert_openai_error(httpx.post(url, content=b"", headers={"Content-Type": "application/json"}), 400)
        assert_openai_error(httpx.post(url, content=b"\xff\xfe", headers={"Content-Type": "application/json"}), 400)
        assert_openai_error(httpx.post(url, content=b"[" * 100_000, headers={"Content-Type": "application/json"}), 400)
        assert_openai_error(httpx.post(url, data={"model": "rlm"}), 415)  # a form post (what a web page could send)
        assert_openai_error(httpx.get(url), 405)
        assert_openai_error(httpx.get(srv.url + "/nowhere"), 404)
        assert_openai_error(httpx.post(url, json=CHAT, headers={"Host": "evil.example"}), 404, "bad_host")
        # mutations of a valid body, at random (seeded): never a 5xx, never a crash
        rng = random.Random(7)
        valid = json.dumps({**CHAT, "stream": False, "budget": {"max_iterations": 3}})
        for _ in range(150):
            raw = bytearray(valid.encode())
            for _ in range(rng.randint(1, 6)):
                i = rng.randrange(len(raw))
                raw[i] = rng.choice(b'{}[]":,0123456789abc \\\x00\xff')
            r = httpx.post(url, content=bytes(raw), headers={"Content-Type": "application/json"})
            assert r.status_code < 500, (bytes(raw), r.text)
            if r.status_code != 200:
                assert "error" in r.json()
        assert httpx.post(url, json=CHAT).json()["choices"][0]["message"]["content"] == "ok"
        metrics = httpx.get(srv.url + "/metrics").text
        assert 'unbounded_errors_total{kind="invalid_json"}' in metrics


def test_an_unexpected_failure_is_a_500_without_internals() -> None:
    def explode(messages):
        raise RuntimeError("boom: internal detail /srv/private")

    with running(config(ScriptedLM(explode))) as srv:
        r = httpx.post(srv.base + "/chat/completions", json=CHAT)
        err = assert_openai_error(r, 500)
        assert err["type"] == "server_error" and "boom" not in r.text and "/srv/private" not in r.text
        assert "reference" in err["message"]
        assert r.headers["x-should-retry"] == "false"
        r = httpx.post(srv.base + "/chat/completions", json={**CHAT, "stream": True})
        lines = [line for line in r.text.split("\n\n") if line]
        assert json.loads(lines[-2][len("data: "):])["error"]["type"] == "server_error" and lines[-1] == "data: [DONE]"
        assert httpx.get(srv.url + "/healthz").status_code == 200
