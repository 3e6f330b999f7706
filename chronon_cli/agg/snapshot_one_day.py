"""Daily snapshots for ONE target date, without reordering the IR rows.

The incremental backfill snapshots a single date from IR tables that arrive day-major (one file
per day, concatenated), so rows are not in (key, day) order. The general path (``snapshot.py``)
sorts the whole table by (key, day) first, which is costly for nested IR columns. With one target
date ``t`` (the last slot) a window of ``W`` slots is just the rows with slot in ``[t-W+1, t]``:

- dense ops group their rows into a (slot, key) grid with ``d_group`` (row order within a cell is
  the input's, as after the general path's stable sort), then merge the window's slots with the
  exact merge tree of ``snapshot.window_merges`` (power-of-two blocks), so results are identical.
  When the rows come in slot order with one row per (slot, key) (the usual day files), sums and
  MIN / MAX (``_ufuncs``) skip the grid: each slot's grid row is scattered from that slot's rows
  when the tree needs it (``_stream_merges``), from the column's chunks as they are
  (``_ChunkComps``), in a few cache-sized buffers;
- k-ops and exact percentile lists sort only their flattened numeric elements by (key, order
  keys), ties broken by (day, position in the input) as the general path's stable order leaves
  them, and pick from each window's elements. FIRST_K / LAST_K elements of day-ordered rows are
  usually in order after one radix sort by key (checked), and each window is then a suffix of its
  key's elements. LAST_K on such rows needs no sort at all when each list is sorted and the days'
  ts ranges do not overlap (``_in_order``): every window's picks are its key's newest elements,
  gathered by one walk down the slots (``_last_k_tails``);
- percentile windows holding a sketch or more than k values merge Python IRs for their keys as the
  general path does (``_object_windows``, same IR order).

Used only when it applies (``applies``: one date; dense, k-op and percentile columns without
buckets / maps; rows of the lifetime prefix slot in day order). Output is identical to the general
path (same rows, ordered by key id, same values to the bit); ``snapshot.ONE_DATE_FAST_PATH = False``
forces the general path. The dense ops live in ``one_day_dense``, the list-valued ones in
``one_day_lists``; this module holds the dispatch and the rows' shared bookkeeping (``_Rows``).
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import pyarrow as pa

from chronon_cli.agg import arrays as A
from chronon_cli.agg.codes import KeyCodes
from chronon_cli.agg.one_day_dense import dense_columns, same_bits
from chronon_cli.agg.one_day_lists import kept_columns, percentile_columns
from chronon_cli.agg.ops import collections as C
from chronon_cli.agg.ops import sketches as SK
from chronon_cli.agg.ops import timed as TM

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
    # dense columns first: the components they share are then dropped before the list columns
    for ci, fis in sorted(by_column.items(), key=lambda item: not agg.columns[item[0]].op.dense):
        column = agg.columns[ci]
        feats = [agg.features[fi] for fi in fis]
        fspans = {i: spans[fi] for i, fi in enumerate(fis)}
        data = table.column(column.name)
        op = column.op
        if op.dense:
            res = dense_columns(op, feats, data, rows, fspans)
        else:
            rows.forget_merged()
            kind = percentile_columns if isinstance(op, SK.ApproxPercentile) else kept_columns
            res = kind(op, feats, data, rows, fspans)
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
        self._runs = None
        self._counts: Dict[int, np.ndarray] = {}
        self._merged: list = []   # (ufunc, identity, chunk starts, chunk arrays, {span: result})

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

    def window_counts(self, spans: Dict[int, int]) -> Dict[int, np.ndarray]:
        """Rows per key in each window (slots ``target - span + 1 .. target``), for rows in slot
        order; cached."""
        out = {}
        for i, span in spans.items():
            lo = max(self.target - span + 1, 0)
            if lo not in self._counts:
                r0 = int(np.searchsorted(self.slot, self.slot.dtype.type(lo)))
                self._counts[lo] = np.bincount(self.key[r0:], minlength=self.n_keys).astype(np.int64, copy=False)
            out[i] = self._counts[lo]
        return out

    def merged_like(self, f, identity, cc, name: str, spans: Dict[int, int]):
        """Window results of an earlier column's component with the same values (to the bit, in
        the same chunks), merged by the same ufunc from the same identity; else None."""
        for f0, identity0, starts, arrays, by_span in self._merged:
            if (f0 is f and identity0 == identity and np.array_equal(starts, cc.starts)
                    and all(s in by_span for s in spans.values())
                    and all(same_bits(a, cc.comps(c)[name]) for c, a in enumerate(arrays))):
                return {i: by_span[s] for i, s in spans.items()}
        return None

    def forget_merged(self):
        """Drops the components kept for ``merged_like`` (their memory)."""
        self._merged = []

    def remember(self, f, identity, cc, name: str, by_span: Dict[int, np.ndarray]):
        arrays = [cc.comps(c)[name] for c in range(len(cc.chunks))]
        self._merged.append((f, identity, cc.starts, arrays, by_span))

    def slot_runs(self):
        """Row bounds of each slot (its rows are ``bounds[s]:bounds[s + 1]``) if the rows are in slot
        order and no key has two rows in one slot, else None (e.g. lifetime windows gathering
        several days in slot 0). A slot's grid row is then a scatter of its own rows, which stay in
        cache, instead of a (slots, keys) grid per component."""
        if self._runs is None:
            self._runs = False
            if self.slots_ascending():
                bounds = np.searchsorted(self.slot, np.arange(self.n_slots + 1, dtype=self.slot.dtype))
                where = np.empty(self.n_keys, dtype=np.int64)
                ok = True
                for r0, r1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
                    ks = self.key[r0:r1]
                    seq = np.arange(r1 - r0)
                    where[ks] = seq             # a repeated key keeps only its last position
                    if not np.array_equal(where[ks], seq):
                        ok = False
                        break
                if ok:
                    self._runs = bounds
        return None if self._runs is False else self._runs
