"""``--mode=backfill``: daily snapshot features of a GroupBy, incremental through a daily IR table.

Event sources: the daily IR table ``<output>_daily_irs`` holds one row per (key, day) of that day's
IRs. A chunk of output days needs the IR days its longest window reaches; only IR days missing from
the table are computed from the source, so backfilling the next day reads one source partition plus
stored IRs. Windows are then merges of daily IRs (``agg.snapshot``). Entity sources: each ds
aggregates its own snapshot. GroupBys without aggregations copy the selected columns.

Each chunk replaces its output partitions in one Iceberg commit (idempotent, atomic).
"""
import math
import time
from datetime import date, timedelta
from typing import Callable, Dict, List, Optional

import pyarrow as pa

from chronon_cli.agg import GroupByAggregator, windows
from chronon_cli.engines.spark import aggregate, derivations, direct_source
from chronon_cli.engines.spark.group_by_source import contiguous_runs, days, selected_rows
from chronon_cli.engines.spark.session import get_spark
from chronon_cli.engines.spark.staging_query import run_staging_query
from chronon_cli.engines.spark.tables import existing_partitions, read_table, write_table
from chronon_cli.engines.spark.writer import Target, write_tables_from_tasks
from chronon_cli.errors import JobError
from chronon_cli.spec import derived, ttypes
from chronon_cli.storage import catalog, warehouse_store_for_catalog
from chronon_cli.storage.iceberg import DICTIONARY_COLUMNS, day_files, files_by_value, load_table, partitions

Progress = Optional[Callable[[str, int, int], None]]
IR_TABLE_SUFFIX = "_daily_irs"
IR_BUCKETS_PROPERTY = "chronon.ir-buckets"
# IR files are read back by every incremental day (a window's worth of days per run): LZ4 decodes
# them about 25% faster than zstd here, for files about 20% larger. Only keys, ds and bucket are
# dictionary-encoded (IR values rarely repeat): writes about 35% faster, files about 15% smaller.
IR_TABLE_PROPERTIES = {"write.parquet.compression-codec": "lz4"}
ROWS_PER_BUCKET = 4_000_000


def ir_table_name(group_by: ttypes.GroupBy) -> str:
    return derived.output_table(group_by) + IR_TABLE_SUFFIX


def max_window_days(group_by: ttypes.GroupBy) -> Optional[int]:
    """Days of daily IRs the longest window needs before an output day (None: lifetime)."""
    lengths = [1]
    for aggregation in group_by.aggregations or []:
        if not aggregation.windows:
            return None
        lengths += [windows.window_days(w) for w in aggregation.windows]
    return max(lengths)


def _has_events(group_by: ttypes.GroupBy) -> bool:
    return any(s.events is not None for s in group_by.sources)


class Backfill:
    """One GroupBy's backfill over ``[start, end]``; ``plan()`` is what ``--dry-run`` shows."""

    def __init__(self, settings, group_by: ttypes.GroupBy, start: date, end: date, force: bool,
                 step_days: Optional[int], no_deps: bool, progress: Progress):
        self.settings, self.group_by = settings, group_by
        self.start, self.end, self.force = start, end, force
        self.step_days, self.no_deps, self.progress = step_days, no_deps, progress
        self.output = derived.output_table(group_by)
        self.ir_table = ir_table_name(group_by)
        self.prefix = derived.short_name(group_by)
        existing = existing_partitions(settings, self.output, start, end)
        wanted = days(start, end)
        self.todo = wanted if force else [d for d in wanted if d not in existing]
        self.skipped = [d for d in wanted if d not in self.todo]
        self.chunks = contiguous_runs(self.todo, step_days)

    # -- planning -------------------------------------------------------------------------
    def plan(self) -> Dict:
        return {
            "group_by": self.group_by.metaData.name,
            "table": self.output,
            "ir_table": self.ir_table if self.group_by.aggregations and _has_events(self.group_by) else None,
            "planned_partitions": [str(d) for d in self.todo],
            "skipped_partitions": [str(d) for d in self.skipped],
            "chunks": [{"start": str(a), "end": str(b)} for a, b in self.chunks],
        }

    # -- dependencies -----------------------------------------------------------------------
    def ensure_staging_partitions(self, first: date, last: date) -> List[Dict]:
        """Run the staging queries behind StagingQuery sources for missing days in ``[first, last]``."""
        runs = []
        for sq in derived.staging_queries(self.group_by):
            sq_start = date.fromisoformat(sq.startPartition) if sq.startPartition else first
            lo = max(first, sq_start)
            if lo > last:
                continue
            table = derived.output_table(sq)
            have = existing_partitions(self.settings, table, lo, last)
            missing = [d for d in days(lo, last) if d not in have]
            if not missing:
                continue
            if self.no_deps:
                raise JobError(f"{table} lacks partitions {', '.join(str(d) for d in missing)} needed by "
                               f"{self.group_by.metaData.name}",
                               hint="run its staging query, or drop --no-deps to run it automatically")
            runs.append(run_staging_query(self.settings, sq, missing[0], missing[-1]))
        return runs

    # -- running --------------------------------------------------------------------------
    def run(self) -> Dict:
        result = self.plan()
        result.update(dependency_runs=[], chunk_results=[], source_partitions_read=0)
        if not self.chunks:
            return result
        spark = get_spark(self.settings)
        for i, (a, b) in enumerate(self.chunks):
            if self.progress:
                self.progress(f"backfill {self.output}", i, len(self.chunks))
            chunk = self.run_chunk(spark, a, b, result)
            result["chunk_results"].append(chunk)
            result["source_partitions_read"] += chunk["source_partitions_read"]
        if self.progress:
            self.progress(f"backfill {self.output}", len(self.chunks), len(self.chunks))
        result["partitions_written"] = sum(len(c["partitions"]) for c in result["chunk_results"])
        result["rows"] = sum(c["rows"] for c in result["chunk_results"])
        result["seconds"] = round(sum(c["seconds"] for c in result["chunk_results"]), 3)
        return result

    def run_chunk(self, spark, a: date, b: date, result: Dict) -> Dict:
        began = time.monotonic()
        self.timings: Dict[str, float] = {}
        self.events_read = None
        gb = self.group_by
        if gb.aggregations and _has_events(gb):
            written, read = self.event_features(spark, a, b, result)
        else:
            if not gb.aggregations:
                features, read = self.copy_selected(spark, a, b)
            else:
                features, read = self.entity_features(spark, a, b)
            self.timings["inputs"] = round(time.monotonic() - began, 3)
            written = self.write_features(features, a, b)
            self.timings["features_write"] = round(written.seconds, 3)
        keys = written.keys
        if keys is None:
            # the keys of the partitions just written (a column-pruned read of the output)
            mark = time.monotonic()
            keys = read_table(spark, self.settings, self.output, a, b, columns=list(gb.keyColumns),
                              snapshot_id=written.snapshot_id).distinct().count() if written.rows else 0
            self.timings["key_count"] = round(time.monotonic() - mark, 3)
        return {"start": str(a), "end": str(b), "partitions": [str(d) for d in written.partitions],
                "rows": written.rows, "keys": keys, "source_partitions_read": read,
                "seconds": round(time.monotonic() - began, 3), "timings": dict(self.timings),
                **({"events_read": self.events_read} if self.events_read else {})}

    def event_features(self, spark, a: date, b: date, result: Dict):
        """Features of [a, b] and the missing daily IRs, in one Spark job (``aggregate.fused_snapshot``):
        events are read only for IR days not stored yet (``--force``: also the chunk's own days), the
        other IR days come from the IR table. IRs and features are committed in that order."""
        mark = time.monotonic()
        window = max_window_days(self.group_by)
        earliest = self.earliest_source_day() if window is None else a - timedelta(days=window - 1)
        result["dependency_runs"] += self.ensure_staging_partitions(earliest, b)
        ir = load_table(catalog(self.settings), self.ir_table, required=False)  # once per chunk
        have = partitions(ir, start=earliest, end=b) if ir is not None else set()
        compute = [d for d in self.source_days(earliest, b) if d not in have or (self.force and d >= a)]
        schema = self.input_schema(spark, a, b, compute)
        buckets = self.ir_buckets(spark, ir, compute)
        events, direct = None, None
        if compute:
            key_types = [schema.field(k).type for k in self.group_by.keyColumns]
            if (self.settings.spark or {}).get("direct_source_read", True):
                direct = direct_source.plan(self.settings, self.group_by, contiguous_runs(compute), key_types)
            if not direct_source.worth_it(direct, buckets):
                direct = None
                for lo, hi in contiguous_runs(compute):
                    run = selected_rows(spark, self.settings, self.group_by, lo, hi)
                    if run is not None:
                        events = run if events is None else events.unionByName(run)
        stored, bucket_files = None, None
        kept = sorted(have - set(compute))
        if kept:
            bucket_files = self.stored_ir_files(ir, kept, buckets)
            if bucket_files is None:  # IR files not bucketed (an older table): shuffle their rows instead
                stored = read_table(spark, self.settings, self.ir_table, kept[0], kept[-1])
                if compute and compute[0] <= kept[-1] and kept[0] <= compute[-1]:
                    stored = stored.where(~stored["ds"].isin(*compute))
        if events is None and direct is None and not kept:
            raise JobError(f"no source partition of {self.group_by.metaData.name} covers {earliest}..{b}",
                           hint="load the source table's partitions first")
        base_schema = GroupByAggregator(self.group_by, schema).output_schema
        probe_names = base_schema.names
        derive = bool(self.group_by.derivations)
        if derive:  # a bad expression fails here, before any table is written
            derivations.check(spark, self.group_by, base_schema)
        store_spec = dict(warehouse_store_for_catalog(catalog(self.settings)).spec())
        names = self.feature_names(probe_names)  # unprefixed for derivations: their expressions use those
        fused = aggregate.fused_snapshot(spark, events, stored, self.group_by, schema, days(a, b), compute,
                                         {c: c for c in names} if derive else names, buckets, bucket_files,
                                         store_spec, direct)
        targets = []
        if compute:
            dictionary = ",".join(self.group_by.keyColumns + ["ds", aggregate.BUCKET])
            targets.append(Target(self.ir_table, fused.ir_schema, compute[0], compute[-1],
                                  {**IR_TABLE_PROPERTIES, IR_BUCKETS_PROPERTY: str(buckets),
                                   DICTIONARY_COLUMNS: dictionary}))
        self.timings["plan"] = round(time.monotonic() - mark, 3)
        self.events_read = "direct" if direct is not None else ("shuffled" if events is not None else "none")
        if derive:
            return self.derived_in_the_same_job(spark, fused, targets, a, b), len(compute)
        targets.append(Target(self.output, fused.output_schema, a, b, self.group_by.metaData.tableProperties,
                              count_keys=tuple(self.group_by.keyColumns)))
        results = write_tables_from_tasks(fused.rows, fused.task, targets, self.settings)
        self.timings["compute_write"] = round(results[-1].seconds, 3)
        return results[-1], len(compute)

    def derived_in_the_same_job(self, spark, fused: aggregate.FusedSnapshot, targets: List[Target],
                                a: date, b: date):
        """The chunk's one Spark job with derivations: Spark evaluates them over a frame of only the
        keys, ds and the base features they read; the write stage of each task writes its bucket's
        new IRs and its features (handed over locally by the task's first stage) with the derived
        columns beside them (``aggregate.narrow_frame_with_handoff``, ``aggregate.joined_with_derived``)."""
        import uuid

        from pyspark.sql.pandas.types import to_arrow_schema

        gb, keys = self.group_by, list(self.group_by.keyColumns)
        base_features = [c for c in fused.output_schema.names if c not in keys and c != "ds"]
        read = derived.referenced_columns(gb.derivations, base_features)
        token = uuid.uuid4().hex
        narrow = aggregate.narrow_frame_with_handoff(spark, fused, keys + read + ["ds"], token)
        frame = derivations.derived_only(narrow, gb)
        kept = derived.kept_base_columns(gb.derivations, base_features)
        derived_names = [d.name for d in derived.derived_columns(gb.derivations)]
        side = to_arrow_schema(frame.schema, timestamp_utc=True)
        fields = [fused.output_schema.field(c) for c in keys + kept] + [side.field(n) for n in derived_names] + \
            [fused.output_schema.field("ds")]
        names = self.feature_names([f.name for f in fields])
        out_schema = pa.schema([f.with_name(names[f.name]) for f in fields])
        task = aggregate.joined_with_derived(token, keys, kept, derived_names, out_schema, len(targets))
        targets = targets + [Target(self.output, out_schema, a, b, gb.metaData.tableProperties,
                                    count_keys=tuple(keys))]
        try:
            results = write_tables_from_tasks(frame, task, targets, self.settings)
        except JobError as exc:
            raise self.derivation_hint(exc) from None
        self.timings["compute_write"] = round(results[-1].seconds, 3)
        return results[-1]

    def input_schema(self, spark, a: date, b: date, compute: List[date]):
        """The selected rows' Arrow schema: from the source tables for plain column selects, else from
        Spark's plan of the select query over no rows."""
        schema = direct_source.input_schema(self.settings, self.group_by)
        if schema is not None:
            return schema
        probe = selected_rows(spark, self.settings, self.group_by, a, a, schema_only=True)
        if probe is None and compute:
            probe = selected_rows(spark, self.settings, self.group_by, compute[0], compute[-1], schema_only=True)
        if probe is None:
            raise JobError(f"no source of {self.group_by.metaData.name} covers {a}..{b}")
        return aggregate.input_schema(probe, self.group_by.keyColumns)

    def ir_buckets(self, spark, ir, compute: List[date]) -> int:
        """Hash buckets of the IR table, fixed when it is created (table property ``chronon.ir-buckets``):
        the profile's ``spark.ir_buckets``, else one per core (Spark's default parallelism) and more
        for big inputs, so that a bucket's task starts from at most ~``ROWS_PER_BUCKET`` source rows.
        Few buckets keep an incremental day cheap (one task per bucket reads its stored IR files)."""
        value = ir.properties.get(IR_BUCKETS_PROPERTY) if ir is not None else None
        if value:
            return int(value)
        if (self.settings.spark or {}).get("ir_buckets"):
            return int(self.settings.spark["ir_buckets"])
        cores = max(1, spark.sparkContext.defaultParallelism)
        return cores * max(1, math.ceil(self.source_rows(compute) / (cores * ROWS_PER_BUCKET)))

    def source_rows(self, compute: List[date]) -> int:
        """Rows of the source partitions of ``compute`` days (from the file metadata)."""
        if not compute:
            return 0
        rows = 0
        for source in self.group_by.sources:
            table = load_table(catalog(self.settings), derived.source_table(source), required=False)
            files = day_files(table, compute) if table is not None else []
            rows += sum(f.record_count for f in files or [])
        return rows

    @staticmethod
    def stored_ir_files(ir, kept: List[date], buckets: int) -> Optional[Dict[int, List[str]]]:
        """IR data files of the ``kept`` days by bucket, or None when some file is not one bucket's."""
        if ir.properties.get(IR_BUCKETS_PROPERTY) != str(buckets):
            return None
        grouped = files_by_value(ir, aggregate.BUCKET, kept)
        if grouped is None or any(not 0 <= bucket < buckets for bucket in grouped):
            return None
        return grouped

    def entity_features(self, spark, a: date, b: date):
        rows = selected_rows(spark, self.settings, self.group_by, a, b)
        if rows is None:
            raise JobError(f"no source of {self.group_by.metaData.name} covers {a}..{b}")
        schema = aggregate.input_schema(rows, self.group_by.keyColumns)
        return aggregate.snapshot_per_partition(rows, self.group_by, schema, days(a, b)), self.source_partitions_in(a, b)

    def copy_selected(self, spark, a: date, b: date):
        rows = selected_rows(spark, self.settings, self.group_by, a, b)
        if rows is None:
            raise JobError(f"no source of {self.group_by.metaData.name} covers {a}..{b}")
        return rows.drop("ts"), self.source_partitions_in(a, b)

    def source_days(self, lo: date, hi: date) -> List[date]:
        """Days in ``[lo, hi]`` for which some source has a partition."""
        found = set()
        for source in self.group_by.sources:
            found |= existing_partitions(self.settings, derived.source_table(source), lo, hi)
        return sorted(found)

    def source_partitions_in(self, lo: date, hi: date) -> int:
        """How many existing source partitions ``[lo, hi]`` covers (what a read of that range scans)."""
        return sum(len(existing_partitions(self.settings, derived.source_table(s), lo, hi))
                   for s in self.group_by.sources)

    def earliest_source_day(self) -> date:
        found = []
        for source in self.group_by.sources:
            body = derived.source_body(source)
            if body.stagingQuery is not None and body.stagingQuery.startPartition:
                found.append(date.fromisoformat(body.stagingQuery.startPartition))
            table = derived.source_table(source)
            parts = existing_partitions(self.settings, table)
            if parts:
                found.append(min(parts))
        if self.group_by.backfillStartDate:
            found.append(date.fromisoformat(self.group_by.backfillStartDate))
        return min(found) if found else self.start

    def write_features(self, features, a: date, b: date):
        """Write the feature rows (a DataFrame, or ``KeyedTasks`` whose tasks also write) into [a, b]."""
        props = self.group_by.metaData.tableProperties
        if self.group_by.derivations:
            if isinstance(features, aggregate.KeyedTasks):
                task = features.task  # the closure must not reach the DataFrame
                features = aggregate.as_frame(features.rows.sparkSession, features.rows,
                                              lambda batches: ((0, batch) for batch in task(batches)),
                                              features.schema)
            features = derivations.apply(features, self.group_by)
        if isinstance(features, aggregate.KeyedTasks):
            out = features.renamed(self.feature_names(features.schema.names))
            target = Target(self.output, out.schema, a, b, props, count_keys=tuple(self.group_by.keyColumns))
            task = out.task  # the closure must not reach the DataFrame
            return write_tables_from_tasks(out.rows, lambda batches: ((0, batch) for batch in task(batches)),
                                           [target], self.settings)[0]
        return self.write_frame(features, a, b)

    def write_frame(self, frame, a: date, b: date):
        """Write a DataFrame of keys, features and ds into [a, b], features prefixed. A failure while
        derivations run (a runtime SQL error, say a division by zero) says they are the likely cause."""
        names = self.feature_names(frame.columns)
        try:
            return write_table(frame.select(*[frame[f"`{c}`"].alias(n) for c, n in names.items()]),
                               self.settings, self.output, a, b, self.group_by.metaData.tableProperties)
        except JobError as exc:
            raise self.derivation_hint(exc) from None

    def derivation_hint(self, exc: JobError) -> JobError:
        """``exc`` of a write that ran derivations, with a hint that they likely caused it (when it has none)."""
        if not self.group_by.derivations or exc.hint:
            return exc
        derived_names = ", ".join(d.name for d in derived.derived_columns(self.group_by.derivations))
        return JobError(exc.message, hint=f"the derivations of {self.group_by.metaData.name} ({derived_names}) "
                        "run in this write, so a runtime SQL error likely comes from one of their "
                        "expressions; try_divide and the other try_* functions give NULL instead")

    def feature_names(self, columns) -> Dict[str, str]:
        """Output column names: features prefixed with the GroupBy's short name, keys as they are, ds last."""
        keys = set(self.group_by.keyColumns)
        names = {c: c if c in keys else f"{self.prefix}_{c}" for c in columns if c != "ds"}
        names["ds"] = "ds"
        return names



def run_backfill(settings, group_by: ttypes.GroupBy, start: date, end: date, *, force: bool = False,
                 step_days: Optional[int] = None, dry_run: bool = False, no_deps: bool = False,
                 progress: Progress = None) -> Dict:
    """Backfill ``group_by``'s output table for ``[start, end]``; returns a JSON-able summary."""
    job = Backfill(settings, group_by, start, end, force, step_days, no_deps, progress)
    if dry_run:
        return job.plan()
    return job.run()
