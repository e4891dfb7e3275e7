"""The flags that event streams of the packages we know wait on: lowered where no stream will
pass them on, raised at once where one will, and raised to have a stopping process's streams
end now.

django-browser-reload's stream waits on `should_reload_event` between its pings (a second
apart) and says "reload" when it is raised; its `file_changed` receiver raises it when a
template changes (50 ms later, from a timer: its debounce).

- **Lowered** after a refresh in a process with no stream open. Under a server with several
  processes each of them is told of the save, but a tab's one stream lives in one of them: in
  the others the flag would stay raised, and the next stream to open there would reload its
  tab once more for a save it already shows (the same tab, right after the reload, since its
  stream reconnects with the new page; or any tab, minutes later).
- **Hurried** after a refresh in a process with a stream open: the receiver's timer waits
  out its debounce for a runserver that offers the files of a save one by one, as it finds
  them; here every file of the save has been offered by then, so the flag is raised now, 50 ms
  sooner.
- **Raised** at a stop with streams open. The wrapper ends a stream once it yields, and until
  its next ping the process lives on; under a server that starts the replacement only once
  the old process is gone (gunicorn with more than one worker, mod_wsgi, uWSGI), so does the
  wait for the fresh code. Raised, the stream yields at once, and the wrapper ends it there
  without sending that chunk (see `InFlight`): its tab sees the end, reconnects to a fresh
  process and reloads once, on its new process id.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import ModuleType

__all__ = ["FLAGS", "StreamFlag", "forget_unheard_flags", "hurry_heard_flags", "wake_streams"]


@dataclass(frozen=True)
class StreamFlag:
    module: str
    """Where the flag lives; nothing is done where it is not imported."""
    event: str
    """The `threading.Event` the streams wait on."""
    timer: str | None = None
    """A `threading.Timer` that raises the flag later, cancelled when it is lowered."""

    def lower(self) -> None:
        module = sys.modules.get(self.module)
        if module is None:
            return
        timer = getattr(module, self.timer, None) if self.timer else None
        if timer is not None and hasattr(timer, "cancel"):
            timer.cancel()  # still waiting out the debounce: it would raise the flag after us
        _event(module, self.event, "clear")

    def hurry(self) -> None:
        """Raise the flag now if its timer is still to raise it."""
        module = sys.modules.get(self.module)
        if module is None or self.timer is None:
            return
        timer = getattr(module, self.timer, None)
        finished = getattr(timer, "finished", None)
        if timer is None or finished is None or finished.is_set():
            return
        timer.cancel()
        _event(module, self.event, "set")

    def raise_(self) -> None:
        module = sys.modules.get(self.module)
        if module is not None:
            _event(module, self.event, "set")


def _event(module: ModuleType, name: str, method: str) -> None:
    action = getattr(getattr(module, name, None), method, None)
    if callable(action):
        action()


FLAGS = (StreamFlag("django_browser_reload.views", "should_reload_event", "reload_timer"),)


def forget_unheard_flags() -> None:
    """After a refresh in a process that has no event stream open."""
    for flag in FLAGS:
        flag.lower()


def hurry_heard_flags() -> None:
    """After a refresh in a process that has an event stream open."""
    for flag in FLAGS:
        flag.hurry()


def wake_streams() -> None:
    """At a stop, with streams open in this process."""
    for flag in FLAGS:
        flag.raise_()
