"""Errors raised on bad input data; messages name the file and line."""


class DataError(ValueError):
    """Malformed or inconsistent input data (the message names the file and, where known, the line)."""
