"""Row orders of the kernels, as ``np.lexsort`` gives them but faster.

``np.lexsort`` runs one stable (merge / tim) sort per key; numpy's default ``argsort`` / ``sort``
of one int64 or float64 array is a much faster SIMD sort. The helpers below pack the keys into one
int64 where the ranges allow it and give the same order as ``np.lexsort`` on the same keys. Ties
(rows equal in every key) that could be told apart afterwards (float keys holding -0.0 or NaN, or a
timed tie) are put back in row order, as ``np.lexsort`` leaves them; equal integer keys are
indistinguishable, so their relative order is left as the sort makes it.
"""
from __future__ import annotations

import numpy as np

_SMALL = 4096          # below this many rows np.lexsort is as fast
_LIMIT = 1 << 62


def _canonical_ties(order: np.ndarray, tie: np.ndarray, *minor) -> np.ndarray:
    """Reorder the runs of ``order`` that ``tie`` (``tie[p]``: position p and p+1 compare equal on
    the packed keys) joins by the ``minor`` keys (most significant first), then by row."""
    pairs = np.flatnonzero(tie)
    if len(pairs) == 0:
        return order
    # tied positions (p and p + 1 of each tied pair), ascending; a run begins where p - 1 is no tie
    idx = np.union1d(pairs, pairs + 1)
    begins = np.ones(len(idx), dtype=bool)
    inner = idx > 0
    begins[inner] = ~tie[idx[inner] - 1]
    run = np.cumsum(begins)
    sub = order[idx]
    keys = (sub,) + tuple(m[sub] for m in reversed(minor)) + (run,)
    order[idx] = sub[np.lexsort(keys)]
    return order


def _has_nan(x: np.ndarray) -> bool:
    """Does a float array hold NaN? (Its sum is NaN if so, without a mask; inf - inf also is.)"""
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.isnan(x.sum()) and np.isnan(x).any())


def _needs_float_ties(x: np.ndarray) -> bool:
    """Could rows with equal float keys be told apart (signed zeros, NaN payloads)?"""
    if x.dtype.kind != "f":
        return False
    if x.dtype == np.float64:
        if len(x) and x.min() > 0:   # (a NaN would make the minimum NaN)
            return False
        # -0.0 is the one float64 whose bits are INT64_MIN
        return bool((x.view(np.int64) == np.iinfo(np.int64).min).any()) or _has_nan(x)
    zero = x == 0
    return bool(np.signbit(x[zero]).any() or np.isnan(x).any()) if zero.any() else bool(np.isnan(x).any())


def by_group_value(group: np.ndarray, n_groups: int, x: np.ndarray, *minor: np.ndarray,
                   float_ties=None) -> np.ndarray:
    """Order of the rows by (group, x), as ``np.lexsort((x, group))``; groups in ``[0, n_groups)``.

    ``minor`` keys (most significant first) order rows tied on (group, x) whose x could be told
    apart (float -0.0 / 0.0, NaN payloads) before row order, as
    ``np.lexsort(minor[::-1] + (x, group))``; rows with indistinguishable keys may come in any order.
    ``float_ties``: ``_needs_float_ties(x)`` if the caller has it."""
    n = len(x)
    if n < max(_SMALL, 2):
        return np.lexsort(tuple(minor[::-1]) + (x, group))
    n_groups = max(int(n_groups), 1)
    if x.dtype.kind in "ib" or (x.dtype.kind == "u" and x.dtype.itemsize < 8):
        lo, hi = int(x.min()), int(x.max())
        span = hi - lo + 1
        if n_groups * span < _LIMIT:
            c = group.astype(np.int64) * span
            c += x.astype(np.int64) - lo
            return np.argsort(c)
    if float_ties is None:
        float_ties = _needs_float_ties(x)
    if x.dtype == np.float64 and not float_ties:
        return _by_group_float(group, n_groups, x)
    shift = int(n).bit_length()
    if (n_groups << shift) >= _LIMIT:
        return np.lexsort(tuple(minor[::-1]) + (x, group))
    ox = np.argsort(x)
    packed = group[ox].astype(np.int64)
    packed <<= shift
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    packed &= (1 << shift) - 1
    order = ox[packed]
    if float_ties:
        g, v = group[order], x[order]
        tie = (g[1:] == g[:-1]) & ((v[1:] == v[:-1]) | (np.isnan(v[1:]) & np.isnan(v[:-1])))
        order = _canonical_ties(order, tie, x, *minor)
    return order


_MIN_VALUE_BITS = 24         # value bits from which _by_group_float packs the row index with them,
_MIN_SPARSE_VALUE_BITS = 12  # or from which it does when groups are small next to 2^value bits
_TIE_MARGIN = 64             # "small": 2^kept bits >= _TIE_MARGIN x the mean group size


def _float_image(x: np.ndarray) -> np.ndarray:
    """float64 -> uint64 with the same order (for x without NaN; -0.0 < 0.0)."""
    bits = x.view(np.int64)
    key = bits >> 63
    key &= np.int64(0x7FFFFFFFFFFFFFFF)
    key ^= bits
    key = key.view(np.uint64)
    key ^= np.uint64(1 << 63)
    return key


def _by_group_float(group: np.ndarray, n_groups: int, x: np.ndarray) -> np.ndarray:
    """(group, x) order for float64 x without NaN or -0.0: one sort of the group packed with the
    leading bits of x's order-preserving integer image (from its minimum) and, when they fit, the
    row index (a value sort, much faster than an argsort); rows tied on those bits are re-sorted
    by x."""
    n = len(x)
    group_bits = max(int(n_groups - 1).bit_length(), 1)
    idx_bits = max(int(n - 1).bit_length(), 1)
    value_bits = 64 - group_bits - idx_bits
    # distinct values tied on the kept bits are re-sorted after: with small groups (e.g. a few
    # events per key and day) they stay rare even with fewer bits
    if value_bits >= _MIN_VALUE_BITS or (value_bits >= _MIN_SPARSE_VALUE_BITS
                                         and (1 << value_bits) >= _TIE_MARGIN * n / max(n_groups, 1)):
        lowest = x.min()
        if lowest >= 0:   # non-negative (no -0.0 here): the bits themselves are the image
            key = np.subtract(x.view(np.uint64), lowest.view(np.uint64))
        else:
            key = _float_image(x)
            key -= key.min()
        shift = max(int(key.max()).bit_length() - value_bits, 0)
        if shift:
            key >>= np.uint64(shift)
        key <<= np.uint64(idx_bits)
        packed = np.arange(n, dtype=np.uint64)   # (group, value bits, row index), in place
        packed |= key
        np.copyto(key, group, casting="unsafe")
        key <<= np.uint64(value_bits + idx_bits)
        packed |= key
        packed.sort()
        order = np.bitwise_and(packed, np.uint64((1 << idx_bits) - 1), out=key).view(np.int64)
        packed >>= np.uint64(idx_bits)
        ps = packed
    else:
        key = _float_image(x)
        x_bits = 63 - group_bits
        key >>= np.uint64(64 - x_bits)
        packed = group.astype(np.int64)
        packed <<= x_bits
        packed |= key.view(np.int64)
        order = np.argsort(packed)
        ps = packed[order]
    pairs = np.flatnonzero(ps[1:] == ps[:-1])
    if len(pairs) == 0:
        return order
    # runs of rows with equal x throughout are indistinguishable: only runs holding different x
    # values need re-sorting
    differ = x[order[pairs]] != x[order[pairs + 1]]
    if not differ.any():
        return order
    tie = np.zeros(len(order) - 1, dtype=bool)
    tie[pairs] = True
    if not differ.all():
        begins = np.ones(len(pairs), dtype=bool)   # tied pairs starting a run
        begins[1:] = pairs[1:] != pairs[:-1] + 1
        run = np.cumsum(begins) - 1
        need = np.zeros(int(run[-1]) + 1, dtype=bool)
        need[run[differ]] = True
        tie[pairs[~need[run]]] = False
    return _canonical_ties(order, tie, x)


def stable_by_code(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Stable order of the rows by integer codes in ``[0, n_codes)`` (``np.argsort(codes,
    kind="stable")``), by 16-bit radix passes when the codes fit 32 bits."""
    if n_codes <= 1 << 16:
        return np.argsort(codes.astype(np.uint16), kind="stable")
    if n_codes <= 1 << 32:
        low = np.argsort((codes & 0xFFFF).astype(np.uint16), kind="stable")
        high = np.argsort((codes[low] >> 16).astype(np.uint16), kind="stable")
        return low[high]
    return np.argsort(codes, kind="stable")


def by_group_time_value(group: np.ndarray, n_groups: int, ts: np.ndarray, x: np.ndarray,
                        *minor: np.ndarray) -> np.ndarray:
    """Order of the rows by (group, ts, x), as ``np.lexsort((x, ts, group))``; ``minor`` keys (most
    significant first) then order rows tied on (group, ts, x), before row order.

    (group, ts) is packed into one int64 ``c``; ``c`` packed with the row index is sorted by value
    (much faster than an argsort). When both do not fit 64 bits, the leading bits of ``c`` are kept
    if groups are small next to the time resolution left (rows tied on them are re-sorted)."""
    n = len(x)
    if n < max(_SMALL, 2):
        return np.lexsort(tuple(minor[::-1]) + (x, ts, group))
    t0, t1 = int(ts.min()), int(ts.max())
    span = t1 - t0 + 1
    n_groups = max(int(n_groups), 1)
    if n_groups * span >= _LIMIT:
        return np.lexsort(tuple(minor[::-1]) + (x, ts, group))
    c = group.astype(np.int64) * span
    c += ts.astype(np.int64) - t0
    idx_bits = max(int(n - 1).bit_length(), 1)
    shift = max(int(c.max()).bit_length() + idx_bits - 63, 0)
    if shift and (span >> shift) < _TIE_MARGIN * n / n_groups:
        order = np.argsort(c)
        cs = c[order]
        return _canonical_ties(order, cs[1:] == cs[:-1], x, *minor)
    packed = c >> shift if shift else c.copy()
    packed <<= idx_bits
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    order = packed & ((1 << idx_bits) - 1)
    packed >>= idx_bits
    tie = packed[1:] == packed[:-1]
    if shift:   # tied on the kept bits: may still differ in group or ts
        return _canonical_ties(order, tie, group, ts, x, *minor)
    return _canonical_ties(order, tie, x, *minor)
