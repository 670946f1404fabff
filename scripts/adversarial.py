#!/usr/bin/env python3
"""Run the adversarial suite against each REPL mode and print the table for docs/security.md.

    .venv/bin/python scripts/adversarial.py                  # all attacks, all modes
    .venv/bin/python scripts/adversarial.py --modes process,inprocess --markdown
    .venv/bin/python scripts/adversarial.py --only fork_bomb,loopback_socket

Every (attack, mode) runs in a fresh host process, so an attack that kills its host shows up as
"host alive: no" instead of ending the script. Columns: contained (the attack's own check), host alive,
processes left (found by marker, worker uid or temp dir after the host is gone), trace whole
(run_start … run_end, parents resolve, every start ended). Attacks that would harm this machine in a
mode (a fork bomb with no process cap, kill(-1) as root with no namespace) are not run there.
The cases live in tests/adversarial_cases.py.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from adversarial_cases import (  # noqa: E402
    ATTACKS,
    BY_NAME,
    MODES,
    capabilities,
    expected,
    kill_leftovers,
    leftovers,
    new_marker,
    run_attack,
    trace_problems,
    verdict,
)
from unbounded.trace import read_trace  # noqa: E402


def run_one(name: str, mode: str, base: Path) -> int:
    """Child side: run one attack in this (disposable) host and print its verdict as JSON."""
    attack = BY_NAME[name]
    outcome = run_attack(attack, mode, base)
    row = verdict(attack, outcome)
    row["leftovers"] = outcome.leftovers
    row["sandbox"] = outcome.sandbox
    print(json.dumps(row))
    return 0


def run_in_host(name: str, mode: str, timeout: float) -> dict[str, object]:
    """Parent side: one attack in a fresh host process; judge what is left after it."""
    base = Path(tempfile.mkdtemp(prefix="unbounded-adv-"))
    marker, secret = new_marker(), "SECRET-" + secrets.token_hex(8)
    env = {**os.environ, "UNBOUNDED_ATTACK_MARKER": marker, "UNBOUNDED_ATTACK_SECRET": secret}
    cmd = [sys.executable, __file__, "--one", name, "--mode", mode, "--base", str(base)]
    started = time.perf_counter()
    # Files, not pipes: a process the attack leaves behind may hold them open for an hour.
    with open(base / "host.out", "w+") as fout, open(base / "host.err", "w+") as ferr:
        proc = subprocess.Popen(cmd, stdout=fout, stderr=ferr, text=True, env=env, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read(), ferr.read()
    row: dict[str, object] = {}
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if lines:
        row = json.loads(lines[-1])
    alive = proc.returncode == 0 and bool(row)
    left = leftovers(marker, base / "repl-tmp", proc.pid)
    trace = base / "trace.jsonl"
    problems = trace_problems(read_trace(trace)) if trace.exists() else ["no trace"]
    kill_leftovers(left)
    shutil.rmtree(base, ignore_errors=True)
    return {
        "attack": name,
        "mode": mode,
        "contained": bool(row.get("contained")) and alive,
        "host_alive": alive,
        "processes_left": len(left),
        "trace_whole": not problems,
        "status": row.get("status") or f"host exit {proc.returncode}",
        "note": "" if alive else (err.strip().splitlines() or ["?"])[-1][:120],
        "seconds": round(time.perf_counter() - started, 1),
    }


def mode_label(mode: str) -> str:
    """``process`` (auto: what it picked here), ``process, sandbox=unshare``, ``inprocess``."""
    if mode == "inprocess":
        return "inprocess"
    if ":" in mode:
        return f"process, sandbox={mode.split(':', 1)[1]}"
    desc = next((c[8:] for c in capabilities(mode) if c.startswith("sandbox:")), "")
    return f"process (auto: {desc.split(',')[0]})" if desc else mode


def yes(flag: object) -> str:
    return "yes" if flag else "**no**"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from {', '.join(MODES)}")
    ap.add_argument("--only", default="", help="comma-separated attack names")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per attack")
    ap.add_argument("--from-json", help="render rows saved earlier with --json instead of running")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        return run_one(args.one, args.mode, Path(args.base))

    modes = [m for m in args.modes.split(",") if m]
    attacks = [BY_NAME[n] for n in args.only.split(",") if n] or list(ATTACKS)
    rows: list[dict[str, object]] = []
    if args.from_json:
        rows = json.loads(Path(args.from_json).read_text())
        modes = [m for m in modes if any(r["mode"] == m for r in rows)]
        print(markdown(rows, modes) if args.markdown else plain(rows))
        return 0
    for mode in modes:
        label = mode_label(mode)
        print(f"# {label}", file=sys.stderr)
        for attack in attacks:
            want = expected(attack, mode, disposable_host=True)
            if isinstance(want, str):
                row: dict[str, object] = {
                    "attack": attack.name,
                    "mode": mode,
                    "contained": None,
                    "note": want.removeprefix("not run: "),
                }
            else:
                row = run_in_host(attack.name, mode, args.timeout)
                row["expected"] = want
            row["label"] = label
            row["title"] = attack.title
            rows.append(row)
            print(f"  {attack.name:<28} {_short(row)}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.markdown:
        print(markdown(rows, modes))
    else:
        print(plain(rows))
    bad = [r for r in rows if r.get("contained") is not None and r.get("expected") and not _clean(r)]
    return 1 if bad else 0


def _clean(r: dict[str, object]) -> bool:
    return bool(r["contained"] and r["host_alive"] and r["processes_left"] == 0 and r["trace_whole"])


def _short(r: dict[str, object]) -> str:
    if r.get("contained") is None:
        return f"not run ({r['note']})"
    return (
        f"contained={yes(r['contained'])} host_alive={yes(r['host_alive'])} left={r['processes_left']} "
        f"trace={yes(r['trace_whole'])} [{r['status']}] {r.get('seconds')}s"
    )


def plain(rows: list[dict[str, object]]) -> str:
    out = [f"{'attack':<44} {'mode':<28} {'contained':<10} {'host alive':<10} {'left':<5} {'trace whole':<11}"]
    for r in rows:
        if r.get("contained") is None:
            out.append(f"{r['title']!s:<44} {r['label']!s:<28} not run: {r['note']}")
            continue
        out.append(
            f"{r['title']!s:<44} {r['label']!s:<28} {'yes' if r['contained'] else 'NO':<10} "
            f"{'yes' if r['host_alive'] else 'NO':<10} {r['processes_left']!s:<5} {'yes' if r['trace_whole'] else 'NO':<11}"
        )
    return "\n".join(out)


def markdown(rows: list[dict[str, object]], modes: list[str]) -> str:
    """One row per attack, one column per mode: contained · host alive · processes left · trace whole."""
    labels = {r["mode"]: r["label"] if r["mode"] == "process" else mode_label(str(r["mode"])) for r in rows}
    cols = [m for m in modes if m in labels]
    out = ["| attack | " + " | ".join(str(labels[m]) for m in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    by_key = {(r["attack"], r["mode"]): r for r in rows}
    for name in dict.fromkeys(str(r["attack"]) for r in rows):
        cells = []
        for m in cols:
            r = by_key.get((name, m))
            if r is None:
                cells.append("")
            elif r.get("contained") is None:
                cells.append(f"not run ({r['note']})")
            else:
                cells.append(
                    f"{yes(r['contained'])} · {'alive' if r['host_alive'] else '**died**'} · "
                    f"{r['processes_left']} · {'whole' if r['trace_whole'] else '**cut**'}"
                )
        title = next(str(r["title"]) for r in rows if r["attack"] == name)
        out.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
