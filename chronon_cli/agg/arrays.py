"""Arrow <-> numpy plumbing shared by the kernels: flattening, subkeys, map building."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chronon_cli.agg import types as T
from chronon_cli.agg.codes import to_array


def day_numbers(arr) -> np.ndarray:
    """A ``ds`` column (date32, date64, timestamp or ``YYYY-MM-DD`` string) -> int32 days since epoch."""
    arr = to_array(arr)
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        arr = arr.cast(pa.string()).cast(pa.date32())
    elif pa.types.is_timestamp(t) or pa.types.is_date64(t):
        arr = arr.cast(pa.date32())
    if arr.null_count:
        raise ValueError("ds has null values")
    return arr.cast(pa.int32()).to_numpy(zero_copy_only=False)


def date_array(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), type=pa.int32()).cast(pa.date32())


def int_numpy(arr) -> Tuple[np.ndarray, np.ndarray]:
    """An integer column -> (int64 values with nulls as 0, valid mask)."""
    arr = to_array(arr)
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        return pc.fill_null(arr, 0).cast(pa.int64()).to_numpy(zero_copy_only=False), valid
    return arr.cast(pa.int64()).to_numpy(zero_copy_only=False), np.ones(len(arr), dtype=bool)


def flatten(arr: pa.Array, flatten_kind: Optional[str]):
    """-> (element values, element subkeys or None, parent row index of each element).

    Without flattening the elements are the rows themselves and the parents are ``None``.
    """
    arr = to_array(arr)
    n = len(arr)
    if flatten_kind is None:
        return arr, None, None
    offsets = arr.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    lengths = np.diff(offsets)
    if arr.null_count:
        lengths = np.where(arr.is_valid().to_numpy(zero_copy_only=False), lengths, 0)
    parents = np.repeat(np.arange(n, dtype=np.int64), lengths)
    starts = np.cumsum(lengths) - lengths
    child = np.repeat(offsets[:-1] - starts, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)
    take = pa.array(child, type=pa.int64())
    if flatten_kind == "list":
        return arr.values.take(take), None, parents
    return arr.items.take(take), arr.keys.take(take), parents


def subkey_strings(arr: pa.Array, kind: str) -> pa.Array:
    """Bucket values -> their string form (see ``types.key_string``)."""
    arr = to_array(arr)
    if kind == T.STRING:
        return arr.cast(pa.string()) if pa.types.is_large_string(arr.type) else arr
    return arr.cast(pa.int64()).cast(pa.string()) if kind == T.INT else arr.cast(pa.string())


def sorted_codes(strings: pa.Array) -> Tuple[np.ndarray, np.ndarray, pa.Array]:
    """Strings -> (codes ranked in string order, valid mask, sorted dictionary)."""
    enc = pc.dictionary_encode(to_array(strings))
    dictionary = enc.dictionary
    order = pc.array_sort_indices(dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    idx = enc.indices
    valid = idx.is_valid().to_numpy(zero_copy_only=False) if idx.null_count else np.ones(len(idx), bool)
    codes = rank[pc.fill_null(idx, 0).to_numpy(zero_copy_only=False)] if len(order) else np.zeros(len(idx), np.int64)
    return codes, valid, dictionary.take(pa.array(order, type=pa.int64()))


def build_map(owner: np.ndarray, n_rows: int, keys: pa.Array, items: pa.Array) -> pa.Array:
    """Map array of ``n_rows`` rows from entries sorted by ``owner`` (row of each entry).

    Rows without entries are null.
    """
    counts = np.bincount(owner, minlength=n_rows) if len(owner) else np.zeros(n_rows, dtype=np.int64)
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    mask = np.append(counts == 0, False)
    off = pa.array(offsets.astype(np.int32), mask=mask, type=pa.int32())
    return pa.MapArray.from_arrays(off, keys, items)


def map_entries(arr: pa.Array):
    """A map column -> (row of each entry, keys, items) for the non-null maps."""
    values, keys, parents = flatten(arr, "map")
    return parents, keys, values


def map_lengths(arr) -> np.ndarray:
    """Number of entries of each map (0 for null maps)."""
    arr = to_array(arr)
    lengths = np.diff(arr.offsets.to_numpy(zero_copy_only=False).astype(np.int64))
    if arr.null_count:
        lengths = np.where(arr.is_valid().to_numpy(zero_copy_only=False), lengths, 0)
    return lengths
