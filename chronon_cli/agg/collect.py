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
        order = np.lexsort((v, ent))
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
        order = np.lexsort((v, ent))
        e, x = ent[order], v[order]
        pos, size = _rank_in_group(e, n_ent)
        keep = (size - pos <= op.k) if op.is_top else (pos < op.k)
        e, x = e[keep], x[keep]
        values = codec.decode(x, np.ones(len(x), dtype=bool))
        return pa.ListArray.from_arrays(_offsets(e, n_ent), values, type=op.ir_type)
    if isinstance(op, TM._FirstLastK):
        order = np.lexsort((v, ts, ent))
        e, t, x = ent[order], ts[order], v[order]
        pos, size = _rank_in_group(e, n_ent)
        keep = (size - pos <= op.k) if op.is_last else (pos < op.k)
        e, t, x = e[keep], t[keep], x[keep]
        items = pa.StructArray.from_arrays(
            [pa.array(t, type=pa.int64()), codec.decode(x, np.ones(len(x), dtype=bool))], names=["ts", "value"])
        return pa.ListArray.from_arrays(_offsets(e, n_ent), items, type=op.ir_type)
    if isinstance(op, S.ApproxPercentile):
        return _percentile(op, codec, v, ent, n_ent)
    if isinstance(op, S.ApproxHistogramK):
        return _approx_histogram(op, codec, v, ent, n_ent)
    return None


def _percentile(op, codec, v, ent, n_ent) -> pa.Array:
    """Exact sorted lists for groups of at most k values; KLL sketches (per group) beyond."""
    x_all = v.astype(np.float64)
    order = np.lexsort((x_all, ent))
    e, x = ent[order], x_all[order]
    counts = np.bincount(e, minlength=n_ent)
    small = counts[e] <= op.k
    values = pa.ListArray.from_arrays(_offsets(e[small], n_ent), pa.array(x[small], type=pa.float64()))
    sketches = [None] * n_ent
    big = np.flatnonzero(counts > op.k)
    if len(big):
        starts = np.cumsum(counts) - counts
        for g in big.tolist():
            sketches[g] = op._sketch(x[starts[g]:starts[g] + counts[g]]).serialize()
    return pa.StructArray.from_arrays(
        [values, pa.array(sketches, type=pa.binary())], names=["values", "sketch"],
        mask=pa.array(counts == 0))


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
