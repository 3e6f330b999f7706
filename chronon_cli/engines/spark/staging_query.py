"""``staging-query-backfill``: run a StagingQuery over a date range into its Iceberg table.

Plan: the ds partitions in [start, end] (from the config's ``startPartition`` on) that the output
table lacks (all of them with ``force``), grouped into contiguous chunks of at most ``step_days``.
Each chunk runs the setups and the query with its macros filled in, and replaces exactly its ds
range in one Iceberg commit, so a re-run never duplicates rows and a killed run leaves the last
committed snapshot intact (the next run computes what is still missing).
"""
import datetime as dt
import re
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from chronon_cli.errors import ConfigError, JobError, UsageError

Progress = Callable[[str, int, int], None]


def output_table(sq: Any) -> str:
    """``{outputNamespace}.{name}`` with every character outside [A-Za-z0-9_] of the name made ``_``."""
    meta = sq.metaData
    if meta is None or not meta.name:
        raise ConfigError("a staging query needs metaData.name", field="name")
    if not meta.outputNamespace:
        raise ConfigError(f"staging query {meta.name} has no output namespace", obj=meta.name,
                          field="output_namespace")
    return f"{meta.outputNamespace}.{re.sub(r'[^A-Za-z0-9_]', '_', meta.name)}"


def _days(start: dt.date, end: dt.date) -> List[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def plan_chunks(days: List[dt.date], step_days: Optional[int]) -> List[Tuple[dt.date, dt.date]]:
    """Contiguous runs of ``days`` (sorted), each cut into chunks of at most ``step_days`` days."""
    if step_days is not None and step_days < 1:
        raise UsageError(f"--step-days must be at least 1, not {step_days}")
    chunks: List[Tuple[dt.date, dt.date]] = []
    run: List[dt.date] = []
    for day in sorted(days):
        if run and ((day - run[-1]).days != 1 or (step_days and len(run) == step_days)):
            chunks.append((run[0], run[-1]))
            run = []
        run.append(day)
    if run:
        chunks.append((run[0], run[-1]))
    return chunks


def _parse_start_partition(sq: Any) -> Optional[dt.date]:
    if not sq.startPartition:
        return None
    try:
        return dt.date.fromisoformat(str(sq.startPartition))
    except ValueError:
        raise ConfigError(f"startPartition '{sq.startPartition}' is not a YYYY-MM-DD date",
                          obj=sq.metaData.name if sq.metaData else None, field="start_partition") from None


def run_staging_query(settings: Any, sq: Any, start: dt.date, end: dt.date, *, force: bool = False,
                      step_days: Optional[int] = None, dry_run: bool = False,
                      progress: Optional[Progress] = None) -> Dict[str, Any]:
    """Backfill ``sq``'s output table for ds in [start, end]; a JSON-able report of what was planned and run."""
    from chronon_cli.engines.spark.macros import render
    from chronon_cli.engines.spark.tables import existing_partitions

    began = time.monotonic()
    if end < start:
        raise UsageError(f"--end-date {end} is before --start-date {start}")
    if not (sq.query or "").strip():
        raise ConfigError("the staging query has no query", obj=getattr(sq.metaData, "name", None), field="query")
    table = output_table(sq)
    first = _parse_start_partition(sq)
    effective_start = max(start, first) if first else start
    existing = existing_partitions(settings, table, effective_start, end)
    days = _days(effective_start, end) if effective_start <= end else []
    skipped = [] if force else [d for d in days if d in existing]
    todo = days if force else [d for d in days if d not in existing]
    chunks = plan_chunks(todo, step_days)

    def max_date(name: str) -> dt.date:
        parts = existing_partitions(settings, name)
        if not parts:
            raise JobError(f"max_date(table={name}): the table has no partitions (or does not exist)")
        return max(parts)

    name = sq.metaData.name
    # Render once up front so a bad macro fails before any work (and in dry runs).
    for c_start, c_end in chunks[:1]:
        render(sq.query, c_start, c_end, end, max_date, where="query")
        for i, setup in enumerate(sq.setups or []):
            render(setup, c_start, c_end, end, max_date, where=f"setups[{i}]")

    report: Dict[str, Any] = {
        "table": table, "staging_query": name,
        "start": start.isoformat(), "end": end.isoformat(),
        "effective_start": effective_start.isoformat(),
        "force": force, "step_days": step_days, "dry_run": dry_run,
        "planned": [d.isoformat() for d in todo],
        "skipped": [d.isoformat() for d in skipped],
        "chunks": [{"start": s.isoformat(), "end": e.isoformat(), "days": (e - s).days + 1} for s, e in chunks],
        "ran": [], "rows": 0,
    }
    if dry_run or not chunks:
        report["seconds"] = round(time.monotonic() - began, 3)
        return report

    from chronon_cli.engines.spark.datasources import register_sources
    from chronon_cli.engines.spark.session import get_spark
    from chronon_cli.engines.spark.setups import rewrite_setup
    from chronon_cli.engines.spark.sqlerrors import run_sql
    from chronon_cli.engines.spark.tables import bind_tables, write_table
    from chronon_cli.storage import object_store

    spark = get_spark(settings)
    sources = register_sources(spark, settings)
    store = object_store(settings)
    min_splits = spark.sparkContext.defaultParallelism
    native_local = bool((settings.spark or {}).get("native_local_io", True))
    props = dict(sq.metaData.tableProperties or {})
    total = len(chunks)
    for i, (c_start, c_end) in enumerate(chunks):
        label = f"{table} {c_start}..{c_end}" if c_start != c_end else f"{table} {c_start}"
        if progress:
            progress(label, i, total)
        chunk_began = time.monotonic()
        for j, setup in enumerate(sq.setups or []):
            statement = render(setup, c_start, c_end, end, max_date, where=f"setups[{j}]")
            statement, _ = rewrite_setup(statement, store, sources.parquet, min_splits, native_local)
            statement = bind_tables(spark, settings, statement)
            run_sql(spark, statement, f"setup {j + 1} of staging query {name}")
        query = bind_tables(spark, settings, render(sq.query, c_start, c_end, end, max_date, where="query"))
        df = run_sql(spark, query, f"query of staging query {name}")
        if "ds" not in df.columns:
            raise JobError(f"the query of staging query {name} returns no 'ds' column "
                           f"(columns: {', '.join(df.columns)}); nothing was written",
                           hint="add the partition date to the SELECT, e.g. TO_DATE(TIMESTAMP_MILLIS(ts)) AS ds")
        result = write_table(df, settings, table, c_start, c_end, props)
        report["chunks"][i].update(rows=result.rows, files=result.files, snapshot_id=result.snapshot_id,
                                   partitions=[d.isoformat() for d in result.partitions],
                                   seconds=round(time.monotonic() - chunk_began, 3))
        report["ran"].extend(d.isoformat() for d in _days(c_start, c_end))
        report["rows"] += result.rows
        if progress:
            progress(label, i + 1, total)
    report["seconds"] = round(time.monotonic() - began, 3)
    return report
