"""curate: score, select, tag and order training data."""
__version__ = "0.1.0"
