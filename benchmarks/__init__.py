"""Benchmarks, run from the repository root as modules: `.venv/bin/python -m benchmarks.NAME`
(so they import the test suite's helpers, `tests.*`, as a package). Not run by the tests."""
