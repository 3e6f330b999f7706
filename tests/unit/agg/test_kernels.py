"""daily_irs / merge_daily_irs against the per-row path; input layouts (chunks, slices, nulls)."""
import numpy as np
import pyarrow as pa
import pytest

from .agg_testlib import SCHEMA, close, random_events, to_table
from chronon_cli.agg import GroupByAggregator
from chronon_cli.spec import ttypes
from .agg_testlib import all_ops_group_by

O = ttypes.Operation
INEXACT = {O.SUM, O.AVERAGE, O.VARIANCE, O.SKEW, O.KURTOSIS, O.APPROX_UNIQUE_COUNT, O.APPROX_PERCENTILE}


def exact_column(column):
    if column.operation == O.SUM and column.shape.kind != "float":
        return True
    return column.operation not in INEXACT


def per_row_irs(agg, events):
    """(keys..., ds) -> IR row, through update_row."""
    out = {}
    for e in events:
        key = tuple(e[k] for k in agg.key_columns)
        if all(v is None for v in key):
            continue
        row = out.setdefault(key + (e["ds"],), agg.empty_row())
        agg.update_row(row, e)
    return out


def compare_ir_rows(agg, got, want):
    for c, g, w in zip(agg.columns, got, want):
        if exact_column(c):
            assert c.to_storage(g) == c.to_storage(w), c.name
    fg, fw = agg.finalize(got), agg.finalize(want)
    for name in fg:
        tol = (1e-6, 1e-6) if ("skew" in name or "kurtosis" in name) else (1e-9, 1e-9)
        if "approx_unique" in name:
            assert (fg[name] is None) == (fw[name] is None), name
        else:
            assert close(fg[name], fw[name], *tol), (name, fg[name], fw[name])


def table_irs(agg, table):
    return {tuple(r[k] for k in agg.key_columns) + (r["ds"],): r["irs"] for r in agg.ir_table_to_rows(table)}


@pytest.mark.parametrize("seed", [0, 1])
def test_daily_irs_equal_per_row_path(seed):
    rng = np.random.default_rng(seed)
    events = random_events(rng, 400)
    agg = GroupByAggregator(all_ops_group_by(), SCHEMA)
    table = agg.daily_irs(to_table(events))
    assert table.schema == agg.ir_schema
    got = table_irs(agg, table)
    want = per_row_irs(agg, events)
    assert got.keys() == want.keys()
    for key in want:
        compare_ir_rows(agg, got[key], want[key])


def test_merge_daily_irs_equals_one_batch():
    rng = np.random.default_rng(7)
    events = random_events(rng, 400)
    agg = GroupByAggregator(all_ops_group_by(), SCHEMA)
    parts = [[], [], []]
    for e in events:
        parts[int(rng.integers(0, 3))].append(e)
    stacked = pa.concat_tables([agg.daily_irs(to_table(p)) for p in parts])
    merged = agg.merge_daily_irs(stacked)
    assert merged.schema == agg.ir_schema
    assert merged.num_rows < stacked.num_rows
    got, want = table_irs(agg, merged), table_irs(agg, agg.daily_irs(to_table(events)))
    assert got.keys() == want.keys()
    for key in want:
        compare_ir_rows(agg, got[key], want[key])


def test_chunked_and_sliced_inputs():
    rng = np.random.default_rng(11)
    events = random_events(rng, 300)
    agg = GroupByAggregator(all_ops_group_by(), SCHEMA)
    whole = to_table(events)
    chunked = pa.Table.from_batches(whole.to_batches(max_chunksize=37))
    assert chunked.column("l").num_chunks > 1
    assert agg.daily_irs(chunked).equals(agg.daily_irs(whole))
    # a slice: list and map columns start at a non-zero offset
    sliced = whole.slice(57, 150)
    assert agg.daily_irs(sliced).equals(agg.daily_irs(to_table(events[57:207])))


def test_all_null_keys_dropped_and_empty_inputs():
    agg = GroupByAggregator(all_ops_group_by(), SCHEMA)
    rng = np.random.default_rng(2)
    events = random_events(rng, 20)
    for e in events:
        e["u"] = e["v"] = None
    assert agg.daily_irs(to_table(events)).num_rows == 0
    assert agg.daily_irs(to_table([])).schema == agg.ir_schema
    assert agg.merge_daily_irs(agg.ir_schema.empty_table()).num_rows == 0
    assert agg.snapshot(agg.ir_schema.empty_table(), ["2023-12-10"]).schema == agg.output_schema
    # one key column null, the other set: kept
    events[0]["v"] = 1
    out = agg.daily_irs(to_table(events))
    assert out.num_rows == 1 and out.column("u").to_pylist() == [None] and out.column("v").to_pylist() == [1]


def test_ds_as_string_accepted():
    gb = ttypes.GroupBy(keyColumns=["u"], aggregations=[ttypes.Aggregation(inputColumn="i", operation=O.SUM)])
    schema = pa.schema([("u", pa.string()), ("i", pa.int64())])
    agg = GroupByAggregator(gb, schema)
    events = pa.table({"u": ["a", "a"], "i": [1, 2], "ds": ["2024-01-01", "2024-01-02"]})
    out = agg.daily_irs(events)
    assert [str(d) for d in out.column("ds").to_pylist()] == ["2024-01-01", "2024-01-02"]


def test_sketch_switch_in_batch_kernel():
    """Groups above k get sketches (same as the per-row path would), small groups stay exact."""
    import datasketches as ds
    from collections import Counter

    gb = ttypes.GroupBy(keyColumns=["u"], aggregations=[
        ttypes.Aggregation(inputColumn="x", operation=O.APPROX_PERCENTILE, argMap={"k": "8", "percentiles": "[0.5]"}),
        ttypes.Aggregation(inputColumn="s", operation=O.APPROX_HISTOGRAM_K, argMap={"k": "2"}),
    ])
    agg = GroupByAggregator(gb, SCHEMA)
    rng = np.random.default_rng(4)
    events = random_events(rng, 400, n_keys=4)
    got = table_irs(agg, agg.daily_irs(to_table(events)))
    want = per_row_irs(agg, events)
    assert got.keys() == want.keys()
    pct, hist = agg.columns
    kinds = set()
    for key, row in want.items():
        xs = sorted(e["x"] for e in events if (e["u"], e["ds"]) == (key[0], key[1])
                    and e["x"] is not None and e["x"] == e["x"])
        words = Counter(e["s"] for e in events if (e["u"], e["ds"]) == (key[0], key[1]) and e["s"] is not None)
        for irs in (got[key], row):
            p, h = irs
            kinds.add((type(p).__name__, type(h).__name__))
            if len(xs) <= 8:
                assert p == (xs or None)
            else:
                assert isinstance(p, ds.kll_doubles_sketch) and p.n == len(xs)
                median = pct.op.finalize(p)[0]
                rank = sum(1 for x in xs if x <= median) / len(xs)
                assert abs(rank - 0.5) <= ds.kll_doubles_sketch.get_normalized_rank_error(8, False) + 1 / len(xs)
            if len(words) <= 2:
                assert h == (dict(words) or None)
            else:
                assert isinstance(h, ds.frequent_strings_sketch)
                eps = ds.frequent_strings_sketch.get_epsilon_for_lg_size(hist.op.lg_map_size)
                for word, est in hist.op.finalize(h).items():
                    assert abs(est - words[word]) <= eps * sum(words.values())
    assert {"kll_doubles_sketch", "list"} <= {k[0] for k in kinds}
    assert {"frequent_strings_sketch", "dict"} <= {k[1] for k in kinds}


def test_key_codes_many_wide_key_columns():
    """Five high-cardinality key columns overflow a 62-bit mixed radix: codes are re-densified."""
    from chronon_cli.agg.codes import KeyCodes

    rng = np.random.default_rng(0)
    n = 12000
    cols = {f"k{j}": rng.integers(0, 10 ** 9, n) for j in range(5)}
    cols["k0"][::7] = cols["k0"][0]           # some repeated tuples
    cols["k1"][::7] = cols["k1"][0]
    cols["k2"][::7] = cols["k2"][0]
    cols["k3"][::7] = cols["k3"][0]
    cols["k4"][::7] = cols["k4"][0]
    table = pa.table({k: pa.array(v, mask=(rng.random(n) < 0.05)) for k, v in cols.items()})
    kc = KeyCodes(table, list(cols))
    tuples = list(zip(*[table.column(k).to_pylist() for k in cols]))
    assert kc.num_keys == len(set(tuples))
    keys = list(zip(*[kc.keys.column(k).to_pylist() for k in cols]))
    assert [keys[i] for i in kc.ids] == tuples


def test_missing_columns_are_reported():
    gb = ttypes.GroupBy(keyColumns=["u"], aggregations=[ttypes.Aggregation(inputColumn="i", operation=O.SUM)])
    agg = GroupByAggregator(gb, SCHEMA)
    with pytest.raises(ValueError, match=r"lack columns \['i'\]"):
        agg.daily_irs(pa.table({"u": ["a"], "ds": ["2024-01-01"]}))
    with pytest.raises(ValueError, match="ts"):
        agg.temporal(pa.table({"u": ["a"], "i": [1]}), pa.table({"u": ["a"], "ts": [1]}))


def test_tile_irs_equal_per_row_path():
    from .agg_testlib import HOUR

    rng = np.random.default_rng(12)
    events = random_events(rng, 300)
    events[0]["ts"] = None
    agg = GroupByAggregator(all_ops_group_by(), SCHEMA)
    tiles = agg.tile_irs(to_table(events), HOUR)
    assert tiles.schema == agg.tile_schema
    want = {}
    for e in events:
        key = (e["u"], e["v"])
        if all(v is None for v in key) or e["ts"] is None:
            continue
        agg.update_row(want.setdefault(key + (e["ts"] // HOUR * HOUR,), agg.empty_row()), e)
    got = {tuple(r[k] for k in ("u", "v", "ts")): agg.row_from_storage([r[c] for c in agg.ir_columns])
           for r in tiles.to_pylist()}
    assert got.keys() == want.keys()
    for key in want:
        compare_ir_rows(agg, got[key], want[key])
    # tiles of a day merge to that day's IRs
    day = agg.daily_irs(to_table([e for e in events if e["ts"] is not None]))
    assert len({(k[0], k[1], k[2] // 86_400_000) for k in got}) == day.num_rows


def test_merge_tile_irs_equals_one_batch():
    from .agg_testlib import HOUR

    rng = np.random.default_rng(13)
    events = random_events(rng, 300)
    agg = GroupByAggregator(all_ops_group_by(), SCHEMA)
    halves = [events[::2], events[1::2]]
    merged = agg.merge_tile_irs(pa.concat_tables([agg.tile_irs(to_table(h), 6 * HOUR) for h in halves]))
    whole = agg.tile_irs(to_table(events), 6 * HOUR)
    rows = lambda t: {tuple(r[k] for k in ("u", "v", "ts")): agg.row_from_storage([r[c] for c in agg.ir_columns])
                      for r in t.to_pylist()}  # noqa: E731
    got, want = rows(merged), rows(whole)
    assert got.keys() == want.keys()
    for key in want:
        compare_ir_rows(agg, got[key], want[key])


@pytest.mark.parametrize("keys", [[3, 5, 3, 4], [1, 10 ** 15, 1, -(10 ** 15)], [7, None, 7, 2], [2 ** 64 - 1, 0, 0, 1]])
def test_integer_keys_fast_and_hashing_paths(keys):
    from chronon_cli.agg import reference
    from .agg_testlib import dates, table_rows

    typ = pa.uint64() if max(k or 0 for k in keys) >= 2 ** 63 else pa.int64()
    schema = pa.schema([("k", typ), ("i", pa.int64()), ("ts", pa.int64()), ("ds", pa.date32())])
    gb = ttypes.GroupBy(keyColumns=["k"], aggregations=[
        ttypes.Aggregation(inputColumn="i", operation=O.SUM), ttypes.Aggregation(inputColumn="i", operation=O.LAST)])
    agg = GroupByAggregator(gb, schema)
    day = dates(0)[0]
    events = [{"k": k, "i": j, "ts": 19700 * 86_400_000 + j, "ds": day} for j, k in enumerate(keys)]
    table = pa.Table.from_pylist(events, schema=schema)
    out = table_rows(agg.snapshot(agg.daily_irs(table), [day]))
    want = reference.snapshot(gb, events, [day])
    assert sorted(out, key=lambda r: r["k"]) == sorted(want, key=lambda r: r["k"])
    assert len(out) == len({k for k in keys if k is not None})
