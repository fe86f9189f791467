"""Arrow types that combine: the one rule for unifying column and id types across shards,
batches, score tables and selections.

``string``/``large_string`` become ``string``, integer widths ``int64``, integers beside
floats ``float64`` (never for ids), nulls take the other type, dictionaries their value
type; anything else only as Arrow's permissive promotion allows.
"""

from __future__ import annotations

import pyarrow as pa


def is_string(type_: pa.DataType) -> bool:
    """``string`` or ``large_string``."""
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def family(type_: pa.DataType) -> str:
    """``"string"``, ``"binary"``, ``"integer"``, ``"float"`` or the type's own name."""
    if is_string(type_):
        return "string"
    if pa.types.is_binary(type_) or pa.types.is_large_binary(type_):
        return "binary"
    if pa.types.is_integer(type_):
        return "integer"
    if pa.types.is_floating(type_):
        return "float"
    return str(type_)


_CANONICAL = {"string": pa.string(), "binary": pa.binary(), "integer": pa.int64(),
              "float": pa.float64()}


def canonical_id_type(type_: pa.DataType) -> pa.DataType:
    """The type ids of ``type_`` are read as (``string`` or ``int64`` for those families)."""
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    return _CANONICAL.get(family(type_), type_)


def unify_types(a: pa.DataType, b: pa.DataType, *, ids: bool = False) -> pa.DataType | None:
    """The type that values of types ``a`` and ``b`` both convert to without loss, or
    None: ``string``/``large_string`` -> ``string``, integer widths -> ``int64``,
    integer and float -> ``float64`` (not for ids), null -> the other type, dictionary
    -> its values' type; other types as Arrow's permissive promotion allows."""
    if a == b:
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if pa.types.is_dictionary(a) or pa.types.is_dictionary(b):
        return unify_types(a.value_type if pa.types.is_dictionary(a) else a,
                           b.value_type if pa.types.is_dictionary(b) else b, ids=ids)
    fa, fb = family(a), family(b)
    if fa == fb and fa in _CANONICAL:
        return _CANONICAL[fa]
    if {fa, fb} == {"integer", "float"}:
        return None if ids else pa.float64()
    if fa in _CANONICAL or fb in _CANONICAL or pa.types.is_boolean(a) or \
            pa.types.is_boolean(b):
        return None
    try:
        return pa.unify_schemas([pa.schema([("x", a)]), pa.schema([("x", b)])],
                                promote_options="permissive").field("x").type
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
