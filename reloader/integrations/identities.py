"""Values a module makes at import to stand for "this process", renewed in forked children.

A warm worker is forked from an arbiter that imported its modules, so a value made at import
is the same in every worker and survives their restarts. Where a client compares it to tell
that the server restarted, it would never see a change: django-browser-reload's `versionId`,
made when its `views` module is imported (its `AppConfig.ready()` does that), is how a browser
tab knows to reload. Code of your own with such a value can renew it the same way, with
`os.register_at_fork(after_in_child=...)`.
"""

from __future__ import annotations

import secrets
import string
import sys
from collections.abc import Callable

__all__ = ["PER_PROCESS", "renew_process_identities"]


def _random_id(length: int) -> Callable[[], str]:
    alphabet = string.ascii_letters + string.digits
    return lambda: "".join(secrets.choice(alphabet) for _ in range(length))


PER_PROCESS: tuple[tuple[str, str, Callable[[], object]], ...] = (
    ("django_browser_reload.views", "version_id", _random_id(32)),
)
"""(module, attribute, how to make a new value): each one made at import, each one a
process identity that clients compare."""


def renew_process_identities() -> None:
    """In a child just forked: give each known identity a value of its own."""
    for module_name, attribute, make in PER_PROCESS:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, attribute):
            setattr(module, attribute, make())
