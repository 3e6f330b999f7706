"""Point-in-time values against the reference, and the sawtooth window edges."""
import numpy as np
import pyarrow as pa
import pytest

from .agg_testlib import (
    BASE_DAY, DAY, HOUR, O, SCHEMA, agg, approx_count_ok, close, compare_rows, group_by,
    random_events, table_rows, to_table,
)
from chronon_cli.agg import GroupByAggregator, reference
from chronon_cli.agg import temporal as temporal_mod


def temporal_group_by():
    return group_by(["u", "v"], [
        agg("x", O.SUM, ["1h", "12h", "1d", "13d", None]),
        agg("x", O.COUNT, ["2h", None]),
        agg("x", O.AVERAGE, ["3d"]),
        agg("x", O.VARIANCE, ["1d"]),
        agg("x", O.SKEW, [None]),
        agg("x", O.MIN, ["6h"]),
        agg("x", O.LAST, ["1d", None]),
        agg("x", O.FIRST, ["12d"]),
        agg("x", O.LAST_K, ["2d"], k=2),
        agg("x", O.APPROX_PERCENTILE, [None], k=300, percentiles="[0.25, 0.75]"),
        agg("x", O.APPROX_UNIQUE_COUNT, ["2d"]),
        agg("i", O.SUM, ["5h"]),
        agg("i", O.TOP_K, [None], k=3),
        agg("s", O.MAX, ["1d"]),
        agg("s", O.HISTOGRAM, ["2d"]),
        agg("s", O.FIRST_K, [None], k=2),
        agg("s", O.BOUNDED_UNIQUE_COUNT, ["1d"], k=2),
        agg("s", O.APPROX_HISTOGRAM_K, [None], k=8),
        agg("b", O.LAST, [None]),
        agg("l", O.SUM, ["1d"]),
        agg("l", O.UNIQUE_COUNT, [None]),
        agg("m", O.SUM, ["2d"]),
        agg("m", O.LAST, [None]),
        agg("x", O.SUM, ["1d"], buckets=["c"]),
        agg("s", O.LAST_K, [None], k=2, buckets=["c"]),
        agg("x", O.BOTTOM_K, ["3d"], k=2, buckets=["c"]),
    ])


def random_queries(rng, events, n):
    keys = [(e["u"], e["v"]) for e in events]
    out = []
    for _ in range(n):
        u, v = keys[int(rng.integers(0, len(keys)))]
        if rng.random() < 0.1:
            u, v = "unknown", 0
        r = rng.random()
        base = events[int(rng.integers(0, len(events)))]["ts"]
        if r < 0.3:
            q = base                       # exactly at an event: that event is excluded
        elif r < 0.4:
            q = base + 1
        else:
            q = (BASE_DAY + int(rng.integers(-1, 13))) * DAY + int(rng.integers(0, DAY))
        out.append({"u": u, "v": v, "ts": int(q)})
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_temporal_matches_reference(seed):
    rng = np.random.default_rng(seed)
    events = random_events(rng, 250)
    queries = random_queries(rng, events, 120)
    gb = temporal_group_by()
    a = GroupByAggregator(gb, SCHEMA)
    qt = pa.Table.from_pylist(queries, schema=pa.schema([("u", pa.string()), ("v", pa.int64()), ("ts", pa.int64())]))
    actual = a.temporal(to_table(events), qt)
    assert actual.num_rows == len(queries)
    actual_rows = table_rows(actual)
    assert [(r["u"], r["v"], r["ts"]) for r in actual_rows] == [(q["u"], q["v"], q["ts"]) for q in queries]
    expected = reference.temporal(gb, events, queries)
    tol = {n: (lambda x, y: close(x, y, 1e-6, 1e-6)) for n in a.feature_names if "skew" in n}
    tol.update({n: approx_count_ok for n in a.feature_names if "approx_unique" in n})
    # queries may repeat: compare positionally
    for i, (got, exp) in enumerate(zip(actual_rows, expected)):
        compare_rows([dict(got, _i=i)], [dict(exp, _i=i)], ["u", "v", "ts"], "_i", tol)
    assert sum(v is not None for r in expected for v in r.values()) > 1000


def test_sawtooth_tail_hops_and_head_excludes_query_time():
    gb = group_by(["u"], [agg("i", O.SUM, ["1h", "12h", "12d"]), agg("i", O.COUNT)])
    a = GroupByAggregator(gb, SCHEMA)
    q = BASE_DAY * DAY + 15 * HOUR + 7 * 60_000 + 123   # 15:07:00.123
    five = 5 * 60_000
    events = [
        {"u": "k", "i": 1, "ts": q - HOUR - (q - HOUR) % five},       # tail start of 1h: in
        {"u": "k", "i": 2, "ts": q - HOUR - (q - HOUR) % five - 1},   # just before: out of 1h
        {"u": "k", "i": 4, "ts": q - 12 * HOUR - (q - 12 * HOUR) % HOUR},  # in 12h (hour hop)
        {"u": "k", "i": 8, "ts": (BASE_DAY - 12) * DAY},              # 12d tail start (day hop): in
        {"u": "k", "i": 16, "ts": (BASE_DAY - 12) * DAY - 1},         # out of 12d
        {"u": "k", "i": 32, "ts": q},                                 # at q: excluded everywhere
    ]
    for e in events:
        e["ds"] = None
    table = to_table(events)
    out = table_rows(a.temporal(table, pa.table({"u": ["k"], "ts": [q]})))
    assert out == [{"u": "k", "ts": q, "i_sum_1h": 1, "i_sum_12h": 1 + 2 + 4, "i_sum_12d": 1 + 2 + 4 + 8,
                    "i_count": 5}]
    assert out == reference.temporal(gb, events, [{"u": "k", "ts": q}])


def test_temporal_batches_queries(monkeypatch):
    rng = np.random.default_rng(3)
    events = random_events(rng, 150)
    queries = random_queries(rng, events, 40)
    gb = group_by(["u", "v"], [agg("x", O.SUM, [None]), agg("s", O.LAST_K, [None], k=2)])
    a = GroupByAggregator(gb, SCHEMA)
    qt = pa.Table.from_pylist(queries, schema=pa.schema([("u", pa.string()), ("v", pa.int64()), ("ts", pa.int64())]))
    whole = a.temporal(to_table(events), qt)
    monkeypatch.setattr(temporal_mod, "BATCH_ELEMENTS", 3)
    assert a.temporal(to_table(events), qt).equals(whole)


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from .agg_testlib import small_event_sets  # noqa: E402

_FUZZ_GB = temporal_group_by()
_FUZZ_AGG = GroupByAggregator(_FUZZ_GB, SCHEMA)
_QSCHEMA = pa.schema([("u", pa.string()), ("v", pa.int64()), ("ts", pa.int64())])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=small_event_sets(), data=st.data())
def test_temporal_fuzz_small_inputs(events, data):
    times = [e["ts"] for e in events] + [BASE_DAY * DAY]
    queries = data.draw(st.lists(st.fixed_dictionaries({
        "u": st.sampled_from(["a", "b", None]), "v": st.sampled_from([0, 1, None]),
        "ts": st.sampled_from(times).flatmap(lambda t: st.sampled_from([t, t + 1, t - 1, t + 5 * 60_000, t + DAY])),
    }), min_size=1, max_size=6))
    got = table_rows(_FUZZ_AGG.temporal(to_table(events), pa.Table.from_pylist(queries, schema=_QSCHEMA)))
    tol = {n: (lambda x, y: close(x, y, 1e-6, 1e-6)) for n in _FUZZ_AGG.feature_names if "skew" in n}
    tol.update({n: approx_count_ok for n in _FUZZ_AGG.feature_names if "approx_unique" in n})
    for i, (g, e) in enumerate(zip(got, reference.temporal(_FUZZ_GB, events, queries))):
        compare_rows([dict(g, _i=i)], [dict(e, _i=i)], ["u", "v", "ts"], "_i", tol)
