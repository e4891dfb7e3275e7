"""A ready entry point: `gunicorn reloader.wsgi:application`, configured by RELOADER_APP
(or DJANGO_SETTINGS_MODULE) and the other RELOADER_* variables."""

from .main import wrap

__all__ = ["application"]

application = wrap()
