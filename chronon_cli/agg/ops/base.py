"""The operation interface, shared helpers, and the value codec of the vectorized kernels.

Python (row-level) contract of every op, with ``None`` as the empty IR:

- ``update(ir, value, ts=None) -> ir``: ``None`` and NaN values are ignored (SEMANTICS §1; see
  docs/agg.md for the NaN policy). May mutate ``ir`` and return it.
- ``merge(a, b) -> ir``: associative and commutative; may mutate and return ``a``, never ``b``.
- ``finalize(ir) -> value``: ``None`` for an empty IR; NaN and +/-Inf doubles become ``None``.
- ``delete(ir, value, ts=None) -> ir``: only for ``deletable`` ops.
- ``to_storage(ir)`` / ``from_storage(v)``: the IR as the plain Python value of ``ir_type`` (the
  form ``pyarrow.Array.to_pylist`` gives and ``pyarrow.array`` takes); round-trips exactly.

Dense ops (``dense = True``) also have vectorized kernels over dicts of numpy *components*, each
dict carrying ``"_n"`` (how many inputs / IRs contributed; 0 means empty).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chronon_cli.agg import types as T

INT64_MIN = np.iinfo(np.int64).min
INT64_MAX = np.iinfo(np.int64).max

Comps = Dict[str, np.ndarray]


def skip(value) -> bool:
    """True for values every aggregation ignores: ``None`` and NaN."""
    return value is None or value != value


def clean_float(x) -> Optional[float]:
    """A finalized double: NaN and +/-Inf become ``None``."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


class Op:
    """Base class. Subclasses set ``name`` (lower-case op name used in feature names)."""

    name = "op"
    deletable = False
    timed = False
    dense = False
    kinds: Tuple[str, ...] = (T.INT, T.FLOAT, T.BOOL, T.STRING)
    # dense ops whose components hold input values (coded through a ValueCodec)
    coded_components: Tuple[str, ...] = ()
    coded_output = False

    def __init__(self, kind: str, args: Optional[Dict[str, str]] = None, value_type: Optional[pa.DataType] = None):
        if kind not in self.kinds:
            raise ValueError(f"{self.name} does not accept {kind} inputs (accepts: {', '.join(self.kinds)})")
        self.kind = kind
        self.args = dict(args or {})
        # the input's own Arrow type (e.g. int32): MIN/MAX/FIRST/... keep it in IRs and outputs
        self.value_type = value_type if value_type is not None else T.KIND_TYPES[kind]

    # ---- identity of the IR layout (the IR column it needs); ops sharing it share IR columns
    def ir_params(self) -> Tuple:
        return ()

    def name_suffix(self) -> str:
        """Op part of the feature name (SEMANTICS §4)."""
        return self.name

    ir_type: pa.DataType
    output_type: pa.DataType

    def update(self, ir, value, ts=None):
        raise NotImplementedError

    def merge(self, a, b):
        raise NotImplementedError

    def finalize(self, ir):
        raise NotImplementedError

    def delete(self, ir, value, ts=None):
        raise TypeError(f"{self.name} is not deletable")

    def clone(self, ir):
        return ir  # immutable IRs

    def to_storage(self, ir):
        return ir

    def from_storage(self, v):
        return v

    def ir_of_values(self, values: Sequence, ts: Optional[Sequence[int]] = None):
        """IR of a batch of values (default: one ``update`` per value)."""
        ir = None
        if ts is None:
            for v in values:
                ir = self.update(ir, v)
        else:
            for v, t in zip(values, ts):
                ir = self.update(ir, v, t)
        return ir


def int_arg(args: Dict[str, str], name: str, default: Optional[int] = None) -> int:
    raw = args.get(name)
    if raw is None:
        if default is None:
            raise ValueError(f"missing argument {name!r}")
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ValueError(f"argument {name}={raw!r} is not an integer") from None
    return value


# ------------------------------------------------------------------ vectorized helpers

def is_ones(x: np.ndarray) -> bool:
    """Is ``x`` the allocation-free ``ones(n)`` of a row-level IR?"""
    return x.ndim == 1 and x.strides == (0,) and len(x) > 0 and x[0] == 1


def is_zeros(x: np.ndarray) -> bool:
    return x.ndim == 1 and x.strides == (0,) and len(x) > 0 and x[0] == 0


def zeros(n: int) -> np.ndarray:
    """A read-only array of n float zeros without allocation."""
    return np.broadcast_to(np.float64(0.0), (n,))


def gsum(x: np.ndarray, g: np.ndarray, size: int) -> np.ndarray:
    """Per-group sums; exact for integers."""
    if x.dtype.kind == "f":
        return np.bincount(g, weights=x, minlength=size)
    if is_ones(x):
        return np.bincount(g, minlength=size).astype(np.int64, copy=False)
    out = np.zeros(size, dtype=np.int64)
    np.add.at(out, g, x)
    return out


def gmin(x: np.ndarray, g: np.ndarray, size: int, identity) -> np.ndarray:
    out = np.full(size, identity, dtype=x.dtype)
    np.minimum.at(out, g, x)
    return out


def gmax(x: np.ndarray, g: np.ndarray, size: int, identity) -> np.ndarray:
    out = np.full(size, identity, dtype=x.dtype)
    np.maximum.at(out, g, x)
    return out


def safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b for counts b >= 0, 0 where b == 0.

    Precondition (true for the kernels' components): ``a`` is 0 wherever ``b`` is 0, as an
    empty IR's sums are 0.
    """
    return a / np.maximum(b, 1)


class ValueCodec:
    """Maps the values of one Arrow array to numpy for the kernels and back.

    Integers -> int64, floats -> float64 (nulls -> NaN), booleans -> int64 0/1, strings -> int64
    ranks into a sorted dictionary (so numeric order is string order).
    """

    def __init__(self, kind: str, dictionary: Optional[pa.Array] = None, arrow_type: Optional[pa.DataType] = None):
        self.kind = kind
        self.dictionary = dictionary
        self.arrow_type = arrow_type if arrow_type is not None else T.KIND_TYPES[kind]

    @classmethod
    def encode(cls, kind: str, arr: pa.Array) -> Tuple["ValueCodec", np.ndarray, np.ndarray]:
        """-> (codec, values, valid mask). Invalid slots hold an arbitrary value."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if kind == T.STRING:
            if pa.types.is_large_string(arr.type):
                arr = arr.cast(pa.string())
            enc = pc.dictionary_encode(arr)
            dictionary = enc.dictionary
            order = pc.array_sort_indices(dictionary).to_numpy()
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order), dtype=np.int64)
            idx = enc.indices
            valid = _valid(idx)
            codes = rank[pc.fill_null(idx, 0).to_numpy()] if len(dictionary) else np.zeros(len(idx), np.int64)
            return cls(kind, dictionary.take(pa.array(order))), codes, valid
        if kind == T.FLOAT:
            codec = cls(kind, arrow_type=arr.type)
            if arr.type != pa.float64():
                arr = arr.cast(pa.float64())
            if arr.null_count == 0:
                v = arr.to_numpy(zero_copy_only=False)
                return codec, v, ~np.isnan(v)
            # zero-copy values (null slots hold garbage) + the validity bitmap
            v = np.frombuffer(arr.buffers()[1], dtype=np.float64, count=arr.offset + len(arr))[arr.offset:]
            valid = validity(arr)
            valid &= ~np.isnan(v)
            return codec, v, valid
        valid = _valid(arr)
        if kind == T.BOOL:
            v = pc.fill_null(arr, False).to_numpy(zero_copy_only=False).astype(np.int64)
        else:
            v = pc.fill_null(arr.cast(pa.int64()), 0).to_numpy()
        return cls(kind, arrow_type=arr.type), v, valid

    def lowest(self):
        return -np.inf if self.kind == T.FLOAT else INT64_MIN

    def highest(self):
        return np.inf if self.kind == T.FLOAT else INT64_MAX

    def decode(self, values: np.ndarray, valid: np.ndarray) -> pa.Array:
        mask = ~valid
        if self.kind == T.STRING:
            idx = np.where(valid, values, 0)
            if self.dictionary is None or len(self.dictionary) == 0:
                return pa.nulls(len(values), pa.string())
            return self.dictionary.take(pa.array(idx, mask=mask))
        if self.kind == T.BOOL:
            return pa.array(values.astype(bool), mask=mask, type=pa.bool_())
        if self.kind == T.FLOAT:
            out = pa.array(values.astype(np.float64), mask=mask, type=pa.float64())
        else:
            out = pa.array(values.astype(np.int64), mask=mask, type=pa.int64())
        return out if out.type == self.arrow_type else out.cast(self.arrow_type)


def validity(arr: pa.Array) -> np.ndarray:
    """Validity of a primitive array as a numpy bool array (from the bitmap, no compute call)."""
    n = len(arr)
    if arr.null_count == 0:
        return np.ones(n, dtype=bool)
    bitmap = arr.buffers()[0]
    if bitmap is None:  # e.g. null type
        return np.zeros(n, dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits[arr.offset:arr.offset + n].astype(bool)


_valid = validity


def ones(n: int) -> np.ndarray:
    """A read-only array of n int64 ones without allocation (``gsum`` counts it with bincount)."""
    return np.broadcast_to(np.int64(1), (n,))


def float_array(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    return pa.array(values.astype(np.float64, copy=False), mask=~valid, type=pa.float64())


def struct_array(fields: List[Tuple[str, pa.Array]], valid: np.ndarray) -> pa.Array:
    return pa.StructArray.from_arrays(
        [a for _, a in fields], names=[n for n, _ in fields], mask=pa.array(~valid, type=pa.bool_())
    )


def field_numpy(arr: pa.Array, name: str, fill, dtype) -> np.ndarray:
    """A struct field as numpy, nulls (of the field or of the struct) replaced by ``fill``."""
    f = pc.struct_field(arr, [name])
    return pc.fill_null(f, fill).to_numpy(zero_copy_only=False).astype(dtype, copy=False)
