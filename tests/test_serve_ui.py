"""``unbounded serve --ui``: the trace viewer at /ui over the server's own traces folder, listing runs
as they finish; refused where it would show one key's traces to another."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from test_serve_support import answering, config, running
from unbounded.errors import ConfigError
from unbounded.serve import ServeConfig, create_app
from view_support import chromium, needs_browser, new_page

pytestmark = pytest.mark.network


def ask(base: str, question: str) -> str:
    client = openai.OpenAI(base_url=base, api_key="unused", max_retries=0)
    resp = client.chat.completions.create(
        model="rlm",
        messages=[{"role": "system", "content": "some notes to read"}, {"role": "user", "content": question}],
    )
    return resp.model_extra["unbounded"]["trace_id"]


def test_the_viewer_lists_the_servers_runs_as_they_finish(tmp_path: Path) -> None:
    cfg = config(answering("FINAL('ok')"), trace_dir=tmp_path / "traces", ui=True)
    with running(cfg) as srv:
        first = ask(srv.base, "one?")
        page = httpx.get(srv.url + "/ui/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        info = httpx.get(srv.url + "/ui/api/info").json()
        assert [row["name"] for row in info["bench"]["rows"]] == [f"{first}.jsonl"]
        second = ask(srv.base, "two?")
        rows = httpx.get(srv.url + "/ui/api/info").json()["bench"]["rows"]
        assert sorted(row["name"] for row in rows) == sorted([f"{first}.jsonl", f"{second}.jsonl"])
        tid = next(row["tid"] for row in rows if row["name"] == f"{second}.jsonl")
        meta = httpx.get(srv.url + f"/ui/api/t/{tid}/meta").json()
        assert "two?" in str(meta)
        # The viewer is behind the server's own Host check, like every other route.
        assert httpx.get(srv.url + "/ui/api/info", headers={"Host": "evil.example"}).status_code == 404


def test_without_ui_there_is_no_viewer() -> None:
    with running(config(answering("FINAL('ok')"))) as srv:
        assert httpx.get(srv.url + "/ui/").status_code == 404


def test_ui_is_refused_on_a_server_with_keys() -> None:
    cfg = ServeConfig(model=answering("FINAL('ok')"), ui=True, api_keys=("k" * 16,), repl="inprocess")
    with pytest.raises(ConfigError, match="GET /v1/traces"):
        create_app(cfg)


@needs_browser
def test_the_viewer_page_opens_a_run_in_a_real_browser(tmp_path: Path) -> None:
    cfg = config(answering("print('looked')\nFINAL('ok')"), trace_dir=tmp_path / "traces", ui=True)
    with running(cfg) as srv, chromium() as browser, new_page(browser) as page:
        trace_id = ask(srv.base, "What does the browser see?")
        page.goto(srv.url + "/ui/")
        row = page.locator('[data-role="bench-table"] tbody tr', has_text=f"{trace_id}.jsonl").first
        row.wait_for(timeout=15_000)
        row.locator("a", has_text="open").click()
        page.wait_for_selector("[data-viewer][data-ready]", timeout=15_000)
        page.wait_for_selector('[role="treeitem"]', timeout=15_000)
        assert "What does the browser see?" in (page.text_content("body") or "")


def test_a_missing_viewer_names_its_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from unbounded.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "unbounded.view.server", None)  # as if the view extra were absent
    with pytest.raises(MissingExtraError, match=r"--ui needs the viewer .*pip install 'unbounded\[view\]'"):
        create_app(config(answering("FINAL('ok')"), trace_dir=tmp_path / "traces", ui=True))
