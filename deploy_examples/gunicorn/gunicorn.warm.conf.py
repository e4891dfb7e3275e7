"""Development gunicorn configuration in reloader's warm mode.

One watcher process for the whole server, and workers forked from an arbiter that already
imported the third-party code (Django and friends), so a save restarts workers that import
only the project's own modules. Run from the project directory:

    gunicorn -c gunicorn.warm.conf.py

Editing this file re-executes the arbiter in place, so changes here apply on save too.
"""

# wsgi_app and the server hooks (on_starting, pre_fork, post_request, child_exit, on_exit).
# Define a hook of your own? Call reloader's from it, e.g. reloader.gunicorn.pre_fork(...).
from reloader.gunicorn import *  # noqa: F403

bind = "127.0.0.1:8000"
workers = 4
worker_class = "gthread"  # gevent/eventlet work too, without the warm imports
threads = 4
raw_env = [
    "RELOADER_APP=demo.wsgi:application",
    "DJANGO_SETTINGS_MODULE=demo.settings",
]
graceful_timeout = 30
timeout = 300
loglevel = "info"
accesslog = "-"
