"""Backfill source shapes: entity snapshots, GroupBys without aggregations, two event sources with
wheres, select expressions and a time_column expression. Each is checked against values computed
independently (agg's naive reference, or the input rows themselves).
"""
import random
from datetime import date, timedelta

import pyarrow as pa
import pytest

from ai.chronon.api.ttypes import EntitySource, EventSource, Source
from ai.chronon.group_by import Aggregation, GroupBy, Operation
from ai.chronon.query import Query, select
from chronon_cli import settings as settings_module
from chronon_cli.agg import reference
from chronon_cli.storage import catalog
from tests.iceberg_tables import create_ds_table
from tests.parity.events import MS_PER_DAY, day_start_ms
from tests.parity.test_backfill_parity import close

pytestmark = pytest.mark.spark

DAYS = [date(2024, 3, 1) + timedelta(days=i) for i in range(4)]


def make_table(cat, name, rows, schema):
    create_ds_table(cat, name, pa.Table.from_pylist(rows, schema=schema))


def named(gb, name):
    gb.metaData.name, gb.metaData.outputNamespace, gb.metaData.team = name, "shapes", "shapes"
    return gb


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("shapes_home")
    s = settings_module.load(repo=str(home), env={"CHRONON_HOME": str(home)})
    cat = catalog(s)
    rng = random.Random(3)
    snapshots = [{"user_id": f"u{u}", "item": f"i{rng.randrange(5)}", "price": round(rng.uniform(1, 9), 1),
                  "country": rng.choice(["US", "FR"]), "ds": day}
                 for day in DAYS for u in range(4) for _ in range(rng.randint(0, 3))]
    make_table(cat, "shapes.items", snapshots, pa.schema([
        ("user_id", pa.string()), ("item", pa.string()), ("price", pa.float64()), ("country", pa.string()),
        ("ds", pa.date32())]))
    clicks_a = [{"user_id": f"u{rng.randrange(3)}", "price": round(rng.uniform(-5, 20), 2),
                 "event_time_sec": (day_start_ms(day) + rng.choice([0, MS_PER_DAY - 1000, rng.randrange(MS_PER_DAY)])) // 1000,
                 "ds": day} for day in DAYS for _ in range(6)]
    make_table(cat, "shapes.clicks_a", clicks_a, pa.schema([
        ("user_id", pa.string()), ("price", pa.float64()), ("event_time_sec", pa.int64()), ("ds", pa.date32())]))
    clicks_b = [{"user_id": f"u{rng.randrange(3)}", "amount": round(rng.uniform(-5, 20), 2),
                 "ts": day_start_ms(day) + rng.randrange(MS_PER_DAY), "ds": day} for day in DAYS for _ in range(6)]
    make_table(cat, "shapes.clicks_b", clicks_b, pa.schema([
        ("user_id", pa.string()), ("amount", pa.float64()), ("ts", pa.int64()), ("ds", pa.date32())]))
    return s, snapshots, clicks_a, clicks_b


def output(s, name):
    return catalog(s).load_table(f"shapes.{name}").scan().to_arrow().to_pylist()


def test_entity_source_aggregates_each_snapshot_on_its_own(env):
    from chronon_cli.engines.spark.backfill import run_backfill

    s, snapshots, _, _ = env
    source = Source(entities=EntitySource(snapshotTable="shapes.items",
                                          query=Query(selects=select("user_id", "item", "price"))))
    gb = named(GroupBy(sources=[source], keys=["user_id"], aggregations=[
        Aggregation(input_column="item", operation=Operation.COUNT, windows=["7d"]),
        Aggregation(input_column="price", operation=Operation.SUM)]), "entity_counts")
    run_backfill(s, gb, DAYS[0], DAYS[-1])
    got = {(r["user_id"], r["ds"]): r for r in output(s, "entity_counts")}
    expected = {}
    for day in DAYS:  # each ds sees only its own snapshot
        todays = [dict(r, ts=day_start_ms(day) + MS_PER_DAY - 1) for r in snapshots if r["ds"] == day]
        for row in reference.snapshot(gb, todays, [day]):
            expected[(row["user_id"], row["ds"])] = row
    assert got.keys() == expected.keys()
    for key, row in expected.items():
        assert got[key]["entity_counts_item_count_7d"] == row["item_count_7d"]
        assert close(got[key]["entity_counts_price_sum"], row["price_sum"])


def test_group_by_without_aggregations_copies_selected_columns(env):
    from chronon_cli.engines.spark.backfill import run_backfill

    s, snapshots, _, _ = env
    source = Source(entities=EntitySource(snapshotTable="shapes.items", query=Query(
        selects=select("user_id", "country", price_cents="CAST(price * 100 AS BIGINT)"), wheres=["item != 'i0'"])))
    gb = named(GroupBy(sources=[source], keys=["user_id"], aggregations=None), "profile")
    run_backfill(s, gb, DAYS[1], DAYS[2])
    got = sorted((r["user_id"], r["ds"], r["profile_country"], r["profile_price_cents"]) for r in output(s, "profile"))
    want = sorted((r["user_id"], r["ds"], r["country"], int(r["price"] * 100))
                  for r in snapshots if r["ds"] in DAYS[1:3] and r["item"] != "i0")
    assert got == want and got


def test_two_event_sources_with_wheres_and_time_expression(env):
    from chronon_cli.engines.spark.backfill import run_backfill

    s, _, clicks_a, clicks_b = env
    source_a = Source(events=EventSource(table="shapes.clicks_a", query=Query(
        selects=select("user_id", value="price"), wheres=["price > 0"], time_column="event_time_sec * 1000")))
    source_b = Source(events=EventSource(table="shapes.clicks_b", query=Query(
        selects=select("user_id", value="amount * 2"), wheres=["amount > 0"], time_column="ts")))
    gb = named(GroupBy(sources=[source_a, source_b], keys=["user_id"], aggregations=[
        Aggregation(input_column="value", operation=Operation.SUM, windows=["1d", "2d"]),
        Aggregation(input_column="value", operation=Operation.LAST, windows=["2d"])]), "clicks")
    result = run_backfill(s, gb, DAYS[0], DAYS[-1])
    assert {c["events_read"] for c in result["chunk_results"]} == {"shuffled"}  # SQL needs Spark
    events = [{"user_id": r["user_id"], "value": r["price"], "ts": r["event_time_sec"] * 1000}
              for r in clicks_a if r["price"] > 0]
    events += [{"user_id": r["user_id"], "value": r["amount"] * 2, "ts": r["ts"]} for r in clicks_b if r["amount"] > 0]
    expected = {(r["user_id"], r["ds"]): r for r in reference.snapshot(gb, events, DAYS)}
    got = {(r["user_id"], r["ds"]): r for r in output(s, "clicks")}
    assert got.keys() == expected.keys() and got
    for key, row in expected.items():
        for feature in ("value_sum_1d", "value_sum_2d", "value_last_2d"):
            assert close(got[key][f"clicks_{feature}"], row[feature]), (key, feature)


def test_missing_source_table_is_a_clear_job_error(env):
    from chronon_cli.engines.spark.backfill import run_backfill
    from chronon_cli.errors import JobError

    s, _, _, _ = env
    source = Source(events=EventSource(table="shapes.nowhere", query=Query(selects=select("user_id", "x"),
                                                                           time_column="ts")))
    gb = named(GroupBy(sources=[source], keys=["user_id"], aggregations=[
        Aggregation(input_column="x", operation=Operation.SUM, windows=["1d"])]), "orphan")
    with pytest.raises(JobError, match="source table shapes.nowhere .* does not exist"):
        run_backfill(s, gb, DAYS[0], DAYS[1])
    assert not catalog(s).table_exists("shapes.orphan")
