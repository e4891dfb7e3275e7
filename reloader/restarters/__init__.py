"""How to restart: one small strategy per server, chosen by what the process finds itself in.

Each strategy ends the current process gracefully in the way its server understands, so the
server starts a fresh one that imports the new code.
"""

from .base import Restarter
from .detect import Placement, detect_restarter, placement
from .exec import ExecRestarter, forked_by_unknown_server
from .gunicorn import GunicornRestarter
from .mod_wsgi import ModWsgiRestarter, mod_wsgi_mode
from .uwsgi import UwsgiRestarter

__all__ = [
    "ExecRestarter",
    "GunicornRestarter",
    "ModWsgiRestarter",
    "Placement",
    "Restarter",
    "UwsgiRestarter",
    "detect_restarter",
    "forked_by_unknown_server",
    "mod_wsgi_mode",
    "placement",
]
