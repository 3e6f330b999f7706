"""Distributed aggregation: rows are shuffled by key, then each Spark task runs the shared ``agg`` kernels.

No operation is implemented here: tasks build a ``GroupByAggregator`` from the (pickled) GroupBy and
the input schema and call ``daily_irs`` / ``merge_daily_irs`` / ``snapshot``. Data stays on executors.
Each function returns ``KeyedTasks`` (the shuffled rows, the per-task Arrow function, its output
schema) rather than a DataFrame, so a writer can run the write in the same tasks
(``writer.write_table_from_tasks``); ``to_frame()`` gives the DataFrame.
"""
from dataclasses import dataclass
from datetime import date
from typing import Callable, Dict, Iterator, List, Sequence

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from chronon_cli.agg import GroupByAggregator
from chronon_cli.spec import ttypes


def input_schema(rows: DataFrame, key_columns: Sequence[str]) -> pa.Schema:
    """Arrow schema of the selected rows without ``ts``/``ds`` (what the aggregator reads)."""
    schema = to_arrow_schema(rows.schema)
    return pa.schema([f for f in schema if f.name not in ("ts", "ds")])


def _one_table(batches: Iterator[pa.RecordBatch]) -> pa.Table:
    batches = list(batches)
    return pa.Table.from_batches(batches) if batches else None


def _emit(table: pa.Table, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    if table is not None and table.num_rows:
        yield from table.cast(schema).to_batches(max_chunksize=65_536)


def _partitions(frame: DataFrame, keys: List[str]) -> DataFrame:
    return frame.repartition(*keys)


@dataclass(frozen=True)
class KeyedTasks:
    """``rows.mapInArrow(task, schema)``, kept apart: ``rows`` shuffled by key, ``task`` maps one Spark
    task's Arrow batches to batches of the Arrow ``schema``."""
    rows: DataFrame
    task: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]
    schema: pa.Schema

    def to_frame(self) -> DataFrame:
        return self.rows.mapInArrow(self.task, from_arrow_schema(self.schema))

    def renamed(self, names: Dict[str, str]) -> "KeyedTasks":
        """Only the columns in ``names`` (old -> new), in that order, renamed."""
        inner, old, new = self.task, list(names), list(names.values())

        def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in inner(batches):
                yield pa.RecordBatch.from_arrays([batch.column(c) for c in old], names=new)

        schema = pa.schema([self.schema.field(o).with_name(n) for o, n in names.items()])
        return KeyedTasks(self.rows, task, schema)


def daily_irs(rows: DataFrame, group_by: ttypes.GroupBy, schema: pa.Schema) -> KeyedTasks:
    """Selected event rows -> one row per (keys, ds) of that day's IRs (the daily IR table's rows)."""
    ir_schema = GroupByAggregator(group_by, schema).ir_schema
    wanted = [f.name for f in schema] + ["ts", "ds"]

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        agg = GroupByAggregator(group_by, schema)
        table = _one_table(batches)
        if table is not None and table.num_rows:
            yield from _emit(agg.daily_irs(table.select(wanted)), ir_schema)

    return KeyedTasks(_partitions(rows, group_by.keyColumns), task, ir_schema)


def snapshot(irs: DataFrame, group_by: ttypes.GroupBy, schema: pa.Schema, dates: Sequence[date]) -> KeyedTasks:
    """Daily IR rows -> feature rows for each date (windows are merges of daily IRs)."""
    agg = GroupByAggregator(group_by, schema)
    out_schema = agg.output_schema
    dates = list(dates)

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        agg = GroupByAggregator(group_by, schema)
        table = _one_table(batches)
        if table is not None and table.num_rows:
            yield from _emit(agg.snapshot(table.cast(agg.ir_schema), dates), out_schema)

    return KeyedTasks(_partitions(irs, group_by.keyColumns), task, out_schema)


def snapshot_per_partition(rows: DataFrame, group_by: ttypes.GroupBy, schema: pa.Schema,
                           dates: Sequence[date]) -> KeyedTasks:
    """Entity sources: each ds aggregates its own snapshot (no window reaches into another day)."""
    agg = GroupByAggregator(group_by, schema)
    out_schema = agg.output_schema
    wanted = [f.name for f in schema] + ["ts", "ds"]
    dates = list(dates)

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.compute as pc

        agg = GroupByAggregator(group_by, schema)
        table = _one_table(batches)
        if table is None or not table.num_rows:
            return
        irs = agg.daily_irs(table.select(wanted))
        for day in dates:
            todays = irs.filter(pc.equal(irs["ds"], pa.scalar(day, pa.date32())))
            if todays.num_rows:
                yield from _emit(agg.snapshot(todays, [day]), out_schema)

    return KeyedTasks(_partitions(rows, group_by.keyColumns), task, out_schema)
