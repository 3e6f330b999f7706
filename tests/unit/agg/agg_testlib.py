"""Random events, GroupBy builders and result comparison for the agg tests."""
from __future__ import annotations

import datetime
import math
from typing import Dict, List, Optional, Sequence

import numpy as np
import pyarrow as pa
from hypothesis import strategies as st

from chronon_cli.spec import ttypes

O = ttypes.Operation
DAY = 86_400_000
HOUR = 3_600_000
EPOCH = datetime.date(1970, 1, 1)
BASE_DAY = 19700  # 2023-12-09


def win(spec: str) -> ttypes.Window:
    unit = ttypes.TimeUnit.DAYS if spec.endswith("d") else ttypes.TimeUnit.HOURS
    return ttypes.Window(length=int(spec[:-1]), timeUnit=unit)


def agg(col, op, windows=None, k=None, buckets=None, **args) -> ttypes.Aggregation:
    arg_map = {name: str(v) for name, v in args.items()}
    if k is not None:
        arg_map["k"] = str(k)
    return ttypes.Aggregation(
        inputColumn=col, operation=op, argMap=arg_map or None,
        windows=[win(w) if w else None for w in windows] if windows else None, buckets=buckets,
    )


def group_by(keys, aggregations) -> ttypes.GroupBy:
    return ttypes.GroupBy(keyColumns=list(keys), aggregations=list(aggregations))


SCHEMA = pa.schema([
    ("u", pa.string()),
    ("v", pa.int64()),
    ("x", pa.float64()),
    ("i", pa.int64()),
    ("s", pa.string()),
    ("b", pa.bool_()),
    ("l", pa.list_(pa.int64())),
    ("m", pa.map_(pa.string(), pa.float64())),
    ("c", pa.string()),
    ("ts", pa.int64()),
    ("ds", pa.date32()),
])

ALPHABET = ["p", "q", "r", "s", "t", "é", "Z"]


def random_events(rng: np.random.Generator, n: int, n_days: int = 10, n_keys: int = 6,
                  null_rate: float = 0.15, empty_days=(3, 4)) -> List[dict]:
    """Events over ``n_days`` days from BASE_DAY (skipping ``empty_days``), with nulls, NaN,
    lists, maps, ties on ts and events exactly on day boundaries."""
    days = [d for d in range(n_days) if d not in set(empty_days)]
    out = []
    for _ in range(n):
        day = BASE_DAY + int(rng.choice(days))
        r = rng.random()
        if r < 0.1:
            ts = day * DAY                      # exactly at the start of the day
        elif r < 0.2:
            ts = (day + 1) * DAY - 1            # last millisecond of the day
        else:
            ts = day * DAY + int(rng.integers(0, 24)) * HOUR  # coarse: many ties
        def maybe(v):
            return None if rng.random() < null_rate else v
        x = float(np.round(rng.normal(10, 5), 3))
        if rng.random() < 0.05:
            x = float("nan")
        lst = None if rng.random() < 0.1 else [
            None if rng.random() < 0.1 else int(rng.integers(-5, 20)) for _ in range(int(rng.integers(0, 4)))
        ]
        mp = None if rng.random() < 0.1 else [
            (str(rng.choice(["a", "b", "c"])), None if rng.random() < 0.1 else float(rng.integers(0, 50)))
            for _ in range(int(rng.integers(0, 3)))
        ]
        if mp is not None:  # map keys are unique
            mp = list({k: v for k, v in mp}.items())
        u = maybe(str(rng.choice([f"k{j}" for j in range(n_keys)])))
        v = maybe(int(rng.integers(0, 2)))
        out.append({
            "u": u, "v": v,
            "x": maybe(x),
            "i": maybe(int(rng.integers(-1000, 1000))),
            "s": maybe(str(rng.choice(ALPHABET))),
            "b": maybe(bool(rng.random() < 0.5)),
            "l": lst,
            "m": mp,
            "c": maybe(str(rng.choice(["cat1", "cat2", "cat3"]))),
            "ts": ts,
            "ds": EPOCH + datetime.timedelta(days=ts // DAY),
        })
    return out


def to_table(events: Sequence[dict], schema: pa.Schema = SCHEMA) -> pa.Table:
    return pa.Table.from_pylist(list(events), schema=schema)


def dates(*offsets) -> List[datetime.date]:
    return [EPOCH + datetime.timedelta(days=BASE_DAY + o) for o in offsets]


def normalize(value, typ: Optional[pa.DataType] = None):
    """Arrow's to_pylist form -> the reference's (maps as dicts)."""
    if value is None:
        return None
    if typ is not None and pa.types.is_map(typ):
        return {k: normalize(v, typ.item_type) for k, v in value}
    if typ is not None and pa.types.is_list(typ):
        return [normalize(v, typ.value_type) for v in value]
    return value


def close(a, b, rel=1e-9, abs_tol=1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rel, abs_tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, rel, abs_tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)
    return a == b


def rows_by_key(rows: Sequence[dict], key_cols: Sequence[str], time_col: str) -> Dict[tuple, dict]:
    out = {}
    for r in rows:
        k = tuple(r[c] for c in key_cols) + (r[time_col],)
        assert k not in out, f"duplicate row {k}"
        out[k] = r
    return out


def table_rows(table: pa.Table) -> List[dict]:
    types = {f.name: f.type for f in table.schema}
    return [{k: normalize(v, types[k]) for k, v in row.items()} for row in table.to_pylist()]


def compare_rows(actual: Sequence[dict], expected: Sequence[dict], key_cols, time_col, tolerances=None):
    """Assert same rows (by key and time) with close feature values; returns the number compared."""
    tolerances = tolerances or {}
    a = rows_by_key(actual, key_cols, time_col)
    e = rows_by_key(expected, key_cols, time_col)
    assert a.keys() == e.keys(), (
        f"row sets differ: missing {sorted(e.keys() - a.keys(), key=str)[:5]}, "
        f"extra {sorted(a.keys() - e.keys(), key=str)[:5]}"
    )
    for k, row in e.items():
        for name, value in row.items():
            check = tolerances.get(name)
            if check is not None:
                assert check(a[k][name], value), (k, name, a[k][name], value)
            else:
                assert close(a[k][name], value), (k, name, a[k][name], value)
    return len(e)


def approx_count_ok(actual, expected) -> bool:
    """CPC lgK 8: within 15% (about 4 standard errors) or 2."""
    if expected is None or actual is None:
        return actual is None and expected is None
    if isinstance(expected, dict):
        return actual is not None and actual.keys() == expected.keys() and all(
            approx_count_ok(actual[k], expected[k]) for k in expected)
    return abs(actual - expected) <= max(2, 0.15 * expected)


def all_ops_group_by():
    return group_by(["u", "v"], [
        agg("x", O.COUNT, ["1d", "3d", None]),
        agg("x", O.SUM, ["1d", "7d", None]),
        agg("x", O.AVERAGE, ["2d", None]),
        agg("x", O.VARIANCE, ["3d"]),
        agg("x", O.SKEW, [None]),
        agg("x", O.KURTOSIS, ["7d"]),
        agg("x", O.MIN, ["1d"]),
        agg("x", O.MAX, [None]),
        agg("x", O.FIRST, ["3d"]),
        agg("x", O.LAST, [None]),
        agg("x", O.FIRST_K, ["7d"], k=2),
        agg("x", O.LAST_K, [None], k=3),
        agg("x", O.TOP_K, ["3d"], k=2),
        agg("x", O.BOTTOM_K, [None], k=2),
        agg("x", O.UNIQUE_COUNT, ["7d"]),
        agg("x", O.APPROX_PERCENTILE, [None], k=400, percentiles="[0.1, 0.5, 0.9]"),
        agg("x", O.APPROX_UNIQUE_COUNT, ["3d"]),
        agg("i", O.SUM, ["2d"]),
        agg("i", O.MIN, [None]),
        agg("i", O.MAX, ["1d"]),
        agg("i", O.LAST, ["1d"]),
        agg("i", O.VARIANCE, [None]),
        agg("i", O.BOUNDED_UNIQUE_COUNT, [None], k=3),
        agg("i", O.HISTOGRAM, ["3d"]),
        agg("s", O.MIN, ["3d"]),
        agg("s", O.MAX, ["3d"]),
        agg("s", O.FIRST, [None]),
        agg("s", O.LAST, [None]),
        agg("s", O.HISTOGRAM, [None], k=2),
        agg("s", O.APPROX_HISTOGRAM_K, ["7d"], k=8),
        agg("s", O.UNIQUE_COUNT, [None]),
        agg("s", O.TOP_K, ["2d"], k=2),
        agg("s", O.LAST_K, ["3d"], k=2),
        agg("b", O.COUNT, [None]),
        agg("b", O.MAX, ["2d"]),
        agg("b", O.LAST, [None]),
        agg("b", O.SUM, ["3d"]),
        agg("b", O.HISTOGRAM, [None]),
        agg("l", O.SUM, ["3d"]),
        agg("l", O.COUNT, [None]),
        agg("l", O.LAST_K, ["2d"], k=2),
        agg("l", O.UNIQUE_COUNT, [None]),
        agg("l", O.BOTTOM_K, ["7d"], k=3),
        agg("l", O.AVERAGE, [None]),
        agg("m", O.SUM, ["2d"]),
        agg("m", O.AVERAGE, [None]),
        agg("m", O.LAST, ["3d"]),
        agg("m", O.MAX, [None]),
        agg("m", O.COUNT, ["1d"]),
        agg("m", O.UNIQUE_COUNT, [None]),
        agg("x", O.SUM, ["3d", None], buckets=["c"]),
        agg("x", O.AVERAGE, [None], buckets=["c"]),
        agg("x", O.LAST, ["2d"], buckets=["c"]),
        agg("x", O.MAX, [None], buckets=["c"]),
        agg("x", O.TOP_K, ["3d"], k=2, buckets=["c"]),
        agg("x", O.APPROX_PERCENTILE, [None], k=400, buckets=["c"], percentiles="[0.5]"),
        agg("s", O.HISTOGRAM, ["2d"], buckets=["c"]),
        agg("s", O.UNIQUE_COUNT, [None], buckets=["c"]),
        agg("l", O.COUNT, ["3d"], buckets=["c"]),
    ])


@st.composite
def small_event_sets(draw):
    n = draw(st.integers(0, 25))
    events = []
    for _ in range(n):
        day = BASE_DAY + draw(st.integers(0, 5))
        ts = day * DAY + draw(st.sampled_from([0, 1, 3_600_000, DAY - 1]))
        events.append({
            "u": draw(st.sampled_from(["a", "b", None])),
            "v": draw(st.sampled_from([0, 1, None])),
            "x": draw(st.one_of(st.none(), st.just(float("nan")), st.sampled_from([-2.5, 0.0, 1.0, 7.25, 1e9]))),
            "i": draw(st.one_of(st.none(), st.integers(-3, 3))),
            "s": draw(st.one_of(st.none(), st.sampled_from(["p", "q", "é"]))),
            "b": draw(st.one_of(st.none(), st.booleans())),
            "l": draw(st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(0, 4)), max_size=3))),
            "m": draw(st.one_of(st.none(), st.dictionaries(st.sampled_from(["a", "b"]),
                                                            st.one_of(st.none(), st.floats(-5, 5)), max_size=2)
                                .map(lambda d: list(d.items())))),
            "c": draw(st.one_of(st.none(), st.sampled_from(["c1", "c2"]))),
            "ts": ts,
            "ds": datetime.date(1970, 1, 1) + datetime.timedelta(days=ts // DAY),
        })
    return events
