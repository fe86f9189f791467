"""User-facing errors.

A :class:`CurateError` is a mistake in the user's input (a bad file, a missing
column, an unknown recipe key). The CLI prints its message as one line and exits
non-zero; anything else is a bug and keeps its traceback.
"""


class CurateError(Exception):
    """An error in the user's input, reported as one readable line."""
