"""The REPL worker process: one per RLM, a persistent namespace, sub-calls sent back to the host.

Started by ``ProcessREPL`` as ``python -I -c ...``. The protocol runs on the pipes that arrived as
stdin/stdout; they are moved to private descriptors at once and fds 0/1/2 are pointed at
/dev/null and a log file, so model code that writes to fd 1 or closes stdout cannot corrupt the
protocol. Imports nothing from the engine.
"""

from __future__ import annotations

import itertools
import json
import math
import mmap
import os
import queue
import resource
import signal
import sys
import threading
import time
from typing import Any

from .cell import CappedWriter, CellInterrupted, CellResult, run_cell
from .namespace import SubCallError, ToolSpec, build_namespace
from .protocol import FrameError, read_frame_fd, write_frame_fd


class Worker:
    def __init__(self, proto_in: int, proto_out: int):
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.write_lock = threading.Lock()
        self.pending: dict[int, list[Any]] = {}
        self.pending_lock = threading.Lock()
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
        try:
            try:
                self.send({"op": "call", "id": cid, "kind": kind, "payload": payload})
            except TypeError as exc:
                raise SubCallError(f"{kind}: arguments must be plain data (str, list, dict, numbers): {exc}") from None
            event.wait()
        finally:
            with self.pending_lock:
                self.pending.pop(cid, None)
        reply = slot[1]
        if "error" in reply:
            raise SubCallError(str(reply["error"]))
        return reply.get("value")

    # -- limits ----------------------------------------------------------------------------
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
        tools = [ToolSpec(**t) for t in frame.get("tools", [])]
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
        if nproc:
            try:
                resource.setrlimit(resource.RLIMIT_NPROC, (int(nproc), int(nproc)))
            except (ValueError, OSError):
                pass
        self.send({"op": "ready", "pid": os.getpid(), "load_seconds": time.perf_counter() - started})

    def exec(self, frame: dict[str, Any]) -> None:
        out = CappedWriter(self.max_output_chars)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        result: CellResult
        try:
            self.in_cell = True
            self._arm()
            result = run_cell(self.state, frame["code"], f"<cell-{frame.get('id')}>", out)
        except CellInterrupted as exc:  # landed outside the cell's own try
            result = CellResult(error=str(exc), timed_out=True)
        finally:
            self.in_cell = False
            self._disarm()
            sys.stdout, sys.stderr = saved
        result.stdout = out.getvalue()
        result.stdout_total = out.total
        self.send({"op": "result", "id": frame.get("id"), **result.to_dict()})

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
                elif op == "close":
                    return
            except (KeyboardInterrupt, CellInterrupted):
                continue


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<unprintable {type(value).__name__}: {exc!r}>"


def load_context_file(path: str, fmt: str) -> Any:
    """Load the context the host wrote once: text via mmap (no extra bytes copy), or JSON / pickle."""
    if fmt == "ascii":
        loaded = _load_ascii(path)
        if loaded is not None:
            return loaded
        fmt = "text"
    if fmt == "text":
        size = os.path.getsize(path)
        if size == 0:
            return ""
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return str(mm, "utf-8", "surrogatepass")
    if fmt == "json":
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    if fmt == "pickle":
        import pickle

        with open(path, "rb") as fh:
            return pickle.load(fh)
    raise ValueError(f"unknown context format {fmt!r}")


_READ_CHUNK = 1024 * 1024


def _load_ascii(path: str) -> str | None:
    """Read an ASCII file straight into a new str's buffer: peak memory is the text plus nothing.

    CPython stores an ASCII str as a header followed by one byte per character, so we allocate an
    uninitialised str of the right length (``PyUnicode_New``) and ``readinto`` its buffer. A regular
    decode would hold the bytes and the str at once (twice the size). Returns None (and the caller
    decodes normally) on another interpreter or if a non-ASCII byte turns up.
    """
    if sys.implementation.name != "cpython":
        return None
    import ctypes

    size = os.path.getsize(path)
    if size == 0:
        return ""
    new = ctypes.pythonapi.PyUnicode_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_ssize_t, ctypes.c_uint32]
    text = new(size, 127)
    offset = sys.getsizeof("") - 1  # header size of a compact ASCII str
    view = memoryview((ctypes.c_char * size).from_address(id(text) + offset)).cast("B")
    with open(path, "rb", buffering=0) as fh:
        pos = 0
        while pos < size:
            n = fh.readinto(view[pos : min(pos + _READ_CHUNK, size)])
            if not n:
                return None
            if not view[pos : pos + n].tobytes().isascii():
                return None
            pos += n
    view.release()
    return text


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


def main() -> None:
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    log = os.open("worker.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(devnull)
    os.close(log)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    signal.signal(signal.SIGINT, signal.default_int_handler)
    Worker(proto_in, proto_out).serve()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
