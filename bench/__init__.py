"""Benchmarks (`make bench`): they measure and print; the tests assert behaviour."""
