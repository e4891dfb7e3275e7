# mod_wsgi entry point for development: the demo app, restarted when a source file is saved.
from reloader import wrap

application = wrap("demo.wsgi:application")
