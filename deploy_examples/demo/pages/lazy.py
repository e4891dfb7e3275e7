# Imported only when /lazy/ is first requested, long after the worker started.
LAZY = "lazy-v1"
