"""GroupBy derivations in backfill: Spark SQL over the base features, checked against agg's naive
reference (a derived ratio against the reference's own AVERAGE), for event, entity and
no-aggregation GroupBys, incremental vs full, and a bad expression that writes nothing."""
from datetime import date, timedelta

import pytest

from ai.chronon.api.ttypes import EntitySource, EventSource, Source
from ai.chronon.group_by import Aggregation, Derivation, GroupBy, Operation
from ai.chronon.query import Query, select
from chronon_cli import settings as settings_module
from chronon_cli.agg import reference
from chronon_cli.storage import catalog
from tests.iceberg_tables import create_ds_table
from tests.parity.events import MS_PER_DAY, day_start_ms, random_events, to_table
from tests.parity.test_backfill_parity import close

pytestmark = pytest.mark.spark

FIRST, LAST = date(2024, 5, 1), date(2024, 5, 10)
OUT = [LAST - timedelta(days=i) for i in range(4, -1, -1)]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("derive_home")
    s = settings_module.load(repo=str(home), env={"CHRONON_HOME": str(home)})
    events = random_events(11, FIRST, LAST)
    create_ds_table(catalog(s), "derive.events", to_table(events))
    return s, events


def event_gb(name, derivations):
    source = Source(events=EventSource(table="derive.events", query=Query(
        selects=select("user_id", "qty", "price"), time_column="ts")))
    gb = GroupBy(sources=[source], keys=["user_id"], derivations=derivations, aggregations=[
        Aggregation(input_column="qty", operation=Operation.SUM, windows=["7d"]),
        Aggregation(input_column="qty", operation=Operation.COUNT, windows=["7d"]),
        Aggregation(input_column="qty", operation=Operation.AVERAGE, windows=["7d"]),
        Aggregation(input_column="price", operation=Operation.MAX, windows=["3d"])])
    gb.metaData.name, gb.metaData.outputNamespace, gb.metaData.team = name, "derive", "derive"
    return gb


def table_rows(s, name):
    return catalog(s).load_table(f"derive.{name}").scan().to_arrow()


def by_key(arrow):
    return {(r["user_id"], r["ds"]): r for r in arrow.to_pylist()}


def test_star_ratio_and_rename_match_the_reference(env):
    from chronon_cli.engines.spark.backfill import run_backfill

    s, events = env
    gb = event_gb("star", [Derivation(name="*", expression="*"),
                           Derivation(name="qty_avg_7d", expression="try_divide(qty_sum_7d, qty_count_7d)"),
                           Derivation(name="events_7d", expression="qty_count_7d"),
                           Derivation(name="day_of_month", expression="dayofmonth(ds)")])
    run_backfill(s, gb, OUT[0], OUT[-1])
    got = table_rows(s, "star")
    assert got.column_names == ["user_id", "star_qty_sum_7d", "star_qty_average_7d", "star_price_max_3d",
                                "star_qty_avg_7d", "star_events_7d", "star_day_of_month", "ds"]
    expected = {(r["user_id"], r["ds"]): r for r in reference.snapshot(gb, events, OUT)}
    rows = by_key(got)
    assert rows.keys() == expected.keys() and rows
    for key, want in expected.items():
        row = rows[key]
        assert close(row["star_qty_avg_7d"], want["qty_average_7d"]), key  # derived == the reference's AVERAGE
        assert close(row["star_qty_average_7d"], want["qty_average_7d"]), key
        assert row["star_events_7d"] == want["qty_count_7d"] and row["star_qty_sum_7d"] == want["qty_sum_7d"], key
        assert close(row["star_price_max_3d"], want["price_max_3d"]), key
        assert row["star_day_of_month"] == key[1].day


def test_without_star_only_the_derivations_are_output(env):
    from chronon_cli.engines.spark.backfill import run_backfill

    s, events = env
    gb = event_gb("nostar", [Derivation(name="qty_sum_7d_x2", expression="qty_sum_7d * 2")])
    run_backfill(s, gb, OUT[0], OUT[-1])
    got = table_rows(s, "nostar")
    assert got.column_names == ["user_id", "nostar_qty_sum_7d_x2", "ds"]
    expected = {(r["user_id"], r["ds"]): r for r in reference.snapshot(gb, events, OUT)}
    rows = by_key(got)
    assert rows.keys() == expected.keys() and rows
    for key, want in expected.items():
        assert rows[key]["nostar_qty_sum_7d_x2"] == (None if want["qty_sum_7d"] is None else 2 * want["qty_sum_7d"])


def test_incremental_days_with_derivations_equal_a_full_run(env):
    from chronon_cli.engines.spark.backfill import run_backfill

    s, events = env
    derivations = [Derivation(name="*", expression="*"),
                   Derivation(name="qty_avg_7d", expression="try_divide(qty_sum_7d, qty_count_7d)")]
    run_backfill(s, event_gb("full", derivations), OUT[0], OUT[-1])
    daily = event_gb("daily", derivations)
    reads = [run_backfill(s, daily, day, day)["source_partitions_read"] for day in OUT]
    source_days = {r["ds"] for r in events}
    assert reads[1:] == [int(day in source_days) for day in OUT[1:]]  # each next day: its own partition only
    full, inc = table_rows(s, "full"), table_rows(s, "daily")
    assert [c.replace("full_", "") for c in full.column_names] == [c.replace("daily_", "") for c in inc.column_names]
    key = lambda r: (r[0] or "", r[-1])  # noqa: E731
    assert sorted((tuple(r.values()) for r in full.to_pylist()), key=key) == \
        sorted((tuple(r.values()) for r in inc.to_pylist()), key=key)


def test_bad_expression_names_the_derivation_and_writes_nothing(env):
    from chronon_cli.engines.spark.backfill import run_backfill
    from chronon_cli.errors import ConfigError

    s, _ = env
    gb = event_gb("broken", [Derivation(name="*", expression="*"),
                             Derivation(name="fine", expression="qty_sum_7d + 1"),
                             Derivation(name="bad", expression="qty_summ_7d / 2")])
    with pytest.raises(ConfigError) as raised:
        run_backfill(s, gb, OUT[0], OUT[-1])
    text = str(raised.value)
    assert "derivations[2].expression" in text and "broken" in text and "qty_summ_7d" in text
    assert not catalog(s).table_exists("derive.broken")
    assert not catalog(s).table_exists("derive.broken_daily_irs")


def test_entity_and_no_aggregation_group_bys_apply_derivations(env):
    from chronon_cli.engines.spark.backfill import run_backfill

    s, events = env
    snapshots = [dict(r) for r in events if r["user_id"] is not None and r["ds"] in OUT]
    create_ds_table(catalog(s), "derive.snapshots", to_table(snapshots))
    source = Source(entities=EntitySource(snapshotTable="derive.snapshots",
                                          query=Query(selects=select("user_id", "qty"))))
    entity = GroupBy(sources=[source], keys=["user_id"], aggregations=[
        Aggregation(input_column="qty", operation=Operation.SUM), Aggregation(input_column="qty", operation=Operation.COUNT)],
        derivations=[Derivation(name="qty_mean", expression="try_divide(qty_sum, qty_count)")])
    entity.metaData.name, entity.metaData.outputNamespace, entity.metaData.team = "ent", "derive", "derive"
    run_backfill(s, entity, OUT[0], OUT[-1])
    got = table_rows(s, "ent")
    assert got.column_names == ["user_id", "ent_qty_mean", "ds"]
    expected = {}
    for day in OUT:  # each ds aggregates only its own snapshot
        todays = [dict(r, ts=day_start_ms(day) + MS_PER_DAY - 1) for r in snapshots if r["ds"] == day]
        mean = Aggregation(input_column="qty", operation=Operation.AVERAGE)
        ref = GroupBy(sources=[source], keys=["user_id"], aggregations=[mean])
        for row in reference.snapshot(ref, todays, [day]):
            expected[(row["user_id"], row["ds"])] = row["qty_average"]
    rows = by_key(got)
    assert rows.keys() == expected.keys() and rows
    for key, mean in expected.items():
        assert close(rows[key]["ent_qty_mean"], mean), key

    plain = GroupBy(sources=[source], keys=["user_id"], aggregations=None, derivations=[
        Derivation(name="*", expression="*"), Derivation(name="qty_doubled", expression="qty * 2")])
    plain.metaData.name, plain.metaData.outputNamespace, plain.metaData.team = "plain", "derive", "derive"
    run_backfill(s, plain, OUT[0], OUT[-1])
    got = table_rows(s, "plain")
    assert got.column_names == ["user_id", "plain_qty", "plain_qty_doubled", "ds"]
    pairs = sorted(((r["plain_qty"], r["plain_qty_doubled"]) for r in got.to_pylist()), key=str)
    assert pairs == sorted(((r["qty"], None if r["qty"] is None else 2 * r["qty"]) for r in snapshots), key=str)


def test_runtime_error_in_a_derivation_says_so_and_leaves_no_output(env):
    from chronon_cli.engines.spark.backfill import run_backfill
    from chronon_cli.errors import JobError

    s, _ = env
    gb = event_gb("by_zero", [Derivation(name="per_nothing", expression="qty_count_7d / (qty_count_7d - qty_count_7d)")])
    with pytest.raises(JobError) as raised:  # Spark's ANSI mode (its default) fails a division by zero
        run_backfill(s, gb, OUT[0], OUT[-1])
    assert "DIVIDE_BY_ZERO" in str(raised.value) and "derivations of by_zero (per_nothing)" in str(raised.value)
    assert not catalog(s).table_exists("derive.by_zero")


def test_a_bad_expression_from_a_config_module_names_its_file(env):
    from chronon_cli import api
    from chronon_cli.errors import ConfigError

    s, _ = env
    module = s.repo / "group_bys" / "derive" / "bad_module.py"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text('''
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.group_by import Aggregation, Derivation, GroupBy, Operation
from ai.chronon.query import Query, select

v1 = GroupBy(
    sources=[Source(events=EventSource(table="derive.events", query=Query(
        selects=select("user_id", "qty"), time_column="ts")))],
    keys=["user_id"], output_namespace="derive",
    aggregations=[Aggregation(input_column="qty", operation=Operation.SUM, windows=["7d"])],
    derivations=[Derivation(name="twice", expression="qty_sum_30d * 2")])
''')
    with pytest.raises(ConfigError) as raised:
        api.backfill(s, "group_bys/derive/bad_module.py", OUT[0], OUT[-1])
    message = str(raised.value)
    assert message.startswith("file group_bys/derive/bad_module.py, object derive.bad_module.v1, "
                              "field derivations[0].expression:"), message
    assert "qty_sum_30d" in message and "qty_sum_7d" in message  # Spark's suggestion
    assert [t for t in catalog(s).list_tables("derive") if "bad_module" in ".".join(t)] == []


def test_list_features_and_star_references_reach_the_expressions(env):
    """Spark sees only the base columns the expressions read; a ``*`` reference (struct(*)) reads
    them all, and the list features written beside the derived columns match the reference."""
    import json

    from chronon_cli.engines.spark.backfill import run_backfill

    s, events = env
    source = Source(events=EventSource(table="derive.events", query=Query(
        selects=select("user_id", "qty", "price"), time_column="ts")))
    gb = GroupBy(sources=[source], keys=["user_id"], aggregations=[
        Aggregation(input_column="qty", operation=Operation.SUM, windows=["7d"]),
        Aggregation(input_column="qty", operation=Operation.LAST_K(3), windows=["7d"]),
        Aggregation(input_column="price", operation=Operation.MAX, windows=["3d"])], derivations=[
        Derivation(name="*", expression="*"),
        Derivation(name="n_last", expression="CASE WHEN qty_last3_7d IS NULL THEN 0 ELSE size(qty_last3_7d) END"),
        Derivation(name="everything", expression="to_json(struct(*))")])
    gb.metaData.name, gb.metaData.outputNamespace, gb.metaData.team = "lists", "derive", "derive"
    run_backfill(s, gb, OUT[0], OUT[-1])
    got = table_rows(s, "lists")
    assert got.column_names == ["user_id", "lists_qty_sum_7d", "lists_qty_last3_7d", "lists_price_max_3d",
                                "lists_n_last", "lists_everything", "ds"]
    expected = {(r["user_id"], r["ds"]): r for r in reference.snapshot(gb, events, OUT)}
    rows = by_key(got)
    assert rows.keys() == expected.keys() and rows
    seen_lists = 0
    for key, want in expected.items():
        row = rows[key]
        assert row["lists_qty_last3_7d"] == want["qty_last3_7d"] and row["lists_qty_sum_7d"] == want["qty_sum_7d"]
        assert close(row["lists_price_max_3d"], want["price_max_3d"]), key
        assert row["lists_n_last"] == len(want["qty_last3_7d"] or []), key
        everything = json.loads(row["lists_everything"])  # to_json leaves out null fields
        assert everything["user_id"] == key[0] and everything["ds"] == key[1].isoformat()
        for column in ("qty_sum_7d", "qty_last3_7d", "price_max_3d"):
            if want[column] is None:
                assert column not in everything, (key, column)
            elif column == "price_max_3d":
                assert close(everything[column], want[column]), key
            else:
                assert everything[column] == want[column], (key, column)
        seen_lists += bool(want["qty_last3_7d"])
    assert seen_lists > 10


def test_derivations_when_spark_shuffles_the_events(env):
    """SQL selects and wheres send the events through Spark's shuffle (not the tasks' own reads):
    the derivations' frame then comes from the shuffled partitions, with the same values."""
    from chronon_cli.engines.spark.backfill import run_backfill

    s, events = env
    source = Source(events=EventSource(table="derive.events", query=Query(
        selects=select(user_id="user_id", qty="qty + 0", price="price"), wheres=["user_id IS NOT NULL"],
        time_column="ts")))
    gb = GroupBy(sources=[source], keys=["user_id"], aggregations=[
        Aggregation(input_column="qty", operation=Operation.SUM, windows=["7d"]),
        Aggregation(input_column="qty", operation=Operation.COUNT, windows=["7d"])], derivations=[
        Derivation(name="*", expression="*"),
        Derivation(name="mean_7d", expression="try_divide(qty_sum_7d, qty_count_7d)")])
    gb.metaData.name, gb.metaData.outputNamespace, gb.metaData.team = "shuffled", "derive", "derive"
    summary = run_backfill(s, gb, OUT[0], OUT[-1])
    assert {c.get("events_read") for c in summary["chunk_results"]} == {"shuffled"}, summary
    got = by_key(table_rows(s, "shuffled"))
    kept_events = [e for e in events if e["user_id"] is not None]
    expected = {(r["user_id"], r["ds"]): r for r in reference.snapshot(gb, kept_events, OUT)}
    assert got.keys() == expected.keys() and got
    for key, want in expected.items():
        row = got[key]
        assert row["shuffled_qty_sum_7d"] == want["qty_sum_7d"] and row["shuffled_qty_count_7d"] == want["qty_count_7d"]
        mean = None if not want["qty_count_7d"] or want["qty_sum_7d"] is None else want["qty_sum_7d"] / want["qty_count_7d"]
        assert close(row["shuffled_mean_7d"], mean), key


def test_a_derivation_named_like_a_base_feature_replaces_it(env):
    from chronon_cli.engines.spark.backfill import run_backfill

    s, events = env
    gb = event_gb("override", [Derivation(name="*", expression="*"),
                               Derivation(name="qty_sum_7d", expression="qty_sum_7d * 10")])
    run_backfill(s, gb, OUT[0], OUT[-1])
    got = table_rows(s, "override")
    assert got.column_names == ["user_id", "override_qty_count_7d", "override_qty_average_7d",
                                "override_price_max_3d", "override_qty_sum_7d", "ds"]
    expected = {(r["user_id"], r["ds"]): r for r in reference.snapshot(gb, events, OUT)}
    rows = by_key(got)
    assert rows.keys() == expected.keys() and rows
    for key, want in expected.items():
        assert rows[key]["override_qty_sum_7d"] == (None if want["qty_sum_7d"] is None else want["qty_sum_7d"] * 10)
