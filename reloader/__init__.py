"""reloader: save a file, and the next request runs the new code, under the real server.

`wrap()` is the whole API: a server loads the WSGI application it returns, in place of the
application itself. `reloader.wsgi:application` is a ready one, configured from the
environment.
"""

import sys as _sys

if "uwsgi" in _sys.modules:  # before the rest is imported: see guard_the_worker
    from .restarters.uwsgi import guard_the_worker

    guard_the_worker()

from .main import wrap
from .settings import ConfigError

__all__ = ["ConfigError", "__version__", "wrap"]

__version__ = "0.1.0"
