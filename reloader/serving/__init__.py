"""What to serve: the application, or, when it failed to load, an error page."""

from .disclosure import may_show_details
from .errorpage import ErrorApp
from .failure import LoadFailure

__all__ = ["ErrorApp", "LoadFailure", "may_show_details"]
