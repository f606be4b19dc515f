"""Benchmarks for rehabmap (see bench/README.md). Nothing here runs in the test suite."""
