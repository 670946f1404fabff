"""The viewer's ASGI app on a real uvicorn server on loopback: API, confinement, mounting, bench folders."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from unbounded.bench.results import ResultRecord, ResultsFile
from unbounded.view.errors import TraceFileError
from unbounded.view.server import LOOPBACK_HOSTS, create_app
from view_support import record_engine_trace, serve, trace_lines, usage_totals

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("srv") / "run.jsonl"
    record_engine_trace(path, latency=0.01)
    return path


def bench_folder(root: Path, trace: Path) -> Path:
    (root / "traces").mkdir(parents=True)
    (root / "traces" / "niah-8K-rlm-s0-0.jsonl").write_bytes(trace.read_bytes())
    (root / "traces" / "niah-8K-direct-s0-0.jsonl").write_text(
        json.dumps({"type": "lm_call", "index": 1, "model": "m", "messages": [], "answer": "42", "seconds": 0.1}) + "\n"
    )
    (root.parent / "outside.jsonl").write_bytes(trace.read_bytes())
    results = ResultsFile(root / "results.jsonl")
    common = {
        "task": "niah",
        "size_tokens": 8192,
        "item_id": "niah-8192-s0-0",
        "model": "test/model",
        "gold": "42",
        "seconds": 1.5,
        "answer": "42",
    }
    results.append(
        ResultRecord(
            method="rlm",
            score=1.0,
            status="final",
            trace="traces/niah-8K-rlm-s0-0.jsonl",
            calls=9,
            input_tokens=4000,
            output_tokens=100,
            cost_usd=0.01,
            **common,
        )
    )
    results.append(
        ResultRecord(
            method="direct",
            score=0.0,
            status="ok",
            trace="traces/niah-8K-direct-s0-0.jsonl",
            calls=1,
            cost_usd=None,
            **common,
        )
    )
    results.append(ResultRecord(method="sneaky", score=0.0, status="ok", trace="../outside.jsonl", **common))
    return root


def test_api_serves_the_tree_details_timeline_and_search(trace: Path) -> None:
    with serve(create_app(trace, trusted_hosts=LOOPBACK_HOSTS)) as url, httpx.Client(base_url=url) as c:
        page = c.get("/")
        assert page.status_code == 200 and '<script id="ub-config"' in page.text
        assert "http://" not in page.text.split("<style>")[0] and "cdn" not in page.text.lower()
        meta = c.get("/api/t/0/meta").json()
        calls, tin, tout, cost = usage_totals(trace_lines(trace))
        assert meta["totals"][:3] == [calls, tin, tout] and meta["totals"][4] == pytest.approx(cost)
        assert meta["runs"][0]["config"]["repl"] == "inprocess" and meta["live"] is False
        roots = c.get("/api/t/0/children").json()
        [run] = roots["items"]
        [rlm] = c.get("/api/t/0/children", params={"key": run["k"]}).json()["items"]
        turns = c.get("/api/t/0/children", params={"key": rlm["k"]}).json()["items"]
        assert len(turns) == 4
        d = c.get("/api/t/0/node", params={"key": turns[0]["k"]}).json()
        assert len(d["members"]) == 2
        cell = c.get("/api/t/0/node", params={"key": d["members"][1]}).json()
        assert cell["start"]["data"]["code"].startswith("lines = context.splitlines()")
        tl = c.get("/api/t/0/timeline").json()
        assert len(tl["calls"]) == calls
        hits = c.get("/api/t/0/search", params={"q": "undefined_name"}).json()["hits"]
        assert hits
        rv = c.get("/api/t/0/reveal", params={"key": hits[0]["k"]}).json()
        assert rv["path"][0] == run["k"]
        assert c.get("/api/t/0/changes", params={"since": meta["version"]}).json() == {
            "version": meta["version"],
            "reset": False,
            "nodes": [],
        }


def test_urls_name_no_files_and_bad_requests_say_why(trace: Path) -> None:
    with serve(create_app(trace, trusted_hosts=LOOPBACK_HOSTS)) as url, httpx.Client(base_url=url) as c:
        assert c.get("/api/t/1/meta").status_code == 404
        assert c.get("/api/t/0/node", params={"key": "../../etc/passwd"}).json()["error"].startswith("no node")
        assert c.get("/api/t/0/../../../etc/passwd").status_code == 404
        assert c.get("/static/../../pyproject.toml").status_code == 404
        assert c.get("/api/t/x/meta").status_code == 404
        r = c.get("/api/t/0/children", params={"offset": "many"})
        assert r.status_code == 400 and "bad request" in r.json()["error"]
        # a Host header that is not loopback (DNS rebinding) is refused
        assert c.get("/api/t/0/meta", headers={"Host": "attacker.example"}).status_code == 400


def test_a_vanished_trace_says_so(tmp_path: Path, trace: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(trace.read_bytes())
    with serve(create_app(path)) as url, httpx.Client(base_url=url) as c:
        assert c.get("/api/t/0/meta").status_code == 200
        path.unlink()
        r = c.get("/api/t/0/meta")
        assert r.status_code == 410 and "no such trace file" in r.json()["error"]


def test_missing_target_raises() -> None:
    with pytest.raises(TraceFileError, match="no such trace file or bench folder"):
        create_app("/nonexistent/trace.jsonl")


def test_mounted_under_ui_of_another_app(trace: Path) -> None:
    outer = Starlette(routes=[Mount("/ui", app=create_app(trace))])
    with serve(outer) as url, httpx.Client(base_url=url, follow_redirects=True) as c:
        page = c.get("/ui/")
        assert page.status_code == 200
        config = json.loads(page.text.split('<script id="ub-config" type="application/json">')[1].split("</script>")[0])
        assert config["base"] == "/ui/"
        assert c.get("/ui/api/t/0/meta").json()["events"] == len(trace_lines(trace))
        assert c.get("/api/t/0/meta").status_code == 404


def test_bench_folder_lists_results_and_only_its_own_traces(tmp_path: Path, trace: Path) -> None:
    root = bench_folder(tmp_path / "runs" / "a", trace)
    app = create_app(root)
    with serve(app) as url, httpx.Client(base_url=url) as c:
        info = c.get("/api/info").json()
        assert info["view"] == "bench" and info["bench"]["results"] is True
        rows = {r["method"]: r for r in info["bench"]["rows"]}
        assert set(rows) == {"rlm", "direct", "sneaky"}
        assert rows["sneaky"]["tid"] is None  # a trace path leading out of the folder is not served
        assert rows["rlm"]["size_label"] == "8K" and rows["rlm"]["score"] == 1.0
        rlm_meta = c.get(f"/api/t/{rows['rlm']['tid']}/meta").json()
        assert rlm_meta["runs"][0]["status"] == "final"
        direct = c.get(f"/api/t/{rows['direct']['tid']}/children").json()["items"]
        assert [s["t"] for s in direct] == ["lm_call"]
        assert len(info["traces"]) == 2


def test_a_folder_of_traces_without_results(tmp_path: Path, trace: Path) -> None:
    (tmp_path / "x" / "deep").mkdir(parents=True)
    (tmp_path / "x" / "a.jsonl").write_bytes(trace.read_bytes())
    (tmp_path / "x" / "deep" / "b.jsonl").write_bytes(trace.read_bytes())
    (tmp_path / "x" / "notes.txt").write_text("not a trace")
    with serve(create_app(tmp_path / "x")) as url, httpx.Client(base_url=url) as c:
        bench = c.get("/api/info").json()["bench"]
        assert bench["results"] is False
        assert [r["name"] for r in bench["rows"]] == ["a.jsonl", "deep/b.jsonl"]
        assert c.get("/api/t/1/meta").json()["events"] == len(trace_lines(trace))
