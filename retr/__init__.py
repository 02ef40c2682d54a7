"""retr: decoder-only LLMs as dense retrievers, end to end, with artifacts that trace every number."""

__version__ = "0.1.0"
