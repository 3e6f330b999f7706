"""Input value types: which Arrow types an aggregation accepts, and how list/map inputs flatten.

An input column is a *primitive* (integer, floating point, boolean, string), a ``list<primitive>``
(aggregates its elements) or a ``map<string, primitive>`` (aggregates per map key, yields a map).
Integers of every width become ``int64``, floats ``float64``, ``large_string`` ``string``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pyarrow as pa
import pyarrow.types as pat

INT = "int"
FLOAT = "float"
BOOL = "bool"
STRING = "string"


def value_kind(t: pa.DataType) -> Optional[str]:
    """Kind of a primitive Arrow type, or ``None`` when it is not a supported primitive."""
    if pat.is_boolean(t):
        return BOOL
    if pat.is_integer(t):
        return INT
    if pat.is_float32(t) or pat.is_float64(t):
        return FLOAT
    if pat.is_string(t) or pat.is_large_string(t):
        return STRING
    return None


KIND_TYPES = {INT: pa.int64(), FLOAT: pa.float64(), BOOL: pa.bool_(), STRING: pa.string()}


@dataclass(frozen=True)
class InputShape:
    """How one input column is read: ``flatten`` is ``None``, ``"list"`` or ``"map"``."""

    kind: str                    # value kind of the aggregated elements
    flatten: Optional[str]       # None | "list" | "map"
    value_type: pa.DataType      # Arrow type of the aggregated elements (large_string -> string)


def _normal(t: pa.DataType) -> pa.DataType:
    return pa.string() if pat.is_large_string(t) else t


def input_shape(column: str, t: pa.DataType) -> InputShape:
    """Classify an input column's Arrow type; ``ValueError`` if unsupported."""
    kind = value_kind(t)
    if kind is not None:
        return InputShape(kind, None, _normal(t))
    if pat.is_list(t) or pat.is_large_list(t):
        kind = value_kind(t.value_type)
        if kind is not None:
            return InputShape(kind, "list", _normal(t.value_type))
    if pat.is_map(t):
        if value_kind(t.key_type) == STRING:
            kind = value_kind(t.item_type)
            if kind is not None:
                return InputShape(kind, "map", _normal(t.item_type))
    raise ValueError(
        f"input column {column!r} has unsupported type {t}: use an integer, float, boolean or "
        "string column, a list of those, or a map<string, those>"
    )


def bucket_kind(column: str, t: pa.DataType) -> str:
    """Bucket columns are strings, integers or booleans (the map key is their string form)."""
    kind = value_kind(t)
    if kind not in (STRING, INT, BOOL):
        raise ValueError(f"bucket column {column!r} has unsupported type {t}: use string, integer or boolean")
    return kind


def key_string(value) -> str:
    """String form of a bucket / histogram value: strings as is, ``true``/``false``, integers in decimal."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(int(value))
