"""Backfill benchmark: synthetic purchases through ``--mode=backfill`` vs plain Spark, side by side.

    .venv/bin/python bench/backfill_bench.py                  # 10^7 events, 10^5 users, 90 days
    .venv/bin/python bench/backfill_bench.py --events 1000000  # a quicker look
    .venv/bin/python bench/backfill_bench.py --sql-days 5     # hand-written SQL on 5 days, scaled x6
    .venv/bin/python bench/backfill_bench.py --runs 3         # medians of 3 scans and 3 full backfills
    .venv/bin/python bench/backfill_bench.py --also-codec lz4 # also with an LZ4 feature table

Prints, from one process, side by side: our 30-day backfill (time, events/s; each run into its own
table, so each computes everything), one plain Spark scan of the input columns (the floor), Spark's
own parquet writer writing the rows our backfill wrote (feature and IR tables, from a cache: what the
output costs a plain Spark job to write, apart from computing it), the obvious hand-written Spark
SQL (per output day: filter the window, group by user), the next days backfilled incrementally
one at a time (median), peak driver memory, and the backfill's phases (seconds per step, from the
chunk summaries). With ``--runs N`` the scan, the full backfill and Spark's write run N times and
medians are printed (the first run of a process also pays for starting Python workers).
Ratios are printed, never asserted.
"""
import argparse
import resource
import shutil
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.group_by import Aggregation, GroupBy, Operation
from ai.chronon.query import Query, select
from chronon_cli import settings as settings_module
from chronon_cli.engines.spark.backfill import run_backfill
from chronon_cli.engines.spark.session import get_spark
from chronon_cli.storage import catalog

MS_PER_DAY = 86_400_000
FIRST_DAY = date(2024, 1, 1)
WINDOWS = ["1d", "7d", "30d"]


def make_events(events: int, users: int, days: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    day_index = rng.integers(0, days, events)
    start_ms = int((FIRST_DAY - date(1970, 1, 1)).days) * MS_PER_DAY
    ts = start_ms + day_index * MS_PER_DAY + rng.integers(0, MS_PER_DAY, events)
    user_ids = np.char.add("user_", rng.integers(0, users, events).astype(str))
    return pa.table({
        "user_id": pa.array(user_ids, pa.string()),
        "purchase_price": pa.array(np.round(rng.gamma(2.0, 20.0, events), 2), pa.float64()),
        "ts": pa.array(ts, pa.int64()),
        "ds": pa.array(np.datetime64(FIRST_DAY) + day_index.astype("timedelta64[D]"), pa.date32()),
    }).sort_by("ds")


def group_by(name: str, table_properties=None):
    source = Source(events=EventSource(table="bench.purchases", query=Query(
        selects=select("user_id", "purchase_price"), time_column="ts")))
    price = "purchase_price"
    gb = GroupBy(sources=[source], keys=["user_id"], name=name, output_namespace="bench",
                 table_properties=table_properties, aggregations=[
        Aggregation(input_column=price, operation=Operation.SUM, windows=WINDOWS),
        Aggregation(input_column=price, operation=Operation.COUNT, windows=WINDOWS),
        Aggregation(input_column=price, operation=Operation.AVERAGE, windows=WINDOWS),
        Aggregation(input_column=price, operation=Operation.MAX, windows=WINDOWS),
        Aggregation(input_column=price, operation=Operation.LAST_K(10), windows=WINDOWS),
        Aggregation(input_column=price, operation=Operation.APPROX_PERCENTILE([0.5, 0.95]), windows=WINDOWS),
    ])
    gb.metaData.team = "bench"
    return gb


def timed(fn):
    began = time.perf_counter()
    value = fn()
    return time.perf_counter() - began, value


def data_files(settings, start: date, end: date, table_name: str = "bench.purchases"):
    from pyiceberg.expressions import And, GreaterThanOrEqual, LessThanOrEqual

    table = catalog(settings).load_table(table_name)
    scan = table.scan(row_filter=And(GreaterThanOrEqual("ds", str(start)), LessThanOrEqual("ds", str(end))))
    return [task.file.file_path.replace("file://", "") for task in scan.plan_files()]


def plain_scan(spark, files):
    spark.read.parquet(*files).select("user_id", "purchase_price", "ts").write.format("noop").mode("overwrite").save()


def spark_output_write(spark, settings, out_first: date, ir_first: date, last: date, folder: Path):
    """Seconds Spark's own parquet writer takes to write the rows our backfill wrote (feature table
    zstd, IR table lz4, one folder per ds), read from an in-memory cache: what writing the output
    costs a plain Spark job, apart from computing it."""
    frames = []
    for table, first, codec in (("bench.ours0", out_first, "zstd"), ("bench.ours0_daily_irs", ir_first, "lz4")):
        frame = spark.read.parquet(*data_files(settings, first, last, table)).cache()
        frame.count()
        frames.append((frame, codec))
    began = time.perf_counter()
    for i, (frame, codec) in enumerate(frames):
        frame.write.mode("overwrite").option("compression", codec).partitionBy("ds").parquet(str(folder / str(i)))
    seconds = time.perf_counter() - began
    for frame, _ in frames:
        frame.unpersist()
    return seconds


def hand_written_sql(spark, files, out_days):
    spark.read.parquet(*files).createOrReplaceTempView("bench_purchases")
    queries = []
    for day in out_days:
        end_ms = ((day - date(1970, 1, 1)).days + 1) * MS_PER_DAY
        cols = []
        for w in (1, 7, 30):
            lo = end_ms - w * MS_PER_DAY
            v = f"IF(ts >= {lo}, purchase_price, NULL)"
            cols += [f"SUM({v}) AS sum_{w}d", f"COUNT({v}) AS count_{w}d", f"AVG({v}) AS average_{w}d",
                     f"MAX({v}) AS max_{w}d",
                     f"SLICE(TRANSFORM(SORT_ARRAY(COLLECT_LIST(IF(ts >= {lo}, STRUCT(ts, purchase_price), NULL)), "
                     f"false), x -> x.purchase_price), 1, 10) AS last10_{w}d",
                     f"PERCENTILE_APPROX({v}, ARRAY(0.5, 0.95)) AS p_{w}d"]
        queries.append(f"SELECT user_id, DATE '{day}' AS ds, {', '.join(cols)} FROM bench_purchases "
                       f"WHERE ts >= {end_ms - 30 * MS_PER_DAY} AND ts < {end_ms} GROUP BY user_id")
    spark.sql(" UNION ALL ".join(queries)).write.format("noop").mode("overwrite").save()


def jvm_peak_heap_mb(spark) -> float:
    jvm = spark.sparkContext._jvm
    pools = jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans()
    total = 0
    for i in range(pools.size()):
        pool = pools.get(i)
        if str(pool.getType().toString()) == "Heap memory":
            total += pool.getPeakUsage().getUsed()
    return total / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--backfill-days", type=int, default=30)
    parser.add_argument("--sql-days", type=int, default=None,
                        help="run the hand-written SQL for only this many output days (the last ones) and scale its "
                             "time by backfill-days / sql-days (the queries are independent, one per day); "
                             "default: all days, no scaling")
    parser.add_argument("--runs", type=int, default=1,
                        help="full backfills (each into its own table) and scans to run; medians are printed")
    parser.add_argument("--incremental-days", type=int, default=3,
                        help="days backfilled one at a time after the full backfill; the median is printed")
    parser.add_argument("--also-codec", metavar="CODEC",
                        help="also run the full backfills with this parquet codec for the feature table (its "
                             "write.parquet.compression-codec table property; default zstd) and print that side by side")
    parser.add_argument("--home", help="CHRONON_HOME to use (default: a temporary folder, removed after)")
    args = parser.parse_args()

    home = Path(args.home or tempfile.mkdtemp(prefix="chronon_bench_"))
    home.mkdir(parents=True, exist_ok=True)
    s = settings_module.load(repo=str(home), env={"CHRONON_HOME": str(home)})
    try:
        t_gen, events = timed(lambda: make_events(args.events, args.users, args.days + args.incremental_days))
        from pyiceberg.transforms import IdentityTransform

        cat = catalog(s)
        cat.create_namespace("bench")
        table = cat.create_table("bench.purchases", schema=events.schema)
        with table.update_spec() as spec:
            spec.add_field("ds", IdentityTransform(), "ds")
        t_load, _ = timed(lambda: table.append(events))
        print(f"generated {events.num_rows:,} events ({args.users:,} users, {args.days + args.incremental_days} days) in {t_gen:.1f}s, "
              f"loaded into Iceberg in {t_load:.1f}s")

        spark = get_spark(s)
        last_day = FIRST_DAY + timedelta(days=args.days - 1)
        first_out = last_day - timedelta(days=args.backfill_days - 1)
        out_days = [first_out + timedelta(days=i) for i in range(args.backfill_days)]
        read_start = first_out - timedelta(days=29)
        files = data_files(s, read_start, last_day)
        input_rows = events.filter(pa.compute.and_(
            pa.compute.greater_equal(events["ds"], pa.scalar(read_start, pa.date32())),
            pa.compute.less_equal(events["ds"], pa.scalar(last_day, pa.date32())))).num_rows

        plain_scan(spark, files)  # warm the JVM and the file cache for everyone
        t_scans = [timed(lambda: plain_scan(spark, files))[0] for _ in range(args.runs)]
        fulls = [timed(lambda i=i: run_backfill(s, group_by(f"ours{i}"), first_out, last_day))
                 for i in range(args.runs)]
        codec_runs = [timed(lambda i=i: run_backfill(s, group_by(f"codec{i}", {
            "write.parquet.compression-codec": args.also_codec}), first_out, last_day))[0]
            for i in range(args.runs)] if args.also_codec else []
        t_scan, t_ours = statistics.median(t_scans), statistics.median(t for t, _ in fulls)
        result = fulls[0][1]
        incrementals = []  # one more day at a time, each on top of the previous (fresh data each day)
        for i in range(1, args.incremental_days + 1):
            day = last_day + timedelta(days=i)
            incrementals.append(timed(lambda day=day: run_backfill(s, group_by("ours0"), day, day)))
        t_next = statistics.median(t for t, _ in incrementals)
        next_result = incrementals[-1][1]
        # after the incremental days (its cached frames would weigh on them); the rows of ours0's
        # full backfill only (the incremental days lie after last_day)
        write = lambda: spark_output_write(spark, s, first_out, read_start, last_day, home / "spark_write")  # noqa: E731
        write()  # warm: the first write of a process is several seconds slower
        t_writes = [write() for _ in range(args.runs)]
        t_write = statistics.median(t_writes)
        sql_days = out_days if not args.sql_days else out_days[-args.sql_days:]
        t_sql, _ = timed(lambda: hand_written_sql(spark, files, sql_days))
        sql_note = ""
        if len(sql_days) < len(out_days):
            sql_note = f" (measured {len(sql_days)} days: {t_sql:.1f}s, scaled x{len(out_days) / len(sql_days):.1f})"
            t_sql *= len(out_days) / len(sql_days)

        runs_note = lambda ts: "" if len(ts) < 2 else "  (runs: " + ", ".join(f"{t:.1f}" for t in ts) + ")"  # noqa: E731
        print()
        print(f"{'what':58} {'seconds':>9} {'events/s':>12}")
        print(f"{'plain Spark scan of the input columns (floor)':58} {t_scan:9.1f} {input_rows / t_scan:12,.0f}"
              f"{runs_note(t_scans)}")
        print(f"{'our backfill, ' + str(args.backfill_days) + ' days':58} {t_ours:9.1f} {input_rows / t_ours:12,.0f}"
              f"{runs_note([t for t, _ in fulls])}")
        print(f"{'plain Spark write of the rows our backfill wrote (cached)':58} {t_write:9.1f}"
              f"{' ' * 13}{runs_note(t_writes)}")
        print(f"{'  scan + write (a floor that includes the output)':58} {t_scan + t_write:9.1f}")
        if codec_runs:
            t_codec = statistics.median(codec_runs)
            print(f"{'our backfill, feature table in ' + args.also_codec + ' (not zstd)':58} {t_codec:9.1f} "
                  f"{input_rows / t_codec:12,.0f}{runs_note(codec_runs)}")
        print(f"{'hand-written Spark SQL, one query per output day':58} {t_sql:9.1f} {input_rows / t_sql:12,.0f}"
              f"{sql_note}")
        print(f"{'one more day, incremental (median of the days run)':58} {t_next:9.2f}"
              f"{runs_note([t for t, _ in incrementals])}")
        print()
        print(f"backfill / scan                  = {t_ours / t_scan:6.2f}x   (goal <= 3x)")
        if codec_runs:
            print(f"backfill ({args.also_codec}) / scan            = {statistics.median(codec_runs) / t_scan:6.2f}x")
        print(f"backfill / (scan + Spark write)  = {t_ours / (t_scan + t_write):6.2f}x")
        print(f"hand-written SQL / backfill      = {t_sql / t_ours:6.2f}x   (goal >= 10x)")
        print(f"incremental day / full backfill  = {100 * t_next / t_ours:6.1f}%   (goal <= 10%)")
        print(f"source partitions read: full {result['source_partitions_read']}, "
              f"incremental {next_result['source_partitions_read']}")
        print(f"rows written: {result['rows']:,}; output partitions: {result['partitions_written']}")
        for label, res in (("full", result), ("incremental", next_result)):
            for chunk in res.get("chunk_results", []):
                if chunk.get("timings"):
                    print(f"phases ({label}, {chunk['start']}..{chunk['end']}, events {chunk.get('events_read')}): "
                          + ", ".join(f"{k} {v:.2f}s" for k, v in chunk["timings"].items()))
        print(f"peak driver memory: python {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB, "
              f"JVM heap {jvm_peak_heap_mb(spark):,.0f} MB")
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
