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
        rank = np.cumsum(present, dtype=np.int32 if space < 2 ** 31 else np.int64)
        rank -= 1
        return np.take(rank, codes).astype(np.int64, copy=False), uniques
    uniques, inverse = np.unique(codes, return_inverse=True)
    return inverse.astype(np.int64, copy=False).reshape(-1), uniques


def pair_ids(a: np.ndarray, a_space: int, b: np.ndarray, b_space: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of codes -> (dense ids ordered by (a, b), a of each id, b of each id)."""
    if b_space == 1:
        ids, uniques = densify(a, a_space)
        return ids, uniques, np.zeros(len(uniques), dtype=np.int64)
    if a_space * max(b_space, 1) >= _MAX_SPACE:
        a, ua = densify(a, a_space)
        ids, uniques = densify(a * b_space + b, len(ua) * b_space)
        return ids, ua[uniques // b_space], uniques % b_space
    code = a.astype(np.int64)
    code *= b_space
    code += b
    ids, uniques = densify(code, a_space * b_space)
    return ids, uniques // b_space, uniques % b_space


def to_array(arr) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    return arr


def _encode(column) -> Tuple[pa.Array, pa.Array, pa.Array]:
    """-> (the column, its dictionary indices, the dictionary: values in order of first
    appearance). A chunked column is encoded chunk by chunk against one growing dictionary (the
    chunks are not concatenated first); every chunk then carries the final dictionary."""
    if isinstance(column, pa.ChunkedArray) and column.num_chunks > 1 and len(column):
        enc = pc.dictionary_encode(column)
        dictionary = enc.chunk(enc.num_chunks - 1).dictionary if enc.num_chunks else None
        if dictionary is not None and all(c.dictionary.equals(dictionary) for c in enc.chunks):  # (shared: cheap)
            idx = pa.chunked_array([c.indices for c in enc.chunks], type=enc.type.index_type).combine_chunks()
            return column, idx, dictionary
    arr = to_array(column)
    enc = pc.dictionary_encode(arr)
    return arr, enc.indices, enc.dictionary


class KeyCodes:
    """Row -> dense key id for the key columns of a table, and the distinct key values.

    ``ids[i]`` is the key id of row ``i`` (``-1`` for rows whose keys are all null, which every
    aggregation drops); ``keep`` marks the other rows (``all_kept`` if all); ``keys`` is a table
    with one row per key id. With ``dense=False`` ids may have gaps (see ``_int_range``).
    """

    all_kept: bool
    _raw = None  # integer fast path without densifying: ids are _raw - _lo, computed on demand

    def __init__(self, table: pa.Table, key_columns: Sequence[str], dense: bool = True):
        n = table.num_rows
        if len(key_columns) == 1 and self._int_range(table, key_columns[0], dense):
            return
        parts: List[Tuple[np.ndarray, int, pa.Array, pa.DataType]] = []
        nulls: List[np.ndarray] = []   # null rows of the key columns holding nulls
        complete = False               # a key column without nulls: no row has all keys null
        for name in key_columns:
            arr, idx, dictionary = _encode(table.column(name))
            null_code = len(dictionary)
            if idx.null_count:
                valid = idx.is_valid().to_numpy(zero_copy_only=False)
                codes = np.where(valid, pc.fill_null(idx, 0).to_numpy(zero_copy_only=False), null_code)
                nulls.append(~valid)
            else:
                codes = idx.to_numpy(zero_copy_only=False)
                complete = True
            parts.append((codes.astype(np.int64), null_code + 1, dictionary, arr.type))
        if complete or not nulls:
            self.keep, self.all_kept = np.ones(n, dtype=bool), True
        else:
            all_null = nulls[0]
            for m in nulls[1:]:
                all_null &= m
            self.keep = ~all_null
            self.all_kept = bool(self.keep.all())
        if len(parts) == 1:
            # dictionary indices are already dense (the null code only occurs on dropped rows)
            codes, radix, dictionary, typ = parts[0]
            self.ids = codes if self.all_kept else np.where(self.keep, codes, -1)
            self.num_keys = len(dictionary)
            self.keys = pa.table([dictionary if len(dictionary) else pa.nulls(0, typ)], names=list(key_columns))
            return
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

    def _int_range(self, table: pa.Table, name: str, dense: bool) -> bool:
        """Fast path for one integer key column without nulls and a compact value range: the key
        id is the value minus the minimum (no hashing). With ``dense=False`` ids may have gaps
        (``keys`` then holds every value of the range)."""
        column = table.column(name)
        if not pa.types.is_integer(column.type) or column.type == pa.uint64():
            return False   # (before concatenating the chunks of, e.g., a string column)
        arr = to_array(column)
        n = len(arr)
        if n == 0 or arr.null_count:
            return False
        v = arr.to_numpy(zero_copy_only=False)
        lo, hi = int(v.min()), int(v.max())
        span = hi - lo + 1
        if span > _DIRECT_FACTOR * n + _DIRECT_CONST:
            return False
        self.keep = np.ones(n, dtype=bool)
        self.all_kept = True
        if dense:
            ids, uniques = densify(v.astype(np.int64, copy=False) - lo, span)
            self.ids = ids
        else:
            uniques = np.arange(span, dtype=np.int64)
            self._raw, self._lo = v, lo
        self.num_keys = len(uniques)
        self.keys = pa.table([pa.array(uniques + lo, type=pa.int64()).cast(arr.type)], names=[name])
        return True

    def __getattr__(self, name):
        if name == "ids" and self._raw is not None:  # computed on demand on the fast path
            self.ids = self._raw.astype(np.int64, copy=False) - self._lo
            return self.ids
        raise AttributeError(name)

    def kept_ids(self, scale: int = 1, add=0) -> np.ndarray:
        """``ids * scale + add`` for the kept rows, fused into one pass on the integer fast path."""
        if self._raw is not None and "ids" not in self.__dict__:
            out = self._raw.astype(np.int64) if scale == 1 else self._raw * np.int64(scale)
            out += add
            out -= self._lo * scale
            return out
        ids = self.ids if self.all_kept else self.ids[self.keep]
        if scale == 1 and isinstance(add, int) and add == 0:
            return ids
        out = ids * scale
        out += add
        return out
