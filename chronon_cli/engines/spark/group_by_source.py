"""A GroupBy's sources as one Spark DataFrame of selected rows: keys, inputs, ``ts`` and ``ds``.

Selects, wheres and the time column are Spark SQL expressions, evaluated on executors. Multiple
sources (which select the same columns) are unioned.
"""
import itertools
from datetime import date, timedelta
from typing import List, Optional

from chronon_cli.engines.spark.tables import read_table, table_exists
from chronon_cli.errors import JobError
from chronon_cli.spec import derived, ttypes

_view_ids = itertools.count()


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _partition_bounds(query: ttypes.Query, start: date, end: date):
    if query.startPartition:
        start = max(start, date.fromisoformat(query.startPartition))
    if query.endPartition:
        end = min(end, date.fromisoformat(query.endPartition))
    return start, end


def selected_rows(spark, settings, group_by: ttypes.GroupBy, start: date, end: date,
                  event_days: bool = True, schema_only: bool = False):
    """Selected rows of every source for source partitions ``[start, end]``, or None when there are none.

    Event sources: ``ts`` from the time column (epoch millis) and ``ds`` = UTC day of ``ts``, keeping
    only events whose day is in ``[start, end]`` (an event belongs to the partition of its own day).
    Entity sources: ``ds`` is the snapshot partition and ``ts`` the end of that day minus 1 ms.
    ``schema_only``: the same query over no rows (for its schema).
    """
    frames = []
    for i, source in enumerate(group_by.sources):
        table = derived.source_table(source)
        if not table_exists(settings, table):
            raise JobError(f"source table {table} of {group_by.metaData.name} (sources[{i}]) does not exist",
                           hint="run its staging query first, or check the table name")
        query = derived.source_query(source)
        first, last = _partition_bounds(query, start, end)
        if first > last:
            continue
        if schema_only:  # an empty frame of the table's schema: no file planning or listing
            from chronon_cli.engines.spark.tables import spark_schema_of
            from chronon_cli.storage import catalog
            from chronon_cli.storage.iceberg import load_table

            frame = spark.createDataFrame([], spark_schema_of(load_table(catalog(settings), table)))
        else:
            frame = read_table(spark, settings, table, first, last)
        view = f"chronon_source_{next(_view_ids)}"
        frame.createOrReplaceTempView(view)
        frames.append(spark.sql(_select_sql(source, query, view, first, last, frame.columns)))
    if not frames:
        return None
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def _select_sql(source: ttypes.Source, query: ttypes.Query, view: str, first: date, last: date,
                columns: List[str]) -> str:
    if query.selects is not None:
        selects = [f"({expr}) AS {_quote(name)}" for name, expr in query.selects.items()]
    else:
        selects = [_quote(c) for c in columns if c not in ("ds", "ts")]
    wheres = [f"ds BETWEEN DATE '{first}' AND DATE '{last}'"] + [f"({w})" for w in query.wheres or []]
    if source.events is not None:
        time_expr = derived.time_column(source)
        inner = (f"SELECT {', '.join(selects)}, CAST(({time_expr}) AS BIGINT) AS ts FROM {view} "
                 f"WHERE {' AND '.join(wheres)}")
        return (f"SELECT *, CAST(TIMESTAMP_MILLIS(ts) AS DATE) AS ds FROM ({inner}) "
                f"WHERE ts IS NOT NULL AND CAST(TIMESTAMP_MILLIS(ts) AS DATE) BETWEEN DATE '{first}' AND DATE '{last}'")
    end_of_day = "(UNIX_MILLIS(CAST(DATE_ADD(ds, 1) AS TIMESTAMP)) - 1)"
    return f"SELECT {', '.join(selects)}, {end_of_day} AS ts, ds FROM {view} WHERE {' AND '.join(wheres)}"


def days(start: date, end: date) -> List[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def contiguous_runs(sorted_days: List[date], max_len: Optional[int] = None) -> List[tuple]:
    """``[d1, d2, d3, d5]`` -> ``[(d1, d3), (d5, d5)]``, each run at most ``max_len`` days."""
    runs = []
    for day in sorted_days:
        if runs and day - runs[-1][1] == timedelta(days=1) and (
                max_len is None or (day - runs[-1][0]).days < max_len):
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [tuple(r) for r in runs]
