"""The default REPL: a separate worker process per RLM.

The context is written once to a file in the worker's private temp dir and loaded there (text via
mmap), so a 400 MB context crosses no pipe. Sub-calls from model code arrive as frames and are
served concurrently on the host's event loop. A cell that ignores its time limit is killed with its
whole process group and the worker restarted; the model is told its variables were lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import pickle
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ContextError, REPLError, WorkerProtocolError
from .base import Limits, SubCallHandler, VariableError
from .cell import CellResult
from .namespace import ToolSpec
from .protocol import FrameError, encode_frame, read_frame_async

_SAFE_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT")
_PKG_PARENT = str(Path(__file__).resolve().parents[2])
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from unbounded.repl.worker import main; main()"
_WRITE_CHUNK = 1024 * 1024


def write_context_file(context: Any, folder: Path) -> tuple[Path, str]:
    """Write the context once for the worker: UTF-8 text, JSON, or pickle as a last resort."""
    if isinstance(context, str):
        path = folder / "context.txt"
        if context.isascii() and _write_ascii_buffer(context, path):
            return path, "ascii"
        with open(path, "wb") as fh:
            for i in range(0, len(context), _WRITE_CHUNK):
                fh.write(context[i : i + _WRITE_CHUNK].encode("utf-8", "surrogatepass"))
        # str.isascii() is O(1) in CPython; ASCII text can be loaded without a second copy.
        return path, "ascii" if context.isascii() else "text"
    path = folder / "context.json"
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(context, fh, ensure_ascii=False)
        return path, "json"
    except (TypeError, ValueError):
        path.unlink(missing_ok=True)
    path = folder / "context.pickle"
    try:
        with open(path, "wb") as fh:
            pickle.dump(context, fh, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        path.unlink(missing_ok=True)
        raise ContextError(
            f"context of type {type(context).__name__} cannot be sent to the REPL worker ({exc}); "
            "convert it to str, list or dict, or use repl='inprocess'"
        ) from exc
    return path, "pickle"


def _write_ascii_buffer(text: str, path: Path) -> bool:
    """Write an ASCII str's own buffer to ``path`` without encoding copies (CPython only)."""
    if sys.implementation.name != "cpython" or not text:
        return False
    import ctypes

    offset = sys.getsizeof("") - 1
    view = memoryview((ctypes.c_char * len(text)).from_address(id(text) + offset)).cast("B")
    try:
        with open(path, "wb", buffering=0) as fh:
            for i in range(0, len(text), _WRITE_CHUNK):
                fh.write(view[i : i + _WRITE_CHUNK])
    finally:
        view.release()
    return True


def scrubbed_env(workdir: Path) -> dict[str, str]:
    """Only harmless variables reach model code: no API keys, tokens or credentials."""
    env = {k: os.environ[k] for k in _SAFE_ENV if k in os.environ}
    env.update(
        HOME=str(workdir),
        TMPDIR=str(workdir),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
        MALLOC_ARENA_MAX="2",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
    )
    return env


class ProcessREPL:
    kind = "process"

    def __init__(self, limits: Limits | None = None, *, python: str | None = None):
        self.limits = limits or Limits()
        self.python = python or sys.executable
        self.workdir: Path | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._waiters: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._calls: set[asyncio.Task[None]] = set()
        self._handler: SubCallHandler | None = None
        self._cell_id: str | None = None
        self._init_frame: dict[str, Any] | None = None
        self._write_lock = asyncio.Lock()
        self._dead_reason: str | None = None
        self.restarts = 0
        self.load_seconds = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    async def start(
        self, context: Any, handler: SubCallHandler, tools: Sequence[ToolSpec] = (), *, sub_calls: bool = True
    ) -> None:
        self._handler = handler
        self.workdir = Path(tempfile.mkdtemp(prefix="unbounded-repl-"))
        ctx_dir = self.workdir / ".ctx"
        ctx_dir.mkdir()
        path, fmt = await asyncio.to_thread(write_context_file, context, ctx_dir)
        self._init_frame = {
            "op": "init",
            "context_path": str(path),
            "context_format": fmt,
            "tools": [t.to_dict() for t in tools],
            "sub_calls": sub_calls,
            "limits": {
                "cell_timeout": self.limits.cell_timeout,
                "cpu_seconds": self.limits.cpu_seconds,
                "memory_bytes": self.limits.memory_bytes,
                "max_output_chars": self.limits.max_output_chars,
                "max_processes": self.limits.max_processes,
            },
        }
        await self._spawn()

    async def _spawn(self) -> None:
        assert self.workdir is not None and self._init_frame is not None
        self._dead_reason = None
        self.proc = await asyncio.create_subprocess_exec(
            self.python,
            "-I",
            "-c",
            _BOOT,
            _PKG_PARENT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=str(self.workdir),
            env=scrubbed_env(self.workdir),
            start_new_session=True,
            limit=1 << 20,
        )
        self.pid = self.proc.pid
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"repl-reader-{self.pid}")
        reply = await self._request(self._init_frame, expect_id=False)
        if reply["op"] == "init_error":
            await self._kill()
            raise REPLError(f"the REPL worker could not load the context: {reply.get('error')}")
        self.load_seconds = float(reply.get("load_seconds", 0.0))

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self._send({"op": "close"})
            try:
                await asyncio.wait_for(self.proc.wait(), 1.0)
            except TimeoutError:
                pass
        await self._kill()
        if self.workdir is not None:
            await asyncio.to_thread(shutil.rmtree, self.workdir, True)
            self.workdir = None

    async def _kill(self) -> None:
        """Kill the worker and every process in its group, then reap it."""
        proc = self.proc
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await proc.wait()
        for t in list(self._calls):
            t.cancel()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task
            self._reader_task = None
        self._fail_waiters(self._dead_reason or "worker stopped")

    def _fail_waiters(self, reason: str) -> None:
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(REPLError(reason))
        self._waiters.clear()

    # -- frames ----------------------------------------------------------------------------
    async def _send(self, frame: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        data = encode_frame(frame)
        async with self._write_lock:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()

    async def _request(self, frame: dict[str, Any], *, expect_id: bool = True) -> dict[str, Any]:
        rid = next(self._ids) if expect_id else 0
        if expect_id:
            frame = {**frame, "id": rid}
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[rid] = fut
        try:
            await self._send(frame)
        except (ConnectionError, BrokenPipeError, RuntimeError) as exc:
            self._waiters.pop(rid, None)
            raise REPLError(f"REPL worker is gone: {exc}") from exc
        return await fut

    async def _read_loop(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        reader = self.proc.stdout
        try:
            while True:
                frame = await read_frame_async(reader, self.limits.max_frame_bytes)
                if frame is None:
                    break
                op = frame["op"]
                if op == "call":
                    task = asyncio.create_task(self._serve_call(frame))
                    self._calls.add(task)
                    task.add_done_callback(self._calls.discard)
                elif op in ("result", "value"):
                    fut = self._waiters.pop(frame.get("id"), None)
                    if fut is not None and not fut.done():
                        fut.set_result(frame)
                elif op in ("ready", "init_error"):
                    fut = self._waiters.pop(0, None)
                    if fut is not None and not fut.done():
                        fut.set_result(frame)
                else:
                    raise FrameError(f"unexpected op {op!r} from worker")
        except FrameError as exc:
            self._dead_reason = f"REPL worker broke the protocol ({exc}); it was stopped"
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        except (ConnectionError, OSError) as exc:
            self._dead_reason = f"lost the REPL worker's pipe: {exc}"
        rc = await self.proc.wait()
        if self._dead_reason is None:
            self._dead_reason = f"REPL worker exited ({_describe_exit(rc)})"
        self._fail_waiters(self._dead_reason)

    async def _serve_call(self, frame: dict[str, Any]) -> None:
        assert self._handler is not None
        cid = frame.get("id")
        try:
            payload = frame.get("payload")
            if not isinstance(payload, dict) or not isinstance(frame.get("kind"), str):
                raise WorkerProtocolError("malformed call frame")
            value = await self._handler(frame["kind"], payload, self._cell_id)
            reply: dict[str, Any] = {"op": "reply", "id": cid, "value": value}
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reply = {"op": "reply", "id": cid, "error": str(exc) or type(exc).__name__}
        with contextlib.suppress(Exception):
            await self._send(reply)

    # -- the REPL protocol -----------------------------------------------------------------
    async def run(self, code: str, *, cell_id: str | None = None) -> CellResult:
        if self.proc is None or self.proc.returncode is not None:
            await self._restart()
        self._cell_id = cell_id
        hard = None
        if self.limits.cell_timeout is not None:
            hard = self.limits.cell_timeout + self.limits.kill_grace
        try:
            reply = await asyncio.wait_for(self._request({"op": "exec", "code": code}), hard)
            return CellResult.from_dict(reply)
        except TimeoutError:
            self._dead_reason = "cell ignored its time limit"
            await self._restart()
            return CellResult(
                error=(
                    f"cell did not stop within {hard:g}s of wall time and was killed; the REPL was restarted "
                    "and ALL variables were lost (the context is loaded again)"
                ),
                timed_out=True,
                state_lost=True,
            )
        except REPLError as exc:
            reason = str(exc)
            await self._restart()
            return CellResult(
                error=f"{reason}; the REPL was restarted and ALL variables were lost (the context is loaded again)",
                state_lost=True,
            )
        finally:
            self._cell_id = None

    async def _restart(self) -> None:
        await self._kill()
        self.restarts += 1
        await self._spawn()

    async def get_var(self, name: str) -> Any:
        reply = await self._request({"op": "get", "name": name})
        if "error" in reply:
            raise VariableError(reply["error"])
        return reply.get("value", reply.get("repr"))

    async def set_var(self, name: str, value: Any) -> None:
        await self._request({"op": "set", "name": name, "value": value})


def _describe_exit(rc: int | None) -> str:
    if rc is None:
        return "still running"
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"
