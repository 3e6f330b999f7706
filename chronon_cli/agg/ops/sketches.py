"""Approximate ops on Apache DataSketches: CPC, KLL (doubles), frequent-strings.

- APPROX_UNIQUE_COUNT(k): CPC sketch with lgK = k (default 8). Output: rounded estimate.
- APPROX_PERCENTILE(percentiles, k): exact sorted value list while n <= k, KLL doubles sketch
  beyond (KLL does not compact before n > k, so both are exact in that regime). Output:
  ``get_quantiles(percentiles, inclusive=True)`` of a KLL sketch holding the values.
- APPROX_HISTOGRAM_K(k): exact map while at most k distinct values, then a frequent-strings
  sketch with lg_max_map_size = max(3, bit_length(4k - 1)). Output: top k by (estimated) count.
"""
from __future__ import annotations

import bisect
import copy
import heapq
import json

import datasketches as ds
import numpy as np
import pyarrow as pa

from chronon_cli.agg import types as T
from chronon_cli.agg.ops.base import Op, int_arg, skip
from chronon_cli.agg.ops.collections import top_counts

NUMERIC = (T.INT, T.FLOAT, T.BOOL)


class ApproxUniqueCount(Op):
    """IR: CPC sketch (stored as its serialized bytes)."""

    name = "approx_unique_count"
    ir_type = pa.binary()
    output_type = pa.int64()

    def __init__(self, kind, args=None, value_type=None):
        super().__init__(kind, args, value_type)
        self.lg_k = int_arg(self.args, "k", 8)
        if not 4 <= self.lg_k <= 26:
            raise ValueError(f"approx_unique_count: lgK must be in [4, 26], got {self.lg_k}")
        self._conv = {T.INT: int, T.BOOL: int, T.FLOAT: float, T.STRING: str}[kind]

    def ir_params(self):
        return (self.lg_k,)

    def update(self, ir, value, ts=None):
        if skip(value):
            return ir
        if ir is None:
            ir = ds.cpc_sketch(self.lg_k)
        ir.update(self._conv(value))
        return ir

    def merge(self, a, b):
        if a is None:
            return self.clone(b)
        if b is None:
            return a
        union = ds.cpc_union(self.lg_k)
        union.update(a)
        union.update(b)
        return union.get_result()

    def clone(self, ir):
        return None if ir is None else copy.copy(ir)

    def finalize(self, ir):
        if ir is None or ir.is_empty():
            return None
        return int(round(ir.get_estimate()))

    def ir_of_values(self, values, ts=None):
        sk = None
        conv = self._conv
        for v in values:
            if not skip(v):
                if sk is None:
                    sk = ds.cpc_sketch(self.lg_k)
                sk.update(conv(v))
        return sk

    def to_storage(self, ir):
        return None if ir is None else ir.serialize()

    def from_storage(self, v):
        return None if v is None else ds.cpc_sketch.deserialize(bytes(v))


def parse_percentiles(args) -> list:
    raw = args.get("percentiles")
    if raw is None:
        return [0.5]
    try:
        values = json.loads(raw) if isinstance(raw, str) else list(raw)
        values = [float(p) for p in values]
    except (TypeError, ValueError):
        raise ValueError(f"approx_percentile: percentiles={raw!r} is not a list of numbers") from None
    if not values or any(not 0.0 <= p <= 1.0 for p in values):
        raise ValueError(f"approx_percentile: percentiles must be in [0, 1], got {raw!r}")
    return values


class ApproxPercentile(Op):
    """IR: a sorted list of doubles (n <= k) or a KLL doubles sketch (n > k)."""

    name = "approx_percentile"
    kinds = NUMERIC
    ir_type = pa.struct([("values", pa.list_(pa.float64())), ("sketch", pa.binary())])
    output_type = pa.list_(pa.float64())

    def __init__(self, kind, args=None, value_type=None):
        super().__init__(kind, args, value_type)
        self.k = int_arg(self.args, "k", 128)
        if not 8 <= self.k <= 65535:
            raise ValueError(f"approx_percentile: k must be in [8, 65535], got {self.k}")
        self.percentiles = parse_percentiles(self.args)

    def ir_params(self):
        return (self.k,)

    def _sketch(self, values) -> ds.kll_doubles_sketch:
        sk = ds.kll_doubles_sketch(self.k)
        if len(values):
            sk.update(np.asarray(values, dtype=np.float64))
        return sk

    def update(self, ir, value, ts=None):
        if skip(value):
            return ir
        x = float(value)
        if ir is None:
            return [x]
        if isinstance(ir, list):
            bisect.insort(ir, x)
            return self._sketch(ir) if len(ir) > self.k else ir
        ir.update(x)
        return ir

    def merge(self, a, b):
        if a is None:
            return self.clone(b)
        if b is None:
            return a
        if isinstance(a, list) and isinstance(b, list):
            merged = list(heapq.merge(a, b))
            return merged if len(merged) <= self.k else self._sketch(merged)
        if isinstance(a, list):
            a, b = copy.copy(b), a
        if isinstance(b, list):
            a.update(np.asarray(b, dtype=np.float64))
        else:
            a.merge(b)
        return a

    def clone(self, ir):
        if ir is None:
            return None
        return list(ir) if isinstance(ir, list) else copy.copy(ir)

    def finalize(self, ir):
        if ir is None:
            return None
        sk = self._sketch(ir) if isinstance(ir, list) else ir
        if sk.is_empty():
            return None
        return [float(q) for q in sk.get_quantiles(self.percentiles, inclusive=True)]

    def ir_of_values(self, values, ts=None):
        vals = np.asarray([float(v) for v in values if not skip(v)], dtype=np.float64)
        if len(vals) == 0:
            return None
        if len(vals) <= self.k:
            return sorted(vals.tolist())
        return self._sketch(vals)

    def to_storage(self, ir):
        if ir is None:
            return None
        if isinstance(ir, list):
            return {"values": list(ir), "sketch": None}
        return {"values": None, "sketch": ir.serialize()}

    def from_storage(self, v):
        if v is None:
            return None
        if v["sketch"] is not None:
            return ds.kll_doubles_sketch.deserialize(bytes(v["sketch"]))
        return list(v["values"])


class ApproxHistogramK(Op):
    """IR: exact map value -> count (at most k entries) or a frequent-strings sketch."""

    name = "approx_histogram_k"
    kinds = (T.STRING, T.INT, T.BOOL)
    ir_type = pa.struct([("counts", pa.map_(pa.string(), pa.int64())), ("sketch", pa.binary())])
    output_type = pa.map_(pa.string(), pa.int64())

    def __init__(self, kind, args=None, value_type=None):
        super().__init__(kind, args, value_type)
        self.k = int_arg(self.args, "k", 8)
        if self.k < 1:
            raise ValueError(f"approx_histogram_k: k must be at least 1, got {self.k}")
        self.lg_map_size = max(3, (4 * self.k - 1).bit_length())

    def ir_params(self):
        return (self.k,)

    def _to_sketch(self, counts: dict) -> ds.frequent_strings_sketch:
        sk = ds.frequent_strings_sketch(self.lg_map_size)
        for key in sorted(counts):
            sk.update(key, counts[key])
        return sk

    def update(self, ir, value, ts=None):
        if skip(value):
            return ir
        key = T.key_string(value)
        if ir is None:
            return {key: 1}
        if isinstance(ir, dict):
            ir[key] = ir.get(key, 0) + 1
            return self._to_sketch(ir) if len(ir) > self.k else ir
        ir.update(key)
        return ir

    def merge(self, a, b):
        if a is None:
            return self.clone(b)
        if b is None:
            return a
        if isinstance(a, dict) and isinstance(b, dict):
            for key, n in b.items():
                a[key] = a.get(key, 0) + n
            return self._to_sketch(a) if len(a) > self.k else a
        if isinstance(a, dict):
            a, b = copy.copy(b), a
        if isinstance(b, dict):
            for key in sorted(b):
                a.update(key, b[key])
        else:
            a.merge(b)
        return a

    def clone(self, ir):
        if ir is None:
            return None
        return dict(ir) if isinstance(ir, dict) else copy.copy(ir)

    def finalize(self, ir):
        if ir is None:
            return None
        if isinstance(ir, dict):
            return top_counts(ir, self.k) if ir else None
        if ir.is_empty():
            return None
        items = ir.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
        best = sorted(((item, est) for item, est, _lb, _ub in items), key=lambda e: (-e[1], e[0]))[: self.k]
        return dict(sorted(best)) or None

    def to_storage(self, ir):
        if ir is None:
            return None
        if isinstance(ir, dict):
            return {"counts": sorted(ir.items()), "sketch": None}
        return {"counts": None, "sketch": ir.serialize()}

    def from_storage(self, v):
        if v is None:
            return None
        if v["sketch"] is not None:
            return ds.frequent_strings_sketch.deserialize(bytes(v["sketch"]))
        return dict(v["counts"])
