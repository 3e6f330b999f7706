"""Distributed aggregation: rows are grouped by key into tasks, then each task runs the shared ``agg`` kernels.

No operation is implemented here: tasks build a ``GroupByAggregator`` from the (pickled) GroupBy and
the input schema and call ``daily_irs`` / ``snapshot``. Data stays on executors. The functions
return the rows plus the per-task Arrow function (``KeyedTasks``, ``FusedSnapshot``) rather than a
DataFrame, so the writer runs the write in the same tasks (``writer.write_tables_from_tasks``).
"""
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import to_arrow_schema

from chronon_cli.agg import GroupByAggregator
from chronon_cli.agg.windows import DAY_MS
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

    def renamed(self, names: Dict[str, str]) -> "KeyedTasks":
        """Only the columns in ``names`` (old -> new), in that order, renamed."""
        inner, old, new = self.task, list(names), list(names.values())

        def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in inner(batches):
                yield pa.RecordBatch.from_arrays([batch.column(c) for c in old], names=new)

        schema = pa.schema([self.schema.field(o).with_name(n) for o, n in names.items()])
        return KeyedTasks(self.rows, task, schema)


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


def as_frame(spark, rows: Any, task: Callable[[Iterator[pa.RecordBatch]], Iterator[tuple]],
             schema: pa.Schema) -> DataFrame:
    """The batches of a one-target ``task`` (pairs (0, batch) of Arrow ``schema``) as a DataFrame, for
    Spark SQL after the aggregation (derivations). ``TaskSlots``: task ``p`` runs as partition ``p``
    of a ``spark.range`` (its one row is ignored)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    from chronon_cli.engines.spark.writer import TaskSlots

    def batches(it: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for _, batch in task(it):
            yield batch

    if isinstance(rows, TaskSlots):
        rows = spark.range(0, rows.count, 1, rows.count)
    return rows.mapInArrow(batches, from_arrow_schema(schema))


def _handoff_path(token: str, what: str) -> str:
    """Where a Spark task's first Python stage leaves ``what`` (its features, its new IRs) for the
    write stage of the same task attempt: a local file in the application's work folder
    (SparkFiles), removed once read."""
    import os

    from pyspark import SparkFiles, TaskContext

    ctx = TaskContext.get()
    folder = os.path.join(SparkFiles.getRootDirectory(), "chronon-handoff")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{token}-{ctx.partitionId()}-{ctx.taskAttemptId()}-{what}.arrow")


def _leave(path: str, schema: pa.Schema, batches: List[pa.RecordBatch]) -> None:
    import os

    with pa.OSFile(path + ".part", "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    os.replace(path + ".part", path)


def _take(path: str) -> Optional[pa.Table]:
    import os

    if not os.path.exists(path):
        return None
    try:
        return pa.ipc.open_file(pa.memory_map(path)).read_all()
    finally:
        os.remove(path)


def narrow_frame_with_handoff(spark, fused: "FusedSnapshot", columns: List[str], token: str) -> DataFrame:
    """The features of ``fused`` (keys, base features, ds; unprefixed) as a DataFrame of only
    ``columns``, partition ``p`` holding bucket ``p``. Each task first leaves its new daily IRs and
    all its features in local Arrow files that the write stage of the same Spark task takes back
    (``joined_with_derived``), so IRs and wide features (lists) never pass through the JVM."""
    from pyspark.sql.pandas.types import from_arrow_schema

    from chronon_cli.engines.spark.writer import TaskSlots

    fused_task, index = fused.task, fused.feature_target
    ir_schema, feature_schema = fused.ir_schema, fused.output_schema
    narrow_schema = pa.schema([feature_schema.field(c) for c in columns])

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        pairs = [(i, b) for i, b in fused_task(batches) if b.num_rows]
        irs = [b for i, b in pairs if i != index]
        features = [b for i, b in pairs if i == index]
        if irs:
            _leave(_handoff_path(token, "irs"), ir_schema, irs)
        if features:  # complete before the first row reaches the write stage
            _leave(_handoff_path(token, "features"), feature_schema, features)
        for batch in features:
            yield pa.RecordBatch.from_arrays([batch.column(c) for c in columns], schema=narrow_schema)

    rows = fused.rows
    if isinstance(rows, TaskSlots):
        rows = spark.range(0, rows.count, 1, rows.count)
    return rows.mapInArrow(task, from_arrow_schema(narrow_schema))


def joined_with_derived(token: str, keys: List[str], kept: List[str], derived: List[str],
                        schema: pa.Schema, feature_target: int) -> Callable:
    """The write task over partition ``p`` of the derivations' frame (keys, ``derived``, ds) made
    from ``narrow_frame_with_handoff``: it takes bucket ``p``'s new IRs (target 0) and features back
    from the task's handoff files and writes keys, the ``kept`` base features, the derived columns
    and ds as Arrow ``schema`` (its names, in that order; target ``feature_target``). Spark runs it
    for empty partitions too, so IRs of a bucket without feature rows are written. Rows that do not
    line up on the keys and ds fail the task."""

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[tuple]:
        from pyspark import TaskContext

        got = [b for b in batches if b.num_rows]  # all of them: the handoff files are complete by now
        bucket = TaskContext.get().partitionId()
        irs = _take(_handoff_path(token, "irs"))
        base = _take(_handoff_path(token, "features"))
        if irs is not None:
            for batch in irs.to_batches(max_chunksize=65_536):
                yield 0, batch
        if base is None:
            if got:
                raise RuntimeError(f"bucket {bucket}: derived rows arrived but no features were handed over")
            return
        side = pa.Table.from_batches(got) if got else None
        rows = (0 if side is None else side.num_rows, base.num_rows)
        aligned = rows[0] == rows[1] and all(
            base.column(c).equals(side.column(c).cast(base.schema.field(c).type)) for c in keys + ["ds"])
        if not aligned:
            raise RuntimeError(f"bucket {bucket}: the derived rows ({rows[0]}) do not line up with the "
                               f"features ({rows[1]}) on the keys and ds")
        columns = [base.column(c) for c in keys + kept] + [side.column(c) for c in derived] + [base.column("ds")]
        out = pa.Table.from_arrays(columns, names=schema.names).cast(schema)
        for batch in out.to_batches(max_chunksize=65_536):
            yield feature_target, batch

    return task


IRS = "__chronon_irs"
BUCKET = "chronon_bucket"  # IR-table column: the hash bucket of the row's keys (one value per data file)


@dataclass(frozen=True)
class FusedSnapshot:
    """Events of the days whose IRs are missing plus the stored daily IRs, in one frame shuffled by
    key into ``buckets`` partitions (``TaskSlots`` when the tasks read all of them themselves);
    ``task`` maps a task's batches to (0, new daily IR batch) and (1, feature batch) pairs (just
    (0, feature batch) when no IR day is computed), for ``writer.write_tables_from_tasks`` with
    targets [IR table, output table]."""
    rows: Any  # DataFrame, or writer.TaskSlots
    task: Callable[[Iterator[pa.RecordBatch]], Iterator[tuple]]
    ir_schema: pa.Schema
    output_schema: pa.Schema
    feature_target: int  # the index ``task`` tags feature batches with (0 when no IR day is computed)


def fused_snapshot(spark, events: Optional[DataFrame], stored_irs: Optional[DataFrame], group_by: ttypes.GroupBy,
                   schema: pa.Schema, dates: Sequence[date], ir_days: Sequence[date], names: Dict[str, str],
                   buckets: int, bucket_files: Optional[Dict[int, List[str]]] = None,
                   store_spec: Optional[Dict] = None, direct: Optional[Dict] = None) -> FusedSnapshot:
    """One pass for a chunk of event-source features: each task computes the daily IRs of its keys'
    ``events`` (selected rows), merges them with its keys' stored IRs and snapshots ``dates``. It
    emits the new IRs, plus the stored ones whose day lies within ``ir_days``' range (so that
    replacing that range keeps them), and the features, renamed by ``names`` (output column -> name,
    in order).

    Rows are shuffled with ``repartition(buckets, keys)``, so task ``p`` holds exactly the keys with
    ``pmod(hash(keys), buckets) == p`` (Spark's hash partitioning; every partition runs, even when
    empty). IR rows are written with that bucket in ``chronon_bucket``, so each IR data file holds
    one bucket, and stored IRs come either from ``bucket_files`` (bucket -> IR data files, read by
    task ``bucket`` with pyarrow: no shuffle, no trip through the JVM) or from ``stored_irs`` (IR
    rows shuffled along with the events)."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_type

    keys = list(group_by.keyColumns)
    agg = GroupByAggregator(group_by, schema)
    ir_schema, out_schema = agg.ir_schema, agg.output_schema
    ir_out_schema = ir_schema.append(pa.field(BUCKET, pa.int32()))
    renamed = pa.schema([out_schema.field(o).with_name(n) for o, n in names.items()])
    inputs = [f.name for f in schema if f.name not in keys]
    dates = list(dates)
    ir_lo = pa.scalar(min(ir_days), pa.date32()) if ir_days else None
    ir_hi = pa.scalar(max(ir_days), pa.date32()) if ir_days else None
    old, new = list(names), list(names.values())
    feature_index = 1 if ir_days else 0  # targets: [IR table (when IR days are computed), output]
    bucket_files = dict(bucket_files or {}) if bucket_files is not None else None

    def event_rows(table: pa.Table) -> Optional[pa.Table]:
        """The event rows (``ts`` set), with ``ds`` = the UTC day of ``ts``."""
        import pyarrow.compute as pc

        if "ts" not in table.column_names:
            return None
        part = table.filter(pc.is_valid(table.column("ts")))
        if not part.num_rows:
            return None
        ts = part.column("ts").to_numpy()
        ds = pa.array((ts // DAY_MS).astype(np.int32), pa.int32()).cast(pa.date32())
        return part.select(keys + inputs + ["ts"]).append_column("ds", ds)

    def unpack(table: pa.Table, column: str) -> Optional[pa.Table]:
        import pyarrow.compute as pc

        if column not in table.column_names:
            return None
        part = table.filter(pc.is_valid(table.column(column)))
        if not part.num_rows:
            return None
        inner = part.column(column).combine_chunks()
        data = {k: part.column(k) for k in keys}
        data["ds"] = part.column("ds")
        for i, field in enumerate(inner.type):
            data[field.name] = inner.field(i)
        return pa.table(data)

    def read_bucket(bucket: int) -> Optional[pa.Table]:
        from chronon_cli.storage import store_from_spec
        from chronon_cli.storage.parquet_files import read_file_batches

        store = store_from_spec(store_spec)
        batches = [b for uri in bucket_files.get(bucket, []) for b in read_file_batches(store, uri, ir_schema)]
        return pa.Table.from_batches(batches, schema=ir_schema) if batches else None

    def with_bucket(table: pa.Table, bucket: int) -> Iterator[tuple]:
        table = table.append_column(BUCKET, pa.array(np.full(table.num_rows, bucket, dtype=np.int32)))
        for batch in table.to_batches(max_chunksize=65_536):
            yield 0, batch

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[tuple]:
        import pyarrow.compute as pc
        from pyspark import TaskContext

        bucket = TaskContext.get().partitionId()
        agg = GroupByAggregator(group_by, schema)
        table = _one_table(batches)
        irs: List[pa.Table] = []
        if direct is not None:
            from chronon_cli.engines.spark.direct_source import read_bucket as read_events

            fresh = read_events(direct, bucket, buckets, keys, schema)
        else:
            fresh = event_rows(table) if table is not None else None
        stored = unpack(table, IRS) if table is not None else None
        if stored is not None:
            stored = stored.select(ir_schema.names).cast(ir_schema)
        elif bucket_files is not None:
            stored = read_bucket(bucket)
        if stored is not None:
            irs.append(stored)
            if ir_lo is not None:
                kept = stored.filter(pc.and_(pc.greater_equal(stored["ds"], ir_lo), pc.less_equal(stored["ds"], ir_hi)))
                yield from with_bucket(kept, bucket)
        if fresh is not None:  # after the stored days: an incremental day's rows then arrive in day order
            fresh = agg.daily_irs(fresh.select(keys + inputs + ["ts", "ds"])).cast(ir_schema)
            irs.append(fresh)
            yield from with_bucket(fresh, bucket)
        if not irs:
            return
        features_out = agg.snapshot(pa.concat_tables(irs) if len(irs) > 1 else irs[0], dates)
        if features_out.num_rows:
            features_out = features_out.cast(out_schema)
            out = pa.table([features_out.column(c) for c in old], names=new)
            for batch in out.to_batches(max_chunksize=65_536):
                yield feature_index, batch

    if events is None and stored_irs is None:
        from chronon_cli.engines.spark.writer import TaskSlots

        # nothing to shuffle: task p reads bucket p's rows itself
        return FusedSnapshot(TaskSlots(spark, buckets), task, ir_out_schema, renamed, feature_index)
    # one all-null row keeps the shuffle from being empty (an empty one may be pruned to no tasks)
    rows = spark.range(1).select(*[F.lit(None).cast(from_arrow_type(schema.field(k).type)).alias(k) for k in keys],
                                 F.lit(None).cast("date").alias("ds"))
    if events is not None:  # flat columns, no ds (the task derives it from ts): less to move per row
        rows = rows.unionByName(events.select(*[F.col(f"`{c}`") for c in keys + inputs + ["ts"]]),
                                allowMissingColumns=True)
    if stored_irs is not None:
        packed = F.struct(*[F.col(f"`{c}`") for c in agg.ir_columns]).alias(IRS)
        rows = rows.unionByName(stored_irs.select(*[F.col(f"`{k}`") for k in keys], F.col("ds"), packed),
                                allowMissingColumns=True)
    shuffled = rows.repartition(buckets, *[F.col(f"`{k}`") for k in keys])
    return FusedSnapshot(shuffled, task, ir_out_schema, renamed, feature_index)
