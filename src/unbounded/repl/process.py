"""The default REPL: a separate, sandboxed worker process per RLM.

The context is written once to a file in a private temp dir and loaded there (``transfer.py``), so a
400 MB context crosses no pipe. Sub-calls from model code arrive as frames and are served
concurrently on the host's event loop. The host treats the worker as untrusted: every frame is
size-limited and checked (``protocol.check_*``); one that breaks the protocol ends that worker, never
the host. A cell that ignores its time limit is killed with everything the worker started and the
worker restarted; the model is told its variables were lost.

Layout of the temp dir (``sandbox.py`` decides what the worker sees of the rest of the machine)::

    unbounded-repl-XXXX/   host-owned
      ctx/                 the context file, read-only to the worker
      work/                the worker's cwd, HOME and TMPDIR: the one place it may write
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ContextError, REPLError
from . import sandbox
from .base import CellResult, Limits, Snapshot, SubCallHandler, ToolSpec, VariableError
from .clock import CellDeadline
from .protocol import (
    CALL_KINDS,
    EXIT_DROP_UNUSABLE,
    FrameError,
    check_call,
    check_id,
    check_ready,
    check_result,
    encode_frame,
    read_frame_async,
)
from .transfer import write_context_file

_SAFE_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT")
_PKG_PARENT = str(Path(__file__).resolve().parents[2])
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from unbounded.repl.worker import main; main()"
#: Sub-calls one worker may have in flight; more are answered with an error at once.
MAX_PENDING_CALLS = 1024
#: Seconds to wait for a ``get``/``set`` answer (they run between cells, so they are quick).
CONTROL_TIMEOUT = 30.0
_STDERR_TAIL = 4096
_STDERR_PIPE_BYTES = 1 << 20


def private_temp_dir(prefix: str) -> Path:
    """A new mode-0700 directory in the temp folder (``TMPDIR``, ``TEMP``, ``TMP``, then ``/tmp``).

    What ``tempfile.mkdtemp`` does, without importing ``tempfile``: it pulls in shutil, random, bz2
    and lzma, ~1 MB resident in the host, which counts against the context-size memory target.
    """
    candidates = [os.environ.get(k) for k in ("TMPDIR", "TEMP", "TMP")] + ["/tmp", "/var/tmp", os.getcwd()]
    for base in candidates:
        if not base or not os.path.isdir(base) or not os.access(base, os.W_OK | os.X_OK):
            continue
        for _ in range(100):
            path = Path(base, prefix + os.urandom(6).hex())
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                continue
            return path.resolve()
    raise REPLError("no writable temporary folder for the REPL worker: set TMPDIR to one")


def scrubbed_env(workdir: Path) -> dict[str, str]:
    """Only harmless variables reach model code: no API keys, tokens or credentials."""
    env = {k: os.environ[k] for k in _SAFE_ENV if k in os.environ}
    env.update(
        HOME=str(workdir),
        TMPDIR=str(workdir),
        USER="sandbox",
        LOGNAME="sandbox",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
        MALLOC_ARENA_MAX="2",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
    )
    return env


class _StartFailed(Exception):
    """The worker died before it was ready: ``code`` is its exit status, ``detail`` its stderr tail."""

    def __init__(self, code: int | None, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


class ProcessREPL:
    kind = "process"

    def __init__(self, limits: Limits | None = None, *, python: str | None = None):
        self.limits = limits or Limits()
        self.python = python or sys.executable
        self.root: Path | None = None
        self.workdir: Path | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        #: What the current worker runs under (mode, uid, what is confined), set by ``start``.
        self.plan: sandbox.Plan | None = None
        #: Sandbox warnings for the trace (the engine emits them); each is printed once on stderr too.
        self.warnings: list[str] = []
        self.worker_uid: int | None = None
        self.nproc_limited = False
        self.restarts = 0
        self.load_seconds = 0.0
        self._inner_pid: int | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._stderr: _StderrDrain | None = None
        self._deadline = CellDeadline()
        self._waiters: dict[int, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._abandoned: set[int] = set()
        self._ready_waiter: asyncio.Future[dict[str, Any]] | None = None
        self._ready = False
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._handler: SubCallHandler | None = None
        self._kinds: tuple[str, ...] = CALL_KINDS
        self._tool_names: frozenset[str] = frozenset()
        self._cell_id: str | None = None
        self._init_frame: dict[str, Any] | None = None
        self._write_lock = asyncio.Lock()
        self._dead_reason: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(
        self, context: Any, handler: SubCallHandler, tools: Sequence[ToolSpec] = (), *, sub_calls: bool = True
    ) -> None:
        self._handler = handler
        self._tool_names = frozenset(t.name for t in tools)
        self._kinds = CALL_KINDS if sub_calls else ("tool",)
        self.root = private_temp_dir("unbounded-repl-")
        os.chmod(self.root, 0o711)  # a worker with its own uid may pass through, not list
        ctx_dir = self.root / "ctx"
        ctx_dir.mkdir(mode=0o755)
        self.workdir = self.root / "work"
        self.workdir.mkdir(mode=0o700)
        try:
            path, fmt = await asyncio.to_thread(write_context_file, context, ctx_dir)
            os.chmod(path, 0o644)
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
                    "max_file_bytes": self.limits.max_file_bytes,
                },
            }
            await self._spawn()
        except BaseException:
            await self.close()
            raise

    async def _spawn(self) -> None:
        """Start a worker in the strongest sandbox that works, falling back (loudly) where the OS refuses."""
        assert self.root is not None and self.workdir is not None
        modes = sandbox.candidates(self.limits.sandbox)
        if not modes:
            raise REPLError("no sandbox mode can start a REPL worker here")
        explicit = self.limits.sandbox != "auto"
        errors: list[str] = []
        for mode in modes:
            while True:
                try:
                    plan = sandbox.plan(
                        mode,
                        python=self.python,
                        pkg_parent=_PKG_PARENT,
                        ctx_dir=self.root / "ctx",
                        work_dir=self.workdir,
                        allow_network=self.limits.allow_network,
                    )
                except LookupError as exc:
                    reason = str(exc)
                    break
                try:
                    await self._spawn_with(plan)
                except _StartFailed as exc:
                    if exc.code == EXIT_DROP_UNUSABLE and plan.drop_uid is not None:
                        sandbox.mark_no_drop(mode, self.python)
                        continue  # the same mode again, keeping root inside the namespaces
                    reason = f"the worker did not start (exit {exc.code}): {exc.detail or 'no message'}"
                    # Fall back only when the sandbox tool itself refused (no namespaces here, say); a
                    # worker that died for another reason must not downgrade every later REPL.
                    refused = any(line.startswith(("bwrap:", "unshare:")) for line in exc.detail.splitlines())
                    if mode == "none" or explicit or not refused:
                        raise REPLError(f"the REPL worker could not start: {reason}") from None
                    break
                self._after_start(plan)
                return
            if explicit:
                raise REPLError(f"sandbox {mode!r} is not available: {reason}")
            sandbox.mark_broken(mode, reason)
            errors.append(f"{mode}: {reason}")
        raise REPLError("the REPL worker could not start: " + "; ".join(errors))

    def _after_start(self, plan: sandbox.Plan) -> None:
        self.plan = plan
        notes = list(plan.warnings)
        for mode in ("bwrap", "unshare"):
            why = sandbox.broken_reason(mode)
            if why and self.limits.sandbox == "auto" and mode != plan.mode and _stronger(mode, plan.mode):
                notes.append(f"sandbox {mode!r} is unavailable here ({why}); the REPL runs under {plan.mode!r}")
        if self.limits.max_processes and not self.nproc_limited:
            notes.append(
                f"the process limit ({self.limits.max_processes}) is not enforced: the REPL worker runs as root "
                f"(sandbox {plan.mode!r}; the kernel exempts root from RLIMIT_NPROC), so a fork bomb is not contained"
            )
        if not plan.private_fs:
            who = "root" if self.worker_uid == 0 else "an unprivileged uid"
            notes.append(
                f"the REPL worker sees the host's file system (sandbox {plan.mode!r}); only Unix permissions "
                f"guard it (it runs as {who})"
            )
        for note in notes:
            sandbox.warn_once(note)
        self.warnings = notes

    async def _spawn_with(self, plan: sandbox.Plan) -> None:
        assert self.workdir is not None and self._init_frame is not None
        self._reset_channel()
        argv = [*plan.prefix, self.python, "-I", "-c", _BOOT, _PKG_PARENT, *plan.worker_args()]
        if plan.drop_uid is not None:
            os.chown(self.workdir, plan.drop_uid, plan.drop_uid)
        elif sandbox.is_root():
            os.chown(self.workdir, 0, 0)
        err_read, err_write = os.pipe()
        _grow_pipe(err_write)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err_write,
                cwd=str(self.workdir),
                env=scrubbed_env(self.workdir),
                start_new_session=True,
                limit=1 << 20,
            )
        except BaseException:
            os.close(err_read)
            raise
        finally:
            os.close(err_write)
        self.pid = self.proc.pid
        self.plan = plan
        self._stderr = _StderrDrain(err_read, name=f"repl-stderr-{self.pid}")
        self._ready_waiter = asyncio.get_running_loop().create_future()
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"repl-reader-{self.pid}")
        try:
            await self._send(self._init_frame)
            reply = await self._ready_waiter
        except (REPLError, ConnectionError, BrokenPipeError, RuntimeError) as exc:
            await self._stderr.wait_closed(1.0)  # let its last words arrive
            rc = self.proc.returncode
            await self._kill()
            raise _StartFailed(rc, self._stderr_text() or str(exc)) from None
        if reply["op"] == "init_error":
            await self._kill()
            raise REPLError(f"the REPL worker could not load the context: {reply.get('error')}")
        self._ready = True
        self.load_seconds = float(reply.get("load_seconds", 0.0))
        self.worker_uid = int(reply.get("uid", -1))
        # The kernel exempts kuid 0 from RLIMIT_NPROC; a non-root host's worker is never kuid 0.
        self.nproc_limited = bool(reply.get("nproc_set")) and (self.worker_uid != 0 or not sandbox.is_root())
        if plan.private_pids:
            self._inner_pid = sandbox.only_child(self.proc.pid)

    def _reset_channel(self) -> None:
        self._dead_reason = None
        self._ready = False
        self._inner_pid = None
        self._abandoned.clear()

    async def close(self) -> None:
        await self._kill()
        if self.root is not None:
            import shutil  # late: see private_temp_dir

            await asyncio.to_thread(shutil.rmtree, self.root, True)
            self.root = None
            self.workdir = None

    async def _kill(self) -> None:
        """Stop the worker and every process it started, then reap it."""
        proc = self.proc
        if proc is not None:
            await self._stop_tree(proc)
        for t in list(self._calls.values()):
            t.cancel()
        self._calls.clear()
        task = self._reader_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        self._reader_task = None
        if self._stderr is not None:
            await self._stderr.wait_closed(0.5)  # the tree is dead: the pipe is at its end
            self._stderr.stop()
        self._fail_waiters(self._dead_reason or "worker stopped")

    async def _stop_tree(self, proc: asyncio.subprocess.Process) -> None:
        """Kill the worker's whole tree. With a pid namespace, killing its init takes every process in it
        down, and the outer process exits only after that; without one, the worker's uid (unique to it)
        or its descendants (it is their subreaper) name the processes to kill."""
        plan = self.plan
        if proc.returncode is None and plan is not None and plan.private_pids:
            inner = self._inner_pid
            if inner is not None and sandbox.ppid(inner) == proc.pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(inner, signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(proc.wait()), 3.0)
        elif proc.returncode is None and plan is not None and not plan.private_pids:
            await asyncio.to_thread(sandbox.kill_tree, proc.pid, self.worker_uid if plan.drop_uid is not None else None)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(Exception):
            await proc.wait()
        if plan is not None and not plan.private_pids and plan.drop_uid is not None:
            await asyncio.to_thread(sandbox.kill_tree, None, self.worker_uid)

    def _fail_waiters(self, reason: str) -> None:
        waiters = [fut for _, fut in self._waiters.values()]
        if self._ready_waiter is not None:
            waiters.append(self._ready_waiter)
        for fut in waiters:
            if not fut.done():
                fut.set_exception(REPLError(reason))
        self._waiters.clear()

    # -- frames ----------------------------------------------------------------------------
    async def _send(self, frame: dict[str, Any]) -> None:
        if self.proc is None or self.proc.stdin is None:
            raise REPLError("REPL worker is not running")
        data = encode_frame(frame)
        async with self._write_lock:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()

    async def _request(self, frame: dict[str, Any], expect: str) -> dict[str, Any]:
        if self._dead_reason is not None:
            raise REPLError(self._dead_reason)
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[rid] = (expect, fut)
        try:
            await self._send({**frame, "id": rid})
            return await fut
        except (ConnectionError, BrokenPipeError, RuntimeError) as exc:
            raise REPLError(f"REPL worker is gone: {exc}") from exc
        except asyncio.CancelledError:
            if self._waiters.pop(rid, None) is not None:
                self._abandoned.add(rid)  # its answer may still come; it is not a protocol breach
            raise
        finally:
            self._waiters.pop(rid, None)

    async def _read_loop(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        try:
            while True:
                frame = await read_frame_async(proc.stdout, self.limits.max_frame_bytes)
                if frame is None:
                    break
                self._dispatch(frame)
        except FrameError as exc:
            self._dead_reason = f"the REPL worker broke the protocol ({exc}); it was stopped"
            self._fail_waiters(self._dead_reason)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        except (ConnectionError, OSError) as exc:
            self._dead_reason = f"lost the REPL worker's pipe: {exc}"
        # End of the protocol stream: a worker that can no longer talk is of no use; give it a moment to
        # exit (for an honest exit status), then make sure.
        try:
            rc = await asyncio.wait_for(asyncio.shield(proc.wait()), 1.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            rc = await proc.wait()
        if self._dead_reason is None:
            self._dead_reason = f"the REPL worker exited ({self._describe_exit(rc)})"
        self._fail_waiters(self._dead_reason)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        op = frame["op"]
        if not self._ready:
            if op in ("ready", "init_error") and self._ready_waiter is not None and not self._ready_waiter.done():
                self._ready_waiter.set_result(check_ready(frame))
                return
            raise FrameError(f"{op!r} frame before the worker was ready")
        if op == "call":
            cid, kind, payload = check_call(frame, self._kinds, self._tool_names)
            if cid in self._calls:
                raise FrameError(f"call id {cid} is already in flight")
            task = asyncio.create_task(self._serve_call(cid, kind, payload, len(self._calls) >= MAX_PENDING_CALLS))
            self._calls[cid] = task
            task.add_done_callback(lambda _t, cid=cid: self._calls.pop(cid, None))
        elif op in ("result", "value"):
            rid = check_id(frame.get("id"))
            entry = self._waiters.get(rid)
            if entry is None:
                if rid in self._abandoned:
                    self._abandoned.discard(rid)
                    return
                raise FrameError(f"{op!r} for request id {rid}, which the host did not make or already has")
            expect, fut = entry
            if op != expect:
                raise FrameError(f"{op!r} frame answering a request that expects {expect!r}")
            if op == "result":
                check_result(frame)
            del self._waiters[rid]  # only once the answer is known good: a bad one fails the waiter
            if not fut.done():
                fut.set_result(frame)
        else:
            raise FrameError(f"unexpected op {str(op)[:40]!r} from the worker")

    async def _serve_call(self, cid: int, kind: str, payload: dict[str, Any], refuse: bool) -> None:
        assert self._handler is not None
        try:
            if refuse:
                raise REPLError(f"too many sub-calls in flight (limit {MAX_PENDING_CALLS}); use llm_batch")
            self._deadline.pause()
            try:
                value = await self._handler(kind, payload, self._cell_id)
            finally:
                self._deadline.resume()
            reply: dict[str, Any] = {"op": "reply", "id": cid, "value": value}
            try:
                encode_frame(reply)
            except (TypeError, ValueError) as exc:
                reply = {"op": "reply", "id": cid, "error": f"{kind} returned a value that is not plain data: {exc}"}
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reply = {"op": "reply", "id": cid, "error": str(exc) or type(exc).__name__}
        with contextlib.suppress(Exception):
            await self._send(reply)

    def _stderr_text(self, limit: int = 600) -> str:
        if self._stderr is None:
            return ""
        return self._stderr.text()[-limit:]

    def _describe_exit(self, rc: int | None) -> str:
        plan = self.plan
        if rc is not None and rc > 128 and plan is not None and plan.mode == "bwrap":
            rc = 128 - rc  # bwrap reports a signal death as 128 + signal number
        text = _describe_exit(rc)
        tail = self._stderr_text(300)
        if tail and (rc is None or rc != 0):
            last = " | ".join(line for line in tail.splitlines()[-3:] if line.strip())
            text += f"; its last words: {last}"
        return text

    # -- the REPL protocol -----------------------------------------------------------------
    async def run(self, code: str, *, cell_id: str | None = None) -> CellResult:
        lost: str | None = None
        if self.proc is None or self.proc.returncode is not None or self._dead_reason is not None:
            # The worker died between cells (a thread left running, a breach after the last answer).
            lost = self._dead_reason or "the REPL worker had stopped"
            try:
                await self._restart()
            except (REPLError, ContextError) as exc:
                return CellResult(error=f"{lost}; a new REPL could not be started: {exc}", state_lost=True)
        self._cell_id = cell_id
        hard = None
        if self.limits.cell_timeout is not None:
            hard = self.limits.cell_timeout + self.limits.kill_grace
        started = time.perf_counter()
        try:
            try:
                async with asyncio.timeout(hard) as deadline:  # no task per cell, unlike wait_for
                    self._deadline.attach(deadline)  # stopped while the cell waits on sub-calls
                    try:
                        reply = await self._request({"op": "exec", "code": code}, "result")
                    finally:
                        self._deadline.detach()
            except asyncio.CancelledError:
                self._interrupt()  # the run was cancelled: stop the cell now, not when it would have ended
                raise
            result = CellResult.from_dict(reply)
            if lost is not None:
                result.notes.insert(
                    0,
                    f"{lost}; it was restarted before this cell and ALL variables were lost (the context is loaded again)",
                )
                result.state_lost = True
            return result
        except TimeoutError:
            self._dead_reason = "cell ignored its time limit"
            note = await self._restart_note()
            return CellResult(
                error=(
                    f"cell did not stop within {hard:g}s of wall time and was killed with every process it "
                    f"started; {note}"
                ),
                timed_out=True,
                state_lost=True,
                duration=time.perf_counter() - started,
            )
        except REPLError as exc:
            reason = str(exc)
            note = await self._restart_note()
            return CellResult(error=f"{reason}; {note}", state_lost=True, duration=time.perf_counter() - started)
        finally:
            self._cell_id = None

    def _interrupt(self) -> None:
        """Interrupt the running cell (SIGINT: a KeyboardInterrupt in the worker's main thread); the
        namespace survives, and the cell's late result is dropped as an abandoned request."""
        if self.proc is None or self.proc.returncode is not None:
            return
        # In a pid namespace the worker is the one child of the namespace's init; else it is the process.
        pid = sandbox.only_child(self._inner_pid) if self._inner_pid else self.proc.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGINT)

    async def _restart_note(self) -> str:
        lost = "ALL variables were lost (the context is loaded again)"
        try:
            await self._restart()
        except (REPLError, ContextError) as exc:
            return f"a new REPL could not be started ({exc}); ALL variables were lost"
        return f"the REPL was restarted and {lost}"

    async def _restart(self) -> None:
        await self._kill()
        self.restarts += 1
        await self._spawn()

    async def get_var(self, name: str) -> Any:
        try:
            reply = await asyncio.wait_for(self._request({"op": "get", "name": name}, "value"), CONTROL_TIMEOUT)
        except (REPLError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                self._dead_reason = "the REPL worker did not answer"
            await self._restart_note()
            raise VariableError(f"cannot read {name!r}: the REPL worker failed ({exc or 'timeout'})") from None
        if "error" in reply:
            raise VariableError(str(reply["error"]))
        return reply.get("value", reply.get("repr"))

    async def set_var(self, name: str, value: Any) -> None:
        try:
            await asyncio.wait_for(self._request({"op": "set", "name": name, "value": value}, "value"), CONTROL_TIMEOUT)
        except TimeoutError:
            self._dead_reason = "the REPL worker did not answer"
            await self._kill()
            raise REPLError("the REPL worker did not answer a set request; it was stopped") from None


    async def snapshot(self) -> Snapshot:
        reply = await self._control({"op": "dump"}, "snapshot")
        value = reply.get("value") or {}
        return Snapshot(str(value.get("data", "")), list(value.get("dropped", [])), list(value.get("names", [])))

    async def restore(self, data: str) -> list[str]:
        reply = await self._control({"op": "load", "data": data}, "restore")
        if "error" in reply:
            raise REPLError(str(reply["error"]))
        return [str(n) for n in reply.get("value") or []]

    async def _control(self, frame: dict[str, Any], what: str) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(self._request(frame, "value"), CONTROL_TIMEOUT * 4)
        except TimeoutError:
            self._dead_reason = "the REPL worker did not answer"
            await self._kill()
            raise REPLError(f"the REPL worker did not answer a {what} request; it was stopped") from None


def _stronger(a: str, b: str) -> bool:
    order = ("none", "unshare", "bwrap")
    return order.index(a) > order.index(b)


def _describe_exit(rc: int | None) -> str:
    if rc is None:
        return "still running"
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


def _grow_pipe(fd: int) -> None:
    """Give the worker's stderr pipe 1 MiB instead of 64 KiB: a cell flooding fd 1 or 2 then costs
    one read per MiB on the host, not sixteen."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _STDERR_PIPE_BYTES)


class _StderrDrain:
    """Reads the worker's stderr (its fds 1 and 2) to the end on a thread of its own, keeping a short
    tail for crash reports and dropping the rest.

    A thread, not an asyncio reader: a cell that floods fd 1 with gigabytes must not cost the event
    loop a wake-up per 64 KiB, nor wait behind it (the raw flood case in scripts/adversarial.py).
    """

    def __init__(self, fd: int, *, name: str) -> None:
        self._fd = fd
        self._tail = bytearray()
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self._fd], [], [], 0.25)
                if not ready:
                    if self._stop.is_set():
                        break
                    continue
                chunk = os.read(self._fd, _STDERR_PIPE_BYTES)
                if not chunk:
                    break
                self._tail += chunk
                if len(self._tail) > 2 * _STDERR_TAIL:
                    del self._tail[:-_STDERR_TAIL]
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._closed.set()

    def text(self) -> str:
        return bytes(self._tail[-_STDERR_TAIL:]).decode("utf-8", "replace").strip()

    async def wait_closed(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the pipe's end (every writer gone)."""
        deadline = time.monotonic() + timeout
        while not self._closed.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        """Stop reading (a leftover writer that outlived the worker cannot keep the thread)."""
        self._stop.set()
