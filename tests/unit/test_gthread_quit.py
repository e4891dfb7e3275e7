"""A quit that lands while the interpreter waits for the threads at its exit
(`reloader.restarters.gthread_quit`), in a real interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# The handler a gunicorn worker has for SIGQUIT and SIGINT raises SystemExit; here a timer
# signal lands while a non-daemon thread keeps the interpreter waiting at its exit.
PROCESS = textwrap.dedent(
    """
    import atexit, signal, sys, threading, time
    from reloader.restarters.gthread_quit import (
        _in_threading_shutdown, _quiet_exit_from_threading_shutdown,
    )

    def handle_quit(signum, frame):
        if _in_threading_shutdown(frame):
            _quiet_exit_from_threading_shutdown()
        sys.exit(0)

    signal.signal(signal.SIGALRM, handle_quit)
    threading.Thread(target=time.sleep, args=(60,)).start()
    atexit.register(lambda: print("atexit ran", flush=True))
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    """
)


def test_a_quit_during_the_exit_wait_ends_it_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROCESS], capture_output=True, text=True, timeout=30
    )
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert done.stdout.strip() == "atexit ran", "the exit goes on as before"
    assert done.returncode == 0
