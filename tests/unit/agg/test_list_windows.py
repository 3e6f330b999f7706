"""Vectorized snapshot windows of list-valued IRs (k-ops, APPROX_PERCENTILE) against the
per-entity Python merges they replace, and the KLL fallback for windows beyond k values."""
import datetime
import math

import datasketches as ds
import numpy as np
import pyarrow as pa
import pytest

from .agg_testlib import BASE_DAY, DAY, EPOCH, O, SCHEMA, agg, dates, group_by, random_events, to_table
from chronon_cli.agg import GroupByAggregator
from chronon_cli.agg import snapshot as snapshot_mod
from chronon_cli.agg.codes import to_array


def _python_windows(op, feats, irs, ent, n_ent, cell_slot, n_slots, spans, targets):
    py = [op.from_storage(x) for x in to_array(irs).to_pylist()]
    res = snapshot_mod._object_windows(op, feats, spans, ent, n_ent, cell_slot, py, targets)
    major = snapshot_mod._target_major_order(n_ent, len(targets))  # windows are returned target-major
    return {i: (pa.array([v[j] for j in major], type=feats[i].op.output_type), ok[major])
            for i, (v, ok) in res.items()}


def list_group_by(percentile_k=128):
    return group_by(["u"], [
        agg("x", O.LAST_K, ["1d", "3d", None], k=3),
        agg("x", O.FIRST_K, ["2d", "7d"], k=2),
        agg("x", O.TOP_K, ["1d", "4d", None], k=2),
        agg("x", O.BOTTOM_K, ["3d"], k=4),
        agg("s", O.LAST_K, ["2d", None], k=2),
        agg("s", O.TOP_K, ["3d"], k=3),
        agg("l", O.FIRST_K, ["2d"], k=3),
        agg("x", O.LAST_K, ["2d"], k=2, buckets=["c"]),
        agg("x", O.APPROX_PERCENTILE, ["1d", "3d", None], k=percentile_k, percentiles="[0.0, 0.25, 0.5, 0.9, 1.0]"),
        agg("i", O.APPROX_PERCENTILE, ["2d"], k=percentile_k, percentiles="[0.5]", buckets=["c"]),
    ])


@pytest.mark.parametrize("seed,budget", [(0, None), (1, None), (2, 40)])
def test_vectorized_list_windows_equal_python_merges(seed, budget, monkeypatch):
    rng = np.random.default_rng(seed)
    events = random_events(rng, 600, n_days=12, n_keys=9)
    for e in events[::7]:   # infinities are values of lists and percentiles
        if e["x"] is not None:
            e["x"] = float(rng.choice([np.inf, -np.inf]))
    a = GroupByAggregator(list_group_by(), SCHEMA)
    irs = a.daily_irs(to_table(events))
    when = dates(0, 1, 2, 5, 6, 7, 11)
    if budget:
        monkeypatch.setattr(snapshot_mod, "CELL_BUDGET", budget)
    fast = a.snapshot(irs, when)
    monkeypatch.setattr(snapshot_mod, "_kept_windows", _python_windows)
    monkeypatch.setattr(snapshot_mod, "_percentile_windows", _python_windows)
    slow = a.snapshot(irs, when)
    assert fast.num_rows == slow.num_rows > 30
    assert fast.sort_by([("u", "ascending"), ("ds", "ascending")]).equals(
        slow.sort_by([("u", "ascending"), ("ds", "ascending")]))


def test_percentile_windows_beyond_k_use_sketches():
    """k = 8: some daily IRs and many windows exceed k (KLL), others stay exact lists."""
    rng = np.random.default_rng(3)
    events = []
    for key, per_day in (("busy", (12, 30)), ("calm", (0, 4)), ("mixed", (0, 11))):
        for day in range(8):
            for _ in range(int(rng.integers(*per_day))):
                ts = (BASE_DAY + day) * DAY + int(rng.integers(0, DAY))
                events.append({"u": key, "x": float(rng.normal()), "ts": ts,
                               "ds": EPOCH + datetime.timedelta(days=ts // DAY)})
    ps = [0.1, 0.5, 0.9]
    gb = group_by(["u"], [agg("x", O.APPROX_PERCENTILE, ["1d", "3d", None], k=8, percentiles=str(ps))])
    a = GroupByAggregator(gb, SCHEMA)
    when = dates(*range(8))
    out = a.snapshot(a.daily_irs(to_table(events)), when).to_pylist()
    assert len(out) > 20   # a key without events yet has no row
    eps = ds.kll_doubles_sketch.get_normalized_rank_error(8, False)
    exact = sketched = 0
    for row in out:
        end = (row["ds"] - EPOCH).days + 1
        for w, name in ((1, "x_approx_percentile_1d"), (3, "x_approx_percentile_3d"), (None, "x_approx_percentile")):
            lo = -math.inf if w is None else (end - w) * DAY
            xs = sorted(e["x"] for e in events if e["u"] == row["u"] and lo <= e["ts"] < end * DAY)
            got = row[name]
            if not xs:
                assert got is None
            elif len(xs) <= 8:
                exact += 1
                assert got == [xs[max(math.ceil(p * len(xs)) - 1, 0)] for p in ps]
            else:
                sketched += 1
                for p, q in zip(ps, got):
                    rank = np.searchsorted(xs, q, side="right") / len(xs)
                    assert abs(rank - p) <= eps + 1.0 / len(xs), (row["u"], row["ds"], name, p)
    assert exact > 10 and sketched > 10
