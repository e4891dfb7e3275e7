"""uWSGI: each worker that sees a change stops itself gracefully, and the master forks a fresh
one. Read from uWSGI 2.0.31's source (core/uwsgi.c, core/master.c, plugins/python).

Why per worker, and why this way:

- `uwsgi.reload()` sends SIGHUP to the master: a graceful reload of the whole instance. The
  master waits for every worker, then re-executes itself and (without --lazy-apps) imports
  the application again before forking: the slowest path, and each worker seeing the save
  would ask for it once more.
- A chain reload (`uwsgi.chain_reload()`, --touch-chain-reload) replaces the workers one at a
  time, each after the previous one is ready: the workers not replaced yet keep answering with
  the old code after the first fresh answer.
- SIGHUP to a worker is what the master itself sends a worker it reloads (its handler
  `gracefully_kill`): the worker stops taking requests at once, lets the ones running finish
  and exits; the master, which holds the listening sockets, forks a replacement, and
  connections that arrive meanwhile wait in the backlog. Every worker sees the same save and
  stops the same way, so once one answers with the new code none answers with the old, and no
  request is lost.

The signal goes to the worker's main thread, which serves uWSGI's core 0, as it would when the
master sends it: uWSGI blocks every signal in its other request threads but not in our watcher
thread, where a signal sent to the process could otherwise land and run uWSGI's handler (and
its exit()) in a thread uWSGI does not know. The master looks for dead workers once a second
(its master loop); where our code runs in the master, `uwsgi_wake` has it look as soon as a
worker exits.

uWSGI installs that handler only once the worker has loaded the application: a save seen
while it loads would make SIGHUP run what the worker inherited (nothing, or the master's own
handler, which reloads every worker). Such a worker has taken no request yet, so it simply
exits, with the code uWSGI's master respawns without complaint.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from .teardown import exit_without_teardown, skip_teardown_at_exit
from .uwsgi_wake import master_wakes_on_exit, worker_default_sigchld

__all__ = ["UwsgiRestarter", "after_fork", "guard_the_worker", "uwsgi_module"]


def uwsgi_module() -> Any:
    """uWSGI's embedded `uwsgi` module inside uWSGI, None elsewhere (nothing installs a module
    of that name outside: the PyPI package ships the binary and `uwsgidecorators`)."""
    module = sys.modules.get("uwsgi")
    if module is None or not hasattr(module, "worker_id"):
        return None
    return module


def after_fork(boot: Callable[[], None]) -> None:
    """Run `boot` in each worker uWSGI forks. uWSGI forks in C and calls Python's at-fork
    hooks only with --py-call-osafterfork; it always calls `uwsgi.post_fork_hook` (also in
    mules and spoolers, which serve nothing). A hook set before ours still runs. The master
    then replaces a worker as soon as it exits (see `uwsgi_wake`)."""
    module = uwsgi_module()
    master_wakes_on_exit()
    previous = getattr(module, "post_fork_hook", None)

    def hook() -> None:
        worker_default_sigchld()
        if previous is not None:
            previous()
        if module.worker_id() > 0:
            guard_the_worker()
            boot()

    module.post_fork_hook = hook


_guarded_pid = 0
"""The process guarded, once it is (a worker forked from it is not)."""


def guard_the_worker() -> None:
    """In each worker, as early as it can run: see the two functions below. Once per process;
    with --lazy-apps, from the first line of this package, since every moment of its imports
    is one where a stop signal still finds the master's handlers."""
    global _guarded_pid
    module = uwsgi_module()
    if module is None or module.worker_id() <= 0 or _guarded_pid == os.getpid():
        return
    _guarded_pid = os.getpid()
    stop_signals_end_a_booting_worker()
    exits_off_the_main_thread_end_at_once()


def stop_signals_end_a_booting_worker() -> None:
    """Let SIGINT, SIGTERM and SIGQUIT end this worker at once while it loads the application.

    Until uWSGI installs a worker's own handlers, once the application is loaded, a worker
    still has the master's: a Ctrl-C or a stop that reaches a worker booting after a reload
    makes it run the master's shutdown (it logs "killing workers" and signals every worker,
    itself included, then ignores the rest as already dying), after which it serves on, and
    the master waits for it for its worker-reload-mercy (60 s by default). A worker that is
    still loading has taken no request, so dying at once loses nothing; uWSGI puts its own
    handlers in place of these when it starts serving."""
    if _serving_handler_installed():
        return
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(number, signal.SIG_DFL)


def exits_off_the_main_thread_end_at_once() -> None:
    """Let an exit() that runs in another thread than the worker's main one end the process.

    A stop signal can land in another thread: uWSGI's request threads block signals only
    once they run, and the master's SIGINT follows the terminal's while the main thread still
    handles the first, so a thread just created can take it. uWSGI's handler there calls
    exit(), which finalises Python, which first waits for the main thread to end: it never
    does (it waits for the accept lock), and the master waits for the worker its
    worker-reload-mercy. uWSGI calls `uwsgi.atexit` before the finalisation: off the main
    thread, the process ends there, after the program's atexit functions, with the code
    uWSGI's stop handler gives."""
    module = uwsgi_module()
    previous = getattr(module, "atexit", None)
    main = threading.main_thread().ident

    def at_exit() -> None:
        if previous is not None:
            previous()
        if threading.get_ident() != main:
            exit_without_teardown(END_CODE)

    module.atexit = at_exit


END_CODE = 30
"""UWSGI_END_CODE (uwsgi.h): what uWSGI's handler for a stop signal (`end_me`) exits with."""

RELOAD_CODE = 17
"""UWSGI_RELOAD_CODE (uwsgi.h): what a worker's graceful stop (`gracefully_kill`) exits with."""

QUIET_EXIT = 29
"""UWSGI_QUIET_CODE (uwsgi.h): the master respawns the worker and logs nothing about it."""


def _serving_handler_installed() -> bool:
    """Whether SIGHUP runs uWSGI's worker handler `gracefully_kill` yet. The uwsgi binary
    exports its symbols (plugins link against them); where it does not, assume so."""
    process = ctypes.CDLL(None)
    try:
        expected = ctypes.cast(process.gracefully_kill, ctypes.c_void_p).value
    except AttributeError:
        return True
    action = ctypes.create_string_buffer(256)  # struct sigaction; sa_handler comes first
    if process.sigaction(signal.SIGHUP, None, action) != 0:
        return True
    return ctypes.c_void_p.from_buffer(action).value == expected


class UwsgiRestarter:
    name = "uWSGI worker"
    graceful_limit: float | None = None  # worker-reload-mercy is not exposed to Python

    def __init__(self) -> None:
        main = threading.main_thread().ident
        assert main is not None
        self._main = main
        self._begin: Callable[[], None] | None = None

    def on_stop(self, begin: Callable[[], None]) -> None:
        # Only our own stops: uWSGI handles its signals in C.
        self._begin = begin

    def stopping(self) -> bool:
        return False  # uWSGI's stop signals are handled in C, out of Python's sight

    def replace_early(self) -> None:
        return None  # the master forks a worker once the old one is gone

    def restart(self) -> None:
        if self._begin is not None:
            self._begin()
        if _serving_handler_installed():
            # uWSGI's graceful stop ends in exit(), which finalises Python: the atexit
            # callbacks run (after the application's non-daemon threads ended), and from there
            # the process ends without freeing every module (0.1 s and more for a Django
            # process; the master forks the replacement only once this one is gone).
            skip_teardown_at_exit(RELOAD_CODE)
            signal.pthread_kill(self._main, signal.SIGHUP)
        else:
            exit_without_teardown(QUIET_EXIT)
