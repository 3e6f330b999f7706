"""The staging-query plan without Spark: macros, setup rewriting, chunking, dry runs, naming."""
import datetime as dt

import pytest

from chronon_cli.engines.spark.macros import render
from chronon_cli.engines.spark.setups import parse_options, rewrite_setup
from chronon_cli.engines.spark.staging_query import output_table, plan_chunks, run_staging_query
from chronon_cli.errors import ConfigError, JobError, UsageError
from chronon_cli.samples.bootcamp import write_sample_data
from chronon_cli.spec import ttypes
from chronon_cli.storage import catalog, object_store
from chronon_cli.storage.iceberg import replace_partitions, table_exists

D = dt.date


def sq(query="SELECT 1 AS x, DATE '{{ start_date }}' AS ds", name="t", ns="ns", setups=None, start=None, props=None):
    return ttypes.StagingQuery(metaData=ttypes.MetaData(name=name, outputNamespace=ns, tableProperties=props),
                               query=query, startPartition=start, setups=setups)


def test_render_macros():
    text = "{{ start_date }} {{end_date}} {{  latest_date }} {{ max_date(table=ns.t) }} {{ max_date(table='ns.u') }}"
    out = render(text, D(2023, 12, 1), D(2023, 12, 3), D(2023, 12, 7),
                 max_date=lambda t: {"ns.t": D(2023, 11, 30), "ns.u": D(2023, 11, 1)}[t])
    assert out == "2023-12-01 2023-12-03 2023-12-07 2023-11-30 2023-11-01"


@pytest.mark.parametrize("text,needle", [
    ("{{ start_dat }}", "did you mean 'start_date'"),
    ("{{ ds }}", "unknown macro {{ ds }}"),
    ("{{ max_date(tbl=ns.t) }}", "table=namespace.table"),
    ("{{ max_date }}", "unknown macro"),
])
def test_unknown_or_bad_macros_are_config_errors(text, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace("{", r"\{").replace("}", r"\}")):
        render(text, D(2023, 12, 1), D(2023, 12, 1), D(2023, 12, 1), max_date=lambda t: D(2023, 1, 1))


def test_parse_options():
    assert parse_options("path 's3a://b/k', 'mergeSchema' = \"true\", n 3") == {
        "path": "s3a://b/k", "mergeschema": "true", "n": "3"}


def test_rewrite_setup_reads_s3_through_the_store(local_settings):
    store = object_store(local_settings)
    write_sample_data(local_settings)
    setup = ("CREATE TEMPORARY VIEW purchases_raw USING parquet "
             "OPTIONS (path 's3a://chronon/warehouse/data/purchases/purchases.parquet')")
    out, uris = rewrite_setup(setup, store, "chronon_parquet_x", 4)
    assert out.startswith("CREATE OR REPLACE TEMPORARY VIEW purchases_raw USING chronon_parquet_x")
    assert "min_splits '4'" in out and uris == ["s3a://chronon/warehouse/data/purchases/purchases.parquet"]
    native, _ = rewrite_setup(setup, store, "chronon_parquet_x", 4, native_local=True)
    local = store.resolve("s3a://chronon/warehouse/data/purchases/purchases.parquet")[1]
    assert native.endswith(f"USING parquet OPTIONS (path 'file://{local}')")
    # other statements: temp views become OR REPLACE (setups run once per chunk), the rest unchanged
    assert rewrite_setup("CREATE TEMP VIEW v AS SELECT 1", store, "x")[0] == "CREATE OR REPLACE TEMP VIEW v AS SELECT 1"
    assert rewrite_setup("SET spark.sql.ansi.enabled=false", store, "x")[0] == "SET spark.sql.ansi.enabled=false"


def test_rewrite_setup_missing_object_names_the_uri(local_settings):
    setup = "CREATE TEMPORARY VIEW v USING parquet OPTIONS (path 's3a://chronon/nowhere/x.parquet')"
    with pytest.raises(JobError, match="s3a://chronon/nowhere/x.parquet"):
        rewrite_setup(setup, object_store(local_settings), "x")
    with pytest.raises(JobError, match="only parquet"):
        rewrite_setup("CREATE TEMPORARY VIEW v USING csv OPTIONS (path 's3a://b/x.csv')",
                      object_store(local_settings), "x")


def test_plan_chunks():
    days = [D(2023, 12, d) for d in (1, 2, 3, 4, 5, 7, 8, 10)]
    assert plan_chunks(days, None) == [(D(2023, 12, 1), D(2023, 12, 5)), (D(2023, 12, 7), D(2023, 12, 8)),
                                       (D(2023, 12, 10), D(2023, 12, 10))]
    assert plan_chunks(days, 2) == [(D(2023, 12, 1), D(2023, 12, 2)), (D(2023, 12, 3), D(2023, 12, 4)),
                                    (D(2023, 12, 5), D(2023, 12, 5)), (D(2023, 12, 7), D(2023, 12, 8)),
                                    (D(2023, 12, 10), D(2023, 12, 10))]
    assert plan_chunks([], 3) == []
    with pytest.raises(UsageError):
        plan_chunks(days, 0)


def test_output_table_name():
    assert output_table(sq(name="purchases_from_s3", ns="bootcamp")) == "bootcamp.purchases_from_s3"
    assert output_table(sq(name="bootcamp.purchases-v1", ns="b")) == "b.bootcamp_purchases_v1"
    with pytest.raises(ConfigError, match="output namespace"):
        output_table(sq(ns=None))


def test_dry_run_plans_missing_partitions_and_writes_nothing(local_settings):
    # an existing table with 12-02 and 12-05: fill the holes only, in chunks of 2
    import pyarrow as pa

    replace_partitions(catalog(local_settings), "ns.t",
                       pa.table({"x": [1, 1], "ds": pa.array([D(2023, 12, 2), D(2023, 12, 5)], pa.date32())}),
                       D(2023, 12, 2), D(2023, 12, 5))
    report = run_staging_query(local_settings, sq(), D(2023, 12, 1), D(2023, 12, 7), step_days=2, dry_run=True)
    assert report["planned"] == ["2023-12-01", "2023-12-03", "2023-12-04", "2023-12-06", "2023-12-07"]
    assert report["skipped"] == ["2023-12-02", "2023-12-05"]
    assert [(c["start"], c["end"]) for c in report["chunks"]] == [
        ("2023-12-01", "2023-12-01"), ("2023-12-03", "2023-12-04"), ("2023-12-06", "2023-12-07")]
    assert report["ran"] == [] and report["dry_run"]
    forced = run_staging_query(local_settings, sq(), D(2023, 12, 1), D(2023, 12, 7), force=True, dry_run=True)
    assert len(forced["planned"]) == 7 and forced["skipped"] == []
    assert len(catalog(local_settings).load_table("ns.t").snapshots()) == 1
    import json
    json.dumps(report)


def test_dry_run_of_a_new_table_creates_nothing(local_settings):
    report = run_staging_query(local_settings, sq(start="2023-12-03"), D(2023, 12, 1), D(2023, 12, 4), dry_run=True)
    assert report["planned"] == ["2023-12-03", "2023-12-04"] and report["effective_start"] == "2023-12-03"
    assert not table_exists(catalog(local_settings), "ns.t")


def test_plan_errors(local_settings):
    with pytest.raises(UsageError, match="before"):
        run_staging_query(local_settings, sq(), D(2023, 12, 2), D(2023, 12, 1))
    with pytest.raises(ConfigError, match="unknown macro"):
        run_staging_query(local_settings, sq(query="SELECT {{ nope }} AS ds"), D(2023, 12, 1), D(2023, 12, 1),
                          dry_run=True)
    with pytest.raises(ConfigError, match="setups"):
        run_staging_query(local_settings, sq(setups=["SELECT '{{ start }}'"]), D(2023, 12, 1), D(2023, 12, 1),
                          dry_run=True)
    with pytest.raises(JobError, match="max_date"):
        run_staging_query(local_settings, sq(query="SELECT DATE '{{ max_date(table=ns.none) }}' AS ds"),
                          D(2023, 12, 1), D(2023, 12, 1), dry_run=True)
    with pytest.raises(ConfigError, match="startPartition"):
        run_staging_query(local_settings, sq(start="12/01/2023"), D(2023, 12, 1), D(2023, 12, 1), dry_run=True)
