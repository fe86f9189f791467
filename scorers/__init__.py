"""Scorers: text quality rules, classifiers, deduplication."""
