"""COUNT, SUM, AVERAGE, MIN, MAX: row-level and vectorized."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chronon_cli.agg import types as T
from chronon_cli.agg.ops.base import (
    ones,
    INT64_MAX,
    INT64_MIN,
    Comps,
    Op,
    ValueCodec,
    clean_float,
    field_numpy,
    float_array,
    gmax,
    gmin,
    gsum,
    safe_div,
    skip,
    struct_array,
)

NUMERIC = (T.INT, T.FLOAT, T.BOOL)


def _n_of(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=np.int64)
    return arr.is_valid().to_numpy(zero_copy_only=False).astype(np.int64)


class _Additive(Op):
    """Ops whose vectorized components (``_n`` and sums) group and merge by plain addition."""

    def d_group(self, c: Comps, g, size) -> Comps:
        return {name: gsum(values, g, size) for name, values in c.items()}

    def d_merge(self, a: Comps, b: Comps) -> Comps:
        return {name: a[name] + b[name] for name in a}


class Count(_Additive):
    """IR: number of non-null inputs (int64). Deletable."""

    name = "count"
    deletable = True
    dense = True
    ir_type = pa.int64()
    output_type = pa.int64()

    def update(self, ir, value, ts=None):
        if skip(value):
            return ir
        return 1 if ir is None else ir + 1

    def merge(self, a, b):
        if a is None:
            return b
        if b is None:
            return a
        return a + b

    def finalize(self, ir):
        return ir if ir else None

    def delete(self, ir, value, ts=None):
        if skip(value):
            return ir
        ir = (ir or 0) - 1
        return ir if ir > 0 else None

    def ir_of_values(self, values, ts=None):
        n = sum(1 for v in values if not skip(v))
        return n or None

    # vectorized
    def d_identity(self):
        return {"_n": 0}

    def d_rows(self, v, ts=None) -> Comps:
        return {"_n": ones(len(v))}

    def d_finalize(self, c: Comps):
        return c["_n"], c["_n"] > 0

    def d_to_arrow(self, c: Comps, codec=None) -> pa.Array:
        return pa.array(c["_n"], mask=c["_n"] == 0, type=pa.int64())

    def d_from_arrow(self, arr: pa.Array):
        return {"_n": pc.fill_null(arr, 0).to_numpy(zero_copy_only=False).astype(np.int64)}, None


class Sum(_Additive):
    """IR: the sum (int64 for integer/boolean inputs, float64 for floats). Deletable.

    Deleting cannot tell an emptied window from a zero sum (the IR has no count); pair SUM with
    COUNT when emptiness matters after deletions.
    """

    name = "sum"
    deletable = True
    dense = True
    kinds = NUMERIC

    def __init__(self, kind, args=None, value_type=None):
        super().__init__(kind, args, value_type)
        self.is_float = kind == T.FLOAT
        self.ir_type = self.output_type = pa.float64() if self.is_float else pa.int64()
        self._dtype = np.float64 if self.is_float else np.int64

    def _num(self, value):
        return float(value) if self.is_float else int(value)

    def update(self, ir, value, ts=None):
        if skip(value):
            return ir
        value = self._num(value)
        return value if ir is None else ir + value

    def merge(self, a, b):
        if a is None:
            return b
        if b is None:
            return a
        return a + b

    def finalize(self, ir):
        if ir is None:
            return None
        return clean_float(ir) if self.is_float else ir

    def delete(self, ir, value, ts=None):
        if skip(value):
            return ir
        return (ir if ir is not None else self._num(0)) - self._num(value)

    def d_identity(self):
        return {"_n": 0, "sum": 0}

    def d_rows(self, v, ts=None) -> Comps:
        return {"_n": ones(len(v)), "sum": v.astype(self._dtype, copy=False)}

    def d_finalize(self, c):
        valid = c["_n"] > 0
        if self.is_float:
            valid &= np.isfinite(c["sum"])
        return c["sum"], valid

    def d_to_arrow(self, c, codec=None):
        return pa.array(c["sum"], mask=c["_n"] == 0, type=self.ir_type)

    def d_from_arrow(self, arr):
        return {"_n": _n_of(arr), "sum": pc.fill_null(arr, 0).to_numpy(zero_copy_only=False).astype(self._dtype)}, None


class Average(_Additive):
    """IR: struct<sum: double, count: long>. Output double. Deletable."""

    name = "average"
    deletable = True
    dense = True
    kinds = NUMERIC
    ir_type = pa.struct([("sum", pa.float64()), ("count", pa.int64())])
    output_type = pa.float64()

    def update(self, ir, value, ts=None):
        if skip(value):
            return ir
        if ir is None:
            return (float(value), 1)
        return (ir[0] + float(value), ir[1] + 1)

    def merge(self, a, b):
        if a is None:
            return b
        if b is None:
            return a
        return (a[0] + b[0], a[1] + b[1])

    def finalize(self, ir):
        if ir is None or ir[1] <= 0:
            return None
        return clean_float(ir[0] / ir[1])

    def delete(self, ir, value, ts=None):
        if skip(value):
            return ir
        s, n = ir if ir is not None else (0.0, 0)
        n -= 1
        return (s - float(value), n) if n > 0 else None

    def to_storage(self, ir):
        return None if ir is None else {"sum": ir[0], "count": ir[1]}

    def from_storage(self, v):
        return None if v is None else (v["sum"], v["count"])

    def d_identity(self):
        return {"_n": 0, "sum": 0.0}

    def d_rows(self, v, ts=None):
        return {"_n": ones(len(v)), "sum": v.astype(np.float64, copy=False)}

    def d_finalize(self, c):
        mean = safe_div(c["sum"], c["_n"])
        return mean, (c["_n"] > 0) & np.isfinite(mean)

    def d_to_arrow(self, c, codec=None):
        valid = c["_n"] > 0
        return struct_array(
            [("sum", float_array(c["sum"], valid)), ("count", pa.array(c["_n"], mask=~valid, type=pa.int64()))],
            valid,
        )

    def d_from_arrow(self, arr):
        return {
            "_n": field_numpy(arr, "count", 0, np.int64),
            "sum": field_numpy(arr, "sum", 0.0, np.float64),
        }, None


class _Extreme(Op):
    """MIN / MAX. IR: the value (input type)."""

    dense = True
    coded_components = ("value",)
    coded_output = True
    is_max = False

    def __init__(self, kind, args=None, value_type=None):
        super().__init__(kind, args, value_type)
        self.ir_type = self.output_type = self.value_type

    def update(self, ir, value, ts=None):
        if skip(value):
            return ir
        if ir is None:
            return value
        if self.is_max:
            return value if value > ir else ir
        return value if value < ir else ir

    def merge(self, a, b):
        if a is None:
            return b
        if b is None:
            return a
        if self.is_max:
            return b if b > a else a
        return b if b < a else a

    def finalize(self, ir):
        if ir is None:
            return None
        return clean_float(ir) if self.kind == T.FLOAT else ir

    def ir_of_values(self, values, ts=None):
        vals = [v for v in values if not skip(v)]
        if not vals:
            return None
        return max(vals) if self.is_max else min(vals)

    def _identity(self, codec_kind):
        if codec_kind == T.FLOAT:
            return -np.inf if self.is_max else np.inf
        return INT64_MIN if self.is_max else INT64_MAX

    def d_identity(self):
        return {"_n": 0, "value": self._identity(self.kind)}

    def d_rows(self, v, ts=None):
        return {"_n": ones(len(v)), "value": v}

    def d_group(self, c, g, size):
        red = gmax if self.is_max else gmin
        return {"_n": gsum(c["_n"], g, size), "value": red(c["value"], g, size, self._identity(self.kind))}

    def d_merge(self, a, b):
        red = np.maximum if self.is_max else np.minimum
        return {"_n": a["_n"] + b["_n"], "value": red(a["value"], b["value"])}

    def d_finalize(self, c):
        valid = c["_n"] > 0
        if self.kind == T.FLOAT:
            valid &= np.isfinite(c["value"])
        return c["value"], valid

    def d_to_arrow(self, c, codec):
        return codec.decode(c["value"], c["_n"] > 0)

    def d_from_arrow(self, arr):
        codec, v, valid = ValueCodec.encode(self.kind, arr)
        v = np.where(valid, v, self._identity(self.kind))
        return {"_n": valid.astype(np.int64), "value": v}, codec


class Min(_Extreme):
    name = "min"
    is_max = False


class Max(_Extreme):
    name = "max"
    is_max = True
