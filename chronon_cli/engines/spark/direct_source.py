"""Event rows read straight from the source's parquet files by the Python task that aggregates them.

When every event source of a GroupBy selects plain columns (no expressions, no ``wheres``) and
its time column is a plain integer column, the backfill needs no Spark SQL to produce the selected
rows, and no shuffle to route them: each bucket's task reads the source files of the days it needs
with pyarrow and keeps the rows of its own keys, picked with Spark's own hash partitioning
(``hashing.spark_partition``), so they land exactly where ``repartition(buckets, keys)`` would have
put them and match the bucketed IR table. The rows never pass through the JVM. The price is that
every task reads every file: the backfill uses this path only while that extra reading stays small
(``worth_it``), and Spark's shuffle otherwise.

Same rows as ``group_by_source.selected_rows``: ``ts`` from the time column, ``ds`` = the UTC day
of ``ts``, only events whose day lies in the partition range read.
"""
import datetime as dt
import re
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pyarrow as pa

from chronon_cli.agg.windows import DAY_MS
from chronon_cli.spec import derived, ttypes

EXTRA_ROWS = 16_000_000  # rows read more than once (every task reads every file) that are still worth it
_PLAIN = re.compile(r"^\s*`?([A-Za-z_][A-Za-z0-9_]*)`?\s*$")


def _plain_columns(source: ttypes.Source, table: Any) -> Optional[Dict[str, str]]:
    """Selected name -> source column, or None when the query needs Spark SQL."""
    from pyiceberg.types import IntegerType, LongType

    if source.events is None:
        return None
    query = derived.source_query(source)
    if query.wheres:
        return None
    columns = {f.name: f for f in table.schema().fields}
    if query.selects is None:
        selected = {c: c for c in columns if c not in ("ds", "ts")}
    else:
        selected = {}
        for name, expression in query.selects.items():
            match = _PLAIN.match(expression or "")
            if not match or match.group(1) not in columns:
                return None
            selected[name] = match.group(1)
    time = _PLAIN.match(derived.time_column(source) or "")
    if not time or time.group(1) not in columns:
        return None
    if not isinstance(columns[time.group(1)].field_type, (IntegerType, LongType)):
        return None
    selected["ts"] = time.group(1)
    return selected


def _plain_sources(settings: Any, group_by: ttypes.GroupBy) -> Optional[List[tuple]]:
    """(source, its Iceberg table, selected name -> source column) for every source, or None when
    some source is missing or needs Spark SQL."""
    from chronon_cli.storage import catalog
    from chronon_cli.storage.iceberg import load_table

    cat = catalog(settings)
    found = []
    for source in group_by.sources:
        table = load_table(cat, derived.source_table(source), required=False)
        mapping = _plain_columns(source, table) if table is not None else None
        if mapping is None:
            return None
        found.append((source, table, mapping))
    return found


def input_schema(settings: Any, group_by: ttypes.GroupBy) -> Optional[pa.Schema]:
    """The Arrow schema of the selected rows without ``ts``/``ds`` (as ``aggregate.input_schema``
    gets it from Spark), straight from the source tables' schemas when every source selects plain
    columns and they agree; None otherwise (then Spark derives it from the select SQL)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    from chronon_cli.engines.spark.tables import spark_schema_of

    plain = _plain_sources(settings, group_by)
    if plain is None:
        return None
    found = None
    for _, table, mapping in plain:
        selected = [(name, column) for name, column in mapping.items() if name != "ts"]
        arrow = to_arrow_schema(spark_schema_of(table, [column for _, column in selected]))
        schema = pa.schema([arrow.field(column).with_name(name) for name, column in selected])
        if found is not None and not schema.equals(found):
            return None
        found = schema
    return found


def plan(settings: Any, group_by: ttypes.GroupBy, runs: Sequence[tuple], key_types: Sequence[pa.DataType]
         ) -> Optional[Dict[str, Any]]:
    """What the tasks need to read the selected rows of the day ``runs`` ((first, last) dates)
    themselves: per source, the column mapping and each run's data files. None when some source
    needs Spark SQL, a key type has no Spark-compatible hash here, or a table is not plain (schema
    evolution, delete files, no identity(ds) partitioning)."""
    from chronon_cli.engines.spark import hashing
    from chronon_cli.engines.spark.group_by_source import _partition_bounds
    from chronon_cli.storage import catalog, warehouse_store_for_catalog
    from chronon_cli.storage.iceberg import day_files

    if not all(hashing.supported(t) for t in key_types):
        return None
    plain = _plain_sources(settings, group_by)
    if plain is None or any(len(table.schemas()) != 1 for _, table, _ in plain):
        return None
    sources, rows = [], 0
    for source, table, mapping in plain:
        query = derived.source_query(source)
        planned = []
        for lo, hi in runs:
            first, last = _partition_bounds(query, lo, hi)
            if first > last:
                continue
            files = day_files(table, [first + dt.timedelta(days=i) for i in range((last - first).days + 1)])
            if files is None:
                return None
            rows += sum(f.record_count for f in files)
            planned.append({"first": first.toordinal(), "last": last.toordinal(),
                            "files": [f.file_path for f in files]})
        sources.append({"columns": mapping, "runs": planned})
    return {"store": dict(warehouse_store_for_catalog(catalog(settings)).spec()), "sources": sources, "rows": rows}


def worth_it(direct: Optional[Dict[str, Any]], buckets: int) -> bool:
    return direct is not None and direct["rows"] * (buckets - 1) <= EXTRA_ROWS


def _epoch_day(ordinal: int) -> int:
    return ordinal - dt.date(1970, 1, 1).toordinal()


def read_bucket(direct: Dict[str, Any], bucket: int, buckets: int, keys: Sequence[str],
                schema: pa.Schema) -> Optional[pa.Table]:
    """This bucket's selected event rows: ``keys`` and the other ``schema`` columns (cast to its
    types), ``ts`` and ``ds``; None when there are none."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from chronon_cli.engines.spark.hashing import spark_partition
    from chronon_cli.storage import store_from_spec

    store = store_from_spec(direct["store"])
    wanted = [f.name for f in schema]
    pieces = []
    for source in direct["sources"]:
        mapping = source["columns"]
        read = sorted(set(mapping.values()))
        for run in source["runs"]:
            first, last = _epoch_day(run["first"]), _epoch_day(run["last"])
            for uri in run["files"]:
                fs, path = store.resolve(uri)
                with fs.open_input_file(path) as f:
                    raw = pq.ParquetFile(f).read(columns=read, use_threads=False)
                data = pa.table({name: raw.column(column) for name, column in mapping.items()})
                ts = data.column("ts").cast(pa.int64())
                values = ts.to_numpy(zero_copy_only=False) if ts.null_count == 0 else \
                    ts.fill_null(np.iinfo(np.int64).min).to_numpy(zero_copy_only=False)
                days = np.floor_divide(values, DAY_MS)
                keep = (days >= first) & (days <= last)
                if ts.null_count:
                    keep &= np.asarray(pc.is_valid(ts).to_numpy(zero_copy_only=False), dtype=bool)
                if not keep.any():
                    continue
                data = data.set_column(data.schema.get_field_index("ts"), "ts", ts)
                mask = pa.array(keep)
                data, days = data.filter(mask), days[keep]
                mine = spark_partition(data, keys, buckets) == bucket
                if not mine.any():
                    continue
                data = data.filter(pa.array(mine)).select(wanted + ["ts"])
                days = pa.array(days[mine].astype(np.int32), pa.int32()).cast(pa.date32())
                pieces.append(data.append_column("ds", days))
    if not pieces:
        return None
    table = pa.concat_tables(pieces)
    return table.cast(pa.schema(list(schema) + [pa.field("ts", pa.int64()), pa.field("ds", pa.date32())]))
