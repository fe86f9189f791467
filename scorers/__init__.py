"""Scorers: text quality rules, classifiers, language models, deduplication.

Each module registers its scorers when imported (``curate.core.registry.SCORERS``); the
registry imports them from the ``curate.scorers`` entry points on first lookup, so
importing one scorer module does not import the others. The training-dynamics scorers
live in :mod:`scorers.dynamics`, which imports the training harness.
"""
