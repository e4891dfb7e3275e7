"""Process mechanics of warm mode's parents (see `tier.py`): a fork that keeps the parent's
objects out of the child's garbage collections, Linux's child subreaper, a fork whose child
belongs to an ancestor, the process name, and a channel that carries small messages and
file descriptors between two processes.

A worker forked by the tier must be the arbiter's child, or gunicorn could neither reap it
nor see it exit. The arbiter is made a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`):
the tier forks a short-lived middle process, which forks the worker and exits, and the
kernel hands the orphaned worker to its nearest subreaper ancestor, the arbiter.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import select
import signal
import socket
import struct
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "ARBITER_SIGNALS",
    "QUIT",
    "Channel",
    "become_subreaper",
    "die_with_parent",
    "fork_adopted",
    "fork_frozen",
    "leave_signals_to_the_arbiter",
    "process_name",
    "set_process_name",
]

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36

ADOPTION_SECONDS = 5.0
"""How long a worker forked by the tier waits for the arbiter to adopt it. The kernel does it
as the middle process exits, within microseconds; past this something is wrong."""

_HEADER = struct.Struct("!I")

QUIT = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
"""End a fork of the arbiter at once: Ctrl-C reaches the whole process group, and the
arbiter stops its forks itself. Nothing in them needs cleaning up."""

ARBITER_SIGNALS = (
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGURG,
)
"""gunicorn's arbiter's own signals: in a fork of it they are its business, not the copy's
(whose handlers, inherited, would wake the arbiter through the pipe they share)."""


def leave_signals_to_the_arbiter(children: signal.Handlers) -> None:
    """In a fork of the arbiter: `QUIT` ends it, the arbiter's signals are ignored, and
    SIGCHLD gets `children` (SIG_DFL: this process waits for its children; SIG_IGN: the
    kernel reaps them)."""
    for signum in QUIT:
        signal.signal(signum, signal.SIG_DFL)
    for signum in ARBITER_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, children)


def _prctl(option: int, argument: int | bytes) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    value = ctypes.c_char_p(argument) if isinstance(argument, bytes) else ctypes.c_ulong(argument)
    zero = ctypes.c_ulong(0)
    if libc.prctl(ctypes.c_int(option), value, zero, zero, zero) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def become_subreaper() -> None:
    """Orphaned descendants of this process become its children (kept across exec)."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    """The kernel kills this process (SIGKILL) when the thread that forked it ends: a helper
    that hangs cannot outlive the process that gave up on it."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def process_name() -> bytes:
    """The kernel's name of this process (`/proc/self/comm`, what `ps -o comm` shows)."""
    return Path("/proc/self/comm").read_bytes().rstrip(b"\n")


def set_process_name(name: bytes) -> None:
    """At most 15 bytes; the command line is left as it is."""
    _prctl(PR_SET_NAME, name[:15])


_fork = os.fork  # the arbiter hands gunicorn other forks for a moment (see arbiter.py)


def fork_frozen() -> int:
    """`os.fork()`, with every object of the parent left out of the child's garbage
    collections (`gc.freeze()` in the child; the parent's own go on as before). A warm
    parent holds hundreds of thousands of objects: each full collection in the child would
    walk them all, and write to their pages, which the fork shares until written. On the
    Wagtail site a tier's `django.setup()` took 1.4-1.7 s without this, 0.7-0.8 s with it."""
    gc.freeze()
    try:
        pid = _fork()
    except BaseException:
        gc.unfreeze()
        raise
    if pid:
        gc.unfreeze()
    return pid


def fork_adopted(adopter: int) -> int:
    """Fork a process that becomes the child of `adopter`, a subreaper ancestor, rather than
    ours: its pid here, 0 in it (once adopted, so that `os.getppid()` is `adopter`)."""
    read, write = os.pipe()
    middle = fork_frozen()  # and the worker it forks inherits the freeze
    if middle == 0:
        os.close(read)
        code = 1
        with contextlib.suppress(BaseException):
            pid = os.fork()
            if pid == 0:
                os.close(write)
                _await_adoption(adopter)
                return 0
            os.write(write, str(pid).encode())
            code = 0
        os._exit(code)
    os.close(write)
    try:
        with os.fdopen(read, "rb") as pipe:
            text = pipe.read()
    finally:
        os.waitpid(middle, 0)
    if not text.isdigit():
        raise OSError("the middle process could not fork")
    return int(text)


def _await_adoption(adopter: int) -> None:
    deadline = time.monotonic() + ADOPTION_SECONDS
    while os.getppid() != adopter:
        if time.monotonic() > deadline:
            os._exit(1)  # nobody could reap or supervise us
        time.sleep(0.0002)


class Channel:
    """One end of a Unix stream socket pair carrying JSON messages, each optionally with file
    descriptors. Blocking; `receive` takes a timeout in seconds (None: wait)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        one, two = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls(one), cls(two)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def send(self, message: object, fds: Sequence[int] = ()) -> None:
        data = json.dumps(message).encode()
        # The descriptors ride on the header; the body may be large (thousands of names).
        self.sock.settimeout(None)
        socket.send_fds(self.sock, [_HEADER.pack(len(data))], list(fds))
        self.sock.sendall(data)

    def receive(self, timeout: float | None = None) -> tuple[object, list[int]]:
        """The next message and the descriptors that came with it. Raises EOFError when the
        other end closed, TimeoutError when nothing came in time."""
        self.sock.settimeout(timeout)
        header, fds, _flags, _address = socket.recv_fds(self.sock, _HEADER.size, 4)
        if not header:
            raise EOFError("the other end closed the channel")
        header += self._exactly(_HEADER.size - len(header))
        (size,) = _HEADER.unpack(header)
        return json.loads(self._exactly(size)), fds

    def ready(self) -> bool:
        """Whether a message (or the end) is waiting, without blocking."""
        return bool(select.select([self.sock], [], [], 0)[0])

    def _exactly(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self.sock.recv(size)
            if not chunk:
                raise EOFError("the other end closed the channel")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)
