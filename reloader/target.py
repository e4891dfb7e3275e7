"""Finding and importing the application the wrapper serves."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from .settings import APP, ConfigError

__all__ = ["WSGIApp", "describe", "import_app", "resolve"]

WSGIApp = Callable[..., Any]

DJANGO = "django.core.wsgi:get_wsgi_application()"
"""What `resolve()` returns for a Django project without RELOADER_APP."""


def resolve(target: str | None) -> str:
    """The import string to load: `target`, or Django's when DJANGO_SETTINGS_MODULE is set."""
    if target is not None:
        return target
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        return DJANGO
    raise ConfigError(
        f"reloader: no application to serve; set {APP.env} to {APP.accepts}, "
        "pass it to wrap(), or set DJANGO_SETTINGS_MODULE to serve a Django project"
    )


def import_app(spec: str) -> WSGIApp:
    """Import 'package.module:attribute' (attribute defaults to 'application'). Any exception
    the user's code raises propagates: the caller turns it into an error page."""
    if spec == DJANGO:
        from django.core.wsgi import get_wsgi_application

        return get_wsgi_application()
    module_name, _, attribute = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in (attribute or "application").split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec} is {type(obj).__name__}, not a WSGI application")
    app: WSGIApp = obj
    return app


def describe(target: object) -> str:
    """A short name for log lines."""
    if isinstance(target, str):
        return target
    module = getattr(target, "__module__", "?")
    name = getattr(target, "__qualname__", type(target).__qualname__)
    return f"{module}:{name}"
