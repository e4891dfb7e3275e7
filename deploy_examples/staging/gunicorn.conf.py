"""gunicorn for a staging server: behind nginx on a unix socket, as in production, but
with code reloading on, so a `git pull` or an edit on the box is live at once.

    gunicorn -c gunicorn.conf.py --chdir /srv/demo/project

Clients only ever talk to nginx. The reloader sees nginx's X-Forwarded-For and X-Real-IP
headers, and a unix socket peer rather than a loopback address, and so never shows them
tracebacks: they get a short 500 page with an error id, and the traceback with the same id
goes to this server's log.
"""

# nginx connects here (see nginx.conf); no TCP port is exposed. gunicorn makes the socket
# itself writable by all (umask 0): its directory is what restricts access, e.g. /run/demo
# owned by the deploying user, group www-data (nginx's), mode 0750.
bind = "unix:/run/demo/gunicorn.sock"

workers = 2
worker_class = "gthread"
threads = 4

# The reloading wrapper; it imports the application named by RELOADER_APP.
wsgi_app = "reloader.wsgi:application"
raw_env = [
    "RELOADER_APP=demo.wsgi:application",
    "DJANGO_SETTINGS_MODULE=demo.settings",
    # RELOADER_SHOW_ERRORS stays "auto": requests through nginx carry X-Forwarded-For and
    # come over the unix socket, so they never get details. Never set it to 1 on a box that
    # others can reach.
]

# A reload waits for in-flight requests this long.
graceful_timeout = 30
timeout = 60

loglevel = "info"
accesslog = "-"
errorlog = "-"
# Behind the proxy the peer is the socket: log the client nginx saw instead.
access_log_format = '%({x-forwarded-for}i)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
