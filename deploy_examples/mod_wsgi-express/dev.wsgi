# mod_wsgi-express entry point for development: the demo app, restarted when a file is saved.
from reloader import wrap

application = wrap("demo.wsgi:application")
