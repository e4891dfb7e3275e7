"""A development gunicorn configuration with code reloading by `reloader`.

Copy it into your project, adapt RELOADER_APP / DJANGO_SETTINGS_MODULE, and run from the
project directory:

    gunicorn -c gunicorn.conf.py

Command-line options win over this file, e.g. `gunicorn -c gunicorn.conf.py -b 0.0.0.0:8080`.
Do not use it in production: it reloads code and shows tracebacks to local clients.
"""

# Local only: the error pages show tracebacks to loopback clients.
bind = "127.0.0.1:8000"

# Several processes and threads, like production, so concurrency bugs show up during
# development too; each worker restarts itself when a file it imported changes.
workers = 4
worker_class = "gthread"
threads = 4

# The reloading wrapper; it imports the real application named by RELOADER_APP.
wsgi_app = "reloader.wsgi:application"

# raw_env is set in the master before the workers start, so the wrapper sees it.
raw_env = [
    "RELOADER_APP=demo.wsgi:application",
    "DJANGO_SETTINGS_MODULE=demo.settings",
    # Also restart on changes to non-Python files (os.pathsep-separated, globs allowed):
    # "RELOADER_EXTRA_FILES=.env:config/*.toml",
    # Never restart for these (globs):
    # "RELOADER_IGNORE=*/migrations/*",
    # Polling for file systems without native events (Docker Desktop mounts, NFS, WSL):
    # "RELOADER_POLLING=1",
]

# A restart waits for in-flight requests; long ones (debugger sessions, slow views) get
# this many seconds before the worker is killed.
graceful_timeout = 30
# Generous, so a breakpoint in a view does not get the worker killed by the master.
timeout = 300

loglevel = "info"
# Access log to stdout, next to print() output and the reloader's log lines.
accesslog = "-"
