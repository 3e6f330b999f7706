"""Vectorized IR builders for the collection ops (from raw element rows, by sorting).

UNIQUE_COUNT, BOUNDED_UNIQUE_COUNT, HISTOGRAM, TOP_K, BOTTOM_K, FIRST_K and LAST_K IRs are
sorted lists / maps, so a group's IR is a slice of the rows sorted by (group, value) or
(group, ts, value). The results equal the row-level ops' ``to_storage`` form exactly.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyarrow as pa

from chronon_cli.agg import arrays as A
from chronon_cli.agg import sorting
from chronon_cli.agg import types as T
from chronon_cli.agg.codes import pair_ids
from chronon_cli.agg.ops import collections as C
from chronon_cli.agg.ops import sketches as S
from chronon_cli.agg.ops import timed as TM
from chronon_cli.agg.ops.base import Op, ValueCodec


def _offsets(owner_sorted: np.ndarray, n: int) -> pa.Array:
    counts = np.bincount(owner_sorted, minlength=n) if len(owner_sorted) else np.zeros(n, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    mask = np.append(counts == 0, False)
    return pa.array(offsets.astype(np.int32), mask=mask, type=pa.int32())


def _offsets_of(counts: np.ndarray) -> pa.Array:
    """List offsets for groups of ``counts`` elements (empty groups are null lists)."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return pa.array(offsets.astype(np.int32), mask=np.append(counts == 0, False), type=pa.int32())


def _keep_k(order: np.ndarray, group: np.ndarray, n: int, k: int, last: bool):
    """``order`` sorts the rows by group: keep the last (or first) ``k`` rows of every group.
    -> (kept part of ``order``, kept rows per group)."""
    counts = np.bincount(group, minlength=n) if len(group) else np.zeros(n, dtype=np.int64)
    if len(counts) == 0 or counts.max() <= k:
        return order, counts
    ends = np.cumsum(counts)
    pos = np.arange(len(order), dtype=np.int64)
    if last:
        keep = pos >= np.repeat(ends - k, counts)
    else:
        keep = pos < np.repeat(ends - counts + k, counts)
    return order[keep], np.minimum(counts, k)


def _rank_in_group(owner_sorted: np.ndarray, n: int):
    """Position of each row within its group, and its group's size (rows sorted by group)."""
    counts = np.bincount(owner_sorted, minlength=n)
    starts = np.cumsum(counts) - counts
    pos = np.arange(len(owner_sorted), dtype=np.int64) - starts[owner_sorted]
    return pos, counts[owner_sorted]


def _histogram_keys(op: Op, codec: ValueCodec, v: np.ndarray):
    """-> (codes in string order, sorted dictionary of the string forms)."""
    if op.kind == T.STRING:
        return v, codec.dictionary
    if op.kind == T.BOOL:
        strings = pa.array(v.astype(bool)).cast(pa.string())
    else:
        strings = pa.array(v, type=pa.int64()).cast(pa.string())
    codes, _, dictionary = A.sorted_codes(strings)
    return codes, dictionary


def build(op: Op, codec: ValueCodec, v: np.ndarray, ts: Optional[np.ndarray], ent: np.ndarray,
          n_ent: int, weights: Optional[np.ndarray] = None) -> Optional[pa.Array]:
    """IR array (length ``n_ent``) for valid element rows, or ``None`` if ``op`` has no builder.

    ``weights`` (HISTOGRAM only): the count each row stands for; rows are then histogram entries
    whose values are already the string keys (``codec`` is a string codec).
    """
    if isinstance(op, C.Histogram):
        if weights is None:
            codes, dictionary = _histogram_keys(op, codec, v)
        else:
            codes, dictionary = v, codec.dictionary
        pid, p_ent, p_code = pair_ids(ent, n_ent, codes, max(len(dictionary), 1))
        if weights is None:
            counts = np.bincount(pid, minlength=len(p_ent)).astype(np.int64)
        else:
            counts = np.zeros(len(p_ent), dtype=np.int64)
            np.add.at(counts, pid, weights.astype(np.int64))
            nonzero = counts != 0
            p_ent, p_code, counts = p_ent[nonzero], p_code[nonzero], counts[nonzero]
        keys = dictionary.take(pa.array(p_code, type=pa.int64()))
        return A.build_map(p_ent, n_ent, keys, pa.array(counts, type=pa.int64()))
    if isinstance(op, C.UniqueCount):  # also BoundedUniqueCount
        order = sorting.by_group_value(ent, n_ent, v)
        e, x = ent[order], v[order]
        keep = np.ones(len(e), dtype=bool)
        keep[1:] = (e[1:] != e[:-1]) | (x[1:] != x[:-1])
        e, x = e[keep], x[keep]
        if isinstance(op, C.BoundedUniqueCount):
            pos, _ = _rank_in_group(e, n_ent)
            e, x = e[pos < op.k], x[pos < op.k]
        values = codec.decode(x, np.ones(len(x), dtype=bool))
        return pa.ListArray.from_arrays(_offsets(e, n_ent), values, type=op.ir_type)
    if isinstance(op, C._TopBottomK):
        order = sorting.by_group_value(ent, n_ent, v)
        order, kept = _keep_k(order, ent, n_ent, op.k, op.is_top)
        values = codec.decode(v[order], np.ones(len(order), dtype=bool))
        return pa.ListArray.from_arrays(_offsets_of(kept), values, type=op.ir_type)
    if isinstance(op, TM._FirstLastK):
        order = sorting.by_group_time_value(ent, n_ent, ts, v)
        order, kept = _keep_k(order, ent, n_ent, op.k, op.is_last)
        items = pa.StructArray.from_arrays(
            [pa.array(ts[order], type=pa.int64()), codec.decode(v[order], np.ones(len(order), dtype=bool))],
            names=["ts", "value"])
        return pa.ListArray.from_arrays(_offsets_of(kept), items, type=op.ir_type)
    if isinstance(op, S.ApproxPercentile):
        return _percentile(op, codec, v, ent, n_ent)
    if isinstance(op, S.ApproxHistogramK):
        return _approx_histogram(op, codec, v, ent, n_ent)
    return None


def _percentile(op, codec, v, ent, n_ent) -> pa.Array:
    """Exact sorted lists for groups of at most k values; KLL sketches (per group) beyond."""
    x_all = v.astype(np.float64, copy=False)
    order = sorting.by_group_value(ent, n_ent, x_all)
    x = x_all[order]
    counts = np.bincount(ent, minlength=n_ent) if len(ent) else np.zeros(n_ent, dtype=np.int64)
    big = np.flatnonzero(counts > op.k)
    if len(big) == 0:
        values = pa.ListArray.from_arrays(_offsets_of(counts), pa.array(x, type=pa.float64()))
        sketch_array = pa.nulls(n_ent, pa.binary())
    else:
        small_counts = np.where(counts > op.k, 0, counts)
        small = np.repeat(counts <= op.k, counts)
        values = pa.ListArray.from_arrays(_offsets_of(small_counts), pa.array(x[small], type=pa.float64()))
        sketches = [None] * n_ent
        starts = np.cumsum(counts) - counts
        for g in big.tolist():
            sketches[g] = op._sketch(x[starts[g]:starts[g] + counts[g]]).serialize()
        sketch_array = pa.array(sketches, type=pa.binary())
    return pa.StructArray.from_arrays(
        [values, sketch_array], names=["values", "sketch"], mask=pa.array(counts == 0))


def _approx_histogram(op, codec, v, ent, n_ent) -> pa.Array:
    """Exact maps for groups with at most k distinct values; frequent-items sketches beyond."""
    codes, dictionary = _histogram_keys(op, codec, v)
    pid, p_ent, p_code = pair_ids(ent, n_ent, codes, max(len(dictionary), 1))
    counts = np.bincount(pid, minlength=len(p_ent)).astype(np.int64)
    distinct = np.bincount(p_ent, minlength=n_ent)
    small = distinct[p_ent] <= op.k
    keys = dictionary.take(pa.array(p_code[small], type=pa.int64()))
    exact = A.build_map(p_ent[small], n_ent, keys, pa.array(counts[small], type=pa.int64()))
    sketches = [None] * n_ent
    big = np.flatnonzero(distinct > op.k)
    if len(big):
        starts = np.cumsum(distinct) - distinct
        names = dictionary.to_pylist()
        for g in big.tolist():
            lo, hi = starts[g], starts[g] + distinct[g]
            sketches[g] = op._to_sketch(dict(zip((names[c] for c in p_code[lo:hi]), counts[lo:hi].tolist()))).serialize()
    return pa.StructArray.from_arrays(
        [exact, pa.array(sketches, type=pa.binary())], names=["counts", "sketch"], mask=pa.array(distinct == 0))
