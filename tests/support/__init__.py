"""The test suite's helpers (not tests): stand-ins, clip writers, the tiny checkpoint and the
container release check (`python -m tests.support.container_check`)."""
