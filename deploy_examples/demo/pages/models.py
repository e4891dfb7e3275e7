from django.db import models

# Edit me and reload /models-version/: the reload demo and the benchmark's models edit use it.
VERSION = "m1"


class Note(models.Model):
    # A real model, so this module is what Django loads at setup (no migration: never queried).
    text = models.CharField(max_length=200)
