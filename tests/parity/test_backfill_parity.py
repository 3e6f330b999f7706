"""Spark backfill vs agg's naive reference evaluator on random events: zero differing rows.

Real components: Spark local mode, a pyiceberg SQL catalog on SQLite, Iceberg tables on local disk.
The source table is written with plain pyiceberg (not the code under test); outputs are read back
with plain pyiceberg and compared to ``reference.snapshot`` by a full outer join on (keys, ds).
"""
import math
from datetime import date, timedelta

import pytest

from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.group_by import Aggregation, GroupBy, Operation
from ai.chronon.query import Query, select
from chronon_cli import settings as settings_module
from chronon_cli.agg import reference
from chronon_cli.storage import catalog
from tests.iceberg_tables import create_ds_table
from tests.parity.events import random_events, to_table

pytestmark = pytest.mark.spark

FIRST, LAST = date(2024, 1, 1), date(2024, 1, 20)
KEYS = ["user_id", "merchant"]


def aggregations():
    return [
        Aggregation(input_column="price", operation=Operation.SUM, windows=["1d", "7d"]),
        Aggregation(input_column="price", operation=Operation.COUNT, windows=["3d"]),
        Aggregation(input_column="price", operation=Operation.AVERAGE, windows=["7d"]),
        Aggregation(input_column="price", operation=Operation.VARIANCE, windows=["7d"]),
        Aggregation(input_column="qty", operation=Operation.MIN, windows=["3d"]),
        Aggregation(input_column="qty", operation=Operation.MAX, windows=["7d"]),
        Aggregation(input_column="qty", operation=Operation.SUM),  # lifetime
        Aggregation(input_column="price", operation=Operation.LAST_K(3), windows=["7d"]),
        Aggregation(input_column="price", operation=Operation.FIRST, windows=["3d"]),
        Aggregation(input_column="qty", operation=Operation.TOP_K(2), windows=["7d"]),
        Aggregation(input_column="category", operation=Operation.UNIQUE_COUNT, windows=["7d"]),
        Aggregation(input_column="category", operation=Operation.HISTOGRAM, windows=["7d"]),
        Aggregation(input_column="price", operation=Operation.SUM, windows=["3d"], buckets=["category"]),
        Aggregation(input_column="tags", operation=Operation.COUNT, windows=["7d"]),
        Aggregation(input_column="attrs", operation=Operation.SUM, windows=["3d"]),
        Aggregation(input_column="price", operation=Operation.APPROX_PERCENTILE([0.5, 0.9]), windows=["7d"]),
        Aggregation(input_column="category", operation=Operation.APPROX_UNIQUE_COUNT, windows=["7d"]),
    ]


def group_by(name: str, table: str = "parity.events"):
    source = Source(events=EventSource(table=table, query=Query(
        selects=select("user_id", "merchant", "price", "qty", "category", "tags", "attrs"), time_column="ts")))
    gb = GroupBy(sources=[source], keys=KEYS, aggregations=aggregations(), name=name, output_namespace="parity")
    gb.metaData.team = "parity"
    return gb


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("parity_home")
    s = settings_module.load(repo=str(home), env={"CHRONON_HOME": str(home)})
    events = random_events(seed=7, first=FIRST, last=LAST)
    create_ds_table(catalog(s), "parity.events", to_table(events))
    return s, events


def read_output(s, name):
    return catalog(s).load_table(name).scan().to_arrow().to_pylist()


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) or isinstance(b, dict) or (isinstance(a, list) and a and isinstance(a[0], tuple)):
        da, db = dict(a), dict(b)
        return da.keys() == db.keys() and all(close(da[k], db[k]) for k in da)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    return a == b


def diff_against_reference(rows, expected, prefix):
    got = {(r["user_id"], r["merchant"], r["ds"]): r for r in rows}
    want = {(r["user_id"], r["merchant"], r["ds"]): r for r in expected}
    problems = [f"only in engine: {k}" for k in got.keys() - want.keys()]
    problems += [f"only in reference: {k}" for k in want.keys() - got.keys()]
    for key in got.keys() & want.keys():
        for feature, value in want[key].items():
            if feature in KEYS or feature == "ds":
                continue
            engine_value = got[key][f"{prefix}_{feature}"]
            if not close(engine_value, value):
                problems.append(f"{key} {feature}: engine {engine_value!r} != reference {value!r}")
    return problems


@pytest.mark.parametrize("path", ["direct", "shuffled"])
def test_full_backfill_equals_reference(env, path):
    """Both ways events reach the tasks: read from the source files by each bucket's task, or
    selected and shuffled by Spark (``spark.direct_source_read: false``, as for SQL selects)."""
    from chronon_cli.engines.spark.backfill import run_backfill

    s, events = env
    name = f"full_{path}"
    gb = group_by(name)
    start = FIRST + timedelta(days=4)
    s.spark["direct_source_read"] = path == "direct"
    try:
        result = run_backfill(s, gb, start, LAST)
    finally:
        s.spark.pop("direct_source_read")
    assert result["partitions_written"] > 0
    assert [c["events_read"] for c in result["chunk_results"]] == [path]
    dates = [start + timedelta(days=i) for i in range((LAST - start).days + 1)]
    expected = reference.snapshot(gb, events, dates)
    assert expected, "the reference produced no rows: the test data is wrong"
    problems = diff_against_reference(read_output(s, f"parity.{name}"), expected, name)
    assert problems == [], "\n".join(problems[:30])


@pytest.mark.parametrize("path", ["direct", "shuffled"])
def test_incremental_day_by_day_equals_full_backfill(env, path):
    from chronon_cli.engines.spark.backfill import run_backfill

    s, _ = env
    start, middle = FIRST + timedelta(days=4), LAST - timedelta(days=3)
    whole, daily = f"whole_{path}", f"daily_{path}"
    run_backfill(s, group_by(whole), start, LAST)
    s.spark["direct_source_read"] = path == "direct"
    try:
        run_backfill(s, group_by(daily), start, middle)
        reads = []
        day = middle + timedelta(days=1)
        while day <= LAST:
            result = run_backfill(s, group_by(daily), day, day)
            assert result["chunk_results"][0]["events_read"] == path
            reads.append(result["source_partitions_read"])
            day += timedelta(days=1)
    finally:
        s.spark.pop("direct_source_read")
    assert all(r <= 1 for r in reads), f"an incremental day read more than its own partition: {reads}"

    def normalized(name):
        rows = read_output(s, f"parity.{name}")
        return sorted(tuple(sorted((k.replace(f"{name}_", "", 1), repr(v)) for k, v in r.items())) for r in rows)

    assert normalized(daily) == normalized(whole)


def test_rerun_is_idempotent_and_fills_only_missing(env):
    from chronon_cli.engines.spark.backfill import run_backfill

    s, _ = env
    gb = group_by("rerun")
    start = FIRST + timedelta(days=4)
    run_backfill(s, gb, start, LAST)
    before = read_output(s, "parity.rerun")
    snapshots = len(catalog(s).load_table("parity.rerun").snapshots())
    again = run_backfill(s, gb, start, LAST)
    assert again["planned_partitions"] == [] and again["source_partitions_read"] == 0
    assert len(catalog(s).load_table("parity.rerun").snapshots()) == snapshots
    forced = run_backfill(s, gb, start, LAST, force=True, step_days=5)
    assert len(forced["chunk_results"]) == 4
    after = read_output(s, "parity.rerun")
    key = lambda r: (r["user_id"] or "", r["merchant"] or "", r["ds"])  # noqa: E731
    assert sorted(map(repr, sorted(after, key=key))) == sorted(map(repr, sorted(before, key=key)))


def test_dry_run_writes_nothing(env):
    from chronon_cli.engines.spark.backfill import run_backfill

    s, _ = env
    plan = run_backfill(s, group_by("dry"), FIRST, FIRST + timedelta(days=2), dry_run=True)
    assert plan["planned_partitions"] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert not catalog(s).table_exists("parity.dry")
