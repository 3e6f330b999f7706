"""staging-query-backfill end to end on real components: Spark local mode, pyiceberg's SQL catalog on
SQLite, a local warehouse and the local object store. Expected rows are computed independently from
the sample parquet with pyarrow; tables are read back with plain pyiceberg.
"""
import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from chronon_cli.engines.spark.staging_query import run_staging_query
from chronon_cli.errors import ConfigError, JobError
from chronon_cli.samples.bootcamp import PURCHASES_URI, USERS_URI, write_sample_data
from chronon_cli.spec import ttypes
from chronon_cli.storage import catalog, object_store
from chronon_cli.storage.iceberg import load_table, partitions, replace_partitions, table_exists
from staging_queries.bootcamp.purchases_from_s3 import v1 as PURCHASES
from staging_queries.bootcamp.users_from_s3 import v1 as USERS
from tests.conftest import REPO

pytestmark = pytest.mark.spark

D = dt.date
FIRST, LAST = D(2023, 12, 1), D(2023, 12, 7)
TABLE = "bootcamp.purchases_from_s3"


def expected_purchases(settings, first=FIRST, last=LAST):
    """(user_id, price, category, ts, ds) rows from the raw parquet, by pyarrow alone."""
    raw = pq.read_table(object_store(settings).resolve(PURCHASES_URI)[1])
    out = []
    for r in raw.to_pylist():
        ds = dt.datetime.fromtimestamp(r["ts"] / 1000, dt.timezone.utc).date()
        if first <= ds <= last:
            out.append((r["user_id"], r["purchase_price"], r["item_category"], r["ts"], ds))
    return sorted(out)


def table_rows(settings, name=TABLE, snapshot_id=None):
    table = load_table(catalog(settings), name)
    scan = table.scan(snapshot_id=snapshot_id) if snapshot_id else table.scan()
    return sorted(tuple(r.values()) for r in scan.to_arrow().to_pylist())


def snapshots(settings, name=TABLE):
    return [s.snapshot_id for s in load_table(catalog(settings), name).snapshots()]


@pytest.fixture(params=["native", "python"])
def settings(request, spark, local_settings):
    """The local profile, writing through Spark's parquet writer (native) or Python tasks."""
    local_settings.spark["native_local_io"] = request.param == "native"
    write_sample_data(local_settings)
    return local_settings


def test_purchases_end_to_end(settings):
    calls = []
    report = run_staging_query(settings, PURCHASES, FIRST, LAST, progress=lambda *a: calls.append(a))
    expected = expected_purchases(settings)
    assert len(expected) == 155
    assert table_rows(settings) == expected
    assert report["rows"] == 155 and report["table"] == TABLE
    assert report["planned"] == report["ran"] == [(FIRST + dt.timedelta(days=i)).isoformat() for i in range(7)]
    assert report["skipped"] == [] and len(report["chunks"]) == 1
    assert calls == [(f"{TABLE} 2023-12-01..2023-12-07", 0, 1), (f"{TABLE} 2023-12-01..2023-12-07", 1, 1)]
    table = load_table(catalog(settings), TABLE)
    assert partitions(table) == {FIRST + dt.timedelta(days=i) for i in range(7)}
    assert [f.name for f in table.spec().fields] == ["ds"]
    assert str(table.schema().find_field("ds").field_type) == "date"
    assert table.metadata.format_version == 2 and table.properties["write.format.default"] == "parquet"
    assert snapshots(settings) == [report["chunks"][0]["snapshot_id"]]
    # every data file holds exactly one ds, inside the file
    for task in table.scan().plan_files():
        path = task.file.file_path.replace("file://", "")
        days = pq.read_table(path, columns=["ds"]).column("ds").unique().to_pylist()
        assert len(days) == 1


def test_reruns_fill_holes_and_force_replaces_in_one_commit_each(settings):
    run_staging_query(settings, PURCHASES, FIRST, LAST)
    first = table_rows(settings)
    ids = snapshots(settings)
    again = run_staging_query(settings, PURCHASES, FIRST, LAST)
    assert again["planned"] == [] and len(again["skipped"]) == 7 and again["chunks"] == []
    assert snapshots(settings) == ids  # nothing missing: no commit
    forced = run_staging_query(settings, PURCHASES, FIRST, LAST, force=True)
    assert len(forced["planned"]) == 7 and table_rows(settings) == first
    assert len(snapshots(settings)) == len(ids) + 1  # one commit
    forced2 = run_staging_query(settings, PURCHASES, FIRST, LAST, force=True)
    assert table_rows(settings) == first and len(snapshots(settings)) == len(ids) + 2
    assert forced2["rows"] == 155
    # drop two days (one commit), then a plain run recomputes exactly those, in one commit per chunk
    replace_partitions(catalog(settings), TABLE, pa.table({"ds": pa.array([], pa.date32())}), D(2023, 12, 3), D(2023, 12, 4))
    before = len(snapshots(settings))
    holes = run_staging_query(settings, PURCHASES, FIRST, LAST)
    assert holes["planned"] == ["2023-12-03", "2023-12-04"] and len(holes["chunks"]) == 1
    assert len(snapshots(settings)) == before + 1 and table_rows(settings) == first


def test_step_days_chunks_commit_once_per_chunk(settings):
    calls = []
    report = run_staging_query(settings, PURCHASES, FIRST, LAST, step_days=3, progress=lambda *a: calls.append(a))
    assert [(c["start"], c["end"]) for c in report["chunks"]] == [
        ("2023-12-01", "2023-12-03"), ("2023-12-04", "2023-12-06"), ("2023-12-07", "2023-12-07")]
    assert snapshots(settings) == [c["snapshot_id"] for c in report["chunks"]]
    assert sum(c["rows"] for c in report["chunks"]) == 155
    assert table_rows(settings) == expected_purchases(settings)
    assert [c[1:] for c in calls] == [(0, 3), (1, 3), (1, 3), (2, 3), (2, 3), (3, 3)]
    # each snapshot is readable and holds the chunks committed so far
    ids = snapshots(settings)
    assert len(table_rows(settings, snapshot_id=ids[0])) == len(expected_purchases(settings, FIRST, D(2023, 12, 3)))


def test_start_partition_clamps_the_range(settings):
    report = run_staging_query(settings, PURCHASES, D(2023, 11, 28), D(2023, 12, 2))
    assert report["planned"] == ["2023-12-01", "2023-12-02"]
    assert table_rows(settings) == expected_purchases(settings, FIRST, D(2023, 12, 2))


def test_users_daily_snapshots(settings):
    run_staging_query(settings, USERS, FIRST, LAST, step_days=4)
    users = pq.read_table(object_store(settings).resolve(USERS_URI)[1]).to_pylist()
    expected = []
    for i in range(7):
        day = FIRST + dt.timedelta(days=i)
        for u in users:
            created = dt.datetime.fromtimestamp(u["account_created_ts"] / 1000, dt.timezone.utc).date()
            if created <= day:
                expected.append((u["user_id"], u["email_verified"], u["country"], u["account_created_ts"], day))
    assert table_rows(settings, "bootcamp.users_from_s3") == sorted(expected)


def test_read_table(spark, settings):
    from pyspark.sql.types import DateType

    from chronon_cli.engines.spark.tables import existing_partitions, read_table, table_exists as spark_exists

    run_staging_query(settings, PURCHASES, FIRST, LAST)
    assert spark_exists(settings, TABLE) and not spark_exists(settings, "bootcamp.nope")
    assert existing_partitions(settings, TABLE) == {FIRST + dt.timedelta(days=i) for i in range(7)}
    assert existing_partitions(settings, "bootcamp.nope") == set()
    df = read_table(spark, settings, TABLE, D(2023, 12, 2), D(2023, 12, 3))
    assert isinstance(df.schema["ds"].dataType, DateType)
    got = sorted(tuple(r) for r in df.collect())
    assert got == [r for r in expected_purchases(settings) if D(2023, 12, 2) <= r[4] <= D(2023, 12, 3)]
    cols = read_table(spark, settings, TABLE, columns=["user_id", "ds"])
    assert cols.columns == ["user_id", "ds"] and cols.count() == 155
    only_users = read_table(spark, settings, TABLE, D(2023, 12, 3), D(2023, 12, 3), columns=["user_id"])
    assert only_users.columns == ["user_id"] and only_users.count() == 25
    with pytest.raises(ConfigError, match="no column"):
        read_table(spark, settings, TABLE, columns=["nope"])
    # time travel
    first_id = snapshots(settings)[0]
    run_staging_query(settings, PURCHASES, FIRST, LAST, force=True)
    assert read_table(spark, settings, TABLE, snapshot_id=first_id).count() == 155
    with pytest.raises(JobError, match="does not exist"):
        read_table(spark, settings, "bootcamp.nope")


def test_read_table_made_elsewhere_with_string_ds(spark, settings):
    """A table written by plain pyiceberg, ds a string, partitioned by identity(ds); and one added with
    add_files (no field ids in the files)."""
    from pyiceberg.transforms import IdentityTransform
    from pyspark.sql.types import DateType

    from chronon_cli.engines.spark.tables import read_table

    cat = catalog(settings)
    cat.create_namespace("ext")
    data = pa.table({"k": ["a", "b", "c"], "n": [1, 2, 3], "ds": ["2024-01-01", "2024-01-02", "2024-01-03"]})
    t = cat.create_table("ext.s", schema=data.schema)
    with t.update_spec() as spec:
        spec.add_field("ds", IdentityTransform(), "ds")
    t.append(data)
    df = read_table(spark, settings, "ext.s", D(2024, 1, 2), D(2024, 1, 3))
    assert isinstance(df.schema["ds"].dataType, DateType)
    assert sorted(tuple(r) for r in df.collect()) == [("b", 2, D(2024, 1, 2)), ("c", 3, D(2024, 1, 3))]
    path = str(settings.home / "plain.parquet")
    pq.write_table(data, path)
    u = cat.create_table("ext.u", schema=data.schema)
    u.add_files([path])
    assert sorted(r["k"] for r in read_table(spark, settings, "ext.u", D(2024, 1, 3)).collect()) == ["c"]


def test_staging_query_reading_an_iceberg_table_with_max_date(settings):
    run_staging_query(settings, PURCHASES, FIRST, LAST)
    latest = ttypes.StagingQuery(
        metaData=ttypes.MetaData(name="latest_day_totals", outputNamespace="bootcamp"),
        query=textwrap.dedent("""
            SELECT user_id, SUM(purchase_price) AS total, DATE '{{ end_date }}' AS ds
            FROM bootcamp.purchases_from_s3
            WHERE ds = DATE '{{ max_date(table=bootcamp.purchases_from_s3) }}'
            GROUP BY user_id"""))
    run_staging_query(settings, latest, D(2024, 1, 1), D(2024, 1, 1))
    got = {r[0]: r[1] for r in table_rows(settings, "bootcamp.latest_day_totals")}
    expected = {}
    for r in expected_purchases(settings):
        if r[4] == LAST:
            expected[r[0]] = expected.get(r[0], 0) + r[1]
    assert got.keys() == expected.keys()
    assert all(abs(got[k] - expected[k]) < 1e-9 for k in got)


def test_run_sql(settings):
    from chronon_cli.engines.spark.sql import run_sql

    run_staging_query(settings, PURCHASES, FIRST, LAST, step_days=4)
    counts = run_sql(settings, "SELECT ds, COUNT(*) AS n FROM bootcamp.purchases_from_s3 GROUP BY ds ORDER BY ds")
    assert counts.column("n").to_pylist() == [21, 18, 25, 20, 23, 26, 22]
    snaps = run_sql(settings, "SELECT snapshot_id, operation FROM bootcamp.purchases_from_s3.snapshots")
    assert snaps.column("snapshot_id").to_pylist() == snapshots(settings)
    history = run_sql(settings, "SELECT * FROM bootcamp.purchases_from_s3.history")
    assert history.num_rows == 2 and "made_current_at" in history.column_names
    for kind, n in (("files", 7), ("data_files", 7), ("partitions", 7), ("manifests", 2), ("refs", 1),
                    ("entries", 7), ("metadata_log_entries", 2)):
        assert run_sql(settings, f"SELECT * FROM bootcamp.purchases_from_s3.{kind}").num_rows == n, kind
    tables = run_sql(settings, "SHOW TABLES IN bootcamp")
    assert tables.column("tableName").to_pylist() == ["purchases_from_s3"]
    desc = run_sql(settings, "DESCRIBE EXTENDED bootcamp.purchases_from_s3").to_pylist()
    assert [r["col_name"] for r in desc[:5]] == ["user_id", "purchase_price", "item_category", "ts", "ds"]
    assert {"col_name": "Part 0", "data_type": "ds", "comment": None} in desc
    assert run_sql(settings, "SELECT 1 AS one").to_pylist() == [{"one": 1}]
    # a string literal mentioning a metadata table is left alone
    assert run_sql(settings, "SELECT 'bootcamp.purchases_from_s3.history' AS s").column("s").to_pylist() == [
        "bootcamp.purchases_from_s3.history"]
    with pytest.raises(JobError) as err:
        run_sql(settings, "SELECT user_id FORM bootcamp.purchases_from_s3")
    assert "SELECT user_id FORM bootcamp.purchases_from_s3" in str(err.value)
    assert "line 1, position" in str(err.value) and "^" in str(err.value)
    with pytest.raises(JobError, match="nope"):
        run_sql(settings, "SELECT nope FROM bootcamp.purchases_from_s3")


# -- errors: clear messages, nothing written ----------------------------------------------------------

def sq(query, setups=None, name="bad"):
    return ttypes.StagingQuery(metaData=ttypes.MetaData(name=name, outputNamespace="bootcamp"), query=query,
                               setups=setups)


def test_missing_s3_object_names_the_uri(settings):
    bad = sq("SELECT *, DATE '{{ start_date }}' AS ds FROM raw",
             ["CREATE TEMPORARY VIEW raw USING parquet OPTIONS (path 's3a://chronon/missing/file.parquet')"])
    with pytest.raises(JobError, match="s3a://chronon/missing/file.parquet"):
        run_staging_query(settings, bad, FIRST, FIRST)
    assert not table_exists(catalog(settings), "bootcamp.bad")


def test_query_without_ds(settings):
    bad = sq("SELECT user_id FROM purchases_raw", PURCHASES.setups)
    with pytest.raises(JobError, match="no 'ds' column") as err:
        run_staging_query(settings, bad, FIRST, FIRST)
    assert "user_id" in str(err.value)
    assert not table_exists(catalog(settings), "bootcamp.bad")


def test_sql_syntax_error_shows_statement_and_position(settings):
    bad = sq("SELECT user_id, ts\nFROM purchases_raw\nWHERE ts = = 1", PURCHASES.setups)
    with pytest.raises(JobError) as err:
        run_staging_query(settings, bad, FIRST, FIRST)
    text = str(err.value)
    assert "query of staging query bad" in text and "line 3, position" in text
    assert "line 3, position 12:\n    WHERE ts = = 1\n    " + " " * 11 + "^\n" in text  # under the 2nd '='
    assert "FROM purchases_raw" in text
    assert not table_exists(catalog(settings), "bootcamp.bad")


def test_unknown_table_in_query(settings):
    with pytest.raises(JobError, match="nowhere"):
        run_staging_query(settings, sq("SELECT * FROM nowhere"), FIRST, FIRST)
    assert not table_exists(catalog(settings), "bootcamp.bad")


def test_rows_outside_the_chunk_fail_and_leave_the_table_unchanged(settings):
    run_staging_query(settings, PURCHASES, FIRST, LAST)
    before_rows, before_ids = table_rows(settings), snapshots(settings)
    ignores_macros = ttypes.StagingQuery(metaData=PURCHASES.metaData, setups=PURCHASES.setups,
                                         query="SELECT user_id, purchase_price, item_category, ts, "
                                               "TO_DATE(TIMESTAMP_MILLIS(ts)) AS ds FROM purchases_raw")
    with pytest.raises(JobError, match="outside the range"):
        run_staging_query(settings, ignores_macros, D(2023, 12, 2), D(2023, 12, 2), force=True)
    assert table_rows(settings) == before_rows and snapshots(settings) == before_ids
    data = load_table(catalog(settings), TABLE).location().replace("file://", "") + "/data"
    referenced = {t.file.file_path.replace("file://", "") for t in load_table(catalog(settings), TABLE).scan().plan_files()}
    on_disk = {os.path.join(d, f) for d, _, fs in os.walk(data) for f in fs if f.endswith(".parquet")}
    assert on_disk == referenced  # the failed write cleaned its files up


def test_null_ds_fails(settings):
    bad = sq("SELECT user_id, CAST(NULL AS DATE) AS ds FROM purchases_raw", PURCHASES.setups)
    with pytest.raises(JobError, match="null ds"):
        run_staging_query(settings, bad, FIRST, FIRST)
    assert not table_exists(catalog(settings), "bootcamp.bad")


# -- a job killed mid-way ----------------------------------------------------------------------------

KILL_DAYS = 16
JOB = """
import datetime as dt, sys
from chronon_cli import settings
from chronon_cli.engines.spark.staging_query import run_staging_query
from staging_queries.bootcamp.purchases_from_s3 import v1
s = settings.load(repo=sys.argv[1])
run_staging_query(s, v1, dt.date(2023, 12, 1), dt.date(2023, 12, 1) + dt.timedelta(days=%d), step_days=1)
""" % (KILL_DAYS - 1)


def long_purchases(settings):
    """KILL_DAYS days of purchases at the bootcamp URI (40 a day, deterministic)."""
    import random

    rng = random.Random(5)
    start = int(dt.datetime(2023, 12, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    n = 40 * KILL_DAYS
    table = pa.table({
        "user_id": [f"user_{rng.randrange(30)}" for _ in range(n)],
        "purchase_price": [round(rng.uniform(1, 100), 2) for _ in range(n)],
        "item_category": [rng.choice(["books", "toys"]) for _ in range(n)],
        "ts": pa.array(sorted(start + rng.randrange(KILL_DAYS * 86_400_000) for _ in range(n)), pa.int64()),
    })
    store = object_store(settings)
    fs, path = store.resolve(PURCHASES_URI)
    store.ensure_parent(fs, path)
    pq.write_table(table, path)


def test_killed_job_leaves_last_snapshot_readable_and_rerun_completes(spark, local_settings, chronon_home):
    long_purchases(local_settings)
    env = {**os.environ, "CHRONON_HOME": str(chronon_home), "PYTHONPATH": str(REPO)}
    job = subprocess.Popen([sys.executable, "-c", JOB, str(REPO)], env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert job.poll() is None, f"the job ended early: {job.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "the job made no progress"
            if table_exists(catalog(local_settings), TABLE) and len(snapshots(local_settings)) >= 3:
                break
            time.sleep(0.2)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        job.stderr.close()
    last = KILL_DAYS - 1
    expected = expected_purchases(local_settings, FIRST, FIRST + dt.timedelta(days=last))
    ids = snapshots(local_settings)
    assert 3 <= len(ids) < KILL_DAYS
    done = partitions(load_table(catalog(local_settings), TABLE))
    assert done == {FIRST + dt.timedelta(days=i) for i in range(len(ids))}
    # the committed partitions are complete, without duplicates; older snapshots still read
    assert table_rows(local_settings) == [r for r in expected if r[4] in done]
    assert len(table_rows(local_settings, snapshot_id=ids[0])) == len([r for r in expected if r[4] == FIRST])
    report = run_staging_query(local_settings, PURCHASES, FIRST, FIRST + dt.timedelta(days=last))
    assert report["skipped"] == sorted(d.isoformat() for d in done)
    assert table_rows(local_settings) == expected
    assert len(snapshots(local_settings)) == len(ids) + 1
