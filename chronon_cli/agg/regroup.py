"""Vectorized merge and finalize of collection IRs (lists and maps) by regrouping their elements.

Merging TOP_K / BOTTOM_K / FIRST_K / LAST_K / UNIQUE_COUNT / BOUNDED_UNIQUE_COUNT / HISTOGRAM IRs
is the same as building the IR from the union of their elements, so ``recollect`` flattens the
stored IRs and rebuilds with ``collect.build``. A row may feed several groups (``rows``/``groups``
pairs), which is how one pass produces every (entity, date) window of a snapshot.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chronon_cli.agg import arrays as A
from chronon_cli.agg import collect
from chronon_cli.agg import types as T
from chronon_cli.agg.codes import to_array
from chronon_cli.agg.ops import collections as C
from chronon_cli.agg.ops import timed as TM
from chronon_cli.agg.ops.base import Op, ValueCodec

_OPS = (C.Histogram, C.UniqueCount, C._TopBottomK, TM._FirstLastK)


def supports(op: Op) -> bool:
    return isinstance(op, _OPS)


def _element_ranges(arr: pa.Array, kind: str):
    values, keys, parents = A.flatten(arr, kind)
    counts = np.bincount(parents, minlength=len(arr)) if len(parents) else np.zeros(len(arr), dtype=np.int64)
    starts = np.cumsum(counts) - counts
    return values, keys, counts, starts


def _expand(counts: np.ndarray, starts: np.ndarray, rows: np.ndarray, groups: np.ndarray):
    """Element indices and element groups for (row, group) pairs."""
    n = counts[rows]
    total = int(n.sum())
    first = np.cumsum(n) - n
    idx = np.repeat(starts[rows] - first, n) + np.arange(total, dtype=np.int64)
    return idx, np.repeat(groups, n)


def recollect(op: Op, arr, rows: np.ndarray, groups: np.ndarray, n_groups: int) -> pa.Array:
    """IR array of ``n_groups`` groups: group g merges the IRs ``arr[r]`` of pairs (r, g)."""
    arr = to_array(arr)
    kind = "map" if isinstance(op, C.Histogram) else "list"
    values, keys, counts, starts = _element_ranges(arr, kind)
    idx, egroup = _expand(counts, starts, rows, groups)
    take = pa.array(idx, type=pa.int64())
    if isinstance(op, C.Histogram):
        codec, codes, _ = ValueCodec.encode(T.STRING, keys.take(take))
        weights = values.take(take).to_numpy(zero_copy_only=False)
        return collect.build(op, codec, codes, None, egroup, n_groups, weights=weights)
    if isinstance(op, TM._FirstLastK):
        items = values.take(take)
        ts = pc.struct_field(items, ["ts"]).to_numpy(zero_copy_only=False).astype(np.int64)
        codec, v, _ = ValueCodec.encode(op.kind, pc.struct_field(items, ["value"]))
        return collect.build(op, codec, v, ts, egroup, n_groups)
    codec, v, _ = ValueCodec.encode(op.kind, values.take(take))
    return collect.build(op, codec, v, None, egroup, n_groups)


def _reverse(arr: pa.Array) -> pa.Array:
    """Reverse every list of a list array (null lists stay null)."""
    values, _, counts, starts = _element_ranges(arr, "list")
    owner = np.repeat(np.arange(len(arr), dtype=np.int64), counts)
    rev = 2 * starts[owner] + counts[owner] - 1 - np.arange(len(owner), dtype=np.int64)
    offsets = np.zeros(len(arr) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    off = pa.array(offsets.astype(np.int32), mask=np.append(~valid, False), type=pa.int32())
    return pa.ListArray.from_arrays(off, values.take(pa.array(rev, type=pa.int64())))


def finalize(op: Op, arr) -> Tuple[pa.Array, np.ndarray]:
    """Feature values (``op.output_type``) and validity for an array of ``op``'s IRs."""
    arr = to_array(arr)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    if isinstance(op, C.UniqueCount):
        return pc.list_value_length(arr).cast(pa.int64()), valid
    if isinstance(op, C._TopBottomK):
        out = _reverse(arr) if op.is_top else arr
        return out.cast(op.output_type), valid
    if isinstance(op, TM._FirstLastK):
        lists = _reverse(arr) if op.is_last else arr
        values, _, counts, _ = _element_ranges(lists, "list")
        offsets = np.zeros(len(arr) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        off = pa.array(offsets.astype(np.int32), mask=np.append(~valid, False), type=pa.int32())
        return pa.ListArray.from_arrays(off, pc.struct_field(values, ["value"]), type=op.output_type), valid
    if isinstance(op, C.Histogram):
        if op.k <= 0:
            return arr.cast(op.output_type), valid
        counts_, keys, owner = A.flatten(arr, "map")
        counts = counts_.to_numpy(zero_copy_only=False)
        key_rank, _, _ = A.sorted_codes(keys)
        order = np.lexsort((key_rank, -counts, owner))
        own = owner[order]
        n_rows = np.bincount(own, minlength=len(arr))
        pos = np.arange(len(own)) - (np.cumsum(n_rows) - n_rows)[own]
        kept = order[pos < op.k]
        kept = kept[np.lexsort((key_rank[kept], owner[kept]))]
        take = pa.array(kept, type=pa.int64())
        return A.build_map(owner[kept], len(arr), keys.take(take), counts_.take(take)).cast(op.output_type), valid
    raise TypeError(f"no vectorized finalize for {op.name}")
