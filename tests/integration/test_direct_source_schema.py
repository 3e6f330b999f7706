"""direct_source.input_schema: the selected rows' Arrow schema taken from the source tables equals
the one Spark derives from the select query (what the backfill used before), for many column types;
sources that need Spark SQL, or plain sources whose types disagree, get None (Spark decides)."""
import datetime as dt

import pyarrow as pa
import pytest

from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.group_by import Aggregation, GroupBy, Operation
from ai.chronon.query import Query, select
from chronon_cli.engines.spark import aggregate, direct_source
from chronon_cli.engines.spark.group_by_source import selected_rows
from chronon_cli.storage import catalog
from tests.iceberg_tables import create_ds_table

pytestmark = pytest.mark.spark

DAY = dt.date(2024, 5, 1)
TYPES = pa.schema([
    ("k_str", pa.string()), ("k_int", pa.int32()), ("k_long", pa.int64()), ("v_double", pa.float64()),
    ("v_float", pa.float32()), ("v_bool", pa.bool_()), ("v_date", pa.date32()),
    ("v_ts", pa.timestamp("us", tz="UTC")), ("v_list", pa.list_(pa.int64())),
    ("v_map", pa.map_(pa.string(), pa.float64())), ("v_dec", pa.decimal128(10, 2)), ("ts", pa.int64()),
    ("ds", pa.date32())])


def rows():
    return pa.Table.from_pylist([{
        "k_str": "a", "k_int": 1, "k_long": 2, "v_double": 1.5, "v_float": 2.5, "v_bool": True, "v_date": DAY,
        "v_ts": dt.datetime(2024, 5, 1, 3, tzinfo=dt.timezone.utc), "v_list": [1, 2], "v_map": [("x", 1.0)],
        "v_dec": None, "ts": 1714521600000 + 5, "ds": DAY}], schema=TYPES)


def group_by(table, selects, keys, time_column="ts"):
    source = Source(events=EventSource(table=table, query=Query(selects=selects, time_column=time_column)))
    gb = GroupBy(sources=[source], keys=keys, aggregations=[
        Aggregation(input_column="v_double", operation=Operation.COUNT, windows=["1d"])])
    gb.metaData.name, gb.metaData.team, gb.metaData.outputNamespace = "schema_probe", "t", "t"
    return gb


def spark_schema(spark, settings, gb):
    return aggregate.input_schema(selected_rows(spark, settings, gb, DAY, DAY, schema_only=True), gb.keyColumns)


def test_plain_selects_get_sparks_schema_from_the_tables(spark, local_settings):
    create_ds_table(catalog(local_settings), "probe.all_types", rows())
    columns = [n for n in TYPES.names if n not in ("ts", "ds")]
    for gb in [group_by("probe.all_types", select(*columns), ["k_str", "k_int"]),
               group_by("probe.all_types", {"renamed": "k_long", "v_double": "`v_double`", "v_map": "v_map"},
                        ["renamed"]),
               group_by("probe.all_types", None, ["k_str"])]:
        ours = direct_source.input_schema(local_settings, gb)
        assert ours is not None
        expected = spark_schema(spark, local_settings, gb)
        assert ours.equals(expected, check_metadata=True), (ours, expected)


def test_sources_that_need_spark_get_none(spark, local_settings):
    create_ds_table(catalog(local_settings), "probe.small", rows().select(["k_str", "v_double", "ts", "ds"]))
    expression = group_by("probe.small", {"k_str": "upper(k_str)", "v_double": "v_double"}, ["k_str"])
    assert direct_source.input_schema(local_settings, expression) is None
    time_expression = group_by("probe.small", select("k_str", "v_double"), ["k_str"], time_column="ts * 1000")
    assert direct_source.input_schema(local_settings, time_expression) is None
    wheres = group_by("probe.small", select("k_str", "v_double"), ["k_str"])
    wheres.sources[0].events.query.wheres = ["v_double > 0"]
    assert direct_source.input_schema(local_settings, wheres) is None


def test_plain_sources_with_different_types_get_none(spark, local_settings):
    cat = catalog(local_settings)
    create_ds_table(cat, "probe.doubles", rows().select(["k_str", "v_double", "ts", "ds"]))
    floats = rows().select(["k_str", "v_float", "ts", "ds"]).rename_columns(["k_str", "v_double", "ts", "ds"])
    create_ds_table(cat, "probe.floats", floats)
    gb = group_by("probe.doubles", select("k_str", "v_double"), ["k_str"])
    gb.sources.append(Source(events=EventSource(table="probe.floats", query=Query(
        selects=select("k_str", "v_double"), time_column="ts"))))
    assert direct_source.input_schema(local_settings, gb) is None
