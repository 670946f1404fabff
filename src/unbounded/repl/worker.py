"""The REPL worker process: one per RLM, a persistent namespace, sub-calls sent back to the host.

Started by ``ProcessREPL`` as ``python -I -c ...`` (inside the sandbox of ``sandbox.py``). The protocol
runs on the pipes that arrived as stdin/stdout; they are moved to private descriptors at once, fd 0 is
pointed at /dev/null and fds 1/2 at the stderr pipe the host drains (it keeps only a short tail for
crash reports), so model code that writes to fd 1 or closes stdout cannot corrupt the protocol.

Before any model code runs the worker confines itself: a host running as root hands it ``--uid N`` and
it drops to that unprivileged uid (so ``RLIMIT_NPROC`` binds and root-only files are out of reach), sets
no-new-privileges, no core dumps, a file size cap and an OOM score that makes it the kernel's first
choice. A forked copy of the worker (model code calling ``os.fork``) may never speak the protocol.
Imports nothing from the engine.
"""

from __future__ import annotations

import ctypes
import faulthandler
import itertools
import json
import math
import os
import queue
import resource
import signal
import sys
import threading
import time

from .._lazy import TYPE_CHECKING
from .cell import CappedWriter, CellInterrupted, new_result, run_cell
from .namespace import SubCallError, build_namespace

if TYPE_CHECKING:
    from typing import Any
from .protocol import EXIT_DROP_UNUSABLE, FrameError, read_frame_fd, write_frame_fd
from .transfer import load_context_file

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38


class Worker:
    def __init__(self, proto_in: int, proto_out: int):
        self.pid = os.getpid()
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.write_lock = threading.Lock()
        self.pending: dict[int, list[Any]] = {}
        self.pending_lock = threading.Lock()
        # The cell's wall clock is paused while sub-calls wait on the host (see _pause_clock).
        self.clock_lock = threading.Lock()
        self.calls_waiting = 0
        self.clock_left = 0.0
        self.ids = itertools.count(1)
        self.inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.state = None
        self.in_cell = False
        self.cell_limit_msg = ""
        self.max_output_chars = 1_000_000
        self.cpu_seconds: float | None = None
        self.cell_timeout: float | None = None
        self.max_frame = 256 * 1024 * 1024

    # -- plumbing --------------------------------------------------------------------------
    def send(self, obj: dict[str, Any]) -> None:
        if os.getpid() != self.pid:
            # A copy made by os.fork in model code: it must not answer for the worker.
            raise SubCallError("sub-calls are not available in a forked process; use threads or llm_batch")
        with self.write_lock:
            write_frame_fd(self.proto_out, obj)

    def reader(self) -> None:
        try:
            while True:
                frame = read_frame_fd(self.proto_in, self.max_frame)
                if frame is None:
                    break
                if frame["op"] == "reply":
                    with self.pending_lock:
                        slot = self.pending.get(frame.get("id"))
                    if slot is not None:
                        slot[1] = frame
                        slot[0].set()
                else:
                    self.inbox.put(frame)
        except (FrameError, OSError):
            pass
        # The host is gone or broke the protocol: nothing left to serve.
        os._exit(0)

    def call(self, kind: str, payload: dict[str, Any]) -> Any:
        cid = next(self.ids)
        event = threading.Event()
        slot: list[Any] = [event, None]
        with self.pending_lock:
            self.pending[cid] = slot
        self._pause_clock()
        try:
            try:
                self.send({"op": "call", "id": cid, "kind": kind, "payload": payload})
            except TypeError as exc:
                raise SubCallError(f"{kind}: arguments must be plain data (str, list, dict, numbers): {exc}") from None
            event.wait()
        finally:
            self._resume_clock()
            with self.pending_lock:
                self.pending.pop(cid, None)
        reply = slot[1]
        if "error" in reply:
            raise SubCallError(str(reply["error"]))
        return reply.get("value")

    # -- limits ----------------------------------------------------------------------------
    def _pause_clock(self) -> None:
        """Stop the cell's wall clock while it waits for the host: a cell's time limit is for its own
        code; model calls have the run's budget (calls, tokens, seconds)."""
        with self.clock_lock:
            if self.calls_waiting == 0 and self.in_cell:
                self.clock_left = signal.setitimer(signal.ITIMER_REAL, 0)[0]
            self.calls_waiting += 1

    def _resume_clock(self) -> None:
        with self.clock_lock:
            self.calls_waiting -= 1
            if self.calls_waiting == 0 and self.in_cell and self.clock_left > 0:
                signal.setitimer(signal.ITIMER_REAL, self.clock_left)
                self.clock_left = 0.0

    def _on_limit(self, signum: int, frame: Any) -> None:
        if not self.in_cell:
            return
        if signum == signal.SIGXCPU:
            raise CellInterrupted(f"cell used more than its CPU limit of {self.cpu_seconds:g}s and was stopped")
        raise CellInterrupted(
            f"cell ran past its time limit of {self.cell_timeout:g}s and was stopped; variables defined so far are kept"
        )

    def _arm(self) -> None:
        if self.cell_timeout:
            signal.setitimer(signal.ITIMER_REAL, self.cell_timeout)
        if self.cpu_seconds:
            ru = resource.getrusage(resource.RUSAGE_SELF)
            used = ru.ru_utime + ru.ru_stime
            _, hard = resource.getrlimit(resource.RLIMIT_CPU)
            soft = math.ceil(used + self.cpu_seconds)
            if hard != resource.RLIM_INFINITY:
                soft = min(soft, hard)
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))

    def _disarm(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if self.cpu_seconds:
            _, hard = resource.getrlimit(resource.RLIMIT_CPU)
            resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))

    # -- ops -------------------------------------------------------------------------------
    def init(self, frame: dict[str, Any]) -> None:
        started = time.perf_counter()
        context = load_context_file(frame["context_path"], frame["context_format"])
        tools = {str(t["name"]): str(t.get("doc", "")) for t in frame.get("tools", [])}
        self.state = build_namespace(context, self.call, tools, sub_calls=bool(frame.get("sub_calls", True)))
        del context
        limits = frame.get("limits", {})
        self.max_output_chars = int(limits.get("max_output_chars") or self.max_output_chars)
        self.cell_timeout = limits.get("cell_timeout")
        self.cpu_seconds = limits.get("cpu_seconds")
        signal.signal(signal.SIGALRM, self._on_limit)
        signal.signal(signal.SIGXCPU, self._on_limit)
        headroom = limits.get("memory_bytes")
        if headroom:
            set_memory_limit(int(headroom))
        nproc = limits.get("max_processes")
        nproc_set = False
        if nproc:
            try:
                resource.setrlimit(resource.RLIMIT_NPROC, (int(nproc), int(nproc)))
                nproc_set = True
            except (ValueError, OSError):
                pass
        fsize = limits.get("max_file_bytes")
        if fsize:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails with EFBIG instead
            try:
                resource.setrlimit(resource.RLIMIT_FSIZE, (int(fsize), int(fsize)))
            except (ValueError, OSError):
                pass
        self.send(
            {
                "op": "ready",
                "pid": os.getpid(),
                "uid": os.getuid(),
                "nproc_set": nproc_set,
                "load_seconds": time.perf_counter() - started,
            }
        )

    def exec(self, frame: dict[str, Any]) -> None:
        out = CappedWriter(self.max_output_chars)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        result: dict[str, Any]
        try:
            self.in_cell = True
            self._arm()
            result = run_cell(self.state, frame["code"], f"<cell-{frame.get('id')}>", out)
        except CellInterrupted as exc:  # landed outside the cell's own try
            result = new_result(error=str(exc), timed_out=True)
        finally:
            if os.getpid() != self.pid:
                os._exit(0)  # a process forked by the cell ran off its end: it has nothing to report
            self.in_cell = False
            self._disarm()
            sys.stdout, sys.stderr = saved
        result["stdout"] = out.getvalue()
        result["stdout_total"] = out.total
        self.send({"op": "result", "id": frame.get("id"), **result})

    def get(self, frame: dict[str, Any]) -> None:
        name = frame.get("name", "")
        ns = self.state.namespace
        if name not in ns:
            self.send({"op": "value", "id": frame.get("id"), "error": f"no variable named {name!r}"})
            return
        value = ns[name]
        try:
            json.dumps(value)
            self.send({"op": "value", "id": frame.get("id"), "value": value})
        except (TypeError, ValueError):
            self.send({"op": "value", "id": frame.get("id"), "repr": _safe_repr(value)})

    def set(self, frame: dict[str, Any]) -> None:
        self.state.namespace[frame["name"]] = frame.get("value")
        self.send({"op": "value", "id": frame.get("id"), "value": None})

    def dump(self, frame: dict[str, Any]) -> None:
        from .snapshot import dump_namespace

        self.send({"op": "value", "id": frame.get("id"), "value": dump_namespace(self.state)})

    def load(self, frame: dict[str, Any]) -> None:
        from .snapshot import load_namespace

        try:
            names = load_namespace(self.state, str(frame.get("data", "")))
        except Exception as exc:  # a damaged or foreign snapshot: say so, keep the namespace
            self.send({"op": "value", "id": frame.get("id"), "error": f"cannot restore the variables: {exc}"})
            return
        self.send({"op": "value", "id": frame.get("id"), "value": names})

    def serve(self) -> None:
        threading.Thread(target=self.reader, name="unbounded-reader", daemon=True).start()
        while True:
            try:
                frame = self.inbox.get()
                if frame is None:
                    return
                op = frame["op"]
                if op == "init":
                    try:
                        self.init(frame)
                    except BaseException as exc:  # report, then exit: the host decides what to do
                        self.send({"op": "init_error", "error": f"{type(exc).__name__}: {exc}"})
                        return
                elif op == "exec":
                    self.exec(frame)
                elif op == "get":
                    self.get(frame)
                elif op == "set":
                    self.set(frame)
                elif op == "dump":
                    self.dump(frame)
                elif op == "load":
                    self.load(frame)
                elif op == "close":
                    return
            except (KeyboardInterrupt, CellInterrupted):
                continue


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<unprintable {type(value).__name__}: {exc!r}>"


def set_memory_limit(headroom: int) -> None:
    """Cap the address space at what is mapped now (interpreter + context) plus ``headroom``."""
    try:
        with open("/proc/self/status") as fh:
            vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    except (OSError, StopIteration):
        vm = 0
    limit = vm + headroom
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError):
        pass


def _prctl(option: int, arg: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0
    except (OSError, AttributeError):
        return False


def confine(uid: int | None, subreaper: bool, pkg_parent: str) -> None:
    """Lower the worker's privileges before it loads the context or runs model code.

    Exits with ``EXIT_DROP_UNUSABLE`` if, after dropping to ``uid``, the interpreter's own library or
    the package can no longer be read: the host then starts it again without the drop.
    """
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write("1000")  # under memory pressure the kernel kills model code, not the host
    except OSError:
        pass
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if uid is not None:
        # Listed while still privileged: after the drop an unreadable dir would just look absent.
        needed = [p for p in sys.path if p and os.path.isdir(p)] + [pkg_parent, os.getcwd()]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        _prctl(_PR_SET_DUMPABLE, 1)  # keep /proc/self readable to the worker after the uid change
        for p in needed:
            if not os.access(p, os.R_OK | os.X_OK):
                os.write(2, f"worker: {p} is not readable after dropping to uid {uid}\n".encode())
                os._exit(EXIT_DROP_UNUSABLE)
    if subreaper:
        # No pid namespace: orphans of model code re-parent to the worker, where the host finds them,
        # and the worker dies with the host. (Set after the uid change, which clears the death signal.)
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)


def main() -> None:
    args = sys.argv[2:]
    uid = int(args[args.index("--uid") + 1]) if "--uid" in args else None
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stray writes to fd 1 land in the stderr pipe, never in the protocol
    os.close(devnull)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    confine(uid, "--subreaper" in args, sys.argv[1] if len(sys.argv) > 1 else "")
    faulthandler.enable(file=sys.__stderr__ or sys.stderr)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    Worker(proto_in, proto_out).serve()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
