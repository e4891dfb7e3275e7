# Edit me and reload /version/ to see the new code served by every worker.
VERSION = "v1"
