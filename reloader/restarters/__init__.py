"""How to restart: one small strategy per server, chosen by what the process finds itself in.

Each strategy ends the current process gracefully in the way its server understands, so the
server starts a fresh one that imports the new code.
"""

from .base import Restarter
from .detect import detect_restarter
from .exec import ExecRestarter
from .gunicorn import GunicornRestarter
from .mod_wsgi import ModWsgiRestarter, mod_wsgi_mode

__all__ = [
    "ExecRestarter",
    "GunicornRestarter",
    "ModWsgiRestarter",
    "Restarter",
    "detect_restarter",
    "mod_wsgi_mode",
]
