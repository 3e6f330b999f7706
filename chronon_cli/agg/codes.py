"""Dense integer codes for keys and groups (the vectorized kernels group on int64 codes)."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Direct addressing (mask + cumsum) when the code space is at most this many cells per row plus a
# constant; otherwise codes are densified by sorting (np.unique).
_DIRECT_FACTOR = 4
_DIRECT_CONST = 1 << 22
_MAX_SPACE = 1 << 62


def densify(codes: np.ndarray, space: int) -> Tuple[np.ndarray, np.ndarray]:
    """Codes in ``[0, space)`` -> (dense ids, in the order of the codes; sorted unique codes)."""
    if len(codes) == 0:
        return codes.astype(np.int64), codes.astype(np.int64)
    if space <= _DIRECT_FACTOR * len(codes) + _DIRECT_CONST:
        present = np.zeros(space, dtype=bool)
        present[codes] = True
        uniques = np.flatnonzero(present)
        rank = np.cumsum(present, dtype=np.int64) - 1
        return rank[codes], uniques
    uniques, inverse = np.unique(codes, return_inverse=True)
    return inverse.astype(np.int64, copy=False).reshape(-1), uniques


def pair_ids(a: np.ndarray, a_space: int, b: np.ndarray, b_space: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of codes -> (dense ids ordered by (a, b), a of each id, b of each id)."""
    if a_space * max(b_space, 1) >= _MAX_SPACE:
        a, ua = densify(a, a_space)
        ids, uniques = densify(a * b_space + b, len(ua) * b_space)
        return ids, ua[uniques // b_space], uniques % b_space
    ids, uniques = densify(a.astype(np.int64, copy=False) * b_space + b, a_space * b_space)
    return ids, uniques // b_space, uniques % b_space


def to_array(arr) -> pa.Array:
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


class KeyCodes:
    """Row -> dense key id for the key columns of a table, and the distinct key values.

    ``ids[i]`` is the key id of row ``i`` (``-1`` for rows whose keys are all null, which every
    aggregation drops); ``keep`` marks the other rows; ``keys`` is a table with one row per key id.
    """

    def __init__(self, table: pa.Table, key_columns: Sequence[str]):
        n = table.num_rows
        parts: List[Tuple[np.ndarray, int, pa.Array, pa.DataType]] = []
        all_null = np.ones(n, dtype=bool)
        for name in key_columns:
            arr = to_array(table.column(name))
            enc = pc.dictionary_encode(arr)
            idx = enc.indices
            null_code = len(enc.dictionary)
            if idx.null_count:
                valid = idx.is_valid().to_numpy(zero_copy_only=False)
                codes = np.where(valid, pc.fill_null(idx, 0).to_numpy(zero_copy_only=False), null_code)
            else:
                valid = np.ones(n, dtype=bool)
                codes = idx.to_numpy(zero_copy_only=False)
            all_null &= ~valid
            parts.append((codes.astype(np.int64), null_code + 1, enc.dictionary, arr.type))
        self.keep = ~all_null
        code = np.zeros(int(self.keep.sum()), dtype=np.int64)
        space = 1
        history: list = []  # ("radix", r) or ("dense", uniques), to decode the unique codes
        for codes, radix, _, _ in parts:
            if space * radix >= _MAX_SPACE:
                code, uniques = densify(code, space)
                history.append(("dense", uniques))
                space = len(uniques)
            code = code * radix + codes[self.keep]
            space *= radix
            history.append(("radix", radix))
        dense, uniques = densify(code, space)
        self.ids = np.full(n, -1, dtype=np.int64)
        self.ids[self.keep] = dense
        self.num_keys = len(uniques)
        per_col: List[np.ndarray] = []
        rest = uniques.astype(np.int64)
        for step in reversed(history):
            if step[0] == "radix":
                per_col.append(rest % step[1])
                rest = rest // step[1]
            else:
                rest = step[1][rest]
        per_col.reverse()
        columns = []
        for (_, radix, dictionary, typ), c in zip(parts, per_col):
            mask = c == radix - 1
            if len(dictionary) == 0:
                columns.append(pa.nulls(len(c), typ))
            else:
                columns.append(dictionary.take(pa.array(np.where(mask, 0, c), mask=mask, type=pa.int64())))
        self.keys = pa.table(columns, names=list(key_columns))
