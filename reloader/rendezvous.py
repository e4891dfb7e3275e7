"""Where the serving processes of one server meet: a directory they all find by themselves.

Workers of one server share no parent state (gunicorn without preload, mod_wsgi's daemon
processes, uWSGI's lazy workers), yet some facts are the server's, not a process's: that a
burst of saves is going on, which template refreshes were applied. They keep those in a
directory named after what they have in common: the parent process that forked them (its pid
and its start time, so a reused pid is another server), what they serve, and under mod_wsgi
the daemon process group. Warm mode has its run directory for that (see `warm.rundir`).

Directories of servers gone are removed by the next process that makes one; so are warm mode's
run directories (`process_directory`) of arbiters gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

__all__ = ["process_directory", "replace_file", "server_directory", "start_ticks"]

logger = logging.getLogger("reloader")


def replace_file(path: Path, text: str) -> None:
    """Put `text` in `path` at once: a reader of the shared directory sees the old content or
    the new, never part of it. Raises OSError (no temporary file is left behind)."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def start_ticks(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (Linux); None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None if sys.platform.startswith("linux") else 0
    return int(raw.rsplit(")", 1)[1].split()[19])


def _alive(pid: int) -> bool:
    """Whether process `pid` exists (where there is no /proc to tell its start time too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's: it exists
    return True


def _group() -> str:
    """mod_wsgi's daemon process group: one Apache may run several, for several sites."""
    module = sys.modules.get("mod_wsgi")
    return str(getattr(module, "process_group", "") or "")


def _private_root() -> Path | None:
    """This user's directory under the temporary directory, made 0700; None when it exists
    but is not safely ours (a link, another owner, writable by others)."""
    root = Path(tempfile.gettempdir()) / f"reloader-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o700)
    info = os.lstat(root)
    mine = stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
    return root if mine and not info.st_mode & 0o022 else None


def _sweep(root: Path, prefix: str = "") -> None:
    """Remove the directories `<prefix><pid>-<start ticks>-...` in `root` whose process is
    gone. Only this user's, except for root, which gives warm mode's run directory to the
    workers' user (`--user`)."""
    euid = os.geteuid()
    for entry in os.scandir(root):
        if not entry.name.startswith(prefix):
            continue
        pid, _, rest = entry.name.removeprefix(prefix).partition("-")
        ticks, _, _ = rest.partition("-")
        if not (pid.isdigit() and ticks.isdigit()):
            continue
        if _alive(int(pid)) and start_ticks(int(pid)) == int(ticks):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # another process's sweep was first
        if stat.S_ISDIR(info.st_mode) and euid in (0, info.st_uid):
            shutil.rmtree(entry.path, ignore_errors=True)


def process_directory(prefix: str) -> Path:
    """A new directory in the temporary directory for this process's state, mode 0700, named
    `<prefix><pid>-<start ticks>-<random>`; the first removes those of processes gone, which
    ended without removing theirs (SIGKILL). Raises OSError."""
    temp = Path(tempfile.gettempdir())
    with contextlib.suppress(OSError):  # another's entry we may not look at: sweep less
        _sweep(temp, prefix)
    pid = os.getpid()
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{pid}-{start_ticks(pid) or 0}-"))


def server_directory(serving: str) -> Path | None:
    """The directory this process shares with the other serving processes of its server
    (`serving` names what they serve), made if needed; None, with one warning, when none can
    be made: each process then knows only what it sees itself."""
    parent = os.getppid()
    ticks = start_ticks(parent)
    if ticks is None:
        return None
    key = hashlib.sha256(f"{serving}\0{os.getcwd()}\0{_group()}".encode()).hexdigest()[:16]
    try:
        root = _private_root()
        if root is None:
            logger.warning(
                "%s/reloader-%d is not a private directory of this user: the processes of "
                "this server share nothing (template refreshes, bursts of saves)",
                tempfile.gettempdir(),
                os.geteuid(),
            )
            return None
        path = root / f"{parent}-{ticks}-{key}"
        if not path.is_dir():
            _sweep(root)
            with contextlib.suppress(FileExistsError):
                path.mkdir(mode=0o700)
        return path
    except OSError as exc:
        logger.warning("no directory for the processes of this server to share: %s", exc)
        return None
