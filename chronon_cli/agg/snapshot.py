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
from typing import Dict, List, Optional

import numpy as np
import pyarrow as pa

from chronon_cli.agg import arrays as A
from chronon_cli.agg import regroup
from chronon_cli.agg import windows as W
from chronon_cli.agg.codes import KeyCodes, pair_ids, to_array
from chronon_cli.agg.ops.base import Comps
from chronon_cli.agg.plan import Feature, IrColumn

CELL_BUDGET = 1 << 20  # dense cells per component per key chunk


def _shift(grid: Comps, k: int, identity: Dict) -> Comps:
    out = {}
    for name, a in grid.items():
        s = np.empty_like(a)
        s[:, : min(k, a.shape[1])] = identity[name]
        if k < a.shape[1]:
            s[:, k:] = a[:, :-k]
        out[name] = s
    return out


def _take_cols(grid: Comps, cols: np.ndarray, identity: Dict) -> Comps:
    neg = cols < 0
    safe = np.where(neg, 0, cols)
    out = {}
    for name, a in grid.items():
        t = a[:, safe]
        if neg.any():
            t[:, neg] = identity[name]
        out[name] = t
    return out


def window_merges(op, grid: Comps, spans: Dict[int, int], targets: np.ndarray) -> Dict[int, Comps]:
    """For each ``spans[i]`` (a length in slots), the merge of slots [t-span+1, t] per target t."""
    identity = op.d_identity()
    results: Dict[int, Optional[Comps]] = {i: None for i in spans}
    acc = {i: 0 for i in spans}
    block = grid
    size = 1
    longest = max(spans.values())
    while True:
        for i, span in spans.items():
            if span & size:
                piece = _take_cols(block, targets - acc[i], identity)
                results[i] = piece if results[i] is None else op.d_merge(piece, results[i])
                acc[i] += size
        if size * 2 > longest:
            break
        block = op.d_merge(_shift(block, size, identity), block)
        size *= 2
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
    """-> {feature index: (pa.Array of n_keys * n_targets values, valid mask)}."""
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
            v, ok = f.op.d_finalize(merged[i])
            v, ok = v.reshape(-1), ok.reshape(-1)
            if f.op.coded_output:
                values[i] = (codec.decode(v, ok), ok)
            else:
                values[i] = (pa.array(v, mask=~ok, type=f.op.output_type), ok)
    elif regroup.supports(op):
        for i, f in enumerate(feats):
            values[i] = _regrouped_windows(op, f.op, irs, ent, n_ent, cell_slot, spans[i], chunk.targets)
    else:
        py = [op.from_storage(x) for x in irs.to_pylist()]
        for i, (vals, ok) in _object_windows(op, feats, spans, ent, n_ent, cell_slot, py, chunk.targets).items():
            values[i] = (pa.array(vals, type=feats[i].op.output_type), ok)
    if not column.subkeyed:
        return values
    # entities (key, subkey) x targets -> one map per (key, target)
    out = {}
    sub_strings = sub_dict.take(pa.array(ent_sub, type=pa.int64()))
    for i, (vals, ok) in values.items():
        e, t = np.divmod(np.flatnonzero(ok), T)
        row = ent_key[e] * T + t
        order = np.lexsort((e, row))
        pick = pa.array((e * T + t)[order], type=pa.int64())
        keys = sub_strings.take(pa.array(e[order], type=pa.int64()))
        m = A.build_map(row[order], K * T, keys, vals.take(pick))
        has = np.zeros(K * T, dtype=bool)
        has[row] = True
        out[i] = (m, has)
    return out


def _regrouped_windows(op, final_op, irs, ent, n_ent, cell_slot, span, targets):
    """Collection ops: every (entity, target) window as one vectorized regroup of IR elements."""
    T = len(targets)
    rows, groups = [], []
    for ti, t in enumerate(targets.tolist()):
        sel = np.flatnonzero((cell_slot >= t - span + 1) & (cell_slot <= t))
        rows.append(sel)
        groups.append(ent[sel] * T + ti)
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

    order = np.argsort(key_ids, kind="stable")
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
    cum = np.cumsum(entities * max(n_slots, len(targets)) + rows * len(targets))
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
        pick = pa.array(idx, type=pa.int64())
        data = {k: kc.keys.column(k).take(pa.array(k0 + idx // T)) for k in agg.key_columns}
        data["ds"] = A.date_array(np.array(target_days, dtype=np.int64)[idx % T])
        for fi, f in enumerate(agg.features):
            data[f.name] = cols[fi][0].take(pick)
        pieces.append(pa.table(data).cast(schema))
    if not pieces:
        return schema.empty_table()
    return pa.concat_tables(pieces)
