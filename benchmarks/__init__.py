"""Benchmarks: `make bench` prints numbers and ratios (never timed tests)."""
