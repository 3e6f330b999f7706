"""One-date snapshots (``snapshot_one_day``, no row reordering) against the general path on the
same input: identical tables (rows, row order, values to the bit), on day-major / shuffled IR
tables with nulls, NaN, -0.0, lists, duplicate (key, day) rows, heavy keys, empty windows, rows
outside every window, multi-column and integer keys."""
import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from .agg_testlib import (
    BASE_DAY, DAY, EPOCH, O, SCHEMA, agg, compare_rows, dates, group_by, random_events, table_rows, to_table,
)
from .test_snapshot import tolerances
from chronon_cli.agg import GroupByAggregator, reference
from chronon_cli.agg import snapshot as snapshot_mod
from chronon_cli.agg import snapshot_one_day


def fast_ops(keys=("u",), lifetime=True):
    life = [None] if lifetime else []
    return group_by(list(keys), [
        agg("x", O.COUNT, ["1d", "3d"] + life),
        agg("x", O.SUM, ["1d", "7d"] + life),
        agg("i", O.SUM, ["2d"] + life),
        agg("x", O.AVERAGE, ["2d", "5d"] + life),
        agg("x", O.VARIANCE, ["3d"] + life),
        agg("x", O.SKEW, ["6d"] + life),
        agg("x", O.KURTOSIS, ["7d"]),
        agg("x", O.MIN, ["1d"] + life),
        agg("x", O.MAX, ["4d"] + life),
        agg("s", O.MAX, ["3d"] + life),
        agg("i", O.MIN, ["2d"]),
        agg("x", O.FIRST, ["3d"] + life),
        agg("x", O.LAST, ["2d"] + life),
        agg("s", O.LAST, ["5d"]),
        agg("x", O.FIRST_K, ["2d", "7d"], k=2),
        agg("x", O.LAST_K, ["1d", "3d"] + life, k=3),
        agg("s", O.LAST_K, ["2d"] + life, k=2),
        agg("l", O.FIRST_K, ["2d"], k=3),
        agg("x", O.TOP_K, ["1d", "4d"] + life, k=2),
        agg("x", O.BOTTOM_K, ["3d"], k=4),
        agg("s", O.TOP_K, ["3d"], k=3),
        agg("i", O.BOTTOM_K, ["5d"] + life, k=3),
        agg("x", O.APPROX_PERCENTILE, ["1d", "3d"] + life, k=8, percentiles="[0.0, 0.25, 0.5, 0.9, 1.0]"),
        agg("i", O.APPROX_PERCENTILE, ["2d", "7d"], k=400, percentiles="[0.5, 0.95]"),
    ])


def events_for(seed, n=500, n_keys=7, signed_zeros=True, ds_shift=False, infinities=False):
    rng = np.random.default_rng(seed)
    events = random_events(rng, n, n_days=12, n_keys=n_keys)
    if infinities:                 # values of lists, percentiles, MIN / MAX
        for e in events[::9]:
            if e["x"] is not None:
                e["x"] = float(rng.choice([np.inf, -np.inf]))
    if signed_zeros:               # -0.0 and 0.0 tie on (ts, value) in k-ops and percentiles
        for j, e in enumerate(events[::11]):
            e["x"] = -0.0 if j % 2 else 0.0
            e["ts"] = (e["ts"] // DAY) * DAY + 5
    for _ in range(60):            # a heavy key: percentile windows beyond k (sketches)
        day = BASE_DAY + int(rng.integers(0, 12))
        events.append({"u": "heavy", "v": 1, "x": float(rng.normal()), "i": int(rng.integers(-50, 50)),
                       "s": "q", "ts": day * DAY + int(rng.integers(0, DAY)),
                       "ds": EPOCH + datetime.timedelta(days=day)})
    if ds_shift:                   # a day's IRs holding other days' ts: k-ops need the full sort
        for e in events[::5]:
            e["ds"] = e["ds"] + datetime.timedelta(days=int(rng.choice([-1, 1])))
    return events


def day_major(irs: pa.Table, rng, shuffle_days=False, shuffle_rows=True) -> pa.Table:
    """Concatenated per-day slices, as the backfill reads per-day IR files."""
    days = sorted(set(irs.column("ds").to_pylist()))
    if shuffle_days:
        days = [days[j] for j in rng.permutation(len(days))]
    parts = []
    for d in days:
        part = irs.filter(pc.equal(irs["ds"], pa.scalar(d, pa.date32())))
        if shuffle_rows:
            part = part.take(pa.array(rng.permutation(part.num_rows)))
        parts.append(part)
    return pa.concat_tables(parts)


def exact(table: pa.Table) -> str:
    """Bit-exact comparable form (row order, -0.0, NaN)."""
    return repr(table.to_pylist())


def _summarized_windows(op, feats, spans, ent, n_ent, cell_slot, py, targets):
    """Deterministic stand-in for the Python merges of percentile windows holding a KLL sketch
    (whose compaction is random): per window, [IRs merged, values seen, min, max, ...] of its IRs,
    which the fast path must route and select exactly as the general path does."""
    T = len(targets)
    order = np.lexsort((cell_slot, ent))   # as _object_windows merges them: by (entity, slot, row)
    ent, cell_slot, py = ent[order], cell_slot[order], [py[j] for j in order]
    outs = {}
    for i, f in enumerate(feats):
        span = spans[i]
        vals, ok = [None] * (n_ent * T), np.zeros(n_ent * T, dtype=bool)
        for e in range(n_ent):
            for ti, t in enumerate(targets.tolist()):
                irs = [py[j] for j in np.flatnonzero((ent == e) & (cell_slot >= t - span + 1) & (cell_slot <= t))
                       if py[j] is not None]
                if not irs:
                    continue
                n = sum(len(ir) if isinstance(ir, list) else ir.n for ir in irs)
                lo = min(min(ir) if isinstance(ir, list) else ir.get_min_value() for ir in irs)
                hi = max(max(ir) if isinstance(ir, list) else ir.get_max_value() for ir in irs)
                summary = [float(len(irs)), float(n), float(lo), float(hi)]
                vals[e * T + ti] = (summary * 2)[:len(f.op.percentiles)]
                ok[e * T + ti] = True
        outs[i] = (vals, ok)
    return outs


def both_paths(a, irs, day, monkeypatch):
    """-> (one-date fast path result, general path result, whether the fast path ran)."""
    monkeypatch.setattr(snapshot_mod, "_object_windows", _summarized_windows)
    calls = []
    real = snapshot_one_day.snapshot_one

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(snapshot_one_day, "snapshot_one", spy)
    fast = a.snapshot(irs, [day])
    monkeypatch.setattr(snapshot_mod, "ONE_DATE_FAST_PATH", False)
    slow = a.snapshot(irs, [day])
    monkeypatch.setattr(snapshot_mod, "ONE_DATE_FAST_PATH", True)
    monkeypatch.setattr(snapshot_one_day, "snapshot_one", real)
    assert fast.schema == slow.schema == a.output_schema
    return fast, slow, bool(calls)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("keys", [("u",), ("u", "v")])
def test_one_date_equals_general_path(seed, keys, monkeypatch):
    events = events_for(seed)
    a = GroupByAggregator(fast_ops(keys), SCHEMA)
    rng = np.random.default_rng(100 + seed)
    irs = day_major(a.daily_irs(to_table(events)), rng)
    ran = 0
    for off in (0, 3, 5, 8, 11, 12, 14, 40):   # empty windows, rows after the date, far future
        fast, slow, used = both_paths(a, irs, dates(off)[0], monkeypatch)
        ran += used
        assert exact(fast) == exact(slow), off
    assert ran >= 7


@pytest.mark.parametrize("seed", [4, 5])
def test_one_date_without_lifetime_drops_old_rows(seed, monkeypatch):
    """Finite windows only: rows before every window are filtered; shuffled day order is fine."""
    events = events_for(seed)
    a = GroupByAggregator(fast_ops(lifetime=False), SCHEMA)
    rng = np.random.default_rng(seed)
    irs = day_major(a.daily_irs(to_table(events)), rng, shuffle_days=True)
    for off in (6, 9, 11):
        fast, slow, used = both_paths(a, irs, dates(off)[0], monkeypatch)
        assert used and fast.num_rows > 0
        assert exact(fast) == exact(slow)


def test_one_date_duplicate_key_days_and_chunks(monkeypatch):
    """Several IR rows per (key, day) (two partial IR files per day), many key chunks."""
    events = events_for(6, n=700, n_keys=25)
    a = GroupByAggregator(fast_ops(("u", "v")), SCHEMA)
    half = len(events) // 2
    rng = np.random.default_rng(6)
    irs = pa.concat_tables([day_major(a.daily_irs(to_table(events[:half])), rng),
                            day_major(a.daily_irs(to_table(events[half:])), rng)])
    irs = day_major(irs, rng, shuffle_rows=True)
    for budget in (None, 40):
        if budget:
            monkeypatch.setattr(snapshot_one_day, "GRID_BUDGET", budget)
        for off in (4, 11):
            fast, slow, used = both_paths(a, irs, dates(off)[0], monkeypatch)
            assert used and fast.num_rows > 10
            assert exact(fast) == exact(slow)


def test_one_date_ir_days_holding_other_days_events(monkeypatch):
    """k-op lists not in day order across rows: the elements are fully sorted."""
    events = events_for(7, ds_shift=True)
    a = GroupByAggregator(fast_ops(), SCHEMA)
    irs = day_major(a.daily_irs(to_table(events)), np.random.default_rng(7))
    for off in (2, 7, 12):
        fast, slow, used = both_paths(a, irs, dates(off)[0], monkeypatch)
        assert used
        assert exact(fast) == exact(slow)


@pytest.mark.parametrize("seed", [11, 12])
def test_one_date_infinities(seed, monkeypatch):
    events = events_for(seed, infinities=True)
    gb = group_by(["u"], [a for a in fast_ops().aggregations
                          if a.operation not in (O.VARIANCE, O.SKEW, O.KURTOSIS, O.AVERAGE, O.SUM)])
    a = GroupByAggregator(gb, SCHEMA)
    irs = day_major(a.daily_irs(to_table(events)), np.random.default_rng(seed))
    for off in (1, 6, 11):
        fast, slow, used = both_paths(a, irs, dates(off)[0], monkeypatch)
        assert used and fast.num_rows > 0
        assert exact(fast) == exact(slow)


def test_one_date_integer_keys(monkeypatch):
    events = [e for e in events_for(8) if e["i"] is not None]
    a = GroupByAggregator(group_by(["i"], fast_ops().aggregations[:6] + fast_ops().aggregations[14:17]), SCHEMA)
    irs = day_major(a.daily_irs(to_table(events)), np.random.default_rng(8))
    fast, slow, used = both_paths(a, irs, dates(9)[0], monkeypatch)
    assert used and fast.num_rows > 10
    assert exact(fast) == exact(slow)


def test_one_date_unsorted_early_rows_or_unsupported_ops_use_general_path(monkeypatch):
    events = events_for(9)
    a = GroupByAggregator(fast_ops(), SCHEMA)
    rng = np.random.default_rng(9)
    irs = day_major(a.daily_irs(to_table(events)), rng, shuffle_days=True)
    # lifetime windows gather early days into one slot: out of day order, the general path runs
    fast, slow, used = both_paths(a, irs, dates(11)[0], monkeypatch)
    assert not used and exact(fast) == exact(slow)
    gb = group_by(["u"], [agg("x", O.SUM, ["3d"]), agg("x", O.UNIQUE_COUNT, ["2d"]),
                          agg("x", O.LAST_K, ["2d"], k=2, buckets=["c"])])
    b = GroupByAggregator(gb, SCHEMA)
    irs = day_major(b.daily_irs(to_table(events)), rng)
    fast, slow, used = both_paths(b, irs, dates(8)[0], monkeypatch)
    assert not used and exact(fast) == exact(slow) and fast.num_rows > 0


def test_one_date_matches_reference():
    events = events_for(10, signed_zeros=False)
    gb = fast_ops(("u", "v"))   # without the KLL percentiles (approximate, random compaction)
    gb.aggregations = [x for x in gb.aggregations if not (x.operation == O.APPROX_PERCENTILE and x.argMap["k"] == "8")]
    a = GroupByAggregator(gb, SCHEMA)
    irs = day_major(a.daily_irs(to_table(events)), np.random.default_rng(10))
    for when in (dates(3), dates(11)):
        actual = a.snapshot(irs, when)
        expected = reference.snapshot(gb, events, when)
        assert compare_rows(table_rows(actual), expected, ["u", "v"], "ds", tolerances(a.feature_names)) > 5


def test_one_date_signed_zero_ties_across_days_in_any_row_order(monkeypatch):
    """Equal (ts, value) elements of one key in IR rows of different days (-0.0 / 0.0 and equal
    values): the general path keeps them in day order, whatever order the rows come in."""
    events = []
    t0 = (BASE_DAY + 5) * DAY + 5
    for j, (day, x) in enumerate([(5, -0.0), (6, 0.0), (4, 0.0), (6, -0.0), (3, -0.0), (5, 1.5), (4, 1.5)]):
        for key in ("z", "y"):
            events.append({"u": key, "x": x, "i": j, "s": "p", "ts": t0 + (j % 2) * 0,
                           "ds": EPOCH + datetime.timedelta(days=BASE_DAY + day)})
    gb = group_by(["u"], [
        agg("x", O.LAST_K, ["3d", "7d"], k=5),
        agg("x", O.FIRST_K, ["7d"], k=5),
        agg("x", O.TOP_K, ["2d", "7d"], k=3),
        agg("x", O.BOTTOM_K, ["7d"], k=6),
        agg("x", O.MAX, ["7d"]),
        agg("x", O.MIN, ["3d"]),
        agg("x", O.APPROX_PERCENTILE, ["7d"], k=400, percentiles="[0.0, 0.3, 0.5, 1.0]"),
    ])
    a = GroupByAggregator(gb, SCHEMA)
    irs = a.daily_irs(to_table(events))
    for order in (np.arange(irs.num_rows)[::-1], np.random.default_rng(13).permutation(irs.num_rows)):
        shuffled = irs.take(pa.array(order))
        fast, slow, used = both_paths(a, shuffled, dates(7)[0], monkeypatch)
        assert used and fast.num_rows == 2
        assert exact(fast) == exact(slow)


def test_one_date_presorted_k_ops_keep_day_order_of_ties(monkeypatch):
    """Rows in reverse day order whose k-op elements only tie on (ts, value): -0.0 / 0.0 of
    different days must still come in day order."""
    t0 = (BASE_DAY + 5) * DAY + 5
    events = [{"u": key, "x": x, "ts": t0 + shift, "ds": EPOCH + datetime.timedelta(days=BASE_DAY + day)}
              for key, shift in (("w", 0), ("v", 7))
              for day, x in ((4, -0.0), (5, 0.0), (6, 0.0), (3, 0.0))]
    gb = group_by(["u"], [agg("x", O.LAST_K, ["3d", "7d"], k=5), agg("x", O.FIRST_K, ["7d"], k=2)])
    a = GroupByAggregator(gb, SCHEMA)
    irs = a.daily_irs(to_table(events))
    irs = irs.take(pa.array(np.argsort(-np.array(irs.column("ds").cast(pa.int32()).to_pylist()), kind="stable")))
    fast, slow, used = both_paths(a, irs, dates(7)[0], monkeypatch)
    assert used and fast.num_rows == 2
    assert exact(fast) == exact(slow)
