"""Spark's hash partitioning in numpy: ``pmod(hash(keys), n)`` for Arrow columns, bit for bit.

``repartition(n, *keys)`` sends a row to partition ``pmod(Murmur3Hash(keys, seed=42), n)``. The
backfill's IR table is bucketed that way, so a Python task that reads rows straight from parquet
files (not through a Spark shuffle) must pick its bucket's rows with the very same function. This
is Spark's ``Murmur3_x86_32`` (``hashInt``, ``hashLong``, and the legacy ``hashUnsafeBytes`` that
Spark uses for strings: trailing bytes are mixed one signed byte at a time), chained over the key
columns (each column's hash seeds the next; a null leaves the running hash unchanged). Supported
key types: strings, integers, booleans and dates; ``supported`` tells.
"""
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SEED = 42
C1, C2 = np.uint32(0xCC9E2D51), np.uint32(0x1B873593)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _mix_k1(k1: np.ndarray) -> np.ndarray:
    return _rotl(k1 * C1, 15) * C2


def _mix_h1(h1: np.ndarray, k1: np.ndarray) -> np.ndarray:
    return _rotl(h1 ^ k1, 13) * np.uint32(5) + np.uint32(0xE6546B64)


def _fmix(h1: np.ndarray, length) -> np.ndarray:
    h1 = h1 ^ np.asarray(length, dtype=np.uint32)
    h1 ^= h1 >> np.uint32(16)
    h1 *= np.uint32(0x85EBCA6B)
    h1 ^= h1 >> np.uint32(13)
    h1 *= np.uint32(0xC2B2AE35)
    h1 ^= h1 >> np.uint32(16)
    return h1


def _hash_int(values: np.ndarray, seed: np.ndarray) -> np.ndarray:
    return _fmix(_mix_h1(seed, _mix_k1(values.astype(np.int32).view(np.uint32))), 4)


def _hash_long(values: np.ndarray, seed: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64).view(np.uint64)
    low = (v & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    high = (v >> np.uint64(32)).astype(np.uint32)
    return _fmix(_mix_h1(_mix_h1(seed, _mix_k1(low)), _mix_k1(high)), 8)


def _words(data: np.ndarray) -> np.ndarray:
    """A little-endian uint32 view of ``data`` with one word starting at every byte offset (zero
    padded at the end), so the words at any offsets are one gather, without a byte grid."""
    padded = np.zeros(len(data) + 4, dtype=np.uint8)
    padded[:len(data)] = data
    return np.ndarray(shape=(len(data) + 1,), dtype="<u4", buffer=padded, strides=(1,))


def _hash_strings(column: pa.Array, seed: np.ndarray) -> np.ndarray:
    """Spark's ``hashUnsafeBytes`` of each string's UTF-8 bytes (nulls: the caller keeps the seed)."""
    width = np.int64 if pa.types.is_large_string(column.type) else np.int32
    offsets = np.frombuffer(column.buffers()[1], dtype=width)[column.offset:column.offset + len(column) + 1]
    offsets = offsets.astype(np.int64)
    data = column.buffers()[2]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    words = _words(data)
    out = np.empty(len(column), dtype=np.uint32)
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        h1 = seed[rows].copy()
        first = starts[rows]
        aligned = int(length) - int(length) % 4
        for w in range(0, aligned, 4):
            h1 = _mix_h1(h1, _mix_k1(words[first + w]))
        for b in range(aligned, int(length)):  # one signed byte at a time
            h1 = _mix_h1(h1, _mix_k1(data[first + b].view(np.int8).astype(np.int32).view(np.uint32)))
        out[rows] = _fmix(h1, length)
    return out


def _hash_column(column: pa.Array, seed: np.ndarray) -> np.ndarray:
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.dictionary_decode()
        kind = column.type
    valid = np.ones(len(column), dtype=bool) if column.null_count == 0 else \
        np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        hashed = _hash_strings(column.fill_null(""), seed)
    elif pa.types.is_boolean(kind):
        hashed = _hash_int(column.fill_null(False).to_numpy(zero_copy_only=False).astype(np.int32), seed)
    elif pa.types.is_int64(kind) or pa.types.is_uint64(kind):
        hashed = _hash_long(column.fill_null(0).to_numpy(zero_copy_only=False), seed)
    elif pa.types.is_integer(kind):
        hashed = _hash_int(column.fill_null(0).to_numpy(zero_copy_only=False), seed)
    elif pa.types.is_date32(kind):
        hashed = _hash_int(column.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False), seed)
    else:
        raise TypeError(f"no Spark-compatible hash for key type {kind}")
    return np.where(valid, hashed, seed)


def supported(kind: pa.DataType) -> bool:
    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind)
            or (pa.types.is_integer(kind) and not pa.types.is_uint64(kind) and not pa.types.is_uint32(kind))
            or pa.types.is_date32(kind))


LONG_STRING_BYTES = 32  # mean UTF-8 length above which strings are hashed once per distinct value


def _long_strings(column: pa.Array) -> bool:
    valid = len(column) - column.null_count
    return valid > 0 and pc.sum(pc.binary_length(column)).as_py() > LONG_STRING_BYTES * valid


def spark_hash(table: pa.Table, columns: Sequence[str]) -> np.ndarray:
    """Spark SQL's ``hash(columns...)`` (int32) of every row of ``table``."""
    h = np.full(table.num_rows, SEED, dtype=np.uint32)
    for i, name in enumerate(columns):
        column = table.column(name).combine_chunks()
        if i == 0 and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) and \
                _long_strings(column):
            # same seed on every row: hash each distinct string once (for short strings hashing
            # every row is about twice as fast as finding the distinct ones)
            encoded = column.dictionary_encode()
            distinct = _hash_column(encoded.dictionary, np.full(len(encoded.dictionary), SEED, dtype=np.uint32))
            indices = encoded.indices.to_numpy(zero_copy_only=False) if encoded.null_count == 0 else \
                encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
            h = distinct[indices] if len(distinct) else h
            if encoded.null_count:
                h = np.where(np.asarray(pc.is_valid(encoded).to_numpy(zero_copy_only=False), dtype=bool), h, SEED)
            continue
        h = _hash_column(column, h)
    return h.view(np.int32)


def spark_partition(table: pa.Table, columns: Sequence[str], partitions: int) -> np.ndarray:
    """The partition ``repartition(partitions, *columns)`` sends each row of ``table`` to."""
    return np.mod(spark_hash(table, columns).astype(np.int64), partitions)
