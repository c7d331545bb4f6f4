"""Hearing a logger of the product from a test: its own log lines are what the engine says
about work a test must count (loads, unloads, conditioning computed), not attributes kept
for tests."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def listening(logger_name: str, handler: logging.Handler) -> Iterator[None]:
    """`handler` gets the INFO records of `logger_name` while the block runs (its level is
    put back afterwards)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
