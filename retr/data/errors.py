"""The one exception family of retr.

Every user mistake (a bad option value, config key or type, a malformed input file, a refused artifact or output
path) raises a :class:`RetrError` subclass with a one-line message that says what to do; the CLI prints that line
and exits 2. Any other exception is an internal failure and keeps its traceback (exit 1).
"""


class RetrError(Exception):
    """A user mistake; the message is one line saying what is wrong and what to do."""


class UsageError(RetrError, ValueError):
    """A bad option value, config key or config type."""


class DataError(RetrError, ValueError):
    """Malformed or inconsistent input data (the message names the file and, where known, the line)."""


class ArtifactError(RetrError):
    """A refused artifact or output path; the message names the path and what to do."""
