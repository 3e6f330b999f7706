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
    if not tie.any():
        return order
    member = np.zeros(len(order), dtype=bool)
    member[:-1] = tie
    member[1:] |= tie
    begins = member.copy()
    begins[1:] &= ~tie
    run = np.cumsum(begins)
    idx = np.flatnonzero(member)
    sub = order[idx]
    keys = (sub,) + tuple(m[sub] for m in reversed(minor)) + (run[idx],)
    order[idx] = sub[np.lexsort(keys)]
    return order


def _needs_float_ties(x: np.ndarray) -> bool:
    """Could rows with equal float keys be told apart (signed zeros, NaN payloads)?"""
    if x.dtype.kind != "f":
        return False
    zero = x == 0
    return bool(np.signbit(x[zero]).any() or np.isnan(x).any()) if zero.any() else bool(np.isnan(x).any())


def by_group_value(group: np.ndarray, n_groups: int, x: np.ndarray) -> np.ndarray:
    """Order of the rows by (group, x), as ``np.lexsort((x, group))``; groups in ``[0, n_groups)``."""
    n = len(x)
    if n < max(_SMALL, 2):
        return np.lexsort((x, group))
    n_groups = max(int(n_groups), 1)
    if x.dtype.kind in "ib" or (x.dtype.kind == "u" and x.dtype.itemsize < 8):
        lo, hi = int(x.min()), int(x.max())
        span = hi - lo + 1
        if n_groups * span < _LIMIT:
            c = group.astype(np.int64) * span
            c += x.astype(np.int64) - lo
            return np.argsort(c)
    float_ties = _needs_float_ties(x)
    if x.dtype == np.float64 and not float_ties:
        return _by_group_float(group, n_groups, x)
    shift = int(n).bit_length()
    if (n_groups << shift) >= _LIMIT:
        return np.lexsort((x, group))
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
        order = _canonical_ties(order, tie, x)
    return order


def _by_group_float(group: np.ndarray, n_groups: int, x: np.ndarray) -> np.ndarray:
    """(group, x) order for float64 x without NaN or -0.0: one argsort of the group packed with the
    leading bits of x's order-preserving integer image; rows tied on those bits are re-sorted by x."""
    group_bits = max(int(n_groups - 1).bit_length(), 1)
    x_bits = 63 - group_bits
    bits = x.view(np.int64)
    key = bits ^ ((bits >> 63) & np.int64(0x7FFFFFFFFFFFFFFF))   # float order as signed int64
    key = (key.view(np.uint64) ^ np.uint64(1 << 63)) >> np.uint64(64 - x_bits)  # unsigned, top bits
    packed = group.astype(np.int64) << x_bits
    packed |= key.view(np.int64)
    order = np.argsort(packed)
    ps = packed[order]
    return _canonical_ties(order, ps[1:] == ps[:-1], x)


def by_group_time_value(group: np.ndarray, n_groups: int, ts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Order of the rows by (group, ts, x), as ``np.lexsort((x, ts, group))``."""
    n = len(x)
    if n < max(_SMALL, 2):
        return np.lexsort((x, ts, group))
    t0, t1 = int(ts.min()), int(ts.max())
    span = t1 - t0 + 1
    if max(int(n_groups), 1) * span >= _LIMIT:
        return np.lexsort((x, ts, group))
    c = group.astype(np.int64) * span
    c += ts.astype(np.int64) - t0
    order = np.argsort(c)
    cs = c[order]
    return _canonical_ties(order, cs[1:] == cs[:-1], x)
