"""The daily IR table behind an event GroupBy's backfill: hash buckets, the fallback for IR files
that are not bucketed, and holes in the IR days. Spark in local mode, pyiceberg on SQLite; every
result is compared with a full backfill of another GroupBy of the same config (or the IR rows as
they were), read back with plain pyiceberg."""
from collections import defaultdict
from datetime import date, timedelta

import pytest
from pyiceberg.conversions import from_bytes
from pyiceberg.expressions import EqualTo
from pyiceberg.types import IntegerType

from chronon_cli import settings as settings_module
from chronon_cli.storage import catalog
from tests.iceberg_tables import create_ds_table
from tests.parity.events import random_events, to_table
from tests.parity.test_backfill_parity import group_by

pytestmark = pytest.mark.spark

FIRST, LAST = date(2024, 2, 1), date(2024, 2, 16)
START = FIRST + timedelta(days=7)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("ir_home")
    s = settings_module.load(repo=str(home), env={"CHRONON_HOME": str(home)})
    create_ds_table(catalog(s), "irs.events", to_table(random_events(seed=11, first=FIRST, last=LAST)))
    return s


def gb(name):
    return group_by(name, table="irs.events")


def rows(s, table, day=None):
    scan = catalog(s).load_table(table).scan(row_filter=EqualTo("ds", day.isoformat()) if day else None) \
        if day else catalog(s).load_table(table).scan()
    return scan.to_arrow().to_pylist()


def normalized(s, name):
    out = rows(s, f"parity.{name}")
    return sorted(tuple(sorted((k.replace(f"{name}_", "", 1), repr(v)) for k, v in r.items())) for r in out)


def test_ir_files_each_hold_one_bucket_and_keys_stay_in_their_bucket(env):
    from chronon_cli.engines.spark.backfill import IR_BUCKETS_PROPERTY, run_backfill

    run_backfill(env, gb("bucketed"), START, LAST)
    table = catalog(env).load_table("parity.bucketed_daily_irs")
    buckets = int(table.properties[IR_BUCKETS_PROPERTY])
    field = table.schema().find_field("chronon_bucket").field_id
    files = [t.file for t in table.scan().plan_files()]
    assert files
    for f in files:
        low, high = f.lower_bounds[field], f.upper_bounds[field]
        assert low == high, f"{f.file_path} holds several buckets"
        assert 0 <= from_bytes(IntegerType(), low) < buckets
    seen = defaultdict(set)
    for r in rows(env, "parity.bucketed_daily_irs"):
        seen[(r["user_id"], r["merchant"])].add(r["chronon_bucket"])
    assert seen and all(len(b) == 1 for b in seen.values())
    assert len({b for bs in seen.values() for b in bs}) > 1  # the keys are spread over buckets
    # IR files are LZ4-compressed (read back by every incremental day); the output keeps the default
    import pyarrow.parquet as pq

    def codecs(t):
        return {pq.ParquetFile(f.file_path.replace("file://", "")).metadata.row_group(0).column(0).compression
                for f in (task.file for task in t.scan().plan_files())}
    assert codecs(table) == {"LZ4"}
    assert "LZ4" not in codecs(catalog(env).load_table("parity.bucketed"))


def test_ir_table_without_buckets_falls_back_to_shuffled_irs(env):
    from chronon_cli.engines.spark.backfill import IR_BUCKETS_PROPERTY, run_backfill

    middle = LAST - timedelta(days=3)
    run_backfill(env, gb("fb_whole"), START, LAST)
    run_backfill(env, gb("fb_daily"), START, middle)
    table = catalog(env).load_table("parity.fb_daily_daily_irs")
    with table.transaction() as txn:  # an IR table written before buckets existed
        txn.remove_properties(IR_BUCKETS_PROPERTY)
    day = middle + timedelta(days=1)
    while day <= LAST:
        assert run_backfill(env, gb("fb_daily"), day, day)["source_partitions_read"] == 1
        day += timedelta(days=1)
    assert normalized(env, "fb_daily") == normalized(env, "fb_whole")


def test_holes_in_ir_days_are_computed_and_the_stored_days_between_kept(env):
    from chronon_cli.engines.spark.backfill import run_backfill

    run_backfill(env, gb("holes_whole"), START, LAST)
    run_backfill(env, gb("holes"), START, LAST)
    ir_table = "parity.holes_daily_irs"
    d2, d3, d4 = LAST - timedelta(days=4), LAST - timedelta(days=3), LAST - timedelta(days=2)
    kept_before = sorted(map(repr, rows(env, ir_table, d3)))
    assert kept_before
    table = catalog(env).load_table(ir_table)
    table.delete(EqualTo("ds", d2.isoformat()))
    table.delete(EqualTo("ds", d4.isoformat()))
    result = run_backfill(env, gb("holes"), LAST, LAST, force=True)
    assert result["source_partitions_read"] == 3  # d2, d4 and the forced day itself
    assert sorted(map(repr, rows(env, ir_table, d3))) == kept_before
    assert rows(env, ir_table, d2) and rows(env, ir_table, d4)
    assert normalized(env, "holes") == normalized(env, "holes_whole")
