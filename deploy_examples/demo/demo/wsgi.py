"""WSGI entry point of the demo; the reloader wraps it (RELOADER_APP=demo.wsgi:application)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

application = get_wsgi_application()
