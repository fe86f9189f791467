"""The contracts every other layer builds on; imports nothing above it.

``curate.core`` depends only on the standard library, numpy, pyarrow and xxhash:

- :mod:`curate.core.errors`: :class:`CurateError`, a user's mistake reported as one line.
- :mod:`curate.core.validate`: parameter checks that every constructor uses.
- :mod:`curate.core.hashing`: one canonical fingerprint of values and files.
- :mod:`curate.core.cache`: one content-addressed cache (tables and JSON by key).
- :mod:`curate.core.tables`: score-table and selection schemas, their join by id and
  the one id-to-position alignment.
- :mod:`curate.core.scorer`: the scorer protocol and its capability attributes.
- :mod:`curate.core.filter`: the filter contract (``Decision``, ``Filter``, ``select``).
- :mod:`curate.core.registry`: registered names (decorators, entry points, plugins).
"""
