"""Shared harness for end-to-end tests that run real servers (gunicorn, Apache, nginx...).

Everything here is server-agnostic:

* ``free_port()``: a free TCP port on 127.0.0.1.
* ``wait_until(predicate, ...)``: poll with a deadline; the only way tests synchronise.
* ``Server``: a process (group) whose stdout+stderr go through a *pipe* into a log file,
  stopped with SIGTERM, then SIGKILL, and checked to leave nothing behind.
* ``get()``, ``try_get()``, ``wait_for_body()``: small HTTP client on http.client (no proxy
  environment variables are honoured, which matters on CI machines).
* File edits the way editors and tools do them: ``edit``, ``write``, ``atomic_save``,
  ``save_older``, ``delete``; ``copy_project``; ``write_mo`` (a .mo file without msgfmt).
* ``/proc`` helpers: ``children``, ``group_members``, ``group_zombies``, ``fd_count``,
  ``thread_names``.

Deadlines are generous (``DEFAULT_TIMEOUT``, override with env RELOADER_TEST_TIMEOUT) since
the test machines are shared and slow; a passing test never waits for them.
"""

from __future__ import annotations

import bisect
import contextlib
import http.client
import itertools
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from benchmarks.live_reload import STREAM_OPENED, make_live

T = TypeVar("T")

DEFAULT_TIMEOUT = float(os.environ.get("RELOADER_TEST_TIMEOUT", "60"))
# Time to conclude that something did *not* happen (no restart...). A reload takes well
# under a second here, so a few seconds of silence is a meaningful negative.
QUIET_PERIOD = float(os.environ.get("RELOADER_TEST_QUIET", "3"))

ERROR_ID_RE = re.compile(r"\b[0-9a-f]{8}\b")


class GiveUp(Exception):
    """Raised by a wait_until predicate to stop waiting at once (e.g. the server died)."""


# --------------------------------------------------------------------------- waiting


def wait_until(
    predicate: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    Exceptions raised by the predicate count as "not yet"; the last one (or the last falsy
    value) is quoted in the AssertionError raised at the deadline. ``message`` may be a
    callable so that expensive context (a server log) is only built on failure.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except GiveUp as exc:
            text = message() if callable(message) else message
            raise AssertionError(f"gave up waiting for {text}: {exc}") from None
        except Exception as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {text}; last: {last!r}"
            )
        time.sleep(interval)


# --------------------------------------------------------------------------- network


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: str
    redirects: int = 0
    """The 307s and 308s followed to get it."""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


REDIRECTS = 5
"""How many times ``get`` asks again where a 307 or 308 says (a browser allows 20)."""


def get(url: str, headers: Mapping[str, str] | None = None, timeout: float = 30.0) -> Response:
    """GET ``url`` on a fresh connection (so requests spread over workers); raise on errors.
    A ``307`` or ``308`` is followed on a new connection, as browsers and HTTP libraries do
    (a worker that learns its code is old sends what it took since to ask again); the answer
    says how many were (``redirects``)."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    for redirects in range(REDIRECTS + 1):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        try:
            conn.request("GET", target, headers={"Connection": "close", **(headers or {})})
            resp = conn.getresponse()
            body = resp.read().decode("utf-8", "replace")
        finally:
            conn.close()
        location = resp.getheader("Location")
        if resp.status not in (307, 308) or not location or redirects == REDIRECTS:
            break
        target = location
    lowered = {k.lower(): v for k, v in resp.getheaders()}
    return Response(resp.status, lowered, body, redirects)


def try_get(
    url: str, headers: Mapping[str, str] | None = None, timeout: float = 30.0
) -> Response | None:
    """Like ``get`` but None on connection errors, for polling a server that is starting."""
    try:
        return get(url, headers=headers, timeout=timeout)
    except (OSError, http.client.HTTPException):
        return None


def wait_for_body(
    url: str,
    contains: str,
    timeout: float = DEFAULT_TIMEOUT,
    headers: Mapping[str, str] | None = None,
    status: int | None = None,
) -> Response:
    """Poll ``url`` until the body contains ``contains`` (and the status is ``status``)."""
    seen: list[str] = []

    def check() -> Response | None:
        resp = try_get(url, headers=headers)
        if resp is None:
            return None
        seen[:] = [f"{resp.status} {resp.body[:300]!r}"]
        ok = contains in resp.body and (status is None or resp.status == status)
        return resp if ok else None

    return wait_until(
        check, timeout, interval=0.1, message=lambda: f"{contains!r} at {url} (last: {seen})"
    )


class EventStream:
    """An open response read line by line in a thread, as a browser holds an EventSource:
    ``events`` collects its ``data:`` lines; ``ended`` is set when the server ends it."""

    def __init__(self, url: str, headers: Mapping[str, str] | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.conn.request("GET", target, headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = self.conn.getresponse()
        self.events: list[str] = []
        self.ended = threading.Event()
        self.ended_at = 0.0
        """`time.monotonic()` when the stream ended."""
        threading.Thread(target=self._read, name="event-stream", daemon=True).start()

    def _read(self) -> None:
        try:
            while line := self.response.readline():
                text = line.decode("utf-8", "replace").strip()
                if text.startswith("data:"):
                    self.events.append(text[5:].strip())
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # the server cut it, or close() did (http.client then has no file left)
        self.ended_at = time.monotonic()
        self.ended.set()

    def wait_events(self, count: int = 1) -> list[str]:
        return wait_until(
            lambda: len(self.events) >= count and self.events,
            message=lambda: f"{count} event(s), got {self.events}",
        )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SLOW_PINGS = """
import django_browser_reload.views

# Pings a minute apart: a stream left to end at its next chunk holds its process that long.
django_browser_reload.views.PING_DELAY = 60.0
"""


def make_live_pinging_slowly(project: Path) -> Path:
    """`make_live(project)` (django-browser-reload in the demo), its streams pinging a minute
    apart; returns the project."""
    make_live(project)
    urls = project / "demo" / "live_urls.py"
    urls.write_text(urls.read_text() + SLOW_PINGS)
    return project


def stream_holders(log: str) -> list[int]:
    """The process of each django-browser-reload stream opened, as a server's `log` shows."""
    return [int(pid) for pid in re.findall(rf"{STREAM_OPENED} pid=(\d+)", log)]


def stream_holder(log: str) -> int:
    """The process that opened the one django-browser-reload stream a server's `log` shows."""
    pids = set(stream_holders(log))
    assert len(pids) == 1, f"one process should hold the stream, the log shows {pids}"
    return pids.pop()


# --------------------------------------------------------------------------- processes


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw.rsplit(")", 1)[1].split()


def _pids(zombies: bool = False) -> Iterable[tuple[int, list[str]]]:
    """Every process with its stat fields; zombies (dead, merely unreaped) only if asked."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = _stat_fields(int(entry))
                if zombies or fields[0] != "Z":
                    yield int(entry), fields


def children(pid: int) -> list[int]:
    """Live direct children of ``pid`` (e.g. a gunicorn arbiter's workers), sorted."""
    return sorted(p for p, fields in _pids() if int(fields[1]) == pid)


def group_members(pgid: int, zombies: bool = False) -> list[int]:
    """Processes in process group ``pgid``: the live ones, with ``zombies`` the unreaped too
    (what a process table fills up with)."""
    return sorted(p for p, fields in _pids(zombies) if int(fields[2]) == pgid)


def _stuck(pgid: int) -> str:
    """Each live member of group ``pgid``: its state, command line, kernel wait and, when
    py-spy is installed, its Python stacks."""
    lines = []
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    for pid in group_members(pgid):
        try:
            status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            wchan = Path(f"/proc/{pid}/wchan").read_text()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        lines.append(f"{pid} {status} {wchan} {argv}")
        if spy is not None:
            dump = subprocess.run(
                [spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=20
            )
            lines.append(dump.stdout or dump.stderr)
    return "\n".join(lines)


def signal_mask(pid: int) -> set[int]:
    """The signal numbers the main thread of process `pid` blocks."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^SigBlk:\s*([0-9a-f]+)", status, re.MULTILINE)
    assert found is not None, status
    mask = int(found.group(1), 16)
    return {n for n in range(1, 65) if mask >> (n - 1) & 1}


def probing(pgid: int) -> bool:
    """Whether warm mode's probe (see reloader/warm/probe.py) runs in process group ``pgid``:
    its processes come and go, as a worker's report of new modules starts one."""
    return any(process_name(p) == PROBE_NAME for p in group_members(pgid))


def group_zombies(pgid: int) -> list[int]:
    """Exited processes of group ``pgid`` that nobody reaped."""
    return sorted(
        p for p, fields in _pids(zombies=True) if fields[0] == "Z" and int(fields[2]) == pgid
    )


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def inotify_fds(pid: int) -> int:
    """How many inotify instances (one per running native watch) a process holds."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify"
    return count


def catches(pid: int, signum: int) -> bool:
    """Whether ``pid`` has a handler for ``signum`` (SigCgt in /proc/<pid>/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(re.search(r"^SigCgt:\s+([0-9a-f]+)", status, re.M)[1], 16)  # type: ignore[index]
    return bool(caught >> (signum - 1) & 1)


def thread_names(pid: int) -> list[str]:
    """OS-level names (comm) of all threads of ``pid``."""
    names = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            names.append(Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip())
    return names


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment minus anything that would change what a server does.

    PYTHONUNBUFFERED is removed because print() reaching a piped stdout is under test; pytest's
    own variables because a server run by hand has none;
    RELOADER_* and DJANGO_SETTINGS_MODULE because each test states its own.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RELOADER_", "WATCHFILES_"))
        and k
        not in {
            "PYTHONUNBUFFERED",
            "PYTHONDONTWRITEBYTECODE",
            "DJANGO_SETTINGS_MODULE",
            "PYTHONPATH",
            # Set by pytest; debug-toolbar turns itself off where it finds them.
            "PYTEST_VERSION",
            "PYTEST_CURRENT_TEST",
        }
    }
    env.update(extra or {})
    return env


@dataclass
class Server:
    """A server process started in its own process group, its output piped into a log file.

    Use as a context manager or call ``stop()``; ``stop()`` asserts that no process of the
    group survives.
    """

    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    base_url: str = ""
    terminal: bool = False
    """Output to a pseudo-terminal instead of a pipe, as in a user's shell (colours...)."""
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _pump: threading.Thread | None = field(default=None, init=False)

    def start(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Output goes through a pipe, not straight to the file: servers behave differently
        # with a pipe (block-buffered stdout) and a pipe is what process managers give them.
        reader, writer = os.openpty() if self.terminal else os.pipe()
        try:
            self.proc = subprocess.Popen(
                list(self.argv),
                cwd=self.cwd,
                env=dict(self.env) if self.env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=writer,
                stderr=writer,
                start_new_session=True,
            )
        except BaseException:
            os.close(reader)
            raise
        finally:
            os.close(writer)  # the child holds its copy: the reader sees the end when it exits
        self._pump = threading.Thread(
            target=self._copy_output, args=(reader,), name="log-pump", daemon=True
        )
        self._pump.start()
        return self

    def _copy_output(self, fd: int) -> None:
        with open(self.log_path, "ab") as log:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: a pseudo-terminal whose last writer is gone
                    chunk = b""
                if not chunk:
                    break
                log.write(chunk)
                log.flush()
        os.close(fd)

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    def url(self, path: str = "/") -> str:
        return self.base_url.rstrip("/") + path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_for_log(self, text: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        wait_until(
            lambda: text in self.log(),
            timeout,
            interval=0.05,
            message=lambda: f"{text!r} in the log of {self.argv[:4]}:\n{self.log_tail()}",
        )
        return self.log()

    def poll(self) -> int | None:
        assert self.proc is not None
        return self.proc.poll()

    def check_alive(self) -> None:
        """Raise GiveUp if the leader exited, so waits fail fast with the log."""
        if self.poll() is not None:
            raise GiveUp(f"server exited with {self.poll()}:\n{self.log_tail()}")

    def wait_exit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait for the leader to exit by itself (e.g. a startup failure); its return code."""
        wait_until(
            lambda: self.poll() is not None,
            timeout,
            message=lambda: f"{self.argv[:4]} to exit:\n{self.log_tail()}",
        )
        assert self.proc is not None and self.proc.returncode is not None
        return self.proc.returncode

    def stop(self, graceful_timeout: float = 10.0, must_end: bool = True) -> bool:
        """SIGTERM the group, wait, then SIGKILL; True if SIGTERM sufficed. (A stopping worker
        is gone within RELOADER_GRACE, 5 s: a group still there after 10 s has a process that
        ignores SIGTERM, and waiting longer only slows the suite.)

        Raises AssertionError if anything of the group is still alive after SIGKILL, or,
        with `must_end`, if SIGKILL was needed: a user's Ctrl-C or systemd stop would hang.
        """
        if self.proc is None:
            return True
        pgid = self.proc.pid
        graceful = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            wait_until(lambda: self._gone(pgid), graceful_timeout, interval=0.05)
        except AssertionError:
            graceful = False
            # Captured by pytest: who outlived SIGTERM, and where each one waits.
            print(f"----- still there {graceful_timeout} s after SIGTERM:\n{_stuck(pgid)}")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            for pid in group_members(pgid):  # a member may have left the group leader's pgid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(AssertionError):
                wait_until(lambda: self._gone(pgid), 10, interval=0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        if self._pump is not None:
            self._pump.join(timeout=5)
        survivors = group_members(pgid)
        assert not survivors, f"processes of {self.argv[:4]} survived SIGKILL: {survivors}"
        assert graceful or not must_end, (
            f"{self.argv[:4]} was still running {graceful_timeout} s after SIGTERM (its "
            "processes and their stacks are printed above)"
        )
        return graceful

    def _gone(self, pgid: int) -> bool:
        assert self.proc is not None
        self.proc.poll()  # reap the leader so it does not linger as a zombie
        return not group_members(pgid)

    def __enter__(self) -> Server:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- files


def copy_project(src: Path, dst: Path) -> Path:
    """Copy a project tree as committed, whatever a reader trying the demo changed in it.

    In a git checkout that is ``git archive HEAD:<src>``: an edited version.py or template
    (as the demo's README invites), a database or a compiled .mo stay out. Outside one (an
    unpacked archive), or for a tree not committed yet, the folder itself, without byte-code
    or databases left by earlier runs.
    """
    where = subprocess.run(
        ["git", "rev-parse", "--show-toplevel", "--show-prefix"],
        cwd=src,
        capture_output=True,
        text=True,
        check=False,
    )
    top, _, prefix = where.stdout.partition("\n")
    # git archive refuses to run from a subdirectory: name the tree from the top.
    archive = subprocess.run(
        ["git", "archive", "--format=tar", f"HEAD:{prefix.strip()}"],
        cwd=top or src,
        capture_output=True,
        check=False,
    )
    if where.returncode == 0 and archive.returncode == 0:
        dst.mkdir(parents=True)
        subprocess.run(["tar", "-x", "-C", str(dst)], input=archive.stdout, check=True)
        return dst
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.sqlite3"))
    return dst


def _bump_mtime(path: Path, before_ns: int | None) -> None:
    # Two saves within one timestamp tick look like no change to mtime-based watchers;
    # a real editor save is never that fast, so make sure the clock visibly moved.
    if before_ns is not None and path.stat().st_mtime_ns <= before_ns:
        stamp = before_ns + 10_000_000
        os.utime(path, ns=(stamp, stamp))


def write(path: Path, text: str) -> None:
    """Rewrite ``path`` in place (same inode), like `echo > file` or most editors' default."""
    before = path.stat().st_mtime_ns if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    _bump_mtime(path, before)


def edit(path: Path, old: str, new: str) -> None:
    """Replace the single occurrence of ``old`` by ``new`` in place."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"expected exactly one {old!r} in {path}"
    write(path, text.replace(old, new))


def atomic_save(path: Path, text: str) -> None:
    """Save like vim/PyCharm/VS Code 'safe write': a temp file renamed over the original."""
    before = path.stat().st_mtime_ns if path.exists() else None
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    _bump_mtime(path, before)


def save_older(path: Path, text: str, age: float = 3600.0) -> None:
    """Replace the content with a file dated ``age`` seconds *before* the current one.

    That is what `cp -p`, `git checkout` of an older revision, or unpacking an archive do;
    watchers that only look for a newer mtime miss it.
    """
    old_mtime = path.stat().st_mtime
    atomic_save(path, text)
    os.utime(path, (old_mtime - age, old_mtime - age))


def delete(path: Path) -> None:
    path.unlink()


def write_mo(path: Path, messages: Mapping[str, str]) -> None:
    """Write a GNU gettext .mo catalogue (UTF-8), so tests do not need msgfmt.

    Layout: header, then tables of (length, offset) for sorted msgids and their msgstrs,
    then the NUL-terminated strings. The empty msgid carries the charset header.
    """
    catalog = {"": "Content-Type: text/plain; charset=UTF-8\n", **messages}
    keys = sorted(catalog)
    ids = [k.encode() for k in keys]
    strs = [catalog[k].encode() for k in keys]
    n = len(keys)
    header_size = 7 * 4
    ids_table = header_size
    strs_table = ids_table + n * 8
    data_start = strs_table + n * 8
    blob = b""
    id_entries: list[int] = []
    for raw in ids:
        id_entries += [len(raw), data_start + len(blob)]
        blob += raw + b"\0"
    str_entries: list[int] = []
    for raw in strs:
        str_entries += [len(raw), data_start + len(blob)]
        blob += raw + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, n, ids_table, strs_table, 0, 0)
    out = header + struct.pack(f"<{2 * n}I", *id_entries) + struct.pack(f"<{2 * n}I", *str_entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.stat().st_mtime_ns if path.exists() else None
    path.write_bytes(out + blob)
    _bump_mtime(path, before)


def save_paced(saves: Iterable[tuple[Path, str]], gaps: Sequence[float]) -> None:
    """Save each (path, text) in turn, ``gaps`` (seconds, cycled) apart: a burst as a script,
    a formatter or a rebase makes it, longer than a worker's restart. (The sleeps pace the
    saves; they wait for nothing.)"""
    for n, (path, text) in enumerate(saves):
        if n:
            time.sleep(gaps[(n - 1) % len(gaps)])
        write(path, text)


# --------------------------------------------------------------------------- reloader log


def restart_lines(log: str, name: str = "") -> list[str]:
    """The reloader's restart lines (contract: contain "reloader", "restarting" and the
    changed file's base name), optionally only those naming ``name``."""
    return [
        line
        for line in log.splitlines()
        if "reloader" in line and "restarting" in line and name in line
    ]


# --------------------------------------------------------------------------- app answers

PID_RE = re.compile(r"pid=(\d+)")


def answer_pid(body: str) -> int:
    """The worker pid from a test app's answer ("... pid=1234")."""
    match = PID_RE.search(body)
    assert match, f"no pid in {body[:200]!r}"
    return int(match.group(1))


def get_many(
    url: str, count: int, concurrency: int = 8, headers: Mapping[str, str] | None = None
) -> list[Response]:
    """``count`` GETs from ``concurrency`` threads; raises if any request fails outright."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda _: get(url, headers=headers), range(count)))


@dataclass
class PreforkServer(Server):
    """A pre-fork server (gunicorn) whose leader is the master and whose children serve."""

    workers: int = 1
    helpers: tuple[str, ...] = ()
    """Words of the command line of children that are not workers (a watcher process)."""

    def worker_pids(self) -> list[int]:
        return [
            pid
            for pid in children(self.pid)
            if not self._is_helper(pid) and process_name(pid) not in WARM_FORKS
        ]

    def helper_pids(self) -> list[int]:
        return [pid for pid in children(self.pid) if self._is_helper(pid)]

    def tier_pids(self) -> list[int]:
        """Warm mode's Django tier: a fork of the arbiter, known by its process name."""
        return [pid for pid in children(self.pid) if process_name(pid) == TIER_NAME]

    def spare_pids(self) -> list[int]:
        """Warm mode's spare tier, parked (see reloader/warm/spare.py)."""
        return [pid for pid in children(self.pid) if process_name(pid) == SPARE_NAME]

    def _is_helper(self, pid: int) -> bool:
        if not self.helpers:
            return False
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        return any(word in argv.split("\0") for word in self.helpers)

    def wait_workers(self, timeout: float = DEFAULT_TIMEOUT) -> list[int]:
        """Wait until exactly ``workers`` workers run; their pids."""
        return wait_until(
            lambda: (pids := self.worker_pids()) and len(pids) == self.workers and pids,
            timeout,
            message=lambda: (
                f"{self.workers} workers (have {self.worker_pids()}):\n" + self.log_tail()
            ),
        )

    def warm(
        self,
        path: str,
        timeout: float = DEFAULT_TIMEOUT,
        check: Callable[[Response], object] | None = None,
    ) -> set[int]:
        """Send concurrent requests to ``path`` until every worker has answered one.

        Apps import most of their code on the first request (Django's URLconf), and a
        worker only watches what it imported, so tests that expect every worker to
        restart warm them all first. ``path`` should answer slowly and with "pid=N".
        """
        seen: set[int] = set()

        def all_answered() -> bool:
            pids = set(self.wait_workers(timeout))
            for resp in get_many(self.url(path), 2 * self.workers, 2 * self.workers):
                if check is None:
                    if resp.status != 200:
                        raise GiveUp(f"got {resp.status}: {resp.body[:500]}")
                else:
                    check(resp)
                seen.add(answer_pid(resp.body))
            return pids <= seen

        wait_until(
            all_answered, timeout, interval=0, message=lambda: f"all workers to answer {path}"
        )
        return seen


TIER_NAME = "reloader-tier"
SPARE_NAME = "reloader-spare"  # warm mode's second tier, parked before the project's code
PROBE_NAME = "reloader-probe"  # warm mode's forks that find what imports cleanly
WARM_FORKS = (TIER_NAME, SPARE_NAME, PROBE_NAME)


def process_name(pid: int) -> str:
    """The kernel's name of process `pid` (`ps -o comm`), or '' once it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def assert_fresh_everywhere(
    server: PreforkServer, path: str, marker: str, warm_path: str | None, count: int = 60
) -> Response:
    """Wait for the first answer of ``path`` containing ``marker``; from then on no answer
    may lack it (checked over ``count`` concurrent requests), and every worker, found with
    ``warm_path`` (if given, it must answer with the marker too), must answer with it too.
    Returns the first fresh answer."""
    first = wait_for_body(server.url(path), marker, status=200)
    for resp in get_many(server.url(path), count):
        assert resp.status == 200 and marker in resp.body, (
            f"stale or failed answer after a fresh one: {resp.status} {resp.body[:300]!r}"
        )

    def fresh(resp: Response) -> None:
        if resp.status != 200 or marker not in resp.body:
            raise GiveUp(f"a worker answers stale code: {resp.status} {resp.body[:300]!r}")

    if warm_path is not None:
        server.warm(warm_path, check=fresh)
    return first


@dataclass
class Answer:
    """One answer a `SteadyLoad` client got, with when it asked and when it got it."""

    sent: float
    """`time.monotonic()` before the request was sent."""
    received: float
    status: int
    body: str


class SteadyLoad:
    """``clients`` threads asking ``url`` one request after another, each on a new connection
    (so they spread over the workers), until the block ends; every answer is kept in
    ``answers``. Requests that fail outright count too, with status 0."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url = url
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._ask, name=f"load-{n}", daemon=True)
            for n in range(clients)
        ]

    def _ask(self) -> None:
        while not self._stop.is_set():
            sent = time.monotonic()
            resp = try_get(self.url, timeout=10)
            status, body = (resp.status, resp.body) if resp is not None else (0, "")
            self.answers.append(Answer(sent, time.monotonic(), status, body))

    def wait_for(self, text: str, then: int = 0) -> None:
        """Wait until an answer contained ``text``, and ``then`` more answers came after it."""

        def seen() -> bool:
            first = next((i for i, a in enumerate(self.answers) if text in a.body), None)
            return first is not None and len(self.answers) - first > then

        wait_until(seen, message=lambda: f"{text!r} under load, last: {self.answers[-1:]}")

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def older_after_newer(answers: Sequence[Answer], version: Callable[[str], int | None]) -> list[str]:
    """Each answer with an older ``version`` of its body than an answer received before it
    was sent: what a user who saw the new page, then asked again, would call stale. Answers
    without a version (a failed request) are left out; the caller checks those."""
    known = sorted((a.received, v) for a in answers if (v := version(a.body)) is not None)
    received = [when for when, _ in known]
    newest_by_then = list(itertools.accumulate((v for _, v in known), max))
    stale = []
    for answer in answers:
        mine = version(answer.body)
        before = bisect.bisect_left(received, answer.sent)
        if mine is not None and before and newest_by_then[before - 1] > mine:
            stale.append(f"version {mine} after {newest_by_then[before - 1]}: {answer.body!r}")
    return stale


TEMPLATE_VERSION_RE = re.compile(r"template-v(\d+)")


def template_version(body: str) -> int | None:
    match = TEMPLATE_VERSION_RE.search(body)
    return int(match.group(1)) if match else None


def assert_refreshes_never_go_back(url: str, template: Path, saves: int = 4) -> None:
    """Save ``template`` (which renders "template-v1" at ``url``) ``saves`` times in a row
    while clients keep asking: every answer is 200, and none renders an older version than an
    answer received before it was asked for."""
    text = template.read_text()
    assert template_version(text) == 1, f"{template} should say template-v1"
    with SteadyLoad(url) as load:
        load.wait_for("template-v1", then=20)
        for n in range(2, 2 + saves):
            atomic_save(template, TEMPLATE_VERSION_RE.sub(f"template-v{n}", text))
            load.wait_for(f"template-v{n}", then=40)
    failed = [a for a in load.answers if a.status != 200 or template_version(a.body) is None]
    assert not failed, f"{len(failed)} failed answers, e.g. {failed[0]}"
    stale = older_after_newer(load.answers, template_version)
    assert not stale, f"{len(stale)} of {len(load.answers)} answers stale:\n" + "\n".join(stale[:8])


def lines_naming_pid(lines: Iterable[str], pid: int) -> list[str]:
    pattern = re.compile(rf"\b{pid}\b")
    return [line for line in lines if pattern.search(line)]


def every_worker_serves(server: PreforkServer, path: str, marker: str) -> None:
    """Wait until each current worker answers `path` with `marker` (found by pid in the
    answers), for paths that answer fast: `assert_fresh_everywhere`'s `warm_path` must show
    the marker too."""

    def all_fresh() -> bool:
        answers = get_many(server.url(path), 24)
        pids = {r.body.rpartition("pid=")[2] for r in answers if r.status == 200}
        fresh = all(r.status == 200 and marker in r.body for r in answers)
        return fresh and {str(p) for p in server.worker_pids()} <= pids

    wait_until(all_fresh, message=lambda: f"every worker to serve {marker}:\n{server.log_tail()}")
