"""Resilience tests: the real stack, with one of its processes or dependencies broken."""
