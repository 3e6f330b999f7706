"""Benchmark: a staging query copying a parquet input into an Iceberg table, against Spark's own
``spark.read.parquet(...).write.parquet(...)`` of the same data, in the same process.

    .venv/bin/python bench/staging_bench.py [--rows 10000000] [--days 7] [--repeat 2] [--profile]

Prints the time and rows/s of each path and their ratio (goal: staging <= 1.5x the plain copy).
The input is written once with pyarrow to the local object store (``s3://bench/...`` under a
temporary CHRONON_HOME); each staging run uses ``force=True`` so every partition is rewritten.
``--profile`` also times the pieces of the staging path separately (read only, write only).
"""
import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

QUERY = """
SELECT user_id, purchase_price, item_category, ts, TO_DATE(TIMESTAMP_MILLIS(ts)) AS ds
FROM purchases_raw
WHERE TO_DATE(TIMESTAMP_MILLIS(ts)) BETWEEN DATE '{{ start_date }}' AND DATE '{{ end_date }}'
"""
FIRST = dt.date(2023, 12, 1)


def make_input(store, uri: str, rows: int, days: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    start_ms = int(dt.datetime(2023, 12, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    users = np.array([f"user_{i}" for i in range(100_000)], dtype=object)
    cats = np.array(["electronics", "books", "clothing", "home", "groceries", "toys", "sports"], dtype=object)
    fs, path = store.resolve(uri)
    store.ensure_parent(fs, path)
    chunk = 1_000_000
    schema = pa.schema([("user_id", pa.string()), ("purchase_price", pa.float64()),
                        ("item_category", pa.string()), ("ts", pa.int64())])
    with fs.open_output_stream(path) as out, pq.ParquetWriter(out, schema, compression="snappy") as writer:
        for offset in range(0, rows, chunk):
            n = min(chunk, rows - offset)
            ts = np.sort(start_ms + rng.integers(0, days * 86_400_000, n))
            writer.write_table(pa.table({
                "user_id": pa.array(users[rng.integers(0, len(users), n)], pa.string()),
                "purchase_price": pa.array(np.round(rng.uniform(1, 500, n), 2)),
                "item_category": pa.array(cats[rng.integers(0, len(cats), n)], pa.string()),
                "ts": pa.array(ts, pa.int64()),
            }, schema=schema))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--codec", default=None,
                        help="write.parquet.compression-codec of the Iceberg table (default: Iceberg's zstd)")
    parser.add_argument("--profile", action="store_true", help="also time the read-only and write-only pieces")
    parser.add_argument("--python", action="store_true",
                        help="spark.native_local_io=false: rows read and written by Python tasks (the S3 path)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary CHRONON_HOME")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="chronon-bench-")
    os.environ["CHRONON_HOME"] = home
    from chronon_cli import settings as settings_mod
    from chronon_cli.engines.spark.session import get_spark
    from chronon_cli.engines.spark.staging_query import run_staging_query
    from chronon_cli.spec import ttypes
    from chronon_cli.storage import object_store

    settings = settings_mod.load(env={**os.environ, "CHRONON_HOME": home})
    settings.spark["native_local_io"] = not args.python
    store = object_store(settings)
    uri = "s3://bench/data/purchases/purchases.parquet"
    t0 = time.monotonic()
    make_input(store, uri, args.rows, args.days)
    local_in = store.resolve(uri)[1]
    print(f"input: {args.rows:,} rows, {os.path.getsize(local_in) / 2**20:.0f} MiB parquet, "
          f"written in {time.monotonic() - t0:.1f}s")

    t0 = time.monotonic()
    spark = get_spark(settings)
    print(f"spark session: {time.monotonic() - t0:.1f}s, master {spark.sparkContext.master}, "
          f"parallelism {spark.sparkContext.defaultParallelism}")
    sq = ttypes.StagingQuery(
        metaData=ttypes.MetaData(name="purchases_bench", outputNamespace="bench", tableProperties={
            "format-version": "2", **({"write.parquet.compression-codec": args.codec} if args.codec else {})}),
        query=QUERY, startPartition=FIRST.isoformat(),
        setups=[f"CREATE TEMPORARY VIEW purchases_raw USING parquet OPTIONS (path 's3a://bench/data/purchases/purchases.parquet')"])
    end = FIRST + dt.timedelta(days=args.days - 1)

    def plain() -> float:
        out = os.path.join(home, "plain-out")
        shutil.rmtree(out, ignore_errors=True)
        t = time.monotonic()
        spark.read.parquet(local_in).write.mode("overwrite").parquet(out)
        return time.monotonic() - t

    def staging() -> float:
        t = time.monotonic()
        report = run_staging_query(settings, sq, FIRST, end, force=True)
        assert report["rows"] == args.rows, report["rows"]
        return time.monotonic() - t

    # warm up both paths on the JVM and the Python workers (not timed)
    plain()
    staging()
    plain_times, staging_times = [], []
    for _ in range(args.repeat):
        plain_times.append(plain())
        staging_times.append(staging())
    p, s = min(plain_times), min(staging_times)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    print(f"load average (1 min) {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; best of {args.repeat}, "
          f"runs interleaved; median ratio {med(staging_times) / med(plain_times):.2f}x")
    print(f"plain spark.read.parquet().write.parquet(): {p:6.2f}s  {args.rows / p:12,.0f} rows/s  (runs: "
          + ", ".join(f"{x:.2f}" for x in plain_times) + ")")
    print(f"staging query -> Iceberg table{' (python)' if args.python else '         '}:    {s:6.2f}s  {args.rows / s:12,.0f} rows/s  (runs: "
          + ", ".join(f"{x:.2f}" for x in staging_times) + ")")
    print(f"ratio staging / plain: {s / p:.2f}x  (goal <= 1.5x)")

    if args.profile:
        # Where the time goes: the staging path rebuilt one step at a time (best of --repeat each).
        from pyspark.sql import functions as F

        from chronon_cli.engines.spark.writer import write_table

        codec = args.codec or "zstd"
        ds = F.to_date(F.timestamp_millis(F.col("ts")))

        def out(name):
            path = os.path.join(home, name)
            shutil.rmtree(path, ignore_errors=True)
            return path

        def with_ds():
            df = spark.read.parquet(local_in)
            return df.where(ds.between(F.lit(FIRST), F.lit(end))).withColumn("ds", ds)

        steps = [
            ("plain copy, snappy", lambda: spark.read.parquet(local_in).write.parquet(out("p1"))),
            ("+ ds column and range filter", lambda: with_ds().write.parquet(out("p2"))),
            ("+ one file per ds per task (partitionBy a DATE copy of ds)",
             lambda: with_ds().withColumn("_p", F.col("ds")).write.partitionBy("_p").parquet(out("p3"))),
            (f"+ {codec} (level 1) instead of snappy",
             lambda: with_ds().withColumn("_p", F.col("ds")).write.partitionBy("_p").option("compression", codec)
             .option("parquet.compression.codec.zstd.level", "1").parquet(out("p4"))),
            ("write_table (+ field ids, moves, footers, one commit)",
             lambda: write_table(with_ds(), settings, "bench.profile", FIRST, end,
                                 {"write.parquet.compression-codec": codec})),
            ("full staging query (+ setup view, SQL, plan)", staging),
        ]
        print("profile (best of %d):" % args.repeat)
        for name, step in steps:
            best = float("inf")
            for _ in range(args.repeat):
                t = time.monotonic()
                step()
                best = min(best, time.monotonic() - t)
            print(f"  {best:6.2f}s  {best / p:4.2f}x  {name}")
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"kept {home}")


if __name__ == "__main__":
    main()
