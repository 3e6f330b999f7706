"""storage.parquet_files: splitting batches into one file per ds, and the writer settings of a plan.

Files are written with the real pyarrow writer into the local warehouse and read back with
pyarrow.parquet.
"""
import datetime as dt
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chronon_cli.errors import ConfigError
from chronon_cli.storage import catalog, warehouse_store_for_catalog
from chronon_cli.storage.iceberg import DICTIONARY_COLUMNS, PartitionWrite, table_exists, write_plan
from chronon_cli.storage.parquet_files import write_ds_files

START = dt.date(2024, 3, 1)


def random_rows(rng, n, n_days):
    days = rng.integers(0, n_days, n)
    return pa.table({
        "k": pa.array([f"k{i}" for i in rng.integers(0, 50, n)]),
        "v": pa.array(rng.normal(size=n), mask=rng.random(n) < 0.1),
        "l": pa.array([[float(x) for x in range(int(j))] if j else None for j in rng.integers(0, 4, n)],
                      pa.list_(pa.float64())),
        "ds": pa.array([START + dt.timedelta(days=int(d)) for d in days], pa.date32()),
    })


def write_files(cat, name, table, batches, properties=None):
    write = PartitionWrite(cat, name, table.schema, START, START + dt.timedelta(days=9), properties)
    files = write_ds_files(warehouse_store_for_catalog(cat), write_plan(write, uuid.uuid4().hex), iter(batches))
    return write, files


def local_path(uri):
    return uri[len("file://"):] if uri.startswith("file://") else uri


def rows_by_day(files):
    out = {}
    for f in files:
        out.setdefault(f.ds, []).extend(pq.read_table(local_path(f.path)).to_pylist())
    return out


def expected_by_day(table):
    out = {}
    for row in table.to_pylist():
        out.setdefault(row["ds"], []).append(row)
    return out


@pytest.mark.parametrize("layout", ["interleaved", "day_runs", "one_day_each"])
def test_each_day_file_holds_that_days_rows_in_arrival_order(layout, local_settings):
    """Batches whose days are interleaved (sorted, then sliced), come in runs of one day (sliced
    without a sort, e.g. a day-major snapshot chunk by chunk) or hold one day each: every ds file
    has exactly its day's rows, in the order they arrived."""
    rng = np.random.default_rng(7)
    table = random_rows(rng, 3000, 10)
    if layout == "day_runs":   # three "chunks", each ordered by day: a day appears once per chunk
        parts = [table.slice(i, 1000) for i in (0, 1000, 2000)]
        table = pa.concat_tables([p.sort_by([("ds", "ascending")]) for p in parts])
        batches = table.to_batches(max_chunksize=700)
    elif layout == "one_day_each":
        batches = [b for d in sorted(set(table["ds"].to_pylist()))
                   for b in table.filter(pa.compute.equal(table["ds"], pa.scalar(d, pa.date32()))).to_batches()]
        table = pa.Table.from_batches(batches)
    else:
        batches = table.to_batches(max_chunksize=700)
    _, files = write_files(catalog(local_settings), "ns.split", table, batches)
    assert len(files) == len({f.ds for f in files}) == 10
    assert rows_by_day(files) == expected_by_day(table)


def test_dictionary_columns_property_limits_dictionary_encoding(local_settings):
    cat = catalog(local_settings)
    table = random_rows(np.random.default_rng(1), 2000, 3)
    _, files = write_files(cat, "ns.dict", table, table.to_batches(), {DICTIONARY_COLUMNS: "k, ds"})
    _, default_files = write_files(cat, "ns.all_dict", table, table.to_batches())

    def dictionary_columns(f):
        meta = pq.ParquetFile(local_path(f.path)).metadata
        chunks = [meta.row_group(0).column(i) for i in range(meta.num_columns)]
        return {c.path_in_schema for c in chunks if any("DICTIONARY" in e for e in c.encodings)}

    assert {frozenset(dictionary_columns(f)) for f in files} == {frozenset({"k", "ds"})}
    assert all({"k", "v", "ds"} <= dictionary_columns(f) for f in default_files)
    assert rows_by_day(files) == expected_by_day(table)


def test_dictionary_columns_naming_an_unknown_column_fail_before_writing(local_settings):
    cat = catalog(local_settings)
    table = random_rows(np.random.default_rng(2), 100, 2)
    with pytest.raises(ConfigError, match=r"ns\.bad.*chronon\.parquet\.dictionary-columns.*kk"):
        write_files(cat, "ns.bad", table, table.to_batches(), {DICTIONARY_COLUMNS: "kk,ds"})
    assert not table_exists(cat, "ns.bad")


def dictionary_encoded(f):
    meta = pq.ParquetFile(local_path(f.path)).metadata
    chunks = [meta.row_group(0).column(i) for i in range(meta.num_columns)]
    return {c.path_in_schema for c in chunks if any("DICTIONARY" in e for e in c.encodings)}


def test_mostly_distinct_floating_columns_are_written_without_a_dictionary(local_settings):
    """Without the dictionary-columns property, a double column whose first rows are mostly distinct
    gets no dictionary; repeated doubles, strings, lists and structs keep theirs; the rows read back."""
    rng = np.random.default_rng(3)
    n = 4000
    table = pa.table({
        "k": pa.array([f"k{i}" for i in rng.integers(0, 50, n)]),
        "distinct": pa.array(rng.normal(size=n), mask=rng.random(n) < 0.1),
        "repeated": pa.array(rng.integers(0, 20, n).astype(np.float64)),
        "l": pa.array([[float(x)] * 3 for x in rng.integers(0, 5, n)], pa.list_(pa.float64())),
        "s": pa.array([{"p": float(x), "q": int(x)} for x in rng.integers(0, 5, n)]),
        "ds": pa.array([START] * n, pa.date32()),
    })
    _, files = write_files(catalog(local_settings), "ns.auto_dict", table, table.to_batches(max_chunksize=1000))
    assert [dictionary_encoded(f) for f in files] == [{"k", "repeated", "l.list.element", "s.p", "s.q", "ds"}]
    assert rows_by_day(files) == expected_by_day(table)


def test_few_rows_keep_the_dictionary_default(local_settings):
    rng = np.random.default_rng(4)
    table = pa.table({"distinct": pa.array(rng.normal(size=500)), "ds": pa.array([START] * 500, pa.date32())})
    _, files = write_files(catalog(local_settings), "ns.small_dict", table, table.to_batches())
    assert [dictionary_encoded(f) for f in files] == [{"distinct", "ds"}]


def test_listed_dictionary_columns_win_over_the_distinct_sample(local_settings):
    rng = np.random.default_rng(5)
    n = 4000
    table = pa.table({"distinct": pa.array(rng.normal(size=n)), "other": pa.array(rng.normal(size=n)),
                      "ds": pa.array([START] * n, pa.date32())})
    _, files = write_files(catalog(local_settings), "ns.listed_dict", table, table.to_batches(),
                           {DICTIONARY_COLUMNS: "distinct, ds"})
    assert [dictionary_encoded(f) for f in files] == [{"distinct", "ds"}]
