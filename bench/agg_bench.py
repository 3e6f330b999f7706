"""Benchmark of chronon_cli.agg: batch kernel (daily_irs) and per-row update path, per op.

    .venv/bin/python bench/agg_bench.py [--rows 1000000] [--keys 100000] [--days 7] [--runs 5]

For every op: rows/s of ``GroupByAggregator.daily_irs`` over ``--rows`` events with ``--keys``
int64 keys in ``--days`` days (default 1: the daily IR job aggregates one partition), and rows/s of the per-row path (``op.update`` into a dict
of per-key IRs, on ``--row-sample`` rows). For the algebraic ops, the ratio of the batch kernel's
time to a plain ``pyarrow.Table.group_by(key).aggregate([(col, "sum")])`` on the same table
(goal <= 3x), measured interleaved (baseline, kernel, baseline, ...) so both see the same machine
load. A second table repeats the algebraic ops on ``--multi-day`` days of events, where
daily_irs groups by (key, day). A third times ``snapshot`` from the daily IRs. Figures are
medians of ``--runs`` runs.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chronon_cli.agg import GroupByAggregator  # noqa: E402
from chronon_cli.spec import ttypes  # noqa: E402

O = ttypes.Operation
DAY = 86_400_000
ALGEBRAIC = {"count", "sum", "average", "min", "max", "variance"}

# (label, input column, operation, argMap)
OPS = [
    ("count", "x", O.COUNT, None),
    ("sum", "x", O.SUM, None),
    ("sum(int)", "i", O.SUM, None),
    ("average", "x", O.AVERAGE, None),
    ("min", "x", O.MIN, None),
    ("max", "x", O.MAX, None),
    ("variance", "x", O.VARIANCE, None),
    ("skew", "x", O.SKEW, None),
    ("kurtosis", "x", O.KURTOSIS, None),
    ("max(string)", "s", O.MAX, None),
    ("first", "x", O.FIRST, None),
    ("last", "x", O.LAST, None),
    ("first_k(5)", "x", O.FIRST_K, {"k": "5"}),
    ("last_k(5)", "x", O.LAST_K, {"k": "5"}),
    ("top_k(5)", "x", O.TOP_K, {"k": "5"}),
    ("bottom_k(5)", "x", O.BOTTOM_K, {"k": "5"}),
    ("unique_count", "i", O.UNIQUE_COUNT, None),
    ("bounded_unique_count(8)", "i", O.BOUNDED_UNIQUE_COUNT, {"k": "8"}),
    ("histogram", "s", O.HISTOGRAM, None),
    ("approx_unique_count(8)", "i", O.APPROX_UNIQUE_COUNT, None),
    ("approx_percentile(128)", "x", O.APPROX_PERCENTILE, {"k": "128", "percentiles": "[0.5, 0.95]"}),
    ("approx_histogram_k(8)", "s", O.APPROX_HISTOGRAM_K, {"k": "8"}),
]


def make_events(rows: int, keys: int, days: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ts = 19_700 * DAY + rng.integers(0, days * DAY, rows)
    x = rng.normal(100, 20, rows)
    x_null = rng.random(rows) < 0.01
    words = np.array([f"w{j}" for j in range(50)])
    return pa.table({
        "user_id": rng.integers(0, keys, rows),
        "x": pa.array(x, mask=x_null),
        "i": rng.integers(0, 1000, rows),
        "s": pa.array(words[rng.integers(0, 50, rows)]),
        "ts": ts,
        "ds": pa.array((ts // DAY).astype(np.int32)).cast(pa.date32()),
    })


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def per_row_rate(agg: GroupByAggregator, events: pa.Table, sample: int, runs: int) -> float:
    column = agg.columns[0]
    op = column.op
    sub = events.slice(0, sample)
    keys = sub.column("user_id").to_pylist()
    values = sub.column(column.input_column).to_pylist()
    tss = sub.column("ts").to_pylist()

    def run():
        irs = {}
        update = op.update
        for k, v, t in zip(keys, values, tss):
            irs[k] = update(irs.get(k), v, t)

    return sample / median_time(run, runs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--days", type=int, default=1, help="days the events span (1: one daily partition)")
    p.add_argument("--multi-day", type=int, default=7, help="days of the extra algebraic table (0: skip)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--row-sample", type=int, default=200_000)
    p.add_argument("--ops", default="", help="comma-separated labels to run (default: all)")
    p.add_argument("--no-snapshot", action="store_true", help="skip the snapshot() table")
    args = p.parse_args(argv)

    events = make_events(args.rows, args.keys, args.days)
    schema = events.schema
    baseline = median_time(lambda: events.group_by("user_id").aggregate([("x", "sum")]), max(args.runs, 5))
    wanted = {s.strip() for s in args.ops.split(",") if s.strip()}
    print(f"# {args.rows:,} rows, {args.keys:,} keys, {args.days} days; median of {args.runs} runs")
    print(f"# baseline pyarrow group_by(user_id).aggregate([('x','sum')]): {baseline * 1e3:.1f} ms")
    header = f"{'op':<26}{'batch ms':>10}{'batch rows/s':>15}{'per-row rows/s':>16}{'vs pyarrow':>12}"
    print(header)
    print("-" * len(header))
    for label, col, op, arg_map in OPS:
        if wanted and label not in wanted:
            continue
        gb = ttypes.GroupBy(keyColumns=["user_id"], aggregations=[
            ttypes.Aggregation(inputColumn=col, operation=op, argMap=arg_map)])
        agg = GroupByAggregator(gb, schema)
        runs = args.runs if op in (O.COUNT, O.SUM, O.AVERAGE, O.MIN, O.MAX, O.VARIANCE, O.SKEW, O.KURTOSIS,
                                   O.FIRST, O.LAST) else max(1, min(args.runs, 3))
        algebraic = label.split("(")[0] in ALGEBRAIC
        agg.daily_irs(events)  # warm-up
        kernel, ratios = [], []
        for _ in range(runs):
            # interleave the baseline so that both see the same machine load
            b = median_time(lambda: events.group_by("user_id").aggregate([("x", "sum")]), 1) if algebraic else None
            k = median_time(lambda: agg.daily_irs(events), 1)
            kernel.append(k)
            if b:
                ratios.append(k / b)
        t = statistics.median(kernel)
        rate = per_row_rate(agg, events, min(args.row_sample, args.rows), max(1, min(args.runs, 3)))
        ratio = f"{statistics.median(ratios):>11.2f}x" if algebraic else f"{'':>12}"
        print(f"{label:<26}{t * 1e3:>10.1f}{args.rows / t:>15,.0f}{rate:>16,.0f}{ratio}")
    if args.multi_day > 1:
        multi_day_table(args)
    if not args.no_snapshot:
        snapshot_table(make_events(args.rows, args.keys, 7) if args.days == 1 else events, schema, args)
    return 0


def multi_day_table(args) -> None:
    """Algebraic ops on events spread over several days: daily_irs groups by (key, day), so it is
    also compared with pyarrow grouping by (key, ds), the same group count."""
    events = make_events(args.rows, args.keys, args.multi_day)
    schema = events.schema
    print()
    print(f"# algebraic ops over {args.multi_day} days ({args.rows:,} rows, {args.keys:,} keys): "
          f"ratio to pyarrow group_by(user_id) and to group_by(user_id, ds); median of {args.runs} runs")
    header = f"{'op':<26}{'batch ms':>10}{'vs by key':>12}{'vs by key,ds':>14}"
    print(header)
    print("-" * len(header))
    for label, col, op, arg_map in OPS:
        if label.split("(")[0] not in ALGEBRAIC or "(" in label:
            continue
        gb = ttypes.GroupBy(keyColumns=["user_id"], aggregations=[
            ttypes.Aggregation(inputColumn=col, operation=op, argMap=arg_map)])
        agg = GroupByAggregator(gb, schema)
        agg.daily_irs(events)
        kernel, by_key, by_key_ds = [], [], []
        for _ in range(args.runs):
            b1 = median_time(lambda: events.group_by("user_id").aggregate([("x", "sum")]), 1)
            b2 = median_time(lambda: events.group_by(["user_id", "ds"]).aggregate([("x", "sum")]), 1)
            k = median_time(lambda: agg.daily_irs(events), 1)
            kernel.append(k)
            by_key.append(k / b1)
            by_key_ds.append(k / b2)
        print(f"{label:<26}{statistics.median(kernel) * 1e3:>10.1f}{statistics.median(by_key):>11.2f}x"
              f"{statistics.median(by_key_ds):>13.2f}x")


def snapshot_table(events: pa.Table, schema: pa.Schema, args) -> None:
    """snapshot() from the daily IRs: windows 1d, 7d and lifetime, for 1 and for 7 dates."""
    import datetime

    windows = [ttypes.Window(1, ttypes.TimeUnit.DAYS), ttypes.Window(7, ttypes.TimeUnit.DAYS), None]
    groups = [
        ("sum+count+average", [("x", O.SUM, None), ("x", O.COUNT, None), ("x", O.AVERAGE, None)]),
        ("variance+max+last", [("x", O.VARIANCE, None), ("x", O.MAX, None), ("x", O.LAST, None)]),
        ("last_k(5)", [("x", O.LAST_K, {"k": "5"})]),
        ("histogram", [("s", O.HISTOGRAM, None)]),
        ("approx_unique_count(8)", [("i", O.APPROX_UNIQUE_COUNT, None)]),
    ]
    print()
    print(f"# snapshot(): windows 1d, 7d, lifetime; {args.keys:,} keys; median of {max(1, min(args.runs, 3))} runs")
    header = f"{'ops':<26}{'daily_irs ms':>14}{'1 date ms':>12}{'7 dates ms':>12}{'rows (7 dates)':>16}"
    print(header)
    print("-" * len(header))
    for label, specs in groups:
        gb = ttypes.GroupBy(keyColumns=["user_id"], aggregations=[
            ttypes.Aggregation(inputColumn=c, operation=op, argMap=a, windows=windows) for c, op, a in specs])
        agg = GroupByAggregator(gb, schema)
        runs = max(1, min(args.runs, 3))
        irs = agg.daily_irs(events)
        t_irs = median_time(lambda: agg.daily_irs(events), runs)
        last = max(irs.column("ds").to_pylist())
        week = [last - datetime.timedelta(days=d) for d in range(7)]
        t1 = median_time(lambda: agg.snapshot(irs, [last]), runs)
        t7 = median_time(lambda: agg.snapshot(irs, week), runs)
        rows = agg.snapshot(irs, week).num_rows
        print(f"{label:<26}{t_irs * 1e3:>14.1f}{t1 * 1e3:>12.1f}{t7 * 1e3:>12.1f}{rows:>16,}")


if __name__ == "__main__":
    raise SystemExit(main())
