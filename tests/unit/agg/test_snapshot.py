"""Batch kernels (daily_irs + snapshot) against the naive reference evaluator."""
import datetime

import numpy as np
import pyarrow as pa
import pytest

from .agg_testlib import (
    BASE_DAY, O, SCHEMA, agg, all_ops_group_by, approx_count_ok, close, compare_rows, dates, group_by,
    random_events, small_event_sets, table_rows, to_table,
)
from chronon_cli.agg import GroupByAggregator, reference
from chronon_cli.agg import snapshot as snapshot_mod

MOMENT_TOL = {"rel": 1e-6, "abs_tol": 1e-6}


def tolerances(feature_names):
    tol = {}
    for name in feature_names:
        if "_skew" in name or "_kurtosis" in name:
            tol[name] = lambda a, e: close(a, e, **MOMENT_TOL)
        if "approx_unique_count" in name:
            tol[name] = approx_count_ok
    return tol


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_snapshot_matches_reference(seed):
    rng = np.random.default_rng(seed)
    events = random_events(rng, 300)
    gb = all_ops_group_by()
    a = GroupByAggregator(gb, SCHEMA)
    when = dates(0, 2, 3, 4, 6, 9, 12)
    actual = a.snapshot(a.daily_irs(to_table(events)), when)
    assert actual.schema == a.output_schema
    expected = reference.snapshot(gb, events, when)
    n = compare_rows(table_rows(actual), expected, ["u", "v"], "ds", tolerances(a.feature_names))
    assert n > 50


def test_snapshot_chunks_keys(monkeypatch):
    """Tiny dense-grid budget: many key chunks, same answer."""
    rng = np.random.default_rng(5)
    events = random_events(rng, 250, n_keys=15)
    gb = all_ops_group_by()
    a = GroupByAggregator(gb, SCHEMA)
    when = dates(1, 5, 8)
    irs = a.daily_irs(to_table(events))
    whole = a.snapshot(irs, when)
    monkeypatch.setattr(snapshot_mod, "CELL_BUDGET", 8)
    chunked = a.snapshot(irs, when)
    assert chunked.num_rows == whole.num_rows > 0
    expected = reference.snapshot(gb, events, when)
    compare_rows(table_rows(chunked), expected, ["u", "v"], "ds", tolerances(a.feature_names))


def test_snapshot_window_boundaries_exact():
    """An event at ds + 1 day - W is in, one millisecond earlier is out; end of day is in."""
    gb = group_by(["u"], [agg("x", O.SUM, ["1d", "2d"]), agg("x", O.COUNT, [None])])
    a = GroupByAggregator(gb, SCHEMA)
    d = BASE_DAY
    DAYMS = 86_400_000
    events = [
        {"u": "k", "x": 1.0, "ts": d * DAYMS},            # start of day d
        {"u": "k", "x": 10.0, "ts": d * DAYMS - 1},       # last ms of day d-1
        {"u": "k", "x": 100.0, "ts": (d + 1) * DAYMS - 1},  # last ms of day d
        {"u": "k", "x": 1000.0, "ts": (d + 1) * DAYMS},   # next day: never in the snapshot of d
    ]
    for e in events:
        e["ds"] = datetime.date(1970, 1, 1) + datetime.timedelta(days=e["ts"] // DAYMS)
    rows = table_rows(a.snapshot(a.daily_irs(to_table(events)), dates(0)))
    assert rows == [{"u": "k", "ds": dates(0)[0], "x_sum_1d": 101.0, "x_sum_2d": 111.0, "x_count": 3}]
    assert rows == reference.snapshot(gb, events, dates(0))


def test_snapshot_empty_window_gives_null_and_no_row():
    gb = group_by(["u"], [agg("x", O.COUNT, ["1d"]), agg("x", O.SUM, ["2d"])])
    a = GroupByAggregator(gb, SCHEMA)
    DAYMS = 86_400_000
    events = [{"u": "k", "x": 2.0, "ts": BASE_DAY * DAYMS + 5, "ds": dates(0)[0]},
              {"u": "j", "x": None, "ts": BASE_DAY * DAYMS + 5, "ds": dates(0)[0]}]
    rows = table_rows(a.snapshot(a.daily_irs(to_table(events)), dates(0, 1, 2)))
    # day 1: 1d window empty -> count null (not 0), 2d window still has the event; day 2: no row;
    # key j has only null inputs -> no row at all
    assert rows == [
        {"u": "k", "ds": dates(0)[0], "x_count_1d": 1, "x_sum_2d": 2.0},
        {"u": "k", "ds": dates(1)[0], "x_count_1d": None, "x_sum_2d": 2.0},
    ]


def test_snapshot_ignores_days_after_last_date_and_before_windows():
    gb = group_by(["u"], [agg("i", O.SUM, ["2d"])])
    a = GroupByAggregator(gb, SCHEMA)
    DAYMS = 86_400_000
    events = [{"u": "k", "i": 10 ** (o + 1), "ts": (BASE_DAY + o) * DAYMS, "ds": dates(o)[0]} for o in range(6)]
    rows = table_rows(a.snapshot(a.daily_irs(to_table(events)), dates(3)))
    assert rows == [{"u": "k", "ds": dates(3)[0], "i_sum_2d": 10 ** 3 + 10 ** 4}]


def test_hour_windows_rejected_for_snapshot():
    gb = group_by(["u"], [agg("x", O.SUM, ["12h"])])
    a = GroupByAggregator(gb, SCHEMA)
    with pytest.raises(ValueError, match="hour window"):
        a.snapshot(a.daily_irs(to_table([])), dates(0))


def test_large_integer_sums_are_exact():
    gb = group_by(["u"], [agg("i", O.SUM, ["3d", None])])
    a = GroupByAggregator(gb, SCHEMA)
    big = 2 ** 60
    DAYMS = 86_400_000
    events = [{"u": "k", "i": big + o, "ts": (BASE_DAY + o) * DAYMS, "ds": dates(o)[0]} for o in range(3)]
    events.append({"u": "k", "i": -big, "ts": (BASE_DAY + 2) * DAYMS + 1, "ds": dates(2)[0]})
    rows = table_rows(a.snapshot(a.daily_irs(to_table(events)), dates(2)))
    assert rows[0]["i_sum_3d"] == 2 * big + 3


def test_infinities_finalize_to_null():
    gb = group_by(["u"], [agg("x", O.SUM, [None]), agg("x", O.MAX, [None]), agg("x", O.MIN, [None]),
                          agg("x", O.COUNT, [None])])
    a = GroupByAggregator(gb, SCHEMA)
    DAYMS = 86_400_000
    events = [{"u": "k", "x": float("inf"), "ts": BASE_DAY * DAYMS, "ds": dates(0)[0]},
              {"u": "k", "x": 1.0, "ts": BASE_DAY * DAYMS, "ds": dates(0)[0]},
              {"u": "k", "x": float("nan"), "ts": BASE_DAY * DAYMS, "ds": dates(0)[0]}]
    rows = table_rows(a.snapshot(a.daily_irs(to_table(events)), dates(0)))
    assert rows == [{"u": "k", "ds": dates(0)[0], "x_sum": None, "x_max": None, "x_min": 1.0, "x_count": 2}]
    assert rows == reference.snapshot(gb, events, dates(0))


def test_lifetime_only_groupby_without_ts():
    gb = group_by(["u"], [agg("i", O.SUM), agg("s", O.UNIQUE_COUNT)])
    schema = pa.schema([("u", pa.string()), ("i", pa.int64()), ("s", pa.string())])
    a = GroupByAggregator(gb, schema)
    assert not a.needs_ts and a.max_window_days is None
    events = pa.table({"u": ["a", "a", "b"], "i": [1, 2, 3], "s": ["x", "y", "x"],
                       "ds": pa.array(dates(0, 1, 1)).cast(pa.date32())})
    rows = table_rows(a.snapshot(a.daily_irs(events), dates(0, 1)))
    assert sorted(rows, key=lambda r: (r["u"], r["ds"])) == [
        {"u": "a", "ds": dates(0)[0], "i_sum": 1, "s_unique_count": 1},
        {"u": "a", "ds": dates(1)[0], "i_sum": 3, "s_unique_count": 2},
        {"u": "b", "ds": dates(1)[0], "i_sum": 3, "s_unique_count": 1},
    ]


def test_narrow_input_types_are_kept():
    """MIN/MAX/LAST/TOP_K/... keep the input's Arrow type; SUM widens (int64 / double)."""
    schema = pa.schema([("u", pa.int32()), ("a", pa.int16()), ("f", pa.float32()), ("w", pa.large_string()),
                        ("l", pa.list_(pa.int8())), ("c", pa.int32()), ("ts", pa.int64()), ("ds", pa.date32())])
    gb = group_by(["u"], [
        agg("a", O.MIN, ["2d"]), agg("a", O.SUM, [None]), agg("f", O.MAX, [None]), agg("f", O.SUM, ["1d"]),
        agg("f", O.LAST, ["2d"]), agg("a", O.TOP_K, [None], k=2), agg("w", O.LAST_K, [None], k=2),
        agg("l", O.UNIQUE_COUNT, [None]), agg("l", O.BOTTOM_K, ["2d"], k=2), agg("f", O.MAX, [None], buckets=["c"]),
        agg("a", O.FIRST_K, [None], k=2),
    ])
    a = GroupByAggregator(gb, schema)
    types = {f.name: f.type for f in a.output_schema}
    assert types["u"] == pa.int32()
    assert types["a_min_2d"] == pa.int16() and types["a_sum"] == pa.int64()
    assert types["f_max"] == pa.float32() and types["f_sum_1d"] == pa.float64() and types["f_last_2d"] == pa.float32()
    assert types["a_top2"] == pa.list_(pa.int16()) and types["w_last2"] == pa.list_(pa.string())
    assert types["l_bottom2_2d"] == pa.list_(pa.int8()) and types["f_max_by_c"] == pa.map_(pa.string(), pa.float32())
    rng = np.random.default_rng(8)
    DAYMS = 86_400_000
    events = []
    for _ in range(200):
        ts = (BASE_DAY + int(rng.integers(0, 4))) * DAYMS + int(rng.integers(0, 24)) * 3_600_000
        events.append({"u": int(rng.integers(0, 5)), "a": int(rng.integers(-300, 300)),
                       "f": float(np.float32(rng.normal())), "w": str(rng.choice(["x", "y", "z"])),
                       "l": [int(v) for v in rng.integers(-100, 100, int(rng.integers(0, 3)))],
                       "c": int(rng.integers(0, 3)), "ts": ts,
                       "ds": datetime.date(1970, 1, 1) + datetime.timedelta(days=ts // DAYMS)})
    table = pa.Table.from_pylist(events, schema=schema)
    irs = a.daily_irs(table)
    assert irs.schema == a.ir_schema
    when = dates(1, 3)
    out = a.snapshot(irs, when)
    assert out.schema == a.output_schema
    compare_rows(table_rows(out), reference.snapshot(gb, events, when), ["u"], "ds")
    q = pa.table({"u": pa.array([0, 1, 4], pa.int32()), "ts": [(BASE_DAY + 2) * DAYMS, (BASE_DAY + 3) * DAYMS, 0]})
    tout = a.temporal(table, q)
    queries = q.to_pylist()
    got = table_rows(tout)
    for i, (g, e) in enumerate(zip(got, reference.temporal(gb, events, queries))):
        compare_rows([dict(g, _i=i)], [dict(e, _i=i)], ["u", "ts"], "_i")


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_FUZZ_AGG = GroupByAggregator(all_ops_group_by(), SCHEMA)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=small_event_sets(), offsets=st.lists(st.integers(-1, 7), min_size=1, max_size=3))
def test_snapshot_fuzz_small_inputs(events, offsets):
    when = dates(*offsets)
    actual = _FUZZ_AGG.snapshot(_FUZZ_AGG.daily_irs(to_table(events)), when)
    expected = reference.snapshot(_FUZZ_AGG.group_by, events, when)
    compare_rows(table_rows(actual), expected, ["u", "v"], "ds", tolerances(_FUZZ_AGG.feature_names))
