"""Errors a message handler raises to steer what happens to the message."""


class PermanentError(Exception):
    """Retrying cannot help (bad data, broken invariant): park the message at once with this reason."""


class RetryableError(Exception):
    """A dependency is unavailable for now: retry with the growing delay."""
