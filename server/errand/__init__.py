"""errand: delegate coding tasks to background agents from your editor."""

__version__ = "0.1.0"
