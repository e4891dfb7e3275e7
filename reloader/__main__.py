"""`python -m reloader`: see reloader.cli."""

from .cli import main

main()
