"""GroupByAggregator: names, schemas, input columns, validation; import hygiene."""
import subprocess
import sys

import pyarrow as pa
import pytest

from .agg_testlib import O, SCHEMA, agg, group_by
from chronon_cli.agg import GroupByAggregator


def test_names_and_schemas():
    gb = group_by(["u"], [
        agg("x", O.SUM, ["7d", None]),
        agg("x", O.AVERAGE, ["30d"]),
        agg("x", O.LAST_K, ["1d"], k=10),
        agg("i", O.TOP_K, None, k=5),
        agg("x", O.SUM, ["12h"], buckets=["c"]),
        agg("m", O.AVERAGE),
        agg("x", O.APPROX_PERCENTILE, None, k=64),
        agg("s", O.APPROX_UNIQUE_COUNT, ["2d"], k=10),
        agg("l", O.COUNT, ["1d"]),
    ])
    a = GroupByAggregator(gb, SCHEMA)
    assert a.feature_names == [
        "x_sum_7d", "x_sum", "x_average_30d", "x_last10_1d", "i_top5", "x_sum_12h_by_c", "m_average",
        "x_approx_percentile", "s_approx_unique_count_2d", "l_count_1d",
    ]
    assert a.key_columns == ["u"]
    assert a.input_columns == ["x", "i", "c", "m", "s", "l"]
    assert a.needs_ts
    assert a.max_window_days is None
    assert a.ir_columns == [
        "x_sum", "x_average", "x_last10", "i_top5", "x_sum_by_c", "m_average", "x_approx_percentile_k64",
        "s_approx_unique_count_k10", "l_count",
    ]
    assert a.output_schema.names[:2] == ["u", "ds"] and a.output_schema.field("ds").type == pa.date32()
    assert a.output_schema.field("x_sum_12h_by_c").type == pa.map_(pa.string(), pa.float64())
    assert a.output_schema.field("m_average").type == pa.map_(pa.string(), pa.float64())
    assert a.output_schema.field("x_last10_1d").type == pa.list_(pa.float64())
    assert a.output_schema.field("i_top5").type == pa.list_(pa.int64())
    assert a.ir_schema.names == ["u", "ds"] + a.ir_columns
    assert all(n.isidentifier() for n in a.ir_schema.names)


def test_sum_types_follow_input_and_windows_share_irs():
    gb = group_by(["u"], [agg("i", O.SUM, ["1d", "3d"]), agg("x", O.SUM, ["1d"]), agg("b", O.SUM),
                          agg("s", O.MIN), agg("i", O.MAX)])
    a = GroupByAggregator(gb, SCHEMA)
    assert [f.type for f in a.ir_schema][2:] == [pa.int64(), pa.float64(), pa.int64(), pa.string(), pa.int64()]
    assert a.max_window_days is None  # b_sum is lifetime
    gb = group_by(["u"], [agg("i", O.SUM, ["1d", "3d"]), agg("x", O.COUNT, ["36h"])])
    a = GroupByAggregator(gb, SCHEMA)
    assert a.max_window_days == 3 and len(a.ir_columns) == 2


def test_validation_errors():
    cases = [
        (group_by(["nope"], [agg("x", O.SUM)]), "key column"),
        (group_by(["u"], [agg("nope", O.SUM)]), "not in the input schema"),
        (group_by(["u"], [agg("s", O.SUM)]), "does not accept"),
        (group_by(["u"], [agg("x", O.SUM), agg("x", O.SUM)]), "duplicate feature"),
        (group_by(["u"], [agg("m", O.SUM, buckets=["c"])]), "cannot also be bucketed"),
        (group_by(["u"], [agg("x", O.SUM, buckets=["x"])]), "bucket column"),
        (group_by(["u"], [agg("x", O.LAST_K)]), "missing argument"),
        (group_by([], [agg("x", O.SUM)]), "no key columns"),
        (group_by(["u"], []), "no aggregations"),
    ]
    for gb, message in cases:
        with pytest.raises(ValueError, match=message):
            GroupByAggregator(gb, SCHEMA)
    nested = pa.schema([("u", pa.string()), ("z", pa.list_(pa.list_(pa.int64())))])
    with pytest.raises(ValueError, match="unsupported type"):
        GroupByAggregator(group_by(["u"], [agg("z", O.COUNT)]), nested)


def test_row_level_api_and_finalize_by_window():
    gb = group_by(["u"], [agg("i", O.SUM, ["1d", None]), agg("s", O.LAST, ["1d"])])
    a = GroupByAggregator(gb, SCHEMA)
    day, life = a.empty_row(), a.empty_row()
    a.update_row(day, {"i": 2, "s": "b", "ts": 10})
    a.update_row(life, {"i": 5, "s": "a", "ts": 1})
    life = a.merge_rows(life, a.clone_row(day))
    assert a.finalize({"1d": day, None: life}) == {"i_sum_1d": 2, "i_sum": 7, "s_last_1d": "b"}
    assert a.finalize({"1d": day}) == {"i_sum_1d": 2, "i_sum": None, "s_last_1d": "b"}
    assert not a.deletable


def test_import_loads_no_engines():
    code = (
        "import sys, chronon_cli.agg\n"
        "from chronon_cli.agg import GroupByAggregator, windows, reference, encoding\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pyspark', 'pyflink', 'pyiceberg', 'boto3', 'botocore')"
        " or m.startswith('chronon_cli.engines') or m.startswith('chronon_cli.storage')]\n"
        "print(','.join(bad))\n"
        "assert 'datasketches' in sys.modules or '_datasketches' in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_library_never_prints(capsys):
    gb = group_by(["u"], [agg("i", O.SUM, ["1d"])])
    a = GroupByAggregator(gb, SCHEMA)
    events = pa.table({"u": ["a"], "i": [1], "ts": [0], "ds": pa.array([0], pa.int32()).cast(pa.date32())})
    a.snapshot(a.daily_irs(events), ["1970-01-01"])
    a.temporal(events, pa.table({"u": ["a"], "ts": [5]}))
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_finalize_table_matches_row_finalize():
    import numpy as np
    from .agg_testlib import close, random_events, table_rows, to_table
    from .agg_testlib import all_ops_group_by

    a = GroupByAggregator(all_ops_group_by(), SCHEMA)
    irs = a.daily_irs(to_table(random_events(np.random.default_rng(9), 300)))
    windows = {f.window_key for f in a.features}
    # the same daily IR table for every window: compare with the row-level finalize
    table = a.finalize_table({w: irs for w in windows})
    assert table.schema.names == a.feature_names
    got = table_rows(table)
    for row, stored in zip(got, a.ir_table_to_rows(irs)):
        want = a.finalize(stored["irs"])
        for name, value in want.items():
            if "approx_unique" in name:
                assert (row[name] is None) == (value is None)
            else:
                assert close(row[name], value, 1e-6, 1e-6), (name, row[name], value)
    partial = a.finalize_table({None: irs})
    assert partial.column("x_sum_1d").null_count == irs.num_rows


def test_aggregating_ts_itself():
    gb = group_by(["u"], [agg("ts", O.MAX), agg("ts", O.COUNT)])
    a = GroupByAggregator(gb, SCHEMA)
    assert a.input_columns == [] and a.needs_ts
    events = pa.table({"u": ["a", "a"], "ts": [5, 9], "ds": pa.array([0, 0], pa.int32()).cast(pa.date32())})
    out = a.snapshot(a.daily_irs(events), ["1970-01-01"]).to_pylist()
    assert out[0]["ts_max"] == 9 and out[0]["ts_count"] == 2
