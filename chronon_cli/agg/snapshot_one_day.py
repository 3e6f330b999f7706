"""Daily snapshots for ONE target date, without reordering the IR rows.

The incremental backfill snapshots a single date from IR tables that arrive day-major (one file
per day, concatenated), so rows are not in (key, day) order. The general path (``snapshot.py``)
sorts the whole table by (key, day) first, which is costly for nested IR columns. With one target
date ``t`` (the last slot) a window of ``W`` slots is just the rows with slot in ``[t-W+1, t]``:

- dense ops group their rows into a (slot, key) grid with ``d_group`` (row order within a cell is
  the input's, as after the general path's stable sort), then merge the window's slots with the
  exact merge tree of ``snapshot.window_merges`` (power-of-two blocks), so results are identical;
- k-ops and exact percentile lists sort only their flattened numeric elements by (key, order
  keys), ties broken by (day, position in the input) as the general path's stable order leaves
  them, and pick from each window's elements. FIRST_K / LAST_K elements of day-ordered rows are
  usually in order after one radix sort by key (checked), and each window is then a suffix of its
  key's elements;
- percentile windows holding a sketch or more than k values merge Python IRs for their keys as the
  general path does (``_object_windows``, same IR order).

Used only when it applies (``applies``: one date; dense, k-op and percentile columns without
buckets / maps; rows of the lifetime prefix slot in day order). Output is identical to the general
path (same rows, ordered by key id, same values to the bit); ``snapshot.ONE_DATE_FAST_PATH = False``
forces the general path.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chronon_cli.agg import arrays as A
from chronon_cli.agg import sorting
from chronon_cli.agg import snapshot as S
from chronon_cli.agg.codes import KeyCodes, to_array
from chronon_cli.agg.ops import collections as C
from chronon_cli.agg.ops import sketches as SK
from chronon_cli.agg.ops import timed as TM
from chronon_cli.agg.ops.base import ValueCodec

GRID_BUDGET = 1 << 23  # dense (slot, key) cells per component per key chunk


def applies(agg, n_targets: int, days: np.ndarray, slot: np.ndarray) -> bool:
    """Can one-date snapshots of ``agg`` take the fast path for these rows?"""
    if n_targets != 1:
        return False
    for c in agg.columns:
        if c.subkeyed:
            return False
        op = c.op
        if not (op.dense or isinstance(op, (TM._FirstLastK, C._TopBottomK, SK.ApproxPercentile))):
            return False
    # slot 0 gathers every day before the windows (lifetime features): the general path sees its
    # rows by (day, input position); here they are seen in input position order
    early = slot == 0
    if early.any():
        d0 = days[early]
        if len(d0) > 1 and (d0[1:] < d0[:-1]).any():
            return False
    return True


def snapshot_one(agg, table: pa.Table, kc: KeyCodes, key_ids: np.ndarray, days: np.ndarray, slot: np.ndarray,
                 n_slots: int, target: int, spans: List[int], target_day: int) -> pa.Table:
    """Features of every key at slot ``target`` (= ``n_slots - 1``); rows by key id."""
    schema = agg.output_schema
    K = kc.num_keys
    by_column: Dict[int, List[int]] = {}
    for fi, f in enumerate(agg.features):
        by_column.setdefault(f.column_index, []).append(fi)
    cols: Dict[int, tuple] = {}
    rows = _Rows(key_ids, days, slot, K, n_slots, target)
    for ci, fis in by_column.items():
        column = agg.columns[ci]
        feats = [agg.features[fi] for fi in fis]
        fspans = {i: spans[fi] for i, fi in enumerate(fis)}
        arr = to_array(table.column(column.name))
        op = column.op
        if op.dense:
            res = _dense(op, feats, arr, rows, fspans)
        elif isinstance(op, SK.ApproxPercentile):
            res = _percentiles(op, feats, arr, rows, fspans)
        else:
            res = _kept(op, feats, arr, rows, fspans)
        for i, fi in enumerate(fis):
            cols[fi] = res[i]
    any_valid = np.zeros(K, dtype=bool)
    for _, ok in cols.values():
        any_valid |= ok
    idx = np.flatnonzero(any_valid)
    if len(idx) == 0:
        return schema.empty_table()
    everything = len(idx) == K
    mask = None if everything else pa.array(any_valid)
    take = pa.array(idx)
    data = {k: kc.keys.column(k).take(take) for k in agg.key_columns}
    data["ds"] = A.date_array(np.full(len(idx), target_day, dtype=np.int64))
    for fi, f in enumerate(agg.features):
        data[f.name] = cols[fi][0] if everything else cols[fi][0].filter(mask)
    return pa.table(data).cast(schema)


class _Rows:
    """Per-row key ids, days and slots, with what several columns share (grid cells, day order)."""

    def __init__(self, key_ids, days, slot, n_keys, n_slots, target):
        self.key = key_ids
        self.days = days
        self.slot = slot
        self.n_keys = n_keys
        self.n_slots = n_slots
        self.target = target
        self._cells = None
        self._ascending = None

    def slots_ascending(self) -> bool:
        """Are the rows in day order (so a stable sort by key leaves each key's rows by day)?"""
        if self._ascending is None:
            s = self.slot
            self._ascending = bool(len(s) < 2 or (s[1:] >= s[:-1]).all())
        return self._ascending

    def cells(self):
        """Slot-major cell of each row (``slot * n_keys + key``) per key chunk:
        [(k0, k1, row positions or None for all rows, cells)]."""
        if self._cells is None:
            K, S_ = self.n_keys, self.n_slots
            per_chunk = max(GRID_BUDGET // max(S_, 1), 1)
            if K <= per_chunk:
                cell = self.slot.astype(np.int64) * K
                cell += self.key
                self._cells = [(0, K, None, cell)]
            else:
                chunk = self.key // per_chunk
                order = np.argsort(chunk, kind="stable")
                bounds = np.searchsorted(chunk[order], np.arange(0, -(-K // per_chunk) + 1))
                out = []
                for c, (r0, r1) in enumerate(zip(bounds, bounds[1:])):
                    k0, k1 = c * per_chunk, min((c + 1) * per_chunk, K)
                    pos = order[r0:r1]
                    cell = self.slot[pos].astype(np.int64) * (k1 - k0)
                    cell += self.key[pos] - k0
                    out.append((k0, k1, pos, cell))
                self._cells = out
        return self._cells


# ---------------------------------------------------------------- dense ops

def _block(op, grid, cache, j: int, c: int, n: int):
    """Merge of grid slots [c - 2^j + 1, c] as ``window_merges`` builds it (identity before 0)."""
    if c < 0:
        ident = op.d_identity()
        return {name: np.full(n, ident[name], dtype=a.dtype) for name, a in grid.items()}
    if j == 0:
        return {name: a[c] for name, a in grid.items()}
    key = (j, c)
    if key not in cache:
        half = 1 << (j - 1)
        cache[key] = op.d_merge(_block(op, grid, cache, j - 1, c - half, n), _block(op, grid, cache, j - 1, c, n))
    return cache[key]


def one_target_merges(op, grid, spans: Dict[int, int], t: int, n: int):
    """``window_merges`` for the single target ``t`` on a slot-major grid (component -> (slots,
    n)): {i: merged comps (n,)}, with the same merge tree."""
    cache: dict = {}
    out = {}
    for i, span in spans.items():
        result, back, j = None, 0, 0
        while (1 << j) <= span:
            if span & (1 << j):
                piece = _block(op, grid, cache, j, t - back, n)
                result = piece if result is None else op.d_merge(piece, result)
                back += 1 << j
            j += 1
        out[i] = result
    return out


def _rows_of(a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Rows ``pos`` of a component, keeping broadcast constants (``ones`` / ``zeros``) broadcast."""
    if a.ndim == 1 and a.strides == (0,) and len(a):
        return np.broadcast_to(a[0], (len(pos),))
    return a[pos]


def _dense(op, feats, arr, rows: _Rows, spans):
    comps, codec = op.d_from_arrow(arr)
    S_ = rows.n_slots
    pieces: Dict[int, list] = {i: [] for i in spans}
    for k0, k1, pos, cell in rows.cells():
        n = k1 - k0
        part = comps if pos is None else {name: _rows_of(a, pos) for name, a in comps.items()}
        grid = op.d_group(part, cell, S_ * n)
        grid = {name: a.reshape(S_, n) for name, a in grid.items()}
        merged = one_target_merges(op, grid, spans, rows.target, n)
        for i in spans:
            pieces[i].append(merged[i])
    values = {}
    for i, f in enumerate(feats):
        ps = pieces[i]
        merged = ps[0] if len(ps) == 1 else {name: np.concatenate([p[name] for p in ps]) for name in ps[0]}
        v, ok = f.op.d_finalize(merged)
        v, ok = v.reshape(-1), ok.reshape(-1)
        if f.op.coded_output:
            values[i] = (codec.decode(v, ok), ok)
        else:
            values[i] = (pa.array(v, mask=~ok, type=f.op.output_type), ok)
    return values


# ---------------------------------------------------------------- list-valued IRs

def _elements(arr: pa.Array):
    """-> (child values of the non-null lists, number of elements of each row)."""
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    lengths = S._list_lengths(arr, valid)
    return S._list_values(arr, lengths), lengths


def _weighted_counts(key: np.ndarray, lengths: np.ndarray, n_keys: int) -> np.ndarray:
    """Elements per key from the rows' list lengths."""
    if len(key) == 0:
        return np.zeros(n_keys, dtype=np.int64)
    return np.bincount(key, weights=lengths, minlength=n_keys).astype(np.int64)


class _Sorted:
    """Elements of list IRs in a sort order grouped by entity (``order``: their positions);
    per-window element counts (from the rows) and selections."""

    def __init__(self, rows: _Rows, lengths: np.ndarray, order: np.ndarray, count_all: np.ndarray):
        self.rows, self.lengths, self.order, self.count_all = rows, lengths, order, count_all
        self._s = None
        self.min_slot = int(rows.slot.min()) if len(rows.slot) else 0

    def counts(self, lo: int) -> np.ndarray:
        """Elements per entity with slot >= lo."""
        if lo <= self.min_slot:
            return self.count_all
        rows = self.rows
        m = rows.slot >= lo
        return _weighted_counts(rows.key[m], self.lengths[m], rows.n_keys)

    def select(self, lo: int):
        """-> (positions in the order, ascending, of the elements with slot >= lo, or None for all;
        their count per entity)."""
        cnt = self.counts(lo)
        if lo <= self.min_slot:
            return None, cnt
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


def _kept(op, feats, arr, rows: _Rows, spans):
    """TOP_K / BOTTOM_K / FIRST_K / LAST_K -> {i: (list array of n_keys rows, valid)}."""
    items, lengths = _elements(arr)
    timed = isinstance(op, TM._FirstLastK)
    if timed:
        ts = pc.struct_field(items, ["ts"]).to_numpy(zero_copy_only=False).astype(np.int64)
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


def _percentiles(op, feats, arr, rows: _Rows, spans):
    """APPROX_PERCENTILE: exact lists by nearest rank; windows with a sketch or more than k values
    (their keys, every window) merge Python IRs as the general path does."""
    valid_rows = arr.is_valid().to_numpy(zero_copy_only=False)
    lists = pc.struct_field(arr, ["values"])
    sketch = pc.struct_field(arr, ["sketch"])
    has_sketch = valid_rows & sketch.is_valid().to_numpy(zero_copy_only=False)
    lists_ok = valid_rows & lists.is_valid().to_numpy(zero_copy_only=False)
    lengths = S._list_lengths(lists, lists_ok)
    x = S._list_values(lists, lengths).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    K, k = rows.n_keys, op.k
    el_ent = np.repeat(rows.key, lengths)
    # ties that can be told apart (-0.0 / 0.0) in the general path's order: (day, input position)
    minor = (np.repeat(rows.days, lengths),) if sorting._needs_float_ties(x) else ()
    order = sorting.by_group_value(el_ent, K, x, *minor)
    els = _Sorted(rows, lengths, order, _weighted_counts(rows.key, lengths, K))
    sk_rows = np.flatnonzero(has_sketch)
    sk_ent, sk_slot = rows.key[sk_rows], rows.slot[sk_rows]
    fallback = np.zeros(K, dtype=bool)
    results = {}
    for i, span in spans.items():
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
        py = [op.from_storage(v) for v in arr.take(pa.array(rws, type=pa.int64())).to_pylist()]
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
