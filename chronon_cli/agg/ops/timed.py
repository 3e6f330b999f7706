"""FIRST, LAST, FIRST_K, LAST_K: ops ordered by event time.

Ties on ``ts`` are broken by the value, so merges are commutative: LAST keeps the largest
``(ts, value)`` pair, FIRST the smallest; LAST_K keeps the k largest pairs (output newest first),
FIRST_K the k smallest (output oldest first). Inputs without a ``ts`` are ignored.
"""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chronon_cli.agg import types as T
from chronon_cli.agg.ops import bounded
from chronon_cli.agg.ops.base import (
    ones,
    INT64_MAX,
    INT64_MIN,
    Op,
    ValueCodec,
    clean_float,
    field_numpy,
    gmax,
    gmin,
    gsum,
    int_arg,
    skip,
    struct_array,
)


class _FirstLast(Op):
    """IR: struct<ts: long, value: T>."""

    timed = True
    dense = True
    coded_components = ("value",)
    coded_output = True
    is_last = True

    def __init__(self, kind, args=None, value_type=None):
        super().__init__(kind, args, value_type)
        self.ir_type = pa.struct([("ts", pa.int64()), ("value", self.value_type)])
        self.output_type = self.value_type

    def _better(self, x, y) -> bool:
        """Does pair ``x`` win over pair ``y``?"""
        return x > y if self.is_last else x < y

    def update(self, ir, value, ts=None):
        if skip(value) or ts is None:
            return ir
        item = (int(ts), value)
        return item if ir is None or self._better(item, ir) else ir

    def merge(self, a, b):
        if a is None:
            return b
        if b is None:
            return a
        return b if self._better(b, a) else a

    def finalize(self, ir):
        if ir is None:
            return None
        return clean_float(ir[1]) if self.kind == T.FLOAT else ir[1]

    def to_storage(self, ir):
        return None if ir is None else {"ts": ir[0], "value": ir[1]}

    def from_storage(self, v):
        return None if v is None else (v["ts"], v["value"])

    # vectorized
    def _ident(self):
        if self.is_last:
            return INT64_MIN, (-np.inf if self.kind == T.FLOAT else INT64_MIN)
        return INT64_MAX, (np.inf if self.kind == T.FLOAT else INT64_MAX)

    def d_identity(self):
        ts, v = self._ident()
        return {"_n": 0, "ts": ts, "value": v}

    def d_rows(self, v, ts=None):
        return {"_n": ones(len(v)), "ts": ts.astype(np.int64, copy=False), "value": v}

    def d_group(self, c, g, size):
        ident_ts, ident_v = self._ident()
        red = gmax if self.is_last else gmin
        best_ts = red(c["ts"], g, size, ident_ts)
        tie = c["ts"] == best_ts[g]
        best_v = red(c["value"][tie], g[tie], size, ident_v)
        return {"_n": gsum(c["_n"], g, size), "ts": best_ts, "value": best_v}

    def d_merge(self, a, b):
        if self.is_last:
            take_b = (b["ts"] > a["ts"]) | ((b["ts"] == a["ts"]) & (b["value"] > a["value"]))
        else:
            take_b = (b["ts"] < a["ts"]) | ((b["ts"] == a["ts"]) & (b["value"] < a["value"]))
        return {
            "_n": a["_n"] + b["_n"],
            "ts": np.where(take_b, b["ts"], a["ts"]),
            "value": np.where(take_b, b["value"], a["value"]),
        }

    def d_finalize(self, c):
        valid = c["_n"] > 0
        if self.kind == T.FLOAT:
            valid &= np.isfinite(c["value"])
        return c["value"], valid

    def d_to_arrow(self, c, codec):
        valid = c["_n"] > 0
        return struct_array(
            [("ts", pa.array(c["ts"], mask=~valid, type=pa.int64())), ("value", codec.decode(c["value"], valid))],
            valid,
        )

    def d_from_arrow(self, arr):
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        ident_ts, ident_v = self._ident()
        codec, v, _ = ValueCodec.encode(self.kind, pc.struct_field(arr, ["value"]))
        ts = field_numpy(arr, "ts", 0, np.int64)
        return {
            "_n": valid.astype(np.int64),
            "ts": np.where(valid, ts, ident_ts),
            "value": np.where(valid, v, ident_v),
        }, codec


class First(_FirstLast):
    name = "first"
    is_last = False


class Last(_FirstLast):
    name = "last"
    is_last = True


class _FirstLastK(Op):
    """IR: list<struct<ts: long, value: T>>, ascending by (ts, value), at most k entries."""

    timed = True
    is_last = True

    def __init__(self, kind, args=None, value_type=None):
        super().__init__(kind, args, value_type)
        self.k = int_arg(self.args, "k")
        if self.k < 1:
            raise ValueError(f"{self.name}: k must be at least 1, got {self.k}")
        self.ir_type = pa.list_(pa.struct([("ts", pa.int64()), ("value", self.value_type)]))
        self.output_type = pa.list_(self.value_type)

    def ir_params(self):
        return (self.k,)

    def name_suffix(self):
        return f"{self.name}{self.k}"

    def update(self, ir, value, ts=None):
        if skip(value) or ts is None:
            return ir
        return bounded.insert(ir, (int(ts), value), self.k, self.is_last)

    def merge(self, a, b):
        return bounded.merge(a, b, self.k, self.is_last)

    def clone(self, ir):
        return None if ir is None else list(ir)

    def finalize(self, ir):
        if not ir:
            return None
        values = [v for _, v in ir]
        return values[::-1] if self.is_last else values

    def ir_of_values(self, values, ts=None):
        if ts is None:
            return None
        pairs = sorted((int(t), v) for v, t in zip(values, ts) if not skip(v) and t is not None)
        if not pairs:
            return None
        return pairs[-self.k:] if self.is_last else pairs[: self.k]

    def to_storage(self, ir):
        return None if ir is None else [{"ts": t, "value": v} for t, v in ir]

    def from_storage(self, v):
        return None if v is None else [(e["ts"], e["value"]) for e in v]


class FirstK(_FirstLastK):
    name = "first"
    is_last = False


class LastK(_FirstLastK):
    name = "last"
    is_last = True
