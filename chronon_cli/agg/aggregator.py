"""``GroupByAggregator``: the one object engines build from a compiled GroupBy."""
from __future__ import annotations

import datetime
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import pyarrow as pa

from chronon_cli.agg import kernels, snapshot as snapshot_mod, temporal as temporal_mod
from chronon_cli.agg import windows as W
from chronon_cli.agg.finalize import finalize_array
from chronon_cli.agg.plan import Feature, IrColumn, build_plan
from chronon_cli.spec import ttypes

IrRow = List[Any]


class GroupByAggregator:
    """Aggregation of one GroupBy over rows of ``input_schema`` (the selected source columns).

    Attributes: ``key_columns``, ``input_columns``, ``needs_ts``, ``feature_names``,
    ``output_schema``, ``ir_schema``, ``ir_columns`` (names of the IR columns, in order),
    ``columns`` (``IrColumn`` objects), ``features`` (``Feature`` objects), ``windows`` (distinct
    windows, ``None`` for lifetime), ``max_window_days``.
    """

    def __init__(self, group_by: ttypes.GroupBy, input_schema: pa.Schema):
        self.group_by = group_by
        self.input_schema = input_schema
        plan = build_plan(group_by, input_schema)
        self.plan = plan
        self.key_columns: List[str] = list(plan.key_columns)
        self.input_columns: List[str] = list(plan.input_columns)
        self.needs_ts: bool = plan.needs_ts
        self.columns: List[IrColumn] = plan.columns
        self.features: List[Feature] = plan.features
        self.feature_names: List[str] = [f.name for f in plan.features]
        self.ir_columns: List[str] = [c.name for c in plan.columns]
        key_fields = [input_schema.field(k) for k in self.key_columns]
        ds_field = pa.field("ds", pa.date32())
        self.output_schema = pa.schema(key_fields + [ds_field] + [pa.field(f.name, f.output_type) for f in self.features])
        self.ir_schema = pa.schema(key_fields + [ds_field] + [pa.field(c.name, c.ir_type) for c in self.columns])
        self.tile_schema = pa.schema(
            key_fields + [pa.field("ts", pa.int64())] + [pa.field(c.name, c.ir_type) for c in self.columns])
        seen: Dict[Optional[str], Optional[ttypes.Window]] = {}
        for f in self.features:
            seen.setdefault(f.window_key, f.window)
        self.windows: List[Optional[ttypes.Window]] = list(seen.values())
        if any(w is None for w in self.windows):
            self.max_window_days: Optional[int] = None
        else:
            self.max_window_days = max(W.window_days(w) for w in self.windows)

    # ------------------------------------------------------------------ batch kernels
    def daily_irs(self, events: pa.Table) -> pa.Table:
        """One row per (keys, ds) with that day's IRs (schema ``ir_schema``)."""
        return kernels.daily_irs(self.plan, events, self.ir_schema)

    def tile_irs(self, events: pa.Table, tile_ms: int) -> pa.Table:
        """One row per (keys, tile start): IRs of the events with ``ts`` in
        ``[start, start + tile_ms)`` (schema ``tile_schema``: keys, ``ts`` = tile start, IR
        columns). For streaming tiles (``windows.tile_size_ms``) and sawtooth tail hops."""
        return kernels.tile_irs(self.plan, events, int(tile_ms), self.tile_schema)

    def merge_daily_irs(self, irs: pa.Table) -> pa.Table:
        """Merge rows sharing (keys, ds)."""
        return kernels.merge_daily_irs(self.plan, irs, self.ir_schema)

    def merge_tile_irs(self, tiles: pa.Table) -> pa.Table:
        """Merge rows sharing (keys, ts) of ``tile_schema`` tables (e.g. a replayed batch)."""
        return kernels.merge_tile_irs(self.plan, tiles, self.tile_schema)

    def snapshot(self, daily_irs: pa.Table, dates: Sequence[Union[datetime.date, str]]) -> pa.Table:
        """Daily snapshot features for each date in ``dates`` (``output_schema``)."""
        return snapshot_mod.snapshot(self, daily_irs, [W.as_date(d) for d in dates])

    def temporal(self, events: pa.Table, queries: pa.Table) -> pa.Table:
        """Point-in-time features for ``queries`` (key columns + ``ts``), one row per query."""
        return temporal_mod.temporal(self, events, queries)

    # ------------------------------------------------------------------ row level
    def empty_row(self) -> IrRow:
        return [None] * len(self.columns)

    def update_row(self, ir_row: IrRow, event: Mapping[str, Any]) -> IrRow:
        """Add one event (a dict with the input columns, and ``ts`` when needed) to ``ir_row``."""
        ts = event.get("ts")
        for i, c in enumerate(self.columns):
            bucket = event.get(c.bucket) if c.bucket is not None else None
            ir_row[i] = c.update(ir_row[i], event.get(c.input_column), ts, bucket)
        return ir_row

    def delete_row(self, ir_row: IrRow, event: Mapping[str, Any]) -> IrRow:
        """Remove one event; ``TypeError`` if an IR column's op is not deletable."""
        ts = event.get("ts")
        for i, c in enumerate(self.columns):
            bucket = event.get(c.bucket) if c.bucket is not None else None
            ir_row[i] = c.delete(ir_row[i], event.get(c.input_column), ts, bucket)
        return ir_row

    @property
    def deletable(self) -> bool:
        return all(c.op.deletable for c in self.columns)

    def merge_rows(self, a: IrRow, b: IrRow) -> IrRow:
        """Merge ``b`` into ``a`` (may mutate ``a``; never ``b``)."""
        return [c.merge(x, y) for c, x, y in zip(self.columns, a, b)]

    def clone_row(self, ir_row: IrRow) -> IrRow:
        return [c.clone(x) for c, x in zip(self.columns, ir_row)]

    def finalize(self, irs_by_window: Union[IrRow, Mapping[Optional[str], IrRow]]) -> Dict[str, Any]:
        """Feature values from IR rows: either one IR row used for every feature, or a mapping
        window key (``"7d"``, ``"12h"``, ``None`` for lifetime; see ``windows.key``) -> the IR row
        covering that window's range. Missing windows give null features.
        """
        out: Dict[str, Any] = {}
        for f in self.features:
            if isinstance(irs_by_window, Mapping):
                row = irs_by_window.get(f.window_key)
            else:
                row = irs_by_window
            out[f.name] = None if row is None else f.finalize(row[f.column_index])
        return out

    def finalize_table(self, irs_by_window: Mapping[Optional[str], pa.Table]) -> pa.Table:
        """Vectorized ``finalize``: window key -> a table holding the IR columns (same rows, same
        order, in every table) -> a table of the feature columns. Missing windows give nulls."""
        n = None
        for t in irs_by_window.values():
            if n is not None and t.num_rows != n:
                raise ValueError("IR tables of different windows must have the same rows")
            n = t.num_rows
        n = n or 0
        out = {}
        for f in self.features:
            table = irs_by_window.get(f.window_key)
            if table is None:
                out[f.name] = pa.nulls(n, f.output_type)
            else:
                out[f.name] = finalize_array(f, table.column(f.column.name)).cast(f.output_type)
        return pa.table(out, schema=pa.schema([pa.field(f.name, f.output_type) for f in self.features]))

    # ------------------------------------------------------------------ columnar <-> rows
    def ir_table_to_rows(self, table: pa.Table) -> List[Dict[str, Any]]:
        """IR table -> dicts with the key columns, ``ds`` and ``"irs"`` (an IR row)."""
        rows = []
        names = self.key_columns + ["ds"]
        cols = {n: table.column(n).to_pylist() for n in names}
        irs = [[c.from_storage(v) for v in table.column(c.name).to_pylist()] for c in self.columns]
        for i in range(table.num_rows):
            row = {n: cols[n][i] for n in names}
            row["irs"] = [col[i] for col in irs]
            rows.append(row)
        return rows

    def ir_rows_to_table(self, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
        """Inverse of ``ir_table_to_rows``."""
        rows = list(rows)
        data = {n: [r[n] for r in rows] for n in self.key_columns + ["ds"]}
        for i, c in enumerate(self.columns):
            data[c.name] = [c.to_storage(r["irs"][i]) for r in rows]
        return pa.table(data, schema=self.ir_schema)

    def row_to_storage(self, ir_row: IrRow) -> List[Any]:
        return [c.to_storage(x) for c, x in zip(self.columns, ir_row)]

    def row_from_storage(self, values: Sequence[Any]) -> IrRow:
        return [c.from_storage(v) for c, v in zip(self.columns, values)]
