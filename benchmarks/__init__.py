"""Side-by-side benchmarks of reloader and its peers on real servers (`python -m benchmarks`).

Measures save-to-fresh latency, stale answers, lost requests, idle CPU, throughput and memory,
and how latency and idle cost scale with workers and watched files.
"""
