"""Benchmarks and load tests: ``python -m loadtests <name>``."""
