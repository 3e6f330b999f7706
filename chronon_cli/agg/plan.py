"""From a compiled GroupBy to IR columns and features (SEMANTICS §3 buckets/flattening, §4 names).

An ``IrColumn`` is one (input, operation, IR parameters, bucket) combination: the unit stored in
daily IR tables and KV values. Windows share IR columns. A ``Feature`` is one output column: an IR
column finalized over one window.

The Python IR of an IR column is the op's IR, or -- for bucketed aggregations and map inputs
("subkeyed") -- a ``dict`` subkey -> op IR without empty entries.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import pyarrow as pa

from chronon_cli.agg import types as T
from chronon_cli.agg import windows as W
from chronon_cli.agg.ops import Op, make_op, op_name
from chronon_cli.spec import ttypes


def _identifier(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return "_" + name if not name or name[0].isdigit() else name


def _items(value):
    if isinstance(value, dict):
        return value.items()
    return value  # Arrow's to_pylist form of a map: list of (key, value) pairs


class IrColumn:
    """One IR column with its flattening and bucketing; row-level update/merge/finalize."""

    def __init__(self, name: str, input_column: str, operation: int, op: Op, shape: T.InputShape,
                 bucket: Optional[str]):
        self.name = name
        self.input_column = input_column
        self.operation = operation
        self.op = op
        self.shape = shape
        self.bucket = bucket
        self.subkeyed = bucket is not None or shape.flatten == "map"
        self.ir_type = pa.map_(pa.string(), op.ir_type) if self.subkeyed else op.ir_type

    # -------------------------------------------------------------- row-level
    def _apply(self, fn, ir, value, ts, bucket):
        if self.bucket is not None:
            if bucket is None:
                return ir
            sub = T.key_string(bucket)
            inner = fn_flat(self.shape.flatten, fn, None if ir is None else ir.get(sub), value, ts)
            ir = {} if ir is None else ir
            if inner is None:
                ir.pop(sub, None)
            else:
                ir[sub] = inner
            return ir or None
        if self.shape.flatten == "map":
            if value is None:
                return ir
            ir = {} if ir is None else ir
            for sub, v in _items(value):
                if sub is None:
                    continue
                inner = fn(ir.get(sub), v, ts)
                if inner is None:
                    ir.pop(sub, None)
                else:
                    ir[sub] = inner
            return ir or None
        return fn_flat(self.shape.flatten, fn, ir, value, ts)

    def update(self, ir, value, ts=None, bucket=None):
        """Add one input row (``value`` is the raw column value: scalar, list or map)."""
        return self._apply(self.op.update, ir, value, ts, bucket)

    def delete(self, ir, value, ts=None, bucket=None):
        if not self.op.deletable:
            raise TypeError(f"{self.op.name} is not deletable")
        return self._apply(self.op.delete, ir, value, ts, bucket)

    def merge(self, a, b):
        if not self.subkeyed:
            return self.op.merge(a, b)
        if b is None:
            return a
        a = {} if a is None else a
        for sub, inner in b.items():
            merged = self.op.merge(a.get(sub), inner)
            if merged is None:
                a.pop(sub, None)
            else:
                a[sub] = merged
        return a or None

    def clone(self, ir):
        if ir is None:
            return None
        if self.subkeyed:
            return {sub: self.op.clone(inner) for sub, inner in ir.items()}
        return self.op.clone(ir)

    def finalize(self, ir, op: Optional[Op] = None):
        op = op or self.op
        if ir is None:
            return None
        if not self.subkeyed:
            return op.finalize(ir)
        out = {}
        for sub in sorted(ir):
            value = op.finalize(ir[sub])
            if value is not None:
                out[sub] = value
        return out or None

    def to_storage(self, ir):
        if ir is None:
            return None
        if self.subkeyed:
            return [(sub, self.op.to_storage(ir[sub])) for sub in sorted(ir)] or None
        return self.op.to_storage(ir)

    def from_storage(self, v):
        if v is None:
            return None
        if self.subkeyed:
            return {sub: self.op.from_storage(inner) for sub, inner in _items(v)} or None
        return self.op.from_storage(v)


def fn_flat(flatten, fn, ir, value, ts):
    if flatten == "list":
        if value is None:
            return ir
        for v in value:
            ir = fn(ir, v, ts)
        return ir
    return fn(ir, value, ts)


@dataclass
class Feature:
    name: str
    column_index: int
    column: IrColumn
    op: Op                         # finalizing op (same IR as column.op; own finalize args)
    window: Optional[ttypes.Window]
    window_key: Optional[str]      # "7d", "12h" or None (lifetime)
    output_type: pa.DataType

    def finalize(self, ir):
        return self.column.finalize(ir, self.op)


@dataclass
class Plan:
    key_columns: List[str]
    input_columns: List[str]
    columns: List[IrColumn]
    features: List[Feature]
    needs_ts: bool


def build_plan(group_by: ttypes.GroupBy, input_schema: pa.Schema) -> Plan:
    keys = list(group_by.keyColumns or [])
    if not keys:
        raise ValueError("GroupBy has no key columns")
    for k in keys:
        if input_schema.get_field_index(k) < 0:
            raise ValueError(f"key column {k!r} is not in the input schema")
    aggregations = list(group_by.aggregations or [])
    if not aggregations:
        raise ValueError("GroupBy has no aggregations (pure entity GroupBys are not aggregated)")

    def col_type(name: str) -> pa.DataType:
        idx = input_schema.get_field_index(name)
        if idx < 0:
            raise ValueError(f"column {name!r} is not in the input schema {input_schema.names}")
        return input_schema.field(idx).type

    reserved = set(keys) | {"ds", "ts"}
    columns: List[IrColumn] = []
    by_identity: Dict[Any, int] = {}
    features: List[Feature] = []
    input_columns: List[str] = []
    needs_ts = False

    for agg in aggregations:
        if agg.inputColumn is None or agg.operation is None:
            raise ValueError(f"aggregation {agg} needs an input column and an operation")
        shape = T.input_shape(agg.inputColumn, col_type(agg.inputColumn))
        buckets = list(agg.buckets or [None])
        wins = [W.parse(w) for w in (agg.windows or [None])]
        try:
            op = make_op(agg.operation, shape.kind, agg.argMap, shape.value_type)
        except ValueError as e:
            raise ValueError(f"aggregation {op_name(agg.operation)} of {agg.inputColumn!r}: {e}") from None
        if agg.inputColumn not in reserved and agg.inputColumn not in input_columns:
            input_columns.append(agg.inputColumn)
        needs_ts = needs_ts or op.timed or any(w is not None for w in wins) or agg.inputColumn == "ts"
        for bucket in buckets:
            if bucket is not None:
                T.bucket_kind(bucket, col_type(bucket))
                if shape.flatten == "map":
                    raise ValueError(f"aggregation of map column {agg.inputColumn!r} cannot also be bucketed")
                if bucket not in reserved and bucket not in input_columns:
                    input_columns.append(bucket)
                needs_ts = needs_ts or bucket == "ts"
            identity = (agg.inputColumn, agg.operation, op.ir_params(), bucket)
            if identity not in by_identity:
                base = f"{agg.inputColumn}_{op.name_suffix()}"
                params_in_name = op.name_suffix() != op.name
                if op.ir_params() and not params_in_name:
                    base += "_" + "_".join(f"k{p}" for p in op.ir_params())
                if bucket is not None:
                    base += f"_by_{bucket}"
                name = _identifier(base)
                taken = reserved | {c.name for c in columns}
                n = 2
                while name in taken:
                    name, n = f"{_identifier(base)}_{n}", n + 1
                by_identity[identity] = len(columns)
                columns.append(IrColumn(name, agg.inputColumn, agg.operation, op, shape, bucket))
            idx = by_identity[identity]
            column = columns[idx]
            out_type = pa.map_(pa.string(), op.output_type) if column.subkeyed else op.output_type
            for w in wins:
                fname = f"{agg.inputColumn}_{op.name_suffix()}{W.suffix(w)}" + (f"_by_{bucket}" if bucket else "")
                features.append(Feature(fname, idx, column, op, w, W.key(w), out_type))

    names = [f.name for f in features]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate feature names: {', '.join(dupes)}")
    clash = sorted(set(names) & reserved)
    if clash:
        raise ValueError(f"feature names clash with key/time columns: {', '.join(clash)}")
    return Plan(keys, input_columns, columns, features, needs_ts)
