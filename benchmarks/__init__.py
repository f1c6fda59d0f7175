"""Benchmarks of the real stack (`make bench`). Not tests: they measure, they do not assert."""
