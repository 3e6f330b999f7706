"""Point-in-time (TEMPORAL) values: for a query at ``q``, window W covers the sawtooth range
``[round_down(q - W, hop), q)`` (SEMANTICS §2); lifetime covers every event before ``q``.

Events are flattened and sorted by (key, ts) once per IR column; each query's range is then a
contiguous slice, found with one vectorized searchsorted. Queries are processed in batches: the
selected slices are concatenated and grouped by query with the same kernels as the daily IRs, so
dense ops run in numpy and only sketches / k-ops run Python per group.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import pyarrow as pa

from chronon_cli.agg import arrays as A
from chronon_cli.agg import types as T
from chronon_cli.agg import windows as W
from chronon_cli.agg.codes import KeyCodes, to_array
from chronon_cli.agg.finalize import finalize_array
from chronon_cli.agg.kernels import check_columns, group_column

BATCH_ELEMENTS = 1 << 22


def _starts(window, q: np.ndarray) -> np.ndarray:
    ms = W.window_ms(window)
    if ms is None:
        return np.full(len(q), np.iinfo(np.int64).min, dtype=np.int64)
    hop = W.tail_hop_ms(window)
    return ((q - ms) // hop) * hop


def temporal(agg, events: pa.Table, queries: pa.Table) -> pa.Table:
    keys = agg.key_columns
    if "ts" not in events.column_names or "ts" not in queries.column_names:
        raise ValueError("temporal needs a 'ts' column in the events and in the queries")
    check_columns(agg.plan, events, extra=("ts",))
    n_ev = events.num_rows
    ev_keys = events.select(keys)
    both = pa.concat_tables([ev_keys, queries.select(keys).cast(ev_keys.schema)])
    kc = KeyCodes(both, keys)
    ev_key, q_key = kc.ids[:n_ev], kc.ids[n_ev:]
    ev_ts, ev_ts_ok = A.int_numpy(events.column("ts"))
    q_ts, q_ts_ok = A.int_numpy(queries.column("ts"))
    q_ok = (q_key >= 0) & q_ts_ok

    out: Dict[str, pa.Array] = {k: to_array(queries.column(k)) for k in keys}
    out["ts"] = to_array(queries.column("ts")).cast(pa.int64())
    results: Dict[str, pa.Array] = {}
    by_column: Dict[int, List] = {}
    for f in agg.features:
        by_column.setdefault(f.column_index, []).append(f)
    for ci, feats in by_column.items():
        column = agg.columns[ci]
        values, sub, parents = A.flatten(events.column(column.input_column), column.shape.flatten)
        if column.bucket is not None:
            kind = T.bucket_kind(column.bucket, events.schema.field(column.bucket).type)
            sub = A.subkey_strings(events.column(column.bucket), kind)
            if column.shape.flatten == "list":
                sub = sub.take(pa.array(parents))
        if parents is None:
            el_key, el_ts, ok = ev_key, ev_ts, (ev_key >= 0) & ev_ts_ok
        else:
            el_key, el_ts = ev_key[parents], ev_ts[parents]
            ok = (el_key >= 0) & ev_ts_ok[parents]
        order = np.flatnonzero(ok)
        order = order[np.lexsort((el_ts[order], el_key[order]))]
        take = pa.array(order, type=pa.int64())
        values = values.take(take)
        sub = sub.take(take) if sub is not None else None
        el_key, el_ts = el_key[order], el_ts[order]
        for f in feats:
            starts = _starts(f.window, q_ts)
            # composite (key, ts-rank) codes make every query range one searchsorted away
            all_ts = np.unique(np.concatenate([el_ts, starts, q_ts]))
            base = len(all_ts) + 1
            comp = el_key * base + np.searchsorted(all_ts, el_ts)
            qk = np.where(q_ok, q_key, 0)
            lo = np.searchsorted(comp, qk * base + np.searchsorted(all_ts, starts), side="left")
            hi = np.searchsorted(comp, qk * base + np.searchsorted(all_ts, q_ts), side="left")
            hi = np.where(q_ok, np.maximum(hi, lo), lo)
            results[f.name] = _evaluate(f, column, values, sub, el_ts, lo, hi)
    for f in agg.features:
        out[f.name] = results[f.name]
    schema = pa.schema([agg.output_schema.field(k) for k in keys] + [pa.field("ts", pa.int64())]
                       + [agg.output_schema.field(f.name) for f in agg.features])
    return pa.table(out).cast(schema)


def _evaluate(feature, column, values, sub, el_ts, lo, hi) -> pa.Array:
    lengths = hi - lo
    n = len(lo)
    pieces = []
    start = 0
    cum = np.cumsum(lengths)
    while start < n:
        base = cum[start - 1] if start else 0
        end = int(np.searchsorted(cum, base + BATCH_ELEMENTS, side="right"))
        end = min(max(end, start + 1), n)
        ln = lengths[start:end]
        total = int(ln.sum())
        group = np.repeat(np.arange(end - start, dtype=np.int64), ln)
        offs = np.cumsum(ln) - ln
        idx = np.repeat(lo[start:end] - offs, ln) + np.arange(total, dtype=np.int64)
        take = pa.array(idx, type=pa.int64())
        irs = group_column(
            column, values.take(take), sub.take(take) if sub is not None else None, group, end - start,
            el_ts[idx], np.ones(total, dtype=bool),
        )
        pieces.append(finalize_array(feature, irs))
        start = end
    if not pieces:
        return pa.array([], type=feature.output_type)
    return pa.concat_arrays(pieces)
