"""Confining the REPL worker with what Linux offers, no Docker: bubblewrap, util-linux ``unshare``, or nothing.

``Limits.sandbox`` picks a mode; ``"auto"`` (the default) takes the strongest that works on this machine and
falls back, with a loud warning, when the OS refuses one:

``bwrap``
    A fresh mount, PID, IPC, UTS and (unless ``allow_network``) network namespace built by bubblewrap. The
    worker sees a root of its own: ``/usr`` and the lib/bin links read-only, a short allow-list of ``/etc``
    files, the Python install, the package and the context read-only, its working dir read-write, and small
    private tmpfs mounts on ``/tmp`` and ``/dev/shm``. ``/root``, ``/home``, other users' files and the
    host's ``/proc`` do not exist in there.
``unshare``
    New PID, mount (for a private ``/proc``), IPC, UTS and network namespaces from util-linux ``unshare``.
    The file system is the host's, guarded only by Unix permissions.
``none``
    A plain child process in its own session. Nothing but permissions and rlimits.

In every mode, a host running as root starts the worker as root and the worker drops to a fresh,
unprivileged uid (one per worker) before it reads any model code, so ``RLIMIT_NPROC`` binds (the kernel
exempts root from it), root-only files are out of reach, and workers cannot signal each other. Where
the Python install or the package is not readable by such a uid (say, a pyenv under ``/root``) and
the mode gives no private view of the file system, the worker keeps root inside its namespaces and
the process limit is reported as not enforced.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MODES = ("auto", "bwrap", "unshare", "none")
#: Size of the private tmpfs on /tmp and /dev/shm under bwrap (they live in host memory).
TMPFS_BYTES = 64 * 1024 * 1024

_UID_BASE = 1_900_000_000  # above systemd's container range; never a real account
_uid_counter = itertools.count()
_ETC = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "gai.conf",
    "group",
    "host.conf",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "passwd",
    "pki",
    "protocols",
    "resolv.conf",
    "services",
    "ssl",
    "timezone",
)
_SYSTEM_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

_lock = threading.Lock()
_broken: dict[str, str] = {}  # mode -> why it failed here (per host process)
_no_drop: set[tuple[str, str]] = set()  # (mode, python) where the uid drop left the worker unable to run
_warned: set[str] = set()
_prefix_cache: dict[str, tuple[str, ...]] = {}


@dataclass(frozen=True, slots=True)
class Plan:
    """How to start one worker: the argv in front of ``python``, the uid to drop to, what it confines."""

    mode: str
    prefix: tuple[str, ...]
    drop_uid: int | None
    network: bool
    private_fs: bool
    private_pids: bool
    warnings: tuple[str, ...] = field(default=())

    def worker_args(self) -> list[str]:
        args = []
        if self.drop_uid is not None:
            args += ["--uid", str(self.drop_uid)]
        if not self.private_pids:
            args.append("--subreaper")
        return args

    def describe(self) -> str:
        bits = [self.mode]
        bits.append("network allowed" if self.network else "no network")
        bits.append("private file system" if self.private_fs else "host file system (permissions only)")
        bits.append("private pid namespace" if self.private_pids else "host pid namespace")
        if self.drop_uid is not None:
            bits.append("drops to a private uid")
        return ", ".join(bits)


def is_root() -> bool:
    return os.geteuid() == 0


def candidates(requested: str) -> list[str]:
    """Modes to try in order for ``Limits.sandbox`` (an explicit mode is tried alone)."""
    if requested not in MODES:
        raise ValueError(f"Limits.sandbox must be one of {', '.join(MODES)}, not {requested!r}")
    if requested != "auto":
        return [requested]
    with _lock:
        return [m for m in ("bwrap", "unshare", "none") if m not in _broken]


def mark_broken(mode: str, reason: str) -> None:
    """Remember that ``mode`` cannot start a worker here, so later REPLs skip it."""
    with _lock:
        _broken.setdefault(mode, reason)


def broken_reason(mode: str) -> str | None:
    with _lock:
        return _broken.get(mode)


def mark_no_drop(mode: str, python: str) -> None:
    with _lock:
        _no_drop.add((mode, python))


def warn_once(message: str) -> None:
    """Print a sandbox warning on stderr once per host process (the trace gets it for every REPL)."""
    with _lock:
        if message in _warned:
            return
        _warned.add(message)
    print(f"unbounded: WARNING: {message}", file=sys.stderr, flush=True)


def tool_path(mode: str) -> str | None:
    if mode == "none":
        return ""
    return which("bwrap" if mode == "bwrap" else "unshare")


def which(name: str) -> str | None:
    """The executable ``name`` on ``PATH``, like ``shutil.which``.

    Not ``shutil`` itself: it imports bz2, lzma and zlib, ~1 MB of resident memory in every host
    process that starts a REPL, which counts against the context-size memory target.
    """
    for folder in os.get_exec_path():
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def plan(
    mode: str,
    *,
    python: str,
    pkg_parent: str,
    ctx_dir: Path,
    work_dir: Path,
    allow_network: bool,
) -> Plan:
    """The plan for ``mode``. Raises ``LookupError`` when its tool is not installed."""
    tool = tool_path(mode)
    if tool is None:
        raise LookupError(f"{'bwrap (bubblewrap)' if mode == 'bwrap' else 'unshare (util-linux)'} is not installed")
    root = is_root()
    drop: int | None = None
    if root and (mode, python) not in _no_drop:
        drop = _UID_BASE + ((os.getpid() & 0xFFFF) << 12) + (next(_uid_counter) & 0xFFF)
    warnings: list[str] = []
    if mode == "bwrap":
        prefix = _bwrap_argv(tool, python, pkg_parent, ctx_dir, work_dir, allow_network, root, drop is not None)
        return Plan(mode, tuple(prefix), drop, allow_network, True, True, tuple(warnings))
    if mode == "unshare":
        prefix = [tool, "--fork", "--kill-child", "--pid", "--mount-proc", "--ipc", "--uts"]
        if not allow_network:
            prefix.append("--net")
        if not root:
            prefix += ["--user", "--map-root-user"]
        return Plan(mode, tuple(prefix), drop, allow_network, False, True, tuple(warnings))
    if not allow_network:
        warnings.append(
            "the REPL worker runs without a sandbox (no bwrap or unshare usable here): model code can reach "
            "the network and the host's file system is guarded only by Unix permissions; install bubblewrap"
        )
    return Plan("none", (), drop, True, False, False, tuple(warnings))


# -- bubblewrap ----------------------------------------------------------------------------------


def _bwrap_argv(
    tool: str,
    python: str,
    pkg_parent: str,
    ctx_dir: Path,
    work_dir: Path,
    allow_network: bool,
    root: bool,
    drop: bool,
) -> list[str]:
    a = [tool, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    a += ["--unshare-cgroup-try", "--hostname", "sandbox"]
    if not allow_network:
        a.append("--unshare-net")
    if not root:
        a.append("--unshare-user")  # unprivileged bwrap works through a user namespace
    a += ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_LINKS:
        p = "/" + name
        if os.path.islink(p):
            a += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            a += ["--ro-bind", p, p]
    a += ["--perms", "0755", "--dir", "/etc"]  # bwrap would create it 0700: unreadable after the uid drop
    for name in _ETC:
        a += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    a += ["--proc", "/proc", "--dev", "/dev"]
    a += ["--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]
    a += ["--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", "/dev/shm"]
    present = {"/", "/usr", "/etc", "/proc", "/dev", "/tmp", "/dev/shm"} | {"/" + n for n in _SYSTEM_LINKS}
    ro = minimal_cover([*python_paths(python), pkg_parent, str(ctx_dir)], covered=("/usr",))
    for path in ro:
        a += _mkdirs(path, present)
        a += ["--ro-bind", path, path]
    a += _mkdirs(str(work_dir), present)
    a += ["--bind", str(work_dir), str(work_dir), "--chdir", str(work_dir)]
    if drop:
        a += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]  # for the worker's own drop, then gone
    a.append("--")
    return a


def _mkdirs(path: str, present: set[str]) -> list[str]:
    """``--dir`` for each missing ancestor of ``path`` (mode 0755: bwrap would make them 0700)."""
    out: list[str] = []
    parts = Path(path).parts
    for i in range(2, len(parts)):
        anc = str(Path(*parts[:i]))
        if anc in present:
            continue
        present.add(anc)
        out += ["--perms", "0755", "--dir", anc]
    present.add(path)
    return out


def minimal_cover(paths: Iterable[str], covered: Iterable[str] = ()) -> list[str]:
    """Absolute, existing, de-duplicated paths with none inside another (or inside ``covered``)."""
    real = sorted({os.path.realpath(p) for p in paths if p and os.path.exists(p)})
    out: list[str] = []
    roots = [c.rstrip("/") + "/" for c in covered]
    for p in real:
        if any((p + "/").startswith(r) for r in roots):
            continue
        if out and (p + "/").startswith(out[-1].rstrip("/") + "/"):
            continue
        out.append(p)
    return out


def python_paths(python: str) -> tuple[str, ...]:
    """The directories an interpreter needs: its prefixes (venv and base) and its real executable's dir."""
    with _lock:
        cached = _prefix_cache.get(python)
    if cached is not None:
        return cached
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        found = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    else:
        code = "import sys; print('\\n'.join([sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]))"
        try:
            out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=30, check=True)
            found = out.stdout.split("\n")
        except (OSError, subprocess.SubprocessError):
            found = []
    found.append(os.path.dirname(os.path.realpath(python)))
    found.append(os.path.dirname(os.path.abspath(python)))
    result = tuple(p for p in found if p)
    with _lock:
        _prefix_cache[python] = result
    return result


# -- processes, read from /proc --------------------------------------------------------------


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def ppid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def only_child(pid: int) -> int | None:
    """The one child of ``pid`` (the sandbox's init), or None."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = [int(k) for k in fh.read().split()]
    except (OSError, ValueError):
        kids = [int(e) for e in os.listdir("/proc") if e.isdigit() and ppid(int(e)) == pid]
    return kids[0] if len(kids) == 1 else None


def _processes() -> dict[int, tuple[int, int, int | None]]:
    """pid -> (ppid, pgid, real uid) for every live, non-zombie process."""
    out: dict[int, tuple[int, int, int | None]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        if not fields or fields[0] in ("Z", "X"):
            continue
        uid = None
        try:
            with open(f"/proc/{entry}/status") as fh:
                for line in fh:
                    if line.startswith("Uid:"):
                        uid = int(line.split()[1])
                        break
        except OSError:
            continue
        out[int(entry)] = (int(fields[1]), int(fields[2]), uid)
    return out


def kill_tree(root_pid: int | None, uid: int | None) -> None:
    """Without a pid namespace: freeze, then kill, the worker (``root_pid``), its descendants (it is their
    subreaper, so orphans stay in its tree), its process group and every process of its private ``uid``.
    Frozen processes cannot fork, so the search reaches a fixed point."""
    if not os.path.isdir("/proc"):
        if root_pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(root_pid, signal.SIGKILL)
        return
    me = os.getpid()
    stopped: set[int] = set()
    if root_pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(root_pid, signal.SIGSTOP)
            stopped.add(root_pid)
    for _ in range(100):
        procs = _processes()
        found: set[int] = set()
        if uid is not None and uid != 0:
            found |= {p for p, (_, _, u) in procs.items() if u == uid}
        if root_pid is not None:
            children: dict[int, list[int]] = {}
            for p, (pp, pg, _) in procs.items():
                children.setdefault(pp, []).append(p)
                if pg == root_pid:
                    found.add(p)
            stack = [root_pid, *found]
            while stack:
                for kid in children.get(stack.pop(), []):
                    if kid not in found:
                        found.add(kid)
                        stack.append(kid)
        new = found - stopped - {me}
        if not new:
            break
        for p in new:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGSTOP)
        stopped |= new
    for p in stopped:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)
