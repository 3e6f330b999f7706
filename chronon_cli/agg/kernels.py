"""Batch kernels: events -> daily IRs, and merging IR rows that share (keys, ds).

Dense ops (count, sum, average, variance, skew, kurtosis, min, max, first, last) run as numpy
group reductions over int64 group codes; collection ops (k-ops, unique counts, histograms, the
exact part of percentiles / approx histograms) are cut from one sort of the rows (``collect``);
only sketches build one Python IR per group.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import pyarrow as pa

from chronon_cli.agg import arrays as A
from chronon_cli.agg import collect, regroup
from chronon_cli.agg import types as T
from chronon_cli.agg.codes import KeyCodes, densify, pair_ids, to_array
from chronon_cli.agg.ops.base import ValueCodec
from chronon_cli.agg.plan import IrColumn, Plan


def _python_values(kind: str, values: pa.Array, codec_values: np.ndarray, sel: Optional[np.ndarray]) -> np.ndarray:
    """Values as Python objects for the per-group ops (numbers straight from numpy)."""
    if kind in (T.INT, T.FLOAT):
        return codec_values
    if sel is not None:
        values = values.take(pa.array(sel, type=pa.int64()))
    return np.array(values.to_pylist(), dtype=object)


def group_column(
    column: IrColumn,
    values: pa.Array,
    sub: Optional[pa.Array],
    group: np.ndarray,
    n_groups: int,
    ts: Optional[np.ndarray],
    ts_valid: Optional[np.ndarray],
    select: Optional[np.ndarray] = None,
) -> pa.Array:
    """IRs of ``column`` for ``n_groups`` groups from element ``values`` in groups ``group``.

    ``select`` (dense ops without subkeys only): return only these groups, in this order.
    """
    op = column.op
    codec, v, valid = ValueCodec.encode(op.kind, values)
    if op.timed:
        valid = valid & ts_valid
    sub_codes = sub_dict = None
    if sub is not None:
        sub_codes, sub_valid, sub_dict = A.sorted_codes(sub)
        valid &= sub_valid
    sel = None
    all_valid = bool(valid.all())
    if op.dense and sub_codes is None:
        # invalid rows go to a spare group n_groups, dropped below (cheaper than filtering)
        size = n_groups if all_valid else n_groups + 1
        g = group if all_valid else np.where(valid, group, n_groups)
        with np.errstate(all="ignore"):  # the spare group may hold NaN / garbage
            comps = op.d_group(op.d_rows(v, ts), g, size)
        if select is not None:
            comps = {k: c[select] for k, c in comps.items()}
        elif size != n_groups:
            comps = {k: c[:n_groups] for k, c in comps.items()}
        return op.d_to_arrow(comps, codec)
    if not all_valid:
        sel = np.flatnonzero(valid)
        v, group = v[sel], group[sel]
        ts = ts[sel] if ts is not None else None
        sub_codes = sub_codes[sel] if sub_codes is not None else None
    if sub_codes is not None:
        ent, ent_group, ent_sub = pair_ids(group, n_groups, sub_codes, max(len(sub_dict), 1))
        n_ent = len(ent_group)
    else:
        ent, n_ent = group, n_groups
    if op.dense:
        comps = op.d_group(op.d_rows(v, ts), ent, n_ent)
        if select is not None:
            comps = {k: c[select] for k, c in comps.items()}
        irs = op.d_to_arrow(comps, codec)
    else:
        irs = collect.build(op, codec, v, ts, ent, n_ent)
        if irs is None:
            irs = _object_irs(op, _python_values(op.kind, values, v, sel), ts, ent, n_ent)
    if sub_codes is None:
        return irs
    return A.build_map(ent_group, n_groups, sub_dict.take(pa.array(ent_sub, type=pa.int64())), irs)


def _object_irs(op, values: np.ndarray, ts: Optional[np.ndarray], ent: np.ndarray, n_ent: int) -> pa.Array:
    """One Python IR per entity present (others null), via ``op.ir_of_values``."""
    order = np.argsort(ent, kind="stable")
    ent_sorted = ent[order]
    vals = values[order]
    tss = ts[order] if ts is not None else None
    starts = np.flatnonzero(np.diff(ent_sorted, prepend=-1)) if len(ent_sorted) else np.zeros(0, np.int64)
    ends = np.append(starts[1:], len(ent_sorted))
    out: List = [None] * n_ent
    to_storage, ir_of_values = op.to_storage, op.ir_of_values
    for e, lo, hi in zip(ent_sorted[starts].tolist(), starts.tolist(), ends.tolist()):
        chunk = vals[lo:hi].tolist()
        out[e] = to_storage(ir_of_values(chunk, tss[lo:hi].tolist() if tss is not None else None))
    return pa.array(out, type=op.ir_type)


def check_columns(plan: Plan, table: pa.Table, extra=("ds",)) -> None:
    needed = list(plan.key_columns) + [c for c in plan.input_columns] + list(extra)
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise ValueError(f"events lack columns {missing} (have {table.column_names})")


def daily_irs(plan: Plan, events: pa.Table, ir_schema: pa.Schema) -> pa.Table:
    """One row per (keys, ds): the IRs of that day's events."""
    check_columns(plan, events)
    return _time_grouped(plan, events, ir_schema, lambda t: A.day_numbers(t.column("ds")), A.date_array)


def tile_irs(plan: Plan, events: pa.Table, tile_ms: int, schema: pa.Schema) -> pa.Table:
    """One row per (keys, tile): the IRs of events with ``ts`` in ``[tile, tile + tile_ms)``; the
    ``ts`` column of the result is the tile start. Events without ``ts`` are ignored."""
    check_columns(plan, events, extra=("ts",))
    if tile_ms <= 0:
        raise ValueError("tile_ms must be positive")
    ts_col = to_array(events.column("ts"))
    if ts_col.null_count:
        events = events.filter(ts_col.is_valid())

    def units(t):
        return A.int_numpy(t.column("ts"))[0] // tile_ms

    return _time_grouped(plan, events, schema, units, lambda u: pa.array(u * tile_ms, type=pa.int64()))


def _time_grouped(plan: Plan, events: pa.Table, ir_schema: pa.Schema, time_units, time_array) -> pa.Table:
    """IRs grouped by (keys, time unit); ``time_units(table)`` gives each row's unit (a day, a
    tile), ``time_array(units)`` the output time column (the schema's second non-key column)."""
    time_name = ir_schema.names[len(plan.key_columns)]
    if events.num_rows == 0:
        return ir_schema.empty_table()
    kc = KeyCodes(events, plan.key_columns, dense=False)
    if not kc.all_kept:
        events = events.filter(pa.array(kc.keep))
    if events.num_rows == 0:
        return ir_schema.empty_table()
    days = time_units(events)
    day0 = int(days.min())
    n_days = int(days.max()) - day0 + 1
    # group code = key id * n_units + unit offset
    code = kc.kept_ids(n_days, days) if n_days > 1 else kc.kept_ids()
    if n_days > 1:
        code -= day0
    groups = _Groups(code, kc.num_keys * n_days, n_days)
    ts = ts_valid = None
    if any(c.op.timed for c in plan.columns):
        if "ts" not in events.column_names:
            raise ValueError("events need a 'ts' column for timed operations")
        ts, ts_valid = A.int_numpy(events.column("ts"))

    flat_cache: Dict[Tuple[str, Optional[str]], Tuple] = {}
    out = {name: kc.keys.column(name).take(pa.array(groups.key)) for name in plan.key_columns}
    out[time_name] = time_array(groups.day + day0)
    for column in plan.columns:
        cache_key = (column.input_column, column.shape.flatten)
        if cache_key not in flat_cache:
            flat_cache[cache_key] = A.flatten(events.column(column.input_column), column.shape.flatten)
        values, sub, parents = flat_cache[cache_key]
        if column.bucket is not None:
            kind = T.bucket_kind(column.bucket, events.schema.field(column.bucket).type)
            sub = A.subkey_strings(events.column(column.bucket), kind)
            if column.shape.flatten == "list":
                sub = sub.take(pa.array(parents))
        el_ts = el_ts_valid = None
        if ts is not None:
            el_ts, el_ts_valid = (ts, ts_valid) if column.shape.flatten is None else (ts[parents], ts_valid[parents])
        flat = column.shape.flatten is not None
        if column.op.dense and sub is None:
            # sparse group codes (no densifying pass); only the groups present are returned
            group = groups.code[parents] if flat else groups.code
            select = None if groups.space == groups.count else groups.uniques
            out[column.name] = group_column(column, values, None, group, groups.space, el_ts, el_ts_valid, select)
        else:
            group = groups.gid[parents] if flat else groups.gid
            out[column.name] = group_column(column, values, sub, group, groups.count, el_ts, el_ts_valid)
    return pa.table(out).cast(ir_schema)


class _Groups:
    """(key, day) groups of the event rows.

    ``code`` is a per-row group code in ``[0, space)`` (sparse: key * n_days + day when that space
    is small, else dense); ``gid`` (computed on demand) the dense group id; ``key`` / ``day``
    describe the ``count`` groups present, in code order.
    """

    def __init__(self, code: np.ndarray, space: int, n_days: int):
        self._gid = None
        if space <= 4 * len(code) + (1 << 22):
            present = np.bincount(code, minlength=space) > 0
            self.present = present
            uniques = np.flatnonzero(present)
        else:
            self._gid, uniques = densify(code, space)
            code, space, self.present = self._gid, len(uniques), None
        self.code, self.space = code, space
        self.uniques = uniques
        self.count = len(uniques)
        self.key, self.day = uniques // n_days, uniques % n_days

    @property
    def gid(self) -> np.ndarray:
        if self._gid is None:
            rank = np.cumsum(self.present, dtype=np.int64)
            rank -= 1
            self._gid = np.take(rank, self.code)
        return self._gid


# ---------------------------------------------------------------------------- merging IR rows

def merge_column(column: IrColumn, arr: pa.Array, group: np.ndarray, n_groups: int) -> pa.Array:
    """Merge the IRs of ``arr`` (one per row) into ``n_groups`` groups."""
    op = column.op
    arr = to_array(arr)
    if regroup.supports(op):
        rows = np.arange(len(arr), dtype=np.int64)
        if not column.subkeyed:
            return regroup.recollect(op, arr, rows, group, n_groups)
        owner, keys, items = A.map_entries(arr)
        sub_codes, _, sub_dict = A.sorted_codes(keys)
        ent, ent_group, ent_sub = pair_ids(group[owner], n_groups, sub_codes, max(len(sub_dict), 1))
        merged = regroup.recollect(op, items, np.arange(len(items), dtype=np.int64), ent, len(ent_group))
        return A.build_map(ent_group, n_groups, sub_dict.take(pa.array(ent_sub, type=pa.int64())), merged)
    if not op.dense:
        out: List = [None] * n_groups
        for g, stored in zip(group.tolist(), arr.to_pylist()):
            if stored is not None:
                out[g] = column.merge(out[g], column.from_storage(stored))
        return pa.array([column.to_storage(ir) for ir in out], type=column.ir_type)
    if not column.subkeyed:
        comps, codec = op.d_from_arrow(arr)
        return op.d_to_arrow(op.d_group(comps, group, n_groups), codec)
    owner, keys, items = A.map_entries(arr)
    sub_codes, _, sub_dict = A.sorted_codes(keys)
    ent, ent_group, ent_sub = pair_ids(group[owner], n_groups, sub_codes, max(len(sub_dict), 1))
    comps, codec = op.d_from_arrow(items)
    merged = op.d_to_arrow(op.d_group(comps, ent, len(ent_group)), codec)
    return A.build_map(ent_group, n_groups, sub_dict.take(pa.array(ent_sub, type=pa.int64())), merged)


def merge_daily_irs(plan: Plan, irs: pa.Table, ir_schema: pa.Schema) -> pa.Table:
    """Merge rows sharing (keys, ds)."""
    return _merge_grouped(plan, irs, ir_schema, "ds", lambda t: A.day_numbers(t.column("ds")), A.date_array)


def merge_tile_irs(plan: Plan, tiles: pa.Table, schema: pa.Schema) -> pa.Table:
    """Merge rows sharing (keys, ts) of tile IR tables."""
    return _merge_grouped(plan, tiles, schema, "ts", lambda t: A.int_numpy(t.column("ts"))[0],
                          lambda u: pa.array(u, type=pa.int64()))


def _merge_grouped(plan, irs, schema, time_name, time_units, time_array) -> pa.Table:
    if irs.num_rows == 0:
        return schema.empty_table()
    kc = KeyCodes(irs, plan.key_columns, dense=False)
    if not kc.all_kept:
        irs = irs.filter(pa.array(kc.keep))
    units = time_units(irs).astype(np.int64)
    u0 = int(units.min())
    gid, g_key, g_unit = pair_ids(kc.kept_ids(), kc.num_keys, units - u0, int(units.max()) - u0 + 1)
    n_groups = len(g_key)
    out = {name: kc.keys.column(name).take(pa.array(g_key)) for name in plan.key_columns}
    out[time_name] = time_array(g_unit + u0)
    for column in plan.columns:
        out[column.name] = merge_column(column, irs.column(column.name), gid, n_groups)
    return pa.table(out).cast(schema)
