"""Start servers in their own process groups, read their cost from /proc, and always stop them.

Every server runs in a new session (so its workers, Apache children and mod_wsgi daemons share
one process group we can signal at once). A registry of live groups is emptied on normal exit,
on errors and on Ctrl-C/SIGTERM, so no benchmark leaves a server behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_LIVE: set[Server] = set()


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    pgrp: int
    reaped_ticks: int  # cutime + cstime: CPU of its children that exited and were reaped


def _read_stat(pid: int) -> ProcStat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone between listing and reading
        return None
    # The command name may hold spaces and parentheses: split after the last ")".
    fields = text[text.rindex(")") + 2 :].split()
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        pgrp=int(fields[2]),
        reaped_ticks=int(fields[13]) + int(fields[14]),
    )


def _all_stats() -> list[ProcStat]:
    stats = (_read_stat(int(name)) for name in os.listdir("/proc") if name.isdigit())
    return [s for s in stats if s is not None]


def tree(root: int) -> list[ProcStat]:
    """The root process and all its live descendants."""
    stats = _all_stats()
    children: dict[int, list[ProcStat]] = {}
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat)
    found = [s for s in stats if s.pid == root]
    index = 0
    while index < len(found):  # breadth-first; bounded by the process table
        found += children.get(found[index].pid, [])
        index += 1
    return found


def _run_ns(pid: int) -> int:
    """Nanoseconds on CPU of every live thread (schedstat): /proc/<pid>/stat counts in 10 ms
    ticks, too coarse for watchers that cost a few ms a second."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


def cpu_seconds(root: int) -> float:
    """CPU time of a process tree: its live threads, plus children already exited and reaped.

    Threads that exit during a measurement are lost; on an idle server none do.
    """
    members = tree(root)
    reaped = sum(s.reaped_ticks for s in members) / _CLOCK_TICKS
    return reaped + sum(_run_ns(s.pid) for s in members) / 1e9


def _status_kib(pid: int, path: str, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mib(pid: int) -> float | None:
    kib = _status_kib(pid, "status", "VmRSS:")
    return None if kib is None else kib / 1024


def pss_mib(pids: Iterable[int]) -> float:
    """Proportional set size: shared pages split between the processes that map them."""
    return sum(_status_kib(pid, "smaps_rollup", "Pss:") or 0 for pid in pids) / 1024


class Server:
    """A running server: its process group, and its merged output stamped on arrival.

    Stamps are taken with time.monotonic() when a line reaches us, so they compare directly
    with the client's clocks (the servers' own log timestamps have 1 s resolution in gunicorn).
    """

    def __init__(self, argv: Sequence[str], *, cwd: Path, env: dict[str, str], log: Path):
        self.argv = list(argv)
        self.lines: list[tuple[float, str]] = []
        self._log: IO[str] = log.open("w", encoding="utf-8", errors="replace")
        self._log.write(f"$ {' '.join(self.argv)}\n")
        self._log.flush()
        self._proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _LIVE.add(self)
        self.pid = self._proc.pid
        self._reader = threading.Thread(target=self._read, name=f"log-{self.pid}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:  # ends when every process holding the pipe is gone
            stamp = time.monotonic()
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append((stamp, line))
            self._log.write(f"{stamp:.4f} {line}\n")
            self._log.flush()

    def exited(self) -> int | None:
        return self._proc.poll()

    def finish_reading(self, timeout: float = 2.0) -> None:
        """Wait for the output of an exited server, so its last lines can be reported."""
        self._reader.join(timeout=timeout)

    def pids(self) -> list[int]:
        return [s.pid for s in tree(self.pid)]

    def tail(self, count: int = 15) -> str:
        return "\n".join(line for _, line in self.lines[-count:])

    def stop(self, grace: float = 5.0) -> None:
        """TERM the whole group, then KILL whatever is left (including strays that left it)."""
        if self not in _LIVE:
            return
        _LIVE.discard(self)
        members = self.pids()
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self._proc.poll() is None:
            time.sleep(0.02)
        _signal_group(self.pid, signal.SIGKILL)
        for pid in members:  # a child that moved to its own group is still ours
            stat = _read_stat(pid)
            if stat is not None and stat.pgrp != self.pid:
                _kill(pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=grace)
        self._reader.join(timeout=1.0)
        self._log.close()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def stop_all() -> None:
    for server in list(_LIVE):
        server.stop(grace=2.0)


def _interrupt(signum: int, frame: object) -> None:
    # Unwind like Ctrl-C, so the `finally` blocks stop the servers.
    raise KeyboardInterrupt


def install_cleanup() -> None:
    atexit.register(stop_all)
    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
