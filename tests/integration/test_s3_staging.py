"""The staging-query pipeline over the S3 protocol: moto_server on loopback holds the raw parquet
objects AND the Iceberg warehouse (pyiceberg's SQL catalog on SQLite, ``s3://`` warehouse). Spark
tasks read and write the objects through pyarrow's S3FileSystem; nothing goes through local files.
"""
import datetime as dt
import io

import boto3
import pyarrow.parquet as pq
import pytest

from chronon_cli.engines.spark.staging_query import run_staging_query
from chronon_cli.errors import JobError
from chronon_cli.samples.bootcamp import PURCHASES_URI, USERS_URI, write_sample_data
from chronon_cli.spec import ttypes
from chronon_cli.storage import catalog, split_s3_uri
from chronon_cli.storage.iceberg import load_table, table_exists
from staging_queries.bootcamp.purchases_from_s3 import v1 as PURCHASES
from tests.conftest import MOTO_KEY

pytestmark = [pytest.mark.spark, pytest.mark.integration]

FIRST, LAST = dt.date(2023, 12, 1), dt.date(2023, 12, 7)
TABLE = "bootcamp.purchases_from_s3"


def s3_client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=MOTO_KEY,
                        aws_secret_access_key=MOTO_KEY)


def raw_object(endpoint, uri):
    bucket, key = split_s3_uri(uri)
    return pq.read_table(io.BytesIO(s3_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()))


def rows(settings, snapshot_id=None):
    table = load_table(catalog(settings), TABLE)
    scan = table.scan(snapshot_id=snapshot_id) if snapshot_id else table.scan()
    return sorted(tuple(r.values()) for r in scan.to_arrow().to_pylist())


@pytest.fixture
def settings(spark, s3_settings):
    uris = write_sample_data(s3_settings)
    assert uris == [PURCHASES_URI, USERS_URI]
    return s3_settings


def test_sample_data_is_deterministic_and_on_s3(settings, moto_server):
    purchases = raw_object(moto_server, PURCHASES_URI)
    users = raw_object(moto_server, USERS_URI)
    assert purchases.num_rows == 155 and users.num_rows == 30
    assert purchases.schema.names == ["user_id", "purchase_price", "item_category", "ts"]
    assert str(purchases.schema.field("ts").type) == "int64"
    assert users.schema.names == ["user_id", "email_verified", "country", "account_created_ts"]
    days = {dt.datetime.fromtimestamp(t / 1000, dt.timezone.utc).date() for t in purchases.column("ts").to_pylist()}
    assert min(days) == FIRST and max(days) == LAST
    write_sample_data(settings)
    assert raw_object(moto_server, PURCHASES_URI).equals(purchases)


def test_purchases_over_s3(settings, moto_server, spark):
    report = run_staging_query(settings, PURCHASES, FIRST, LAST, step_days=4)
    expected = sorted(
        (r["user_id"], r["purchase_price"], r["item_category"], r["ts"],
         dt.datetime.fromtimestamp(r["ts"] / 1000, dt.timezone.utc).date())
        for r in raw_object(moto_server, PURCHASES_URI).to_pylist())
    assert rows(settings) == expected and report["rows"] == 155
    table = load_table(catalog(settings), TABLE)
    assert table.location().startswith(f"s3://{settings.warehouse_bucket}/")
    files = [t.file.file_path for t in table.scan().plan_files()]
    assert files and all(f.startswith(f"s3://{settings.warehouse_bucket}/") for f in files)
    ids = [s.snapshot_id for s in table.snapshots()]
    assert ids == [c["snapshot_id"] for c in report["chunks"]] and len(ids) == 2
    # idempotent: nothing missing, nothing committed; force: one more commit, same rows
    assert run_staging_query(settings, PURCHASES, FIRST, LAST)["planned"] == []
    run_staging_query(settings, PURCHASES, FIRST, LAST, force=True)
    assert rows(settings) == expected
    assert len(load_table(catalog(settings), TABLE).snapshots()) == 3
    assert len(rows(settings, snapshot_id=ids[0])) == sum(1 for r in expected if r[4] <= dt.date(2023, 12, 4))

    from chronon_cli.engines.spark.sql import run_sql
    from chronon_cli.engines.spark.tables import read_table

    counts = run_sql(settings, f"SELECT ds, COUNT(*) AS n FROM {TABLE} GROUP BY ds ORDER BY ds")
    assert counts.column("n").to_pylist() == [21, 18, 25, 20, 23, 26, 22]
    assert run_sql(settings, f"SELECT * FROM {TABLE}.snapshots").num_rows == 3
    df = read_table(spark, settings, TABLE, dt.date(2023, 12, 3), dt.date(2023, 12, 3))
    assert df.count() == 25
    # credentials never appear in query plans
    plan = df._jdf.queryExecution().toString() + spark.sql("SELECT * FROM purchases_raw")._jdf.queryExecution().toString()
    assert MOTO_KEY not in plan


def test_missing_object_over_s3(settings):
    bad = ttypes.StagingQuery(
        metaData=ttypes.MetaData(name="bad", outputNamespace="bootcamp"),
        query="SELECT *, DATE '{{ start_date }}' AS ds FROM raw",
        setups=["CREATE TEMPORARY VIEW raw USING parquet OPTIONS (path 's3a://chronon/nope/missing.parquet')"])
    with pytest.raises(JobError, match="s3a://chronon/nope/missing.parquet"):
        run_staging_query(settings, bad, FIRST, FIRST)
    assert not table_exists(catalog(settings), "bootcamp.bad")


def test_unreachable_endpoint_is_a_job_error(local_settings):
    local_settings.s3 = {"type": "s3", "endpoint": "http://127.0.0.1:9", "access_key_id": "x",
                         "secret_access_key": "y"}
    from chronon_cli.storage import object_store

    with pytest.raises(JobError, match="s3a://chronon/x.parquet"):
        object_store(local_settings).require("s3a://chronon/x.parquet")


def test_bootcamp_backfill_over_s3_incremental(settings):
    """The GroupBy backfill with the source, the daily IR table and the output all on S3: bucket
    tasks read the source files and their stored IR files over the S3 protocol."""
    from chronon_cli import api

    conf = "group_bys/bootcamp/user_purchase_features.py"
    first = api.backfill(settings, conf, FIRST, dt.date(2023, 12, 5))["runs"][0]
    assert first["dependency_runs"] and first["chunk_results"][0]["events_read"] == "direct"
    second = api.backfill(settings, conf, dt.date(2023, 12, 6), LAST, step_days=1)["runs"][0]
    assert [c["source_partitions_read"] for c in second["chunk_results"]] == [1, 1]
    ir_table = load_table(catalog(settings), "bootcamp_features.user_purchase_features_daily_irs")
    files = [t.file.file_path for t in ir_table.scan().plan_files()]
    assert files and all(f.startswith(f"s3://{settings.warehouse_bucket}/") for f in files)
    out = load_table(catalog(settings), "bootcamp_features.user_purchase_features").scan().to_arrow().to_pylist()
    rows = {(r["user_id"], r["ds"]): r for r in out}
    p = "user_purchase_features_purchase_price_"
    # user_7 (UTC): 12-04 207.92, 87.99, 130.88; 12-05 19.26, 244.84; 12-07 143.82
    dec5 = rows[("user_7", dt.date(2023, 12, 5))]
    assert dec5[p + "sum_1d"] == pytest.approx(264.10) and dec5[p + "sum_7d"] == pytest.approx(690.89)
    assert dec5[p + "count_7d"] == 5
    dec7 = rows[("user_7", dt.date(2023, 12, 7))]
    assert dec7[p + "sum_1d"] == pytest.approx(143.82) and dec7[p + "count_7d"] == 6
    assert sorted({d for _, d in rows}) == [FIRST + dt.timedelta(days=i) for i in range(7)]
