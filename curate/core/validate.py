"""Parameter checks shared by every constructor.

Each helper takes the owner's name (for the message), the parameter's name and its
value; it returns the value converted to the expected type or raises a
:class:`CurateError` such as ``gopher_quality: min_doc_words must be an integer >= 0,
got 'abc'``. Values given as text (from the command line or YAML) are converted when
they spell a value of the expected type.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from curate.core.errors import CurateError


def _fail(owner: str, name: str, expected: str, value) -> CurateError:
    return CurateError(f"{owner}: {name} must be {expected}, got {value!r}")


def integer(owner: str, name: str, value, *, minimum: int | None = None,
            maximum: int | None = None, optional: bool = False) -> int | None:
    """An ``int`` in ``[minimum, maximum]`` (either bound may be None); None if ``optional``."""
    if value is None and optional:
        return None
    expected = "an integer" + (f" >= {minimum}" if minimum is not None else "") + (
        f" <= {maximum}" if maximum is not None else "") + (" or none" if optional else "")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise _fail(owner, name, expected, value) from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(owner, name, expected, value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _fail(owner, name, expected, value)
    return value


def positive_int(owner: str, name: str, value, *, optional: bool = False) -> int | None:
    """An integer >= 1."""
    return integer(owner, name, value, minimum=1, optional=optional)


def non_negative_int(owner: str, name: str, value, *, optional: bool = False) -> int | None:
    """An integer >= 0."""
    return integer(owner, name, value, minimum=0, optional=optional)


def number(owner: str, name: str, value, *, minimum: float | None = None,
           maximum: float | None = None, strict_minimum: bool = False,
           optional: bool = False) -> float | None:
    """A finite float in ``[minimum, maximum]`` (``(minimum, ...`` with ``strict_minimum``)."""
    if value is None and optional:
        return None
    low = "" if minimum is None else (f" > {minimum:g}" if strict_minimum else f" >= {minimum:g}")
    high = "" if maximum is None else f" <= {maximum:g}"
    expected = f"a number{low}{high}" + (" or none" if optional else "")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _fail(owner, name, expected, value) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(owner, name, expected, value)
    value = float(value)
    if minimum is not None and (value <= minimum if strict_minimum else value < minimum):
        raise _fail(owner, name, expected, value)
    if maximum is not None and value > maximum:
        raise _fail(owner, name, expected, value)
    return value


def fraction(owner: str, name: str, value, *, optional: bool = False) -> float | None:
    """A number in [0, 1]."""
    return number(owner, name, value, minimum=0.0, maximum=1.0, optional=optional)


def boolean(owner: str, name: str, value) -> bool:
    """``True``/``False`` (also the strings true/false, yes/no, 1/0)."""
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no",
                                                              "0"):
        return value.strip().lower() in ("true", "yes", "1")
    if not isinstance(value, bool):
        raise _fail(owner, name, "true or false", value)
    return value


def choice(owner: str, name: str, value, options: Iterable, *, optional: bool = False):
    """One of ``options``."""
    options = tuple(options)
    if value is None and optional:
        return None
    if value not in options:
        raise _fail(owner, name, "one of " + ", ".join(map(repr, options)), value)
    return value


def string(owner: str, name: str, value, *, optional: bool = False, empty: bool = False):
    """A string (non-empty unless ``empty``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not empty and not value):
        raise _fail(owner, name, "a non-empty string" if not empty else "a string", value)
    return value


def string_list(owner: str, name: str, value, *, optional: bool = False) -> list[str] | None:
    """A list of strings; a string is split on ``;`` (the list syntax of ``key=a;b;c``)."""
    if value is None and optional:
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(";") if part.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise _fail(owner, name, "a list of strings (a;b;c)", value)


def number_list(owner: str, name: str, value, *, minimum: float | None = None,
                maximum: float | None = None) -> list[float]:
    """A list of numbers; a string is split on ``;``."""
    if isinstance(value, str):
        value = [part for part in value.split(";") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise _fail(owner, name, "a list of numbers (a;b;c)", value)
    return [number(owner, name, v, minimum=minimum, maximum=maximum) for v in value]
