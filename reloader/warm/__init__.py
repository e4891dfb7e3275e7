"""Warm reloads under gunicorn: one watcher for the whole server, and workers forked from an
arbiter that already imported the third-party code they need.

`reloader.gunicorn` wires these parts into gunicorn's hooks:

- `rundir.py`: the files through which the processes talk (each worker's report of what it
  imported and watches, the arbiter's own files); the refresh log (`refreshlog`) and the
  last restart's record (`bursts`) live there too;
- `preload.py`, `probe.py`: importing, in a warm parent, the third-party modules the workers
  reported, those that processes forked from it found to import cleanly;
- `django_setup.py`, `opened.py`, `footprint.py`: `django.setup()` in a warm parent, the
  files it reads meanwhile, and the check that it hands nothing unsafe down to a fork;
- `tier.py`, `tier_process.py`, `forks.py`: the Django tier, a child of the arbiter that sets
  Django up and forks the workers (which the arbiter adopts), replaced when what it holds
  changes; `held.py`: what a warm parent tells the supervisor it holds;
- `supervisor.py`: the one watcher process, which restarts the workers, asks them to refresh
  (Django templates and translations), asks the arbiter for a new tier, or has it re-exec
  itself;
- `reexec.py`: replacing the arbiter's image, once a trial shows the new one starts;
- `arbiter.py` and `worker.py`: the two sides of it inside gunicorn.
"""

__all__: list[str] = []
