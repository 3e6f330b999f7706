"""TOP_K, BOTTOM_K, UNIQUE_COUNT, BOUNDED_UNIQUE_COUNT, HISTOGRAM."""
from __future__ import annotations


import pyarrow as pa

from chronon_cli.agg import types as T
from chronon_cli.agg.ops import bounded
from chronon_cli.agg.ops.base import Op, int_arg, skip


class _TopBottomK(Op):
    """IR: list<T>, ascending, the k largest (TOP_K) or k smallest (BOTTOM_K) values.

    Output: TOP_K descending, BOTTOM_K ascending.
    """

    is_top = True

    def __init__(self, kind, args=None, value_type=None):
        super().__init__(kind, args, value_type)
        self.k = int_arg(self.args, "k")
        if self.k < 1:
            raise ValueError(f"{self.name}: k must be at least 1, got {self.k}")
        self.ir_type = self.output_type = pa.list_(self.value_type)

    def ir_params(self):
        return (self.k,)

    def name_suffix(self):
        return f"{self.name}{self.k}"

    def update(self, ir, value, ts=None):
        return ir if skip(value) else bounded.insert(ir, value, self.k, self.is_top)

    def merge(self, a, b):
        return bounded.merge(a, b, self.k, self.is_top)

    def clone(self, ir):
        return None if ir is None else list(ir)

    def finalize(self, ir):
        if not ir:
            return None
        return ir[::-1] if self.is_top else list(ir)

    def ir_of_values(self, values, ts=None):
        vals = sorted(v for v in values if not skip(v))
        if not vals:
            return None
        return vals[-self.k:] if self.is_top else vals[: self.k]

    def to_storage(self, ir):
        return None if ir is None else list(ir)

    def from_storage(self, v):
        return None if v is None else list(v)


class TopK(_TopBottomK):
    name = "top"
    is_top = True


class BottomK(_TopBottomK):
    name = "bottom"
    is_top = False


class UniqueCount(Op):
    """IR: the set of distinct values (stored as a sorted list<T>). Output: long."""

    name = "unique_count"

    def __init__(self, kind, args=None, value_type=None):
        super().__init__(kind, args, value_type)
        self.ir_type = pa.list_(self.value_type)
        self.output_type = pa.int64()

    def update(self, ir, value, ts=None):
        if skip(value):
            return ir
        if ir is None:
            return {value}
        ir.add(value)
        return ir

    def merge(self, a, b):
        if a is None:
            return None if b is None else set(b)
        if b is None:
            return a
        a |= b
        return a

    def clone(self, ir):
        return None if ir is None else set(ir)

    def finalize(self, ir):
        return len(ir) if ir else None

    def ir_of_values(self, values, ts=None):
        s = {v for v in values if not skip(v)}
        return s or None

    def to_storage(self, ir):
        return None if ir is None else sorted(ir)

    def from_storage(self, v):
        return None if v is None else set(v)


class BoundedUniqueCount(UniqueCount):
    """IR: the k smallest distinct values (a set of at most k). Output: min(distinct count, k)."""

    name = "bounded_unique_count"

    def __init__(self, kind, args=None, value_type=None):
        super().__init__(kind, args, value_type)
        self.k = int_arg(self.args, "k", 8)
        if self.k < 1:
            raise ValueError(f"{self.name}: k must be at least 1, got {self.k}")

    def ir_params(self):
        return (self.k,)

    def update(self, ir, value, ts=None):
        if skip(value):
            return ir
        if ir is None:
            return {value}
        if value in ir:
            return ir
        if len(ir) < self.k:
            ir.add(value)
        else:
            top = max(ir)
            if value < top:
                ir.discard(top)
                ir.add(value)
        return ir

    def merge(self, a, b):
        merged = super().merge(a, b)
        if merged is not None and len(merged) > self.k:
            merged = set(sorted(merged)[: self.k])
        return merged

    def ir_of_values(self, values, ts=None):
        s = super().ir_of_values(values)
        if s is not None and len(s) > self.k:
            s = set(sorted(s)[: self.k])
        return s


def top_counts(counts: dict, k: int) -> dict:
    """The k entries with the highest counts (ties: smaller key first); all entries if k <= 0."""
    if k <= 0 or len(counts) <= k:
        return dict(sorted(counts.items()))
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return dict(sorted(best))


class Histogram(Op):
    """IR: map<string, long> value -> count (zero entries removed). Deletable.

    Output: the map, restricted to the top k by count when k > 0. Values are keyed by their string
    form (integers in decimal, booleans ``true``/``false``).
    """

    name = "histogram"
    deletable = True
    kinds = (T.STRING, T.INT, T.BOOL)
    ir_type = output_type = pa.map_(pa.string(), pa.int64())

    def __init__(self, kind, args=None, value_type=None):
        super().__init__(kind, args, value_type)
        self.k = int_arg(self.args, "k", 0)

    def update(self, ir, value, ts=None):
        if skip(value):
            return ir
        key = T.key_string(value)
        if ir is None:
            return {key: 1}
        ir[key] = ir.get(key, 0) + 1
        return ir

    def merge(self, a, b):
        if a is None:
            return None if b is None else dict(b)
        if b is None:
            return a
        for key, n in b.items():
            total = a.get(key, 0) + n
            if total:
                a[key] = total
            else:
                a.pop(key, None)
        return a or None

    def delete(self, ir, value, ts=None):
        if skip(value):
            return ir
        key = T.key_string(value)
        ir = {} if ir is None else ir
        n = ir.get(key, 0) - 1
        if n:
            ir[key] = n
        else:
            ir.pop(key, None)
        return ir or None

    def clone(self, ir):
        return None if ir is None else dict(ir)

    def finalize(self, ir):
        if not ir:
            return None
        return top_counts(ir, self.k)

    def to_storage(self, ir):
        return None if ir is None else sorted(ir.items())

    def from_storage(self, v):
        return None if v is None else dict(v)
