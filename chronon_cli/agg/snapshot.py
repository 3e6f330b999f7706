"""Daily snapshots (SEMANTICS §2) from daily IR tables.

Per chunk of keys, each IR column is pivoted into dense ``(entity, slot)`` numpy grids (entity =
key, or (key, subkey) for bucketed / map columns; slot = day, with slot 0 holding everything
before the earliest day any window needs, for lifetime features). A window of W days at target
slot t merges slots ``[t-W+1, t]``: W is decomposed into powers of two, and blocks of 2^j days
are built by log-doubling (``B_2s(t) = merge(B_s(t-s), B_s(t))``), so any op with a vectorized
pairwise merge gets all windows and dates in O(E * S * log W). Non-dense ops merge Python IRs
per entity.
"""
from __future__ import annotations

import bisect
import datetime
import sys
from typing import Dict, List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chronon_cli.agg import arrays as A
from chronon_cli.agg import regroup, sorting
from chronon_cli.agg import windows as W
from chronon_cli.agg.codes import KeyCodes, pair_ids, to_array
from chronon_cli.agg.ops import collections as C
from chronon_cli.agg.ops import sketches as SK
from chronon_cli.agg.ops import timed as TM
from chronon_cli.agg.ops.base import Comps, ValueCodec
from chronon_cli.agg.plan import Feature, IrColumn

CELL_BUDGET = 1 << 20  # dense cells per component per key chunk
ONE_DATE_FAST_PATH = True  # one target date: snapshot_one_day, without reordering rows (if it applies)


def _take_cols(grid: Comps, cols: np.ndarray, identity: Dict, first: int = 0) -> Comps:
    """Columns ``cols`` of blocks holding columns ``first, first + 1, ...``; negative columns are
    the identity."""
    neg = cols < 0
    any_neg = bool(neg.any())
    n = len(cols)
    lo = int(cols[0]) - first if n else 0
    if not any_neg and n and int(cols[-1]) - first - lo == n - 1 and (n == 1 or (np.diff(cols) == 1).all()):
        return {name: a[:, lo:lo + n] for name, a in grid.items()}  # views: blocks are never written
    safe = np.where(neg, 0, cols - first)
    out = {}
    for name, a in grid.items():
        t = a[:, safe]
        if any_neg:
            t[:, neg] = identity[name]
        out[name] = t
    return out


def window_merges(op, grid: Comps, spans: Dict[int, int], targets: np.ndarray) -> Dict[int, Comps]:
    """For each ``spans[i]`` (a length in slots), the merge of slots [t-span+1, t] per target t.

    Blocks of 2^j slots, ``B_j(c) = merge(B_{j-1}(c - 2^{j-1}), B_{j-1}(c))`` (the identity before
    slot 0), are computed only over the column range the targets need at that level."""
    identity = op.d_identity()
    n_slots = next(iter(grid.values())).shape[1]
    longest = max(spans.values())
    sizes = [1]
    while sizes[-1] * 2 <= longest:
        sizes.append(sizes[-1] * 2)
    acc = {i: 0 for i in spans}
    pieces: List[List] = []          # per level: (feature, columns back from the target)
    for size in sizes:
        level = []
        for i, span in spans.items():
            if span & size:
                level.append((i, acc[i]))
                acc[i] += size
        pieces.append(level)
    t_lo, t_hi = int(targets.min()), int(targets.max())
    need: List[tuple] = [None] * len(sizes)  # inclusive column range of each level's blocks
    upper = None
    for j in range(len(sizes) - 1, -1, -1):
        lo, hi = [], []
        for _, back in pieces[j]:
            lo.append(t_lo - back)
            hi.append(t_hi - back)
        if upper is not None:
            lo.append(upper[0] - sizes[j])
            hi.append(upper[1])
        a, b = max(min(lo), 0), min(max(hi), n_slots - 1)
        if b < a:
            a = b = max(min(a, n_slots - 1), 0)
        need[j] = upper = (a, b)
    results: Dict[int, Optional[Comps]] = {i: None for i in spans}
    block, first = grid, 0
    for j, size in enumerate(sizes):
        for i, back in pieces[j]:
            piece = _take_cols(block, targets - back, identity, first)
            results[i] = piece if results[i] is None else op.d_merge(piece, results[i])
        if j + 1 == len(sizes):
            break
        lo, hi = need[j + 1]
        width = hi - lo + 1
        right = {name: a[:, lo - first:hi - first + 1] for name, a in block.items()}
        left = {}
        n_id = min(max(size - lo, 0), width)   # columns whose left half starts before slot 0
        for name, a in block.items():
            s = np.empty((a.shape[0], width), dtype=a.dtype)
            s[:, :n_id] = identity[name]
            if n_id < width:
                s[:, n_id:] = a[:, lo - size + n_id - first:hi - size - first + 1]
            left[name] = s
        block, first = op.d_merge(left, right), lo
    return results  # type: ignore[return-value]


class _Chunk:
    """Rows of one key range, with what every IR column needs."""

    def __init__(self, table: pa.Table, local_key: np.ndarray, slot: np.ndarray, n_keys: int,
                 n_slots: int, targets: np.ndarray):
        self.table = table
        self.local_key = local_key
        self.slot = slot
        self.n_keys = n_keys
        self.n_slots = n_slots
        self.targets = targets
        self.n_targets = len(targets)


def _column_features(chunk: _Chunk, column: IrColumn, feats: List[Feature], spans: Dict[int, int]):
    """-> {feature index: (pa.Array of n_keys * n_targets values, valid mask)}, target-major
    (value of key e at target ti at ti * n_keys + e)."""
    arr = to_array(chunk.table.column(column.name))
    op = column.op
    K, S, T = chunk.n_keys, chunk.n_slots, chunk.n_targets
    if column.subkeyed:
        owner, sub_keys, items = A.map_entries(arr)
        sub_codes, _, sub_dict = A.sorted_codes(sub_keys)
        ent, ent_key, ent_sub = pair_ids(chunk.local_key[owner], K, sub_codes, max(len(sub_dict), 1))
        n_ent, cell_slot, irs = len(ent_key), chunk.slot[owner], items
    else:
        ent, n_ent, cell_slot, irs = chunk.local_key, K, chunk.slot, arr
        ent_key = np.arange(K)
    values: Dict[int, tuple] = {}
    if op.dense:
        comps, codec = op.d_from_arrow(irs)
        grid = op.d_group(comps, ent * S + cell_slot, n_ent * S)
        grid = {k: v.reshape(n_ent, S) for k, v in grid.items()}
        merged = window_merges(op, grid, spans, chunk.targets)
        for i, f in enumerate(feats):
            v, ok = f.op.d_finalize(merged[i])   # (entity, target) grids
            v, ok = v.T.reshape(-1), ok.T.reshape(-1)
            if f.op.coded_output:
                values[i] = (codec.decode(v, ok), ok)
            else:
                values[i] = (pa.array(v, mask=~ok, type=f.op.output_type), ok)
    elif isinstance(op, (TM._FirstLastK, C._TopBottomK)):
        values = _kept_windows(op, feats, irs, ent, n_ent, cell_slot, S, spans, chunk.targets)
    elif isinstance(op, SK.ApproxPercentile):
        values = _percentile_windows(op, feats, irs, ent, n_ent, cell_slot, S, spans, chunk.targets)
    elif regroup.supports(op):
        for i, f in enumerate(feats):
            values[i] = _regrouped_windows(op, f.op, irs, ent, n_ent, cell_slot, spans[i], chunk.targets)
    else:
        py = [op.from_storage(x) for x in irs.to_pylist()]
        major = _target_major_order(n_ent, T)
        for i, (vals, ok) in _object_windows(op, feats, spans, ent, n_ent, cell_slot, py, chunk.targets).items():
            values[i] = (pa.array([vals[j] for j in major.tolist()], type=feats[i].op.output_type), ok[major])
    if not column.subkeyed:
        return values
    # entities (key, subkey) x targets -> one map per (key, target)
    out = {}
    sub_strings = sub_dict.take(pa.array(ent_sub, type=pa.int64()))
    for i, (vals, ok) in values.items():
        t, e = np.divmod(np.flatnonzero(ok), n_ent)
        row = t * K + ent_key[e]
        order = np.lexsort((e, row))
        pick = pa.array((t * n_ent + e)[order], type=pa.int64())
        keys = sub_strings.take(pa.array(e[order], type=pa.int64()))
        m = A.build_map(row[order], K * T, keys, vals.take(pick))
        has = np.zeros(K * T, dtype=bool)
        has[row] = True
        out[i] = (m, has)
    return out


def _regrouped(op) -> bool:
    """Are ``op``'s windows merged by regrouping (IR row, date) pairs?"""
    return (not op.dense and not isinstance(op, (TM._FirstLastK, C._TopBottomK, SK.ApproxPercentile))
            and regroup.supports(op))


def _regrouped_windows(op, final_op, irs, ent, n_ent, cell_slot, span, targets):
    """Collection ops: every (entity, target) window as one vectorized regroup of IR elements."""
    T = len(targets)
    rows, groups = [], []
    for ti, t in enumerate(targets.tolist()):
        sel = np.flatnonzero((cell_slot >= t - span + 1) & (cell_slot <= t))
        rows.append(sel)
        groups.append(ti * n_ent + ent[sel])
    merged = regroup.recollect(op, irs, np.concatenate(rows), np.concatenate(groups), n_ent * T)
    return regroup.finalize(final_op, merged)


def _object_windows(op, feats, spans, ent, n_ent, cell_slot, py, targets):
    order = np.lexsort((cell_slot, ent))
    ent_s, slot_s = ent[order], cell_slot[order]
    bounds = np.searchsorted(ent_s, np.arange(n_ent + 1))
    T = len(targets)
    tlist = targets.tolist()
    outs = {i: ([None] * (n_ent * T), np.zeros(n_ent * T, dtype=bool)) for i in range(len(feats))}
    for e in range(n_ent):
        lo, hi = bounds[e], bounds[e + 1]
        if lo == hi:
            continue
        slots = slot_s[lo:hi].tolist()
        irs = [py[j] for j in order[lo:hi].tolist()]
        for i, f in enumerate(feats):
            vals, ok = outs[i]
            span = spans[i]
            prefix, upto = None, 0  # running merge of irs[:upto], reused while windows start at 0
            for ti, t in enumerate(tlist):
                a = bisect.bisect_left(slots, t - span + 1)
                b = bisect.bisect_right(slots, t)   # targets ascend, so a and b never decrease
                if a == 0:
                    for ir in irs[upto:b]:
                        prefix = op.merge(prefix, ir) if prefix is not None else op.clone(ir)
                    upto = b
                    window = prefix
                else:
                    window = None
                    for ir in irs[a:b]:
                        window = op.merge(window, ir) if window is not None else op.clone(ir)
                value = f.op.finalize(window)
                if value is not None:
                    vals[e * T + ti] = value
                    ok[e * T + ti] = True
    return outs


# ---------------------------------------------------------------- list-valued IRs, vectorized
# LAST_K / FIRST_K / TOP_K / BOTTOM_K and exact-mode APPROX_PERCENTILE: the daily IR lists are
# flattened into elements sorted once per entity in the op's order ((ts, value) or value).
#
# k-ops: when every entity's elements in that order also have ascending slots (the usual case
# for FIRST_K / LAST_K: a day's events have that day's ts), a window (entity, target) is a
# contiguous run of its entity's elements, found from cumulative (entity, slot) counts for all
# windows and dates at once. Otherwise one vectorized selection per (window, target) keeps that
# order, and per-entity rank arithmetic picks the k last / first elements.
#
# Percentiles: each entity's elements get their rank in value order; a bit set per (entity,
# slot) marks the ranks of that slot's elements, windows OR these sets by log-doubling (like the
# dense ops), and the nearest-rank percentile is the r-th set bit of the window's set: O(entities x
# slots x log W) for all windows and dates. Entities with more elements than the bit sets hold use
# the per-target selection. No per-entity Python, except for percentile windows that really hold
# a KLL sketch or more than k values.

class _Elements:
    """Elements sorted by (entity, order keys), with their slots; window selection by slot range."""

    def __init__(self, ent: np.ndarray, slot: np.ndarray, keys: List[np.ndarray], n_ent: int, n_slots: int,
                 order: Optional[np.ndarray] = None):
        if order is None:
            order = _element_order(ent, keys, n_ent)
        self.order = order
        self.e = ent[order]
        self.s = slot[order]
        self.n_ent = n_ent
        self.n_slots = n_slots
        self._by_slot = None

    def _slot_index(self):
        if self._by_slot is None:
            by_slot = np.argsort(self.s, kind="stable")
            self._by_slot = by_slot
            self.slot_bounds = np.searchsorted(self.s[by_slot], np.arange(self.n_slots + 1))
        return self._by_slot, self.slot_bounds

    def select(self, t: int, span: int):
        """-> (positions of the elements with slot in [t-span+1, t], ascending; count per entity)."""
        lo, hi = max(t - span + 1, 0), min(t, self.n_slots - 1)
        by_slot, slot_bounds = self._slot_index()
        a, b = slot_bounds[lo], slot_bounds[hi + 1]
        m = int(b - a)
        if m == len(self.s):
            sel = np.arange(m, dtype=np.int64)
        elif m * 8 < len(self.s):
            sel = np.sort(by_slot[a:b])
        else:
            s = self.s
            sel = np.flatnonzero((s >= lo) & (s <= hi)) if lo > 0 else np.flatnonzero(s <= hi)
        cnt = np.bincount(self.e[sel], minlength=self.n_ent)
        return sel, cnt


def _element_order(ent: np.ndarray, keys: List[np.ndarray], n_ent: int) -> np.ndarray:
    """Order of the elements by (entity, keys[-1], ..., keys[0]), as ``np.lexsort(keys + (ent,))``."""
    if _ascending([ent] + keys[::-1]):  # e.g. LAST_K lists of rows ordered by (key, day)
        return np.arange(len(ent), dtype=np.int64)
    if len(keys) == 1:
        return sorting.by_group_value(ent, n_ent, keys[0])
    if len(keys) == 2:
        return sorting.by_group_time_value(ent, n_ent, keys[1], keys[0])
    return np.lexsort(tuple(keys) + (ent,))


def _ascending(columns: List[np.ndarray]) -> bool:
    """Are the rows already in lexicographic order of ``columns`` (most significant first)?"""
    if len(columns[0]) < 2:
        return True
    tied = np.ones(len(columns[0]) - 1, dtype=bool)
    for c in columns:
        a, b = c[:-1], c[1:]
        if (tied & (b < a)).any():
            return False
        tied &= b == a
    return True


def _list_lengths(lists: pa.Array, valid: np.ndarray) -> np.ndarray:
    lengths = np.diff(lists.offsets.to_numpy(zero_copy_only=False).astype(np.int64))
    return np.where(valid, lengths, 0)


def _list_values(lists: pa.Array, lengths: np.ndarray) -> pa.Array:
    """Child values of the non-empty lists, in row order (the list array may be sliced)."""
    offsets = lists.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    total = int(lengths.sum())
    if len(offsets) and total == offsets[-1] - offsets[0]:  # no null list hides child values
        return lists.values.slice(int(offsets[0]), total)
    starts = np.cumsum(lengths) - lengths
    child = np.repeat(offsets[:-1] - starts, lengths) + np.arange(total, dtype=np.int64)
    return lists.values.take(pa.array(child, type=pa.int64()))


def _target_major_order(n_ent: int, T: int) -> np.ndarray:
    """Positions in an entity-major layout (e * T + ti) of the target-major cells (ti * n_ent + e)."""
    return (np.arange(n_ent, dtype=np.int64)[None, :] * T + np.arange(T, dtype=np.int64)[:, None]).reshape(-1)


def _take(values: pa.Array, idx: np.ndarray) -> pa.Array:
    if len(idx) == len(values) and (len(idx) == 0 or (idx[0] == 0 and (np.diff(idx) == 1).all())):
        return values
    return values.take(pa.array(idx, type=pa.int64()))


def _numeric_numpy(values: pa.Array) -> Optional[np.ndarray]:
    """Values of a numeric array without nulls as numpy (gathers are then numpy takes)."""
    t = values.type
    if values.null_count or not (pa.types.is_integer(t) or pa.types.is_floating(t)):
        return None
    return values.to_numpy(zero_copy_only=False)


def _slot_counts(e: np.ndarray, s: np.ndarray, n_ent: int, n_slots: int) -> np.ndarray:
    """-> ``cum`` with ``cum[e * n_slots + u]`` = number of elements before entity ``e``'s first
    element of slot >= ``u`` (elements sorted by entity), for u in [0, n_slots]."""
    counts = np.bincount(e * n_slots + s, minlength=n_ent * n_slots)
    cum = np.zeros(n_ent * n_slots + 1, dtype=np.int64)
    np.cumsum(counts, out=cum[1:])
    return cum


def _kept_windows(op, feats, irs, ent, n_ent, cell_slot, n_slots, spans, targets):
    """TOP_K / BOTTOM_K / FIRST_K / LAST_K windows -> {i: (output array, valid)}."""
    arr = to_array(irs)
    valid_rows = arr.is_valid().to_numpy(zero_copy_only=False)
    lengths = _list_lengths(arr, valid_rows)
    items = _list_values(arr, lengths)
    owner = np.repeat(np.arange(len(arr), dtype=np.int64), lengths)
    timed = isinstance(op, TM._FirstLastK)
    if timed:
        ts = pc.struct_field(items, ["ts"]).to_numpy(zero_copy_only=False).astype(np.int64)
        values = pc.struct_field(items, ["value"])
        _, v, _ = ValueCodec.encode(op.kind, values)
        keys = [v, ts]
        keep_last = op.is_last
    else:
        values = items
        _, v, _ = ValueCodec.encode(op.kind, values)
        keys = [v]
        keep_last = op.is_top
    el_ent = ent[owner]
    order = _element_order(el_ent, keys, n_ent)
    e, s = el_ent[order], cell_slot[owner][order]
    T = len(targets)
    k = op.k
    if not ((e[1:] == e[:-1]) & (s[1:] < s[:-1])).any():
        # every window is a contiguous run of its entity's sorted elements
        cum = _slot_counts(e, s, n_ent, n_slots).reshape(-1)
        values = _take(values, order)
        idx_type = np.int32 if len(values) < (1 << 31) else np.int64
        flat = _numeric_numpy(values)
        base = (np.arange(n_ent, dtype=np.int64) * n_slots)[:, None]
        out = {}
        for i, span in spans.items():
            a = cum[base + np.maximum(targets - span + 1, 0)[None, :]].T.reshape(-1)  # target-major
            b = cum[base + (targets + 1)[None, :]].T.reshape(-1)
            kc = np.minimum(b - a, k)
            total = int(kc.sum())
            offsets = np.zeros(len(kc) + 1, dtype=np.int64)
            np.cumsum(kc, out=offsets[1:])
            if keep_last:   # newest / largest first: b - 1, b - 2, ...
                pos = np.repeat((b - 1 + offsets[:-1]).astype(idx_type), kc)
                pos -= np.arange(total, dtype=idx_type)
            else:           # a, a + 1, ...
                pos = np.repeat((a - offsets[:-1]).astype(idx_type), kc)
                pos += np.arange(total, dtype=idx_type)
            ok = kc > 0
            off = pa.array(offsets.astype(np.int32), mask=np.append(~ok, False), type=pa.int32())
            taken = pa.array(flat[pos], type=values.type) if flat is not None else values.take(pa.array(pos))
            out[i] = (pa.ListArray.from_arrays(off, taken, type=feats[i].op.output_type), ok)
        return out
    els = _Elements(el_ent, cell_slot[owner], keys, n_ent, n_slots, order=order)
    values = _take(values, els.order)
    out = {}
    for i, span in spans.items():
        picks, counts = [], []
        for t in targets.tolist():
            sel, cnt = els.select(t, span)
            kc = np.minimum(cnt, k)
            gstart = np.cumsum(cnt) - cnt          # group starts within sel
            kstart = np.cumsum(kc) - kc            # group starts within the kept elements
            first = gstart + (cnt - kc) if keep_last else gstart
            total = int(kc.sum())
            within = np.arange(total, dtype=np.int64) - np.repeat(kstart, kc)
            if keep_last:  # newest / largest first
                within = np.repeat(kc, kc) - 1 - within
            picks.append(sel[np.repeat(first, kc) + within])
            counts.append(kc)
        cnt_all = np.concatenate(counts)
        offsets = np.zeros(len(cnt_all) + 1, dtype=np.int64)
        np.cumsum(cnt_all, out=offsets[1:])
        ok_t = cnt_all > 0
        off = pa.array(offsets.astype(np.int32), mask=np.append(~ok_t, False), type=pa.int32())
        taken = values.take(pa.array(np.concatenate(picks), type=pa.int64()))
        out[i] = (pa.ListArray.from_arrays(off, taken, type=feats[i].op.output_type), ok_t)
    return out


def _nearest_rank(p: float, n: np.ndarray) -> np.ndarray:
    """Index of the quantile ``p`` in ``n`` sorted values as KLL's ``get_quantile(p, inclusive=True)``
    picks it while exact: the first cumulative weight >= ceil(p * n)."""
    w = np.ceil(p * n.astype(np.float64)).astype(np.int64)
    return np.clip(w - 1, 0, np.maximum(n - 1, 0))


_MAX_WORDS = 4  # rank bit sets of up to 256 elements per entity; larger entities use _Elements.select

_popcount = getattr(np, "bitwise_count", None)
if _popcount is None:  # pragma: no cover - numpy < 2.0
    def _popcount(w):
        w = w - ((w >> np.uint64(1)) & np.uint64(0x5555555555555555))
        w = (w & np.uint64(0x3333333333333333)) + ((w >> np.uint64(2)) & np.uint64(0x3333333333333333))
        w = (w + (w >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
        return (w * np.uint64(0x0101010101010101)) >> np.uint64(56)


class _OrOp:
    """Bit-set union as a dense pairwise merge, for ``window_merges``."""

    def __init__(self, names):
        self.names = names

    def d_identity(self):
        return {n: np.uint64(0) for n in self.names}

    def d_merge(self, a, b):
        return {n: a[n] | b[n] for n in a}


# _BYTE_SELECT[8 * b + r]: position of the r-th set bit of byte b
_BYTE_SELECT = np.zeros(256 * 8, dtype=np.int64)
for _b in range(256):
    for _r, _bit in enumerate([j for j in range(8) if _b >> j & 1]):
        _BYTE_SELECT[8 * _b + _r] = _bit
_L8 = np.uint64(0x0101010101010101)
_H8 = np.uint64(0x8080808080808080)


def _byte_counts(w: np.ndarray) -> np.ndarray:
    """Number of set bits of each byte of ``w`` (uint64), in the byte's place."""
    if sys.byteorder == "little" and _popcount is getattr(np, "bitwise_count", None):
        return _popcount(np.ascontiguousarray(w).view(np.uint8)).view(np.uint64)
    x = w - ((w >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    return (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)


def _select_bit(words: List[np.ndarray], counts: List[np.ndarray], r: np.ndarray) -> np.ndarray:
    """Position of the ``r``-th (0-based) set bit of the multi-word bit sets ``words`` (r < size);
    ``counts`` are the words' bit counts."""
    r = r.astype(np.uint64)
    w = words[0]
    first = np.zeros(len(r), dtype=np.uint64)   # position of the chosen word's bit 0
    if len(words) > 1:
        c = counts[0].astype(np.uint64)
        for j in range(1, len(words)):
            go = r >= c
            r -= np.where(go, c, np.uint64(0))
            first += go.astype(np.uint64) << np.uint64(6)
            w = np.where(go, words[j], w)
            if j + 1 < len(words):
                c = np.where(go, counts[j].astype(np.uint64), c)
    # running byte sums: byte i of ``prefix`` = set bits in bytes 0..i; the bit is in the first
    # byte whose running sum exceeds r
    prefix = _byte_counts(w) * _L8
    below = ((r * _L8) | _H8) - prefix
    below &= _H8
    shift = _popcount(below).astype(np.uint64) << np.uint64(3)
    r -= ((prefix << np.uint64(8)) >> shift) & np.uint64(0xFF)   # minus the bits of earlier bytes
    octet = (w >> shift) & np.uint64(0xFF)
    octet <<= np.uint64(3)
    octet += r
    first += shift
    return first.astype(np.int64) + _BYTE_SELECT[octet.astype(np.intp)]


def _percentile_windows(op, feats, irs, ent, n_ent, cell_slot, n_slots, spans, targets):
    """APPROX_PERCENTILE windows: exact lists vectorized; windows with a sketch or more than k
    values merge Python IRs (per entity, only those entities)."""
    arr = to_array(irs)
    valid_rows = arr.is_valid().to_numpy(zero_copy_only=False)
    lists = pc.struct_field(arr, ["values"])
    sketch = pc.struct_field(arr, ["sketch"])
    has_sketch = valid_rows & sketch.is_valid().to_numpy(zero_copy_only=False)
    lists_ok = valid_rows & lists.is_valid().to_numpy(zero_copy_only=False)
    lengths = _list_lengths(lists, lists_ok)
    x = _list_values(lists, lengths).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    owner = np.repeat(np.arange(len(arr), dtype=np.int64), lengths)
    el_ent = ent[owner]
    order = _element_order(el_ent, [x], n_ent)
    e, s, x = el_ent[order], cell_slot[owner][order], x[order]
    T, S, k = len(targets), n_slots, op.k
    m = np.bincount(e, minlength=n_ent) if len(e) else np.zeros(n_ent, dtype=np.int64)
    start = np.cumsum(m) - m
    heavy = m > 64 * _MAX_WORDS
    n_words = max(1, -(-int(m[~heavy].max(initial=0)) // 64))
    light = ~heavy[e]
    rank = np.arange(len(e), dtype=np.int64) - np.repeat(start, m)
    sk_rows = np.flatnonzero(has_sketch)
    names = [f"w{j}" for j in range(n_words)] + (["sk"] if len(sk_rows) else [])
    grid = np.zeros(len(names) * n_ent * S, dtype=np.uint64)
    el, rl = e[light], rank[light]
    np.bitwise_or.at(grid, ((rl >> 6) * n_ent + el) * S + s[light], np.left_shift(np.uint64(1), (rl & 63).astype(np.uint64)))
    if len(sk_rows):
        grid[(n_words * n_ent + ent[sk_rows]) * S + cell_slot[sk_rows]] = 1
    grid = grid.reshape(len(names), n_ent, S)
    merged = window_merges(_OrOp(names), {n: grid[j] for j, n in enumerate(names)}, spans, targets)
    fallback = np.zeros(n_ent, dtype=bool)
    results = {}
    for i in spans:
        P = len(feats[i].op.percentiles)
        words = [merged[i][n].reshape(-1) for n in names[:n_words]]   # entity-major (e * T + ti)
        counts = [_popcount(w) for w in words]
        cnt = counts[0].astype(np.int64)
        for c in counts[1:]:
            cnt += c
        big = cnt > k
        if len(sk_rows):
            big |= merged[i]["sk"].reshape(-1) != 0
        if big.any():
            fallback |= big.reshape(n_ent, T).any(axis=1)
        ok = (cnt > 0) & ~big
        good = np.flatnonzero(ok)
        picked = np.zeros((len(good), P), dtype=np.float64)
        if len(good):
            gw = [w[good] for w in words]
            gc = [c[good] for c in counts] if n_words > 1 else None
            base = start[good // T]
            n = cnt[good]
            for j, p in enumerate(feats[i].op.percentiles):
                picked[:, j] = x[base + _select_bit(gw, gc, _nearest_rank(p, n))]
        results[i] = (picked, ok)
    if heavy.any() or fallback.any():
        for i, (picked, ok) in results.items():
            vals = np.zeros((n_ent * T, picked.shape[1]), dtype=np.float64)
            vals[ok] = picked
            results[i] = (vals, ok.copy())
    if heavy.any():
        _heavy_percentiles(op, feats, results, heavy, e, s, x, m, start, sk_rows, ent, cell_slot, n_ent, S, spans,
                           targets, fallback)
    if fallback.any():
        ents = np.flatnonzero(fallback)
        rows = np.flatnonzero(fallback[ent])
        remap = np.full(n_ent, -1, dtype=np.int64)
        remap[ents] = np.arange(len(ents))
        py = [op.from_storage(v) for v in arr.take(pa.array(rows, type=pa.int64())).to_pylist()]
        slow = _object_windows(op, feats, spans, remap[ent[rows]], len(ents), cell_slot[rows], py, targets)
        for i, (svals, sok) in slow.items():
            vals, ok = results[i]
            cells = (ents[:, None] * T + np.arange(T)[None, :]).reshape(-1)
            sok = np.asarray(sok)
            ok[cells] = sok
            for c, v in zip(cells[sok].tolist(), [svals[j] for j in np.flatnonzero(sok).tolist()]):
                vals[c, :] = v
    full = heavy.any() or fallback.any()
    out = {}
    major = _target_major_order(n_ent, T)
    for i, (vals, ok) in results.items():
        P = vals.shape[1]
        if not full:   # one row of P values per valid cell, in cell order
            spread = np.zeros((n_ent * T, P), dtype=np.float64)
            spread[ok] = vals
            vals = spread
        vals, ok = vals[major], ok[major]
        flat = vals[ok].reshape(-1)
        offsets = np.zeros(len(ok) + 1, dtype=np.int64)
        np.cumsum(ok.astype(np.int64) * P, out=offsets[1:])
        off = pa.array(offsets.astype(np.int32), mask=np.append(~ok, False), type=pa.int32())
        out[i] = (pa.ListArray.from_arrays(off, pa.array(flat, type=pa.float64()), type=feats[i].op.output_type), ok)
    return out


def _heavy_percentiles(op, feats, results, heavy, e, s, x, m, start, sk_rows, ent, cell_slot, n_ent, S, spans,
                       targets, fallback):
    """Exact percentile windows of the entities with too many elements for rank bit sets, by one
    vectorized selection per (window, target) over their elements only."""
    hents = np.flatnonzero(heavy)
    remap = np.full(n_ent, -1, dtype=np.int64)
    remap[hents] = np.arange(len(hents))
    sel_el = np.repeat(heavy, m)
    he, hs, hx = remap[e[sel_el]], s[sel_el], x[sel_el]
    els = _Elements(he, hs, [hx], len(hents), S, order=np.arange(len(he), dtype=np.int64))
    sk_h = sk_rows[heavy[ent[sk_rows]]]
    sk_ent, sk_slot = remap[ent[sk_h]], cell_slot[sk_h]
    T, k = len(targets), op.k
    for i, span in spans.items():
        vals, ok = results[i]
        for ti, t in enumerate(targets.tolist()):
            sel, cnt = els.select(t, span)
            big = cnt > k
            if len(sk_h):
                inside = (sk_slot >= t - span + 1) & (sk_slot <= t)
                big[sk_ent[inside]] = True
            fallback[hents[big]] = True
            good = np.flatnonzero((cnt > 0) & ~big)
            if len(good) == 0:
                continue
            n = cnt[good]
            first = (np.cumsum(cnt) - cnt)[good]
            cells = hents[good] * T + ti
            for j, p in enumerate(feats[i].op.percentiles):
                vals[cells, j] = hx[sel[first + _nearest_rank(p, n)]]
            ok[cells] = True


def snapshot(agg, daily_irs: pa.Table, dates: List[datetime.date]) -> pa.Table:
    schema = agg.output_schema
    for f in agg.features:
        if f.window is not None and not W.is_day_window(f.window):
            raise ValueError(f"feature {f.name}: hour windows are not allowed for daily snapshots")
    target_days = sorted({W.day_number(d) for d in dates})
    if not target_days or daily_irs.num_rows == 0:
        return schema.empty_table()
    day_max, day_min = target_days[-1], target_days[0]
    spans_days = [W.window_days(f.window) for f in agg.features]
    has_lifetime = any(s is None for s in spans_days)
    longest = max([s for s in spans_days if s is not None], default=1)
    lo = day_min - longest + 1  # first day any window needs; earlier days -> prefix slot 0
    days = A.day_numbers(daily_irs.column("ds"))
    keep = (days <= day_max) & ((days >= lo) | has_lifetime)
    table = daily_irs.filter(pa.array(keep)) if not keep.all() else daily_irs
    days = days[keep]
    if table.num_rows == 0:
        return schema.empty_table()
    kc = KeyCodes(table, agg.key_columns)
    if not kc.all_kept:
        table, days = table.filter(pa.array(kc.keep)), days[kc.keep]
    key_ids = kc.kept_ids()
    slot = np.where(days >= lo, days - lo + 1, 0)
    n_slots = day_max - lo + 2
    targets = np.array(target_days, dtype=np.int64) - lo + 1
    spans = [n_slots if s is None else s for s in spans_days]
    if ONE_DATE_FAST_PATH:
        from chronon_cli.agg import snapshot_one_day
        if snapshot_one_day.applies(agg, len(targets), days, slot):
            return snapshot_one_day.snapshot_one(agg, table, kc, key_ids, days, slot, n_slots, int(targets[0]),
                                                 spans, target_days[0])

    # by key, then day (list IRs then need no re-sorting); daily IR tables usually come so
    if not _ascending([key_ids, days]):
        order = np.argsort(key_ids.astype(np.int64) * (day_max - int(days.min()) + 1) + (days - int(days.min())),
                           kind="stable")
        table = table.take(pa.array(order))
        key_ids, slot = key_ids[order], slot[order]
    # chunk keys so that the dense grids (entities x max(slots, dates)) and the regrouped
    # (IR row, date) pairs stay within the cell budget
    entities = np.ones(kc.num_keys, dtype=np.int64)
    for c in agg.columns:
        if c.subkeyed:
            lengths = A.map_lengths(table.column(c.name))
            entities += np.bincount(key_ids, weights=lengths, minlength=kc.num_keys).astype(np.int64)
    rows = np.bincount(key_ids, minlength=kc.num_keys).astype(np.int64)
    per_row = len(targets) if any(_regrouped(c.op) for c in agg.columns) else 1
    cum = np.cumsum(entities * max(n_slots, len(targets)) + rows * per_row)
    bounds = [0]
    while bounds[-1] < kc.num_keys:
        start = bounds[-1]
        base = cum[start - 1] if start else 0
        end = int(np.searchsorted(cum, base + CELL_BUDGET, side="right"))
        bounds.append(max(end, start + 1))
    row_bounds = np.searchsorted(key_ids, bounds)

    by_column: Dict[int, List[int]] = {}
    for fi, f in enumerate(agg.features):
        by_column.setdefault(f.column_index, []).append(fi)
    pieces = []
    T = len(targets)
    for (k0, k1), (r0, r1) in zip(zip(bounds, bounds[1:]), zip(row_bounds, row_bounds[1:])):
        n_keys = k1 - k0
        chunk = _Chunk(table.slice(r0, r1 - r0), key_ids[r0:r1] - k0, slot[r0:r1], n_keys, n_slots, targets)
        cols: Dict[int, tuple] = {}
        for ci, fis in by_column.items():
            feats = [agg.features[fi] for fi in fis]
            res = _column_features(chunk, agg.columns[ci], feats, {i: spans[fi] for i, fi in enumerate(fis)})
            for i, fi in enumerate(fis):
                cols[fi] = res[i]
        any_valid = np.zeros(n_keys * T, dtype=bool)
        for _, ok in cols.values():
            any_valid |= ok
        idx = np.flatnonzero(any_valid)
        if len(idx) == 0:
            continue
        everything = len(idx) == len(any_valid)
        mask = None if everything else pa.array(any_valid)
        data = {k: kc.keys.column(k).take(pa.array(k0 + idx % n_keys)) for k in agg.key_columns}
        data["ds"] = A.date_array(np.array(target_days, dtype=np.int64)[idx // n_keys])
        for fi, f in enumerate(agg.features):
            data[f.name] = cols[fi][0] if everything else cols[fi][0].filter(mask)
        pieces.append(pa.table(data).cast(schema))
    if not pieces:
        return schema.empty_table()
    return pa.concat_tables(pieces)
