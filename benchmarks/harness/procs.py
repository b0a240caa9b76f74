"""Processes under test: start them pinned to a core, wait for their port, read CPU time and memory.

CPU time between two readings (:func:`cpu_between`) is the sum of every thread's time on a CPU
(``/proc/<pid>/task/<tid>/schedstat``, in nanoseconds). utime + stime (``/proc/<pid>/stat``) is in
clock ticks of 10 ms: over a phase of 1,000 requests that is +-10 us per request, as large as the
differences the benchmark looks for; it is kept as the fallback when a thread ended between the two
readings (its nanoseconds are gone with it; ``stat`` still counts them). Memory is the resident set
(``VmRSS``) and its peak (``VmHWM``) from ``/proc/<pid>/status`` (Linux only).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_s: float  # utime + stime, in clock ticks (whole process tree, ended threads included)
    rss_mb: float
    peak_rss_mb: float
    # Nanoseconds on a CPU per live thread ((pid, tid) -> ns), from schedstat; empty where unreadable.
    threads_ns: dict[tuple[int, int], int] = field(default_factory=dict)


def cpu_between(before: Usage, after: Usage) -> float:
    """CPU seconds spent between two readings of the same process tree: exact (schedstat), unless a
    thread ended meanwhile (one of ``before``'s is gone, or the ticks count more than two ticks
    beyond the exact sum: a thread started and ended in between), then the tick count."""
    ticks = after.cpu_s - before.cpu_s
    if not before.threads_ns or not after.threads_ns or any(t not in after.threads_ns for t in before.threads_ns):
        return ticks
    exact = sum(ns - before.threads_ns.get(t, 0) for t, ns in after.threads_ns.items()) / 1e9
    return ticks if ticks - exact > 2 / TICKS else exact


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pinned(argv: Sequence[str], core: int | None) -> list[str]:
    """``argv`` under ``taskset -c core`` when there is more than one core to choose from."""
    if core is None or (os.cpu_count() or 1) < 2 or not Path("/usr/bin/taskset").exists():
        return list(argv)
    return ["taskset", "-c", str(core), *argv]


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


@contextlib.contextmanager
def started(argv: Sequence[str], port: int, core: int | None, env: dict[str, str] | None = None,
            log: Path | None = None, timeout_s: float = 30.0) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` (pinned to ``core``) until the block ends; it must listen on ``port``."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(pinned(argv, core), stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})
    try:
        wait_port(port, proc, timeout_s)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def usage(pid: int) -> Usage:
    """CPU seconds so far and memory of ``pid`` and its descendants (a server may fork workers)."""
    cpu = rss = peak = 0.0
    threads: dict[tuple[int, int], int] = {}
    for p in _tree(pid):
        threads.update(_threads_ns(p))
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError:  # exited meanwhile
            continue
        cpu += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)
        status = dict(line.split(":", 1) for line in lines if ":" in line)
        rss += _mb(status.get("VmRSS"))
        peak += _mb(status.get("VmHWM"))
    return Usage(cpu, rss, peak, threads)


def _threads_ns(pid: int) -> dict[tuple[int, int], int]:
    out = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            out[(pid, int(stat.parent.name))] = int(stat.read_text().split()[0])
        except (OSError, ValueError, IndexError):  # the thread ended meanwhile
            continue
    return out


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children") if Path(f"/proc/{p}").exists() else ():
            todo += [int(c) for c in task.read_text().split()]
    return out


def _mb(value: str | None) -> float:
    return int(value.split()[0]) / 1024 if value else 0.0
