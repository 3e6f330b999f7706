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
from chronon_cli.agg import one_day_dense, one_day_lists, snapshot_one_day


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


# ------------------------------------------------ paths for day-ordered rows, one per (day, key)

def rechunk(table: pa.Table, rng) -> pa.Table:
    """The table in chunks of random sizes that do not follow the days (sliced buffers, and an
    empty chunk), as record batches of several files come."""
    t = table.combine_chunks()
    cuts = sorted({0, t.num_rows} | set(rng.integers(1, max(t.num_rows, 2), size=max(t.num_rows // 9, 1)).tolist()))
    parts = [t.slice(a, b - a) for a, b in zip(cuts, cuts[1:])]
    parts.insert(len(parts) // 2, t.slice(0, 0))
    out = pa.concat_tables(parts)
    assert out.column(0).num_chunks > 3
    return out


def chunked_irs(a, events, seed):
    """``a``'s daily IRs of ``events``, day-major and cut into chunks anywhere (seeded)."""
    rng = np.random.default_rng(seed)
    return rechunk(day_major(a.daily_irs(to_table(events)), rng), rng)


def assert_paths_agree(a, irs, offsets, monkeypatch):
    """The one-date path runs and gives the general path's non-empty result, to the bit, for the
    target date of each offset."""
    for off in offsets:
        fast, slow, used = both_paths(a, irs, dates(off)[0], monkeypatch)
        assert used and fast.num_rows > 0
        assert exact(fast) == exact(slow)


def spy(monkeypatch, name, judge=lambda result: result is not None):
    """Record ``judge(result)`` of each call of ``<name>`` (in ``one_day_dense`` or ``one_day_lists``)."""
    calls = []
    module = one_day_dense if hasattr(one_day_dense, name) else one_day_lists
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(judge(result))
        return result

    monkeypatch.setattr(module, name, wrapper)
    return calls


@pytest.mark.parametrize("seed", [20, 21])
@pytest.mark.parametrize("keys", [("u",), ("u", "v")])
@pytest.mark.parametrize("lifetime", [False, True])
def test_one_date_chunks_not_following_days(seed, keys, lifetime, monkeypatch):
    """Sums and MIN / MAX streamed slot by slot from chunks cut anywhere (``_ChunkComps``), LAST_K
    tails and percentile values read chunk by chunk: the general path's results, to the bit (with
    -0.0, NaN, nulls, sketches, empty windows). Lifetime windows gathering several days in slot 0
    take the grid instead."""
    events = events_for(seed)
    a = GroupByAggregator(fast_ops(keys, lifetime=lifetime), SCHEMA)
    rng = np.random.default_rng(seed)
    irs = rechunk(day_major(a.daily_irs(to_table(events)), rng), rng)
    streamed = spy(monkeypatch, "_stream_merges", lambda result: True)
    tails = spy(monkeypatch, "_last_k_tails")
    offsets = (0, 5, 11, 14)
    for off in offsets:
        fast, slow, used = both_paths(a, irs, dates(off)[0], monkeypatch)
        assert used
        assert exact(fast) == exact(slow), off
    if not lifetime:   # x and i SUM, COUNT, AVERAGE, MIN, MAX (s MAX has a string dictionary)
        assert len(streamed) == 7 * len(offsets) and sum(tails) == len(offsets)


def test_one_date_chunks_not_following_days_infinities(monkeypatch):
    events = events_for(26, infinities=True)
    gb = group_by(["u"], [a for a in fast_ops(lifetime=False).aggregations
                          if a.operation not in (O.VARIANCE, O.SKEW, O.KURTOSIS, O.AVERAGE, O.SUM)])
    a = GroupByAggregator(gb, SCHEMA)
    irs = chunked_irs(a, events, 26)
    streamed = spy(monkeypatch, "_stream_merges", lambda result: True)
    assert_paths_agree(a, irs, (1, 6, 11), monkeypatch)
    assert streamed


def test_one_date_sums_of_ones_are_row_counts(monkeypatch):
    """Columns without nulls: the ``_n`` components of SUM / MAX are window row counts, shared."""
    events = [e for e in events_for(23) if e["x"] is not None and e["i"] is not None]
    gb = group_by(["u"], [agg("x", O.SUM, ["1d", "4d", "8d"]), agg("i", O.MAX, ["2d", "9d"]),
                          agg("i", O.SUM, ["3d"]), agg("x", O.COUNT, ["5d"]), agg("x", O.MIN, ["1d", "6d"])])
    a = GroupByAggregator(gb, SCHEMA)
    irs = chunked_irs(a, events, 23)
    counted = []
    real = snapshot_one_day._Rows.window_counts

    def window_counts(self, spans):
        counted.append(dict(spans))
        return real(self, spans)

    monkeypatch.setattr(snapshot_one_day._Rows, "window_counts", window_counts)
    assert_paths_agree(a, irs, (3, 11), monkeypatch)
    assert counted


def _edit_lists(irs: pa.Table, name: str, edit, rng) -> pa.Table:
    """IR table with list column ``name`` rewritten by ``edit(list, rng)`` for its non-empty rows."""
    col = irs.column(name)
    rows = [None if v is None else (edit(v, rng) if v else v) for v in col.to_pylist()]
    return irs.set_column(irs.schema.get_field_index(name), name, pa.array(rows, type=col.type))


def _reversed(lst, rng):
    return lst[::-1]


def _tied_descending(lst, rng):
    values = sorted((e["value"] for e in lst), reverse=True)
    return [{"ts": lst[0]["ts"], "value": v} for v in values]


def _tied_ascending(lst, rng):
    values = sorted(e["value"] for e in lst)
    return [{"ts": lst[0]["ts"], "value": v} for v in values]


def _null_value(lst, rng):
    return [{"ts": e["ts"], "value": None if j == 0 and rng.random() < 0.3 else e["value"]}
            for j, e in enumerate(lst)]


def _next_day_ts(lst, rng):
    """The last element moved into the next day (still sorted): days' ts ranges overlap."""
    last = dict(lst[-1], ts=lst[-1]["ts"] + DAY) if rng.random() < 0.3 else lst[-1]
    return lst[:-1] + [last]


@pytest.mark.parametrize("edit, tails", [
    (_reversed, False), (_tied_descending, False), (_tied_ascending, True), (_null_value, False),
    (_next_day_ts, False), (None, True),
])
def test_one_date_last_k_tails_only_for_lists_in_order(edit, tails, monkeypatch):
    """LAST_K picks the newest elements without sorting only when each list is ascending by (ts,
    value) (ties on ts allowed) and days' ts ranges do not overlap; IR tables edited to break that
    (unsorted lists, descending values on a ts tie, null values, a ts in the next day) take the
    sorting path, with the general path's results."""
    events = events_for(24, signed_zeros=False, n_keys=5)
    gb = group_by(["u"], [agg("x", O.LAST_K, ["1d", "3d", "9d"], k=3), agg("x", O.SUM, ["2d"])])
    a = GroupByAggregator(gb, SCHEMA)
    rng = np.random.default_rng(24)
    irs = day_major(a.daily_irs(to_table(events)), rng)
    if edit is not None:
        irs = _edit_lists(irs, "x_last3", edit, rng)
    irs = rechunk(irs, rng)
    hits = spy(monkeypatch, "_last_k_tails")
    for off in (6, 11):
        fast, slow, used = both_paths(a, irs, dates(off)[0], monkeypatch)
        assert used and fast.num_rows > 0
        assert exact(fast) == exact(slow), off
    assert any(hits) == tails


def test_one_date_large_tables(monkeypatch):
    """Enough elements for the packed sorts (``sorting``) in both paths."""
    rng = np.random.default_rng(25)
    events = random_events(rng, 9000, n_days=12, n_keys=40)
    gb = group_by(["u"], [
        agg("x", O.SUM, ["1d", "7d", None]), agg("x", O.MAX, ["3d"]),
        agg("x", O.LAST_K, ["2d", None], k=4), agg("x", O.TOP_K, ["3d"], k=3),
        agg("x", O.APPROX_PERCENTILE, ["1d", "5d", None], k=400, percentiles="[0.0, 0.5, 0.95, 1.0]"),
        agg("i", O.APPROX_PERCENTILE, ["2d"], k=400, percentiles="[0.25, 0.75]"),
    ])
    a = GroupByAggregator(gb, SCHEMA)
    irs = rechunk(day_major(a.daily_irs(to_table(events)), rng), rng)
    for off in (7, 11):
        fast, slow, used = both_paths(a, irs, dates(off)[0], monkeypatch)
        assert used and fast.num_rows > 20
        assert exact(fast) == exact(slow)


def test_one_date_signed_zero_sums_in_irs(monkeypatch):
    """IRs holding -0.0 sums (the general path's grouping adds them to 0.0, so a one-slot window
    gives 0.0): the streamed grid rows must do the same."""
    events = events_for(27, signed_zeros=False)
    gb = group_by(["u"], [agg("x", O.SUM, ["1d", "3d"]), agg("x", O.AVERAGE, ["1d", "2d"]),
                          agg("x", O.MAX, ["1d"]), agg("x", O.MIN, ["2d"])])
    a = GroupByAggregator(gb, SCHEMA)
    rng = np.random.default_rng(27)
    irs = day_major(a.daily_irs(to_table(events)), rng)
    zero = rng.random(irs.num_rows) < 0.4
    for name in ("x_sum", "x_max", "x_min"):
        col = irs.column(name).combine_chunks()
        irs = irs.set_column(irs.schema.get_field_index(name), name,
                             pc.if_else(pc.and_(pa.array(zero), col.is_valid()), pa.scalar(-0.0), col))
    avg = irs.column("x_average").combine_chunks()
    sums = pc.if_else(pc.and_(pa.array(zero), avg.is_valid()), pa.scalar(-0.0), pc.struct_field(avg, ["sum"]))
    avg = pa.StructArray.from_arrays([sums, pc.struct_field(avg, ["count"])], fields=list(avg.type),
                                     mask=avg.is_null())
    irs = rechunk(irs.set_column(irs.schema.get_field_index("x_average"), "x_average", avg), rng)
    streamed = spy(monkeypatch, "_stream_merges", lambda result: True)
    for off in (2, 6, 11):
        fast, slow, used = both_paths(a, irs, dates(off)[0], monkeypatch)
        assert used and fast.num_rows > 0
        assert exact(fast) == exact(slow)
    assert len(streamed) == 4 * 3


@pytest.mark.parametrize("edit", [False, True])
def test_one_date_components_shared_by_columns(edit, monkeypatch):
    """SUM, COUNT and AVERAGE of one input hold equal components (sums, counts): merged once and
    reused, but only when equal to the bit (an AVERAGE sum edited in one row is merged apart)."""
    events = events_for(28)
    gb = group_by(["u"], [agg("x", O.SUM, ["1d", "3d"]), agg("x", O.COUNT, ["1d", "3d"]),
                          agg("x", O.AVERAGE, ["1d", "3d"])])
    a = GroupByAggregator(gb, SCHEMA)
    rng = np.random.default_rng(28)
    irs = day_major(a.daily_irs(to_table(events)), rng)
    if edit:
        avg = irs.column("x_average").combine_chunks()
        sums = pc.struct_field(avg, ["sum"]).to_numpy(zero_copy_only=False).copy()
        row = int(np.flatnonzero(avg.is_valid().to_numpy(zero_copy_only=False))[-1])   # (the last day)
        sums[row] += 0.5
        avg = pa.StructArray.from_arrays([pa.array(sums), pc.struct_field(avg, ["count"])], fields=list(avg.type),
                                         mask=avg.is_null())
        irs = irs.set_column(irs.schema.get_field_index("x_average"), "x_average", avg)
    irs = rechunk(irs, rng)
    shared = []
    real = snapshot_one_day._Rows.merged_like

    def merged_like(self, f, identity, cc, name, spans):
        result = real(self, f, identity, cc, name, spans)
        shared.append((name, result is not None))
        return result

    monkeypatch.setattr(snapshot_one_day._Rows, "merged_like", merged_like)
    fast, slow, used = both_paths(a, irs, dates(11)[0], monkeypatch)
    assert used and fast.num_rows > 0
    assert exact(fast) == exact(slow)
    assert ("_n", True) in shared and (("sum", True) in shared) != edit


def test_one_date_components_shared_only_to_the_bit(monkeypatch):
    """MAX of two inputs equal but for the sign of zeros: their values are not shared (MAX keeps
    -0.0 / 0.0 as the tree meets them)."""
    schema = pa.schema([("u", pa.string()), ("x", pa.float64()), ("y", pa.float64()), ("ts", pa.int64()),
                        ("ds", pa.date32())])
    rng = np.random.default_rng(29)
    events = []
    for j in range(300):
        day = BASE_DAY + int(rng.integers(0, 8))
        x = float(rng.choice([0.0, -0.0, -1.0, 2.0]))
        events.append({"u": f"k{rng.integers(0, 6)}", "x": x, "y": -x if x == 0 else x,
                       "ts": day * DAY + int(rng.integers(0, DAY)), "ds": EPOCH + datetime.timedelta(days=day)})
    gb = group_by(["u"], [agg("x", O.MAX, ["1d", "3d"]), agg("y", O.MAX, ["1d", "3d"])])
    a = GroupByAggregator(gb, schema)
    irs = rechunk(day_major(a.daily_irs(pa.Table.from_pylist(events, schema=schema)), rng), rng)
    for off in (3, 7):
        fast, slow, used = both_paths(a, irs, dates(off)[0], monkeypatch)
        assert used and fast.num_rows > 0
        assert exact(fast) == exact(slow)


def test_one_date_streamed_boolean_and_integer_columns(monkeypatch):
    events = events_for(30)
    gb = group_by(["u"], [agg("b", O.SUM, ["1d", "4d"]), agg("b", O.MAX, ["2d"]), agg("b", O.MIN, ["3d"]),
                          agg("b", O.COUNT, ["1d", "4d"]), agg("i", O.MAX, ["1d", "4d"]), agg("i", O.AVERAGE, ["2d"]),
                          agg("v", O.SUM, ["1d", "4d"])])
    a = GroupByAggregator(gb, SCHEMA)
    irs = chunked_irs(a, events, 30)
    streamed = spy(monkeypatch, "_stream_merges", lambda result: True)
    assert_paths_agree(a, irs, (2, 7, 11), monkeypatch)
    assert len(streamed) == 7 * 3
