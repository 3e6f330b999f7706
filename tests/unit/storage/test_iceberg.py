"""storage.iceberg: catalog from the profile, ds partitions, atomic replacement of a ds range.

Driver-side writes (``replace_partitions``) with pyarrow tables; reads with plain pyiceberg.
"""
import datetime as dt

import pyarrow as pa
import pytest

from chronon_cli.errors import ConfigError, JobError
from chronon_cli.storage import catalog
from chronon_cli.storage.iceberg import load_table, partitions, replace_partitions, table_exists

D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)


def rows(*pairs):
    return pa.table({"k": [p[0] for p in pairs], "v": [float(p[1]) for p in pairs],
                     "ds": pa.array([p[2] for p in pairs], pa.date32())})


def read(cat, name):
    return sorted((r["k"], r["v"], r["ds"]) for r in load_table(cat, name).scan().to_arrow().to_pylist())


def test_catalog_creates_home_dirs(local_settings, chronon_home):
    cat = catalog(local_settings)
    assert (chronon_home / "catalog.db").exists() and (chronon_home / "warehouse").is_dir()
    assert catalog(local_settings) is cat  # cached


def test_rest_catalog_needs_uri(local_settings):
    local_settings.catalog = {"type": "rest"}
    with pytest.raises(ConfigError, match="uri"):
        catalog(local_settings)


def test_replace_partitions_creates_then_replaces_only_the_range(local_settings):
    cat = catalog(local_settings)
    sid1 = replace_partitions(cat, "ns.t", rows(("a", 1, D1), ("b", 2, D2), ("c", 3, D3)), D1, D3,
                              {"provider": "iceberg", "format-version": "2", "write.format.default": "parquet"})
    table = load_table(cat, "ns.t")
    assert table.metadata.format_version == 2
    assert table.properties.get("write.format.default") == "parquet" and "provider" not in table.properties
    assert partitions(table) == {D1, D2, D3}
    assert [f.name for f in table.spec().fields] == ["ds"]
    sid2 = replace_partitions(cat, "ns.t", rows(("x", 9, D2)), D2, D2)
    assert read(cat, "ns.t") == [("a", 1.0, D1), ("c", 3.0, D3), ("x", 9.0, D2)]
    table = load_table(cat, "ns.t")
    assert [s.snapshot_id for s in table.snapshots()] == [sid1, sid2]
    assert table.current_snapshot().summary.operation.value == "overwrite"
    # the previous snapshot stays readable
    old = table.scan(snapshot_id=sid1).to_arrow().num_rows
    assert old == 3


def test_empty_range_replacement_removes_the_partition(local_settings):
    cat = catalog(local_settings)
    replace_partitions(cat, "ns.t", rows(("a", 1, D1), ("b", 2, D2)), D1, D2)
    replace_partitions(cat, "ns.t", rows(), D2, D2)
    assert partitions(load_table(cat, "ns.t")) == {D1}


def test_rows_outside_the_range_fail_and_leave_no_table(local_settings):
    cat = catalog(local_settings)
    with pytest.raises(JobError, match="outside the range"):
        replace_partitions(cat, "ns.t", rows(("a", 1, D1), ("b", 2, D3)), D1, D2)
    assert not table_exists(cat, "ns.t")
    replace_partitions(cat, "ns.t", rows(("a", 1, D1)), D1, D1)
    with pytest.raises(JobError, match="outside the range"):
        replace_partitions(cat, "ns.t", rows(("b", 2, D3)), D1, D2)
    assert read(cat, "ns.t") == [("a", 1.0, D1)]
    assert len(load_table(cat, "ns.t").snapshots()) == 1


def test_schema_evolution_adds_columns_in_the_same_commit(local_settings):
    cat = catalog(local_settings)
    replace_partitions(cat, "ns.t", rows(("a", 1, D1)), D1, D1)
    wider = rows(("b", 2, D2)).append_column("extra", pa.array(["e"]))
    replace_partitions(cat, "ns.t", wider, D2, D2)
    table = load_table(cat, "ns.t")
    assert table.schema().column_names == ["k", "v", "ds", "extra"]
    assert len(table.snapshots()) == 2
    got = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["k"])
    assert got[0]["extra"] is None and got[1]["extra"] == "e"


def test_partitions_reads_string_ds_tables_made_elsewhere(local_settings):
    from pyiceberg.transforms import IdentityTransform

    cat = catalog(local_settings)
    cat.create_namespace("ext")
    data = pa.table({"k": ["a", "b"], "ds": ["2024-01-01", "2024-01-03"]})
    t = cat.create_table("ext.s", schema=data.schema)
    with t.update_spec() as spec:
        spec.add_field("ds", IdentityTransform(), "ds")
    t.append(data)
    assert partitions(cat.load_table("ext.s")) == {D1, D3}
    # unpartitioned tables: ds read from the column
    u = cat.create_table("ext.u", schema=data.schema)
    u.append(data)
    assert partitions(cat.load_table("ext.u")) == {D1, D3}
    # a range: only its days, partitioned or not
    for name in ("ext.s", "ext.u"):
        assert partitions(cat.load_table(name), start=D2) == {D3}
        assert partitions(cat.load_table(name), end=D2) == {D1}
        assert partitions(cat.load_table(name), start=D1, end=D3) == {D1, D3}
        assert partitions(cat.load_table(name), start=D2, end=D2) == set()


def test_partitions_of_a_range_read_only_that_ranges_manifests(local_settings):
    cat = catalog(local_settings)
    for day in (D1, D2, D3):  # one commit (one manifest) per day
        replace_partitions(cat, "ns.r", rows(("a", 1, day)), day, day)
    table = load_table(cat, "ns.r")
    assert partitions(table, start=D2, end=D3) == {D2, D3}
    opened = []
    io = table.io
    original = io.new_input

    def counting(location):
        if location.endswith(".avro") and "snap-" not in location.rsplit("/", 1)[-1]:
            opened.append(location)
        return original(location)

    io.new_input = counting
    try:
        assert partitions(table, start=D3, end=D3) == {D3}
    finally:
        io.new_input = original
    assert len(opened) == 1, opened  # the other days' manifests are pruned by their partition summaries


def test_missing_table_is_a_job_error(local_settings):
    with pytest.raises(JobError, match="table ns.nope does not exist"):
        load_table(catalog(local_settings), "ns.nope")
    with pytest.raises(ConfigError):
        load_table(catalog(local_settings), "no_namespace")


def bucketed(*triples):
    return pa.table({"k": [t[0] for t in triples], "bucket": pa.array([t[1] for t in triples], pa.int32()),
                     "ds": pa.array([t[2] for t in triples], pa.date32())})


def test_files_by_value_groups_single_value_files_of_the_wanted_days(local_settings):
    from chronon_cli.storage.iceberg import files_by_value

    cat = catalog(local_settings)
    replace_partitions(cat, "ns.b", bucketed(("a", 1, D1)), D1, D1)
    replace_partitions(cat, "ns.b", bucketed(("b", 2, D2), ("c", 2, D2)), D2, D2)
    replace_partitions(cat, "ns.b", bucketed(("d", 1, D3)), D3, D3)
    table = load_table(cat, "ns.b")
    grouped = files_by_value(table, "bucket", [D1, D2])
    assert sorted(grouped) == [1, 2] and len(grouped[1]) == 1 and len(grouped[2]) == 1
    assert "ds=2024-01-01" in grouped[1][0] and "ds=2024-01-02" in grouped[2][0]
    assert files_by_value(table, "bucket", [D3]) == {1: [t.file.file_path for t in table.scan().plan_files()
                                                         if "ds=2024-01-03" in t.file.file_path]}
    assert files_by_value(table, "bucket", []) == {}


def test_files_by_value_lists_each_groups_files_in_day_order(local_settings):
    from chronon_cli.storage.iceberg import files_by_value

    cat = catalog(local_settings)
    for day in (D3, D1, D2):  # committed out of order: manifests list the newest first
        replace_partitions(cat, "ns.o", bucketed(("a", 1, day)), day, day)
    grouped = files_by_value(load_table(cat, "ns.o"), "bucket", [D1, D2, D3])
    assert [path.split("/ds=")[1][:10] for path in grouped[1]] == ["2024-01-01", "2024-01-02", "2024-01-03"]


def test_files_by_value_is_none_for_mixed_files_or_a_missing_column(local_settings):
    from chronon_cli.storage.iceberg import files_by_value

    cat = catalog(local_settings)
    replace_partitions(cat, "ns.m", bucketed(("a", 1, D1), ("b", 2, D1)), D1, D1)
    table = load_table(cat, "ns.m")
    assert files_by_value(table, "bucket", [D1]) is None
    assert files_by_value(table, "nope", [D1]) is None
    assert files_by_value(table, "k", [D1]) is None  # not an integer column


def test_write_tasks_import_no_pyiceberg_and_the_driver_commits_their_footers(local_settings, tmp_path):
    """What a Spark write task runs (``write_ds_files`` with a pickled plan), in a fresh interpreter:
    it must not import pyiceberg (a 0.5 s import for every new Python worker); the driver then
    commits the files with statistics derived from their footers."""
    import pickle
    import subprocess
    import sys
    import uuid

    from chronon_cli.storage import warehouse_store_for_catalog
    from chronon_cli.storage.iceberg import PartitionWrite, write_plan

    cat = catalog(local_settings)
    data = pa.table({"k": ["a", "b", "c"], "v": [1.0, 2.0, None], "ds": pa.array([D1, D2, D2], pa.date32())})
    write = PartitionWrite(cat, "ns.light", data.schema, D1, D2)
    job = tmp_path / "job.pickle"
    job.write_bytes(pickle.dumps((dict(warehouse_store_for_catalog(cat).spec()), write_plan(write, uuid.uuid4().hex),
                                  data.to_batches())))
    script = (
        "import pickle, sys\n"
        "from chronon_cli.storage import store_from_spec\n"
        "from chronon_cli.storage.parquet_files import write_ds_files\n"
        f"spec, plan, batches = pickle.load(open({str(job)!r}, 'rb'))\n"
        "files = write_ds_files(store_from_spec(spec), plan, iter(batches))\n"
        "assert not [m for m in sys.modules if m.startswith('pyiceberg')], 'pyiceberg imported'\n"
        f"pickle.dump(files, open({str(tmp_path / 'files.pickle')!r}, 'wb'))\n")
    from pathlib import Path

    subprocess.run([sys.executable, "-c", script], check=True, cwd=str(Path(__file__).resolve().parents[3]))
    files = pickle.loads((tmp_path / "files.pickle").read_bytes())
    assert all(f.stats is None and f.footer is not None for f in files)
    write.commit(files)
    table = load_table(cat, "ns.light")
    assert read(cat, "ns.light") == sorted((r["k"], r["v"], r["ds"]) for r in data.to_pylist())
    by_day = {t.file.partition[0]: t.file for t in table.scan().plan_files()}
    assert sorted(f.record_count for f in by_day.values()) == [1, 2]
    value_id = table.schema().find_field("v").field_id
    assert all(value_id in f.null_value_counts for f in by_day.values())
    assert sorted(f.null_value_counts[value_id] for f in by_day.values()) == [0, 1]
