"""Finalize whole IR columns into feature columns (vectorized for dense ops)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from chronon_cli.agg import arrays as A
from chronon_cli.agg import regroup
from chronon_cli.agg.codes import to_array
from chronon_cli.agg.plan import Feature


def _finalize_plain(feature: Feature, arr: pa.Array):
    """-> (output values, valid mask) for an array of op-level IRs."""
    ir_op, op = feature.column.op, feature.op
    if ir_op.dense:
        comps, codec = ir_op.d_from_arrow(arr)
        v, ok = op.d_finalize(comps)
        out = codec.decode(v, ok) if op.coded_output else pa.array(v, mask=~ok, type=op.output_type)
        return out, ok
    if regroup.supports(op):
        return regroup.finalize(op, arr)
    values = [op.finalize(ir_op.from_storage(x)) for x in arr.to_pylist()]
    return pa.array(values, type=op.output_type), np.array([v is not None for v in values], dtype=bool)


def finalize_array(feature: Feature, arr) -> pa.Array:
    """IR column values (of ``feature.column.ir_type``) -> feature values (``feature.output_type``)."""
    arr = to_array(arr)
    if not feature.column.subkeyed:
        return _finalize_plain(feature, arr)[0]
    owner, keys, items = A.map_entries(arr)
    values, ok = _finalize_plain(feature, items)
    sel = pa.array(np.flatnonzero(ok), type=pa.int64())
    return A.build_map(owner[ok], len(arr), keys.take(sel), values.take(sel))
