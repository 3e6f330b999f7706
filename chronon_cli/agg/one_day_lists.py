"""One-date snapshots (``snapshot_one_day``), list-valued IRs: FIRST_K / LAST_K / TOP_K / BOTTOM_K
(``kept``) and exact-mode APPROX_PERCENTILE (``percentiles``), picked from each window's flattened
elements in the general path's order."""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chronon_cli.agg import sorting
from chronon_cli.agg import snapshot as S
from chronon_cli.agg.codes import to_array
from chronon_cli.agg.ops import timed as TM
from chronon_cli.agg.ops.base import ValueCodec

if TYPE_CHECKING:
    from chronon_cli.agg.snapshot_one_day import _Rows

def _elements(arr: pa.Array):
    """-> (child values of the non-null lists, number of elements of each row)."""
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    lengths = S._list_lengths(arr, valid)
    return S._list_values(arr, lengths), lengths


def _chunks(column) -> list:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


def _chunk_elements(lists: pa.Array, valid=None):
    """``_elements`` of one chunk's list array (``valid``: rows that count, default its non-null
    rows) -> (child values, lengths), without a validity mask when nothing is null."""
    if valid is None and lists.null_count == 0:
        offsets = lists.offsets.to_numpy(zero_copy_only=False)    # (int32 lengths stay int32)
        return lists.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0])), np.diff(offsets)
    if valid is None:
        valid = lists.is_valid().to_numpy(zero_copy_only=False)
    lengths = S._list_lengths(lists, valid)
    return S._list_values(lists, lengths), lengths


def _numeric_field(parts: list, name: str):
    """One field of struct arrays, concatenated as numpy, if it is an integer (not uint64) or
    float field without nulls; else None."""
    fields = [pc.struct_field(p, [name]) for p in parts]
    t = fields[0].type if fields else None
    if t is None or not (pa.types.is_floating(t) or pa.types.is_integer(t)) or t == pa.uint64():
        return None
    if any(f.null_count for f in fields):
        return None
    return t, np.concatenate([f.to_numpy(zero_copy_only=False) for f in fields])


def _weighted_counts(key: np.ndarray, lengths: np.ndarray, n_keys: int) -> np.ndarray:
    """Elements per key from the rows' list lengths."""
    if len(key) == 0:
        return np.zeros(n_keys, dtype=np.int64)
    return np.bincount(key, weights=lengths, minlength=n_keys).astype(np.int64)


class _Sorted:
    """Elements of list IRs in a sort order grouped by entity (``order``: their positions);
    per-window element counts (from the rows) and selections. With rows in slot order a window's
    elements are those from a position on (no per-element slots needed)."""

    def __init__(self, rows: _Rows, lengths: np.ndarray, order: np.ndarray, count_all: np.ndarray):
        self.rows, self.lengths, self.order, self.count_all = rows, lengths, order, count_all
        self._s = None
        self._last = None    # (first element, selection) of the last window selected
        self.min_slot = int(rows.slot.min()) if len(rows.slot) else 0

    def _first_row(self, lo: int):
        """First row of slot >= lo if the rows are in slot order, else None."""
        if not self.rows.slots_ascending():
            return None
        slot = self.rows.slot
        return int(np.searchsorted(slot, slot.dtype.type(lo)))

    def counts(self, lo: int) -> np.ndarray:
        """Elements per entity with slot >= lo."""
        if lo <= self.min_slot:
            return self.count_all
        rows = self.rows
        r0 = self._first_row(lo)
        if r0 is not None:
            return _weighted_counts(rows.key[r0:], self.lengths[r0:], rows.n_keys)
        m = rows.slot >= lo
        return _weighted_counts(rows.key[m], self.lengths[m], rows.n_keys)

    def select(self, lo: int):
        """-> (positions in the order, ascending, of the elements with slot >= lo, or None for all;
        their count per entity)."""
        cnt = self.counts(lo)
        if lo <= self.min_slot:
            return None, cnt
        r0 = self._first_row(lo)
        if r0 is not None:
            first = int(self.lengths[:r0].sum())   # elements of earlier slots come first
            if self._last is not None and self._last[0] <= first:   # within a longer window's
                wider = self._last[1]
                sel = wider[self.order[wider] >= first]
            else:
                sel = np.flatnonzero(self.order >= first)
            self._last = (first, sel)
            return sel, cnt
        if self._s is None:
            slot = self.rows.slot
            dtype = np.uint8 if self.rows.n_slots <= 255 else np.uint16 if self.rows.n_slots <= 65535 else np.int64
            self._s = np.repeat(slot.astype(dtype, copy=False), self.lengths)[self.order]
        return np.flatnonzero(self._s >= lo), cnt


def _element_days(rows: _Rows, lengths: np.ndarray):
    """-> function: element positions -> their rows' days (for a few elements)."""
    ends = np.cumsum(lengths)
    return lambda el: rows.days[np.searchsorted(ends, el, side="right")]


def _presorted(ent: np.ndarray, n_ent: int, count: np.ndarray, ts: np.ndarray, v: np.ndarray, day_of):
    """The elements' (ent, ts, v, day) order if a stable sort by entity alone gives it (day-major
    rows of FIRST_K / LAST_K IRs whose days hold their own events, lists sorted by (ts, v)); else
    None. ``count``: elements per entity; ``day_of(elements)``: their days."""
    if v.dtype.kind == "f" and np.isnan(v).any():
        return None
    n = len(ent)
    order = sorting.stable_by_code(ent, n_ent)
    if n < 2:
        return order
    t = ts[order]
    same = np.ones(n - 1, dtype=bool)      # sorted positions p and p + 1 hold one entity
    starts = np.cumsum(count) - count
    same[starts[(starts > 0) & (starts < n)] - 1] = False
    if (same & (t[1:] < t[:-1])).any():
        return None
    tied = np.flatnonzero(same & (t[1:] == t[:-1]))
    if len(tied):
        a, b = order[tied], order[tied + 1]
        va, vb = v[a], v[b]
        if ((vb < va) | ((vb == va) & (day_of(b) < day_of(a)))).any():
            return None
    return order


def _in_order(ts: np.ndarray, v: np.ndarray, lengths: np.ndarray, cum: np.ndarray, bounds: np.ndarray,
              lo: int, hi: int) -> bool:
    """Are the elements of every key, in (slot, position) order, in the general path's (ts, value,
    day) order? True if each list is ascending by (ts, value) and the ts of slots ``lo..hi`` lie in
    disjoint, increasing ranges (so rows of different slots never tie). ``cum``: element offsets of
    the rows (``cum[r]:cum[r + 1]``); ``bounds``: ``_Rows.slot_runs``."""
    if v.dtype.kind == "f" and sorting._has_nan(v):
        return False
    if len(ts) > 1:
        # elements e - 1, e not ascending by ts may only end and start two lists, or tie on ts
        # with values ascending
        flat = np.empty(len(ts), dtype=bool)
        flat[0] = False
        np.less_equal(ts[1:], ts[:-1], out=flat[1:])
        starts = cum[1:-1] if lengths.min() > 0 else cum[:-1][lengths > 0]
        if np.count_nonzero(flat) != np.count_nonzero(flat[starts]):
            flat[starts] = False
            e = np.flatnonzero(flat)
            if ((ts[e] < ts[e - 1]) | (v[e] < v[e - 1])).any():
                return False
    prev = None
    for s in range(lo, hi + 1):
        e0, e1 = int(cum[bounds[s]]), int(cum[bounds[s + 1]])
        if e1 > e0:
            part = ts[e0:e1]
            if prev is not None and not prev < part.min():
                return False
            prev = part.max()
    return True


def _last_k_tails(k: int, rows: _Rows, lengths: np.ndarray, ts: np.ndarray, v: np.ndarray, spans):
    """LAST_K picks without sorting the elements, when each key's elements in (slot, position)
    order are already in the general path's order (``_in_order``; rows in slot order, one per
    (slot, key)): every window's picks are then the newest elements of its key, so one walk from
    the target slot down gathers each key's last k elements (newest first) and a window keeps the
    first min(its element count, k) of them. -> {i: (element positions, picks per key)} or None."""
    bounds = rows.slot_runs()
    if bounds is None:
        return None
    total = int(lengths.sum())
    cum = np.zeros(len(lengths) + 1, dtype=np.int32 if total < 2 ** 31 else np.int64)   # (small: fresh)
    np.cumsum(lengths, out=cum[1:])
    t = rows.target
    lows = {i: max(t - span + 1, 0) for i, span in spans.items()}
    stop = min(lows.values())
    if not _in_order(ts, v, lengths, cum, bounds, stop, t):
        return None
    K = rows.n_keys
    need = np.full(K, k, dtype=np.int64)        # elements still missing from each key's tail
    tail = np.empty(K * k, dtype=np.int64)      # key-major, newest first (read only where filled)
    picks: Dict[int, np.ndarray] = {}
    for s in range(t, stop - 1, -1):
        r0, r1 = int(bounds[s]), int(bounds[s + 1])
        if r1 > r0:
            ks = rows.key[r0:r1]
            missing = need[ks]
            m = np.minimum(lengths[r0:r1], missing)
            hit = np.flatnonzero(m)
            # the rows' last m elements, newest first, from their keys' first free places
            at, last, m_hit = ks[hit] * k + (k - missing[hit]), cum[hit + (r0 + 1)] - 1, m[hit]
            j = 0
            while len(at):
                tail[at + j] = last - j
                j += 1
                more = np.flatnonzero(m_hit > j)
                at, last, m_hit = at[more], last[more], m_hit[more]
            need[ks] = missing - m
        for i, lo in lows.items():
            if lo == s:
                picks[i] = k - need
    tail = tail.reshape(K, k)
    slot_of = np.arange(k, dtype=np.int64)
    return {i: (tail[slot_of[None, :] < picks[i][:, None]], picks[i]) for i in spans}


def _lists(feats, value_type, flat, picks, n_keys: int):
    """{i: (element positions, count per key)} -> {i: (list array of n_keys rows, valid)}, picking
    from the elements' values (numpy)."""
    out = {}
    for i, (pos, kc) in picks.items():
        ok = kc > 0
        offsets = np.zeros(n_keys + 1, dtype=np.int64)
        np.cumsum(kc, out=offsets[1:])
        off = pa.array(offsets.astype(np.int32), mask=np.append(~ok, False), type=pa.int32())
        taken = pa.array(flat[pos], type=value_type)
        out[i] = (pa.ListArray.from_arrays(off, taken, type=feats[i].op.output_type), ok)
    return out


def kept_columns(op, feats, column, rows: _Rows, spans):
    """TOP_K / BOTTOM_K / FIRST_K / LAST_K -> {i: (list array of n_keys rows, valid)}."""
    if isinstance(op, TM._FirstLastK) and op.is_last and rows.slot_runs() is not None:
        # numeric values: the chunks' elements without concatenating the column
        parts, lengths = zip(*[_chunk_elements(c) for c in _chunks(column)]) if len(column) else ((), ())
        ts, vals = _numeric_field(list(parts), "ts"), _numeric_field(list(parts), "value")
        if ts is not None and vals is not None:
            lengths = np.concatenate(lengths)
            tails = _last_k_tails(op.k, rows, lengths, ts[1].astype(np.int64, copy=False), vals[1], spans)
            if tails is not None:
                return _lists(feats, vals[0], vals[1], tails, rows.n_keys)
    arr = to_array(column)
    items, lengths = _elements(arr)
    timed = isinstance(op, TM._FirstLastK)
    if timed:
        ts = pc.struct_field(items, ["ts"]).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        values = pc.struct_field(items, ["value"])
        _, v, _ = ValueCodec.encode(op.kind, values)
        keep_last = op.is_last
    else:
        values = items
        _, v, _ = ValueCodec.encode(op.kind, values)
        keep_last = op.is_top
    K = rows.n_keys
    el_ent = np.repeat(rows.key, lengths)
    count_all = _weighted_counts(rows.key, lengths, K)
    order = _presorted(el_ent, K, count_all, ts, v, _element_days(rows, lengths)) if timed else None
    # in (entity, day) order a window's elements are a suffix of its entity's elements
    suffix = order is not None and rows.slots_ascending()
    if order is None:
        day = np.repeat(rows.days, lengths)   # ties in the general path's order: (day, input position)
        if timed:
            order = sorting.by_group_time_value(el_ent, K, ts, v, day)
        else:
            order = sorting.by_group_value(el_ent, K, v, day)
    els = _Sorted(rows, lengths, order, count_all)
    ends = np.cumsum(count_all)
    flat = S._numeric_numpy(values)
    k = op.k
    out = {}
    for i, span in spans.items():
        lo = rows.target - span + 1
        if suffix:
            sel, cnt, gend = None, els.counts(lo), ends
        else:
            sel, cnt = els.select(lo)
            gend = np.cumsum(cnt)              # group ends within the window's elements
        kc = np.minimum(cnt, k)
        offsets = np.zeros(K + 1, dtype=np.int64)
        np.cumsum(kc, out=offsets[1:])
        total = int(offsets[-1])
        if keep_last:   # newest / largest first: end - 1, end - 2, ...
            pos = np.repeat(gend - 1 + offsets[:-1], kc)
            pos -= np.arange(total, dtype=np.int64)
        else:           # first, first + 1, ...
            pos = np.repeat(gend - cnt - offsets[:-1], kc)
            pos += np.arange(total, dtype=np.int64)
        if sel is not None:
            pos = sel[pos]
        pos = order[pos]
        ok = kc > 0
        off = pa.array(offsets.astype(np.int32), mask=np.append(~ok, False), type=pa.int32())
        taken = pa.array(flat[pos], type=values.type) if flat is not None else values.take(pa.array(pos))
        out[i] = (pa.ListArray.from_arrays(off, taken, type=feats[i].op.output_type), ok)
    return out


def _percentile_values(arr: pa.Array):
    """One chunk of APPROX_PERCENTILE IRs -> (rows with a sketch, (exact values, lengths))."""
    lists = pc.struct_field(arr, ["values"])
    sketch = pc.struct_field(arr, ["sketch"])
    if arr.null_count == 0 and lists.null_count == 0:
        has_sketch = sketch.is_valid().to_numpy(zero_copy_only=False) if sketch.null_count < len(sketch) else None
        return has_sketch, _chunk_elements(lists)
    valid_rows = arr.is_valid().to_numpy(zero_copy_only=False)
    has_sketch = valid_rows & sketch.is_valid().to_numpy(zero_copy_only=False)
    lists_ok = valid_rows & lists.is_valid().to_numpy(zero_copy_only=False)
    return has_sketch, _chunk_elements(lists, lists_ok)


def percentile_columns(op, feats, column, rows: _Rows, spans):
    """APPROX_PERCENTILE: exact lists by nearest rank; windows with a sketch or more than k values
    (their keys, every window) merge Python IRs as the general path does. The column's chunks are
    read one by one (not concatenated)."""
    parts = [_percentile_values(c) for c in _chunks(column) if len(c)]
    has_sketch = np.concatenate([np.zeros(len(ln), dtype=bool) if sk is None else sk for sk, (_, ln) in parts]) \
        if parts else np.zeros(0, dtype=bool)
    lengths = np.concatenate([ln for _, (_, ln) in parts]) if parts else np.zeros(0, dtype=np.int64)
    x = np.concatenate([vals.to_numpy(zero_copy_only=False) for _, (vals, _) in parts]).astype(np.float64, copy=False) \
        if parts else np.zeros(0, dtype=np.float64)
    K, k = rows.n_keys, op.k
    # ties that can be told apart (-0.0 / 0.0) in the general path's order: (day, input position)
    ties = sorting._needs_float_ties(x)
    minor = (np.repeat(rows.days, lengths),) if ties else ()
    order = sorting.by_group_value(np.repeat(rows.key, lengths), K, x, *minor, float_ties=ties)
    els = _Sorted(rows, lengths, order, _weighted_counts(rows.key, lengths, K))
    sk_rows = np.flatnonzero(has_sketch)
    sk_ent, sk_slot = rows.key[sk_rows], rows.slot[sk_rows]
    fallback = np.zeros(K, dtype=bool)
    results = {}
    for i, span in sorted(spans.items(), key=lambda item: -item[1]):   # longest first (nested selections)
        P = len(feats[i].op.percentiles)
        lo = rows.target - span + 1
        sel, cnt = els.select(lo)
        big = cnt > k
        if len(sk_rows):
            big[sk_ent[sk_slot >= lo]] = True
        fallback |= big
        ok = (cnt > 0) & ~big
        good = np.flatnonzero(ok)
        vals = np.zeros((K, P), dtype=np.float64)
        if len(good):
            first = (np.cumsum(cnt) - cnt)[good]
            n = cnt[good]
            for j, p in enumerate(feats[i].op.percentiles):
                pos = first + S._nearest_rank(p, n)
                if sel is not None:
                    pos = sel[pos]
                vals[good, j] = x[order[pos]]
        results[i] = (vals, ok)
    if fallback.any():
        ents = np.flatnonzero(fallback)
        rws = np.flatnonzero(fallback[rows.key])
        remap = np.full(K, -1, dtype=np.int64)
        remap[ents] = np.arange(len(ents))
        py = [op.from_storage(v) for v in column.take(pa.array(rws, type=pa.int64())).to_pylist()]
        slow = S._object_windows(op, feats, spans, remap[rows.key[rws]], len(ents), rows.slot[rws], py,
                                 np.array([rows.target], dtype=np.int64))
        for i, (svals, sok) in slow.items():
            vals, ok = results[i]
            sok = np.asarray(sok)
            ok[ents] = sok
            for c, v in zip(ents[sok].tolist(), [svals[j] for j in np.flatnonzero(sok).tolist()]):
                vals[c, :] = v
    out = {}
    for i, (vals, ok) in results.items():
        P = vals.shape[1]
        flat = vals[ok].reshape(-1)
        offsets = np.zeros(K + 1, dtype=np.int64)
        np.cumsum(ok.astype(np.int64) * P, out=offsets[1:])
        off = pa.array(offsets.astype(np.int32), mask=np.append(~ok, False), type=pa.int32())
        out[i] = (pa.ListArray.from_arrays(off, pa.array(flat, type=pa.float64()), type=feats[i].op.output_type), ok)
    return out
